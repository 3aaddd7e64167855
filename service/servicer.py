"""The servicer: one generic method, driven by the operation table. Validate, translate, call boto3
once, translate back.

A failure of any kind leaves through `errors.to_status` exactly once, so nothing reaches a caller
as UNKNOWN.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import grpc

from service import calls, errors, operations, upstream, validate
from service.operations import Operation, Request, Response

if TYPE_CHECKING:
    from mypy_boto3_bedrock_agentcore import BedrockAgentCoreClient


class MemoryRecordsServicer:
    """`agentcore.memory.v1.MemoryRecordsService` on top of one shared boto3 client."""

    def __init__(self, client: BedrockAgentCoreClient) -> None:
        self._client = client

    def add_to_server(self, server: grpc.Server) -> None:
        """One method per entry of the operation table, registered as the generated code does: by
        name for stubs that send registered calls, and generically for every other client."""
        handlers = {
            operation.rpc: grpc.unary_unary_rpc_method_handler(
                functools.partial(self.call, operation),
                request_deserializer=operation.request_type.FromString,
                response_serializer=operation.response_type.SerializeToString,
            )
            for operation in operations.OPERATIONS
        }
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(operations.SERVICE_NAME, handlers),)
        )
        server.add_registered_method_handlers(operations.SERVICE_NAME, handlers)

    def call(
        self, operation: Operation[Request, Response], request: Request, context: grpc.ServicerContext
    ) -> Response:
        """Serve one RPC of `operation`."""
        with calls.scope(context, operation.full_method):
            try:
                params = validate.validated_params(operation, request)
                reply = operation.call_aws(self._client, params)
                return operation.to_response(reply)
            except Exception as exc:
                failure: BaseException = exc
                if not isinstance(exc, errors.InvalidRequestError):
                    # Whatever broke last (often a read timeout cut short), the caller is gone: say why.
                    failure = upstream.caller_gone(context) or exc
                context.abort_with_status(errors.to_status(failure, resource=operation.resource(request)))
                raise  # abort_with_status always raises; this keeps type checkers honest
