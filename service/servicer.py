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

    def handler(self) -> grpc.GenericRpcHandler:
        """The service's gRPC handler: one method per entry of the operation table."""
        return grpc.method_handlers_generic_handler(
            operations.SERVICE_NAME,
            {
                operation.rpc: grpc.unary_unary_rpc_method_handler(
                    functools.partial(self.call, operation),
                    request_deserializer=operation.request_type.FromString,
                    response_serializer=operation.response_type.SerializeToString,
                )
                for operation in operations.OPERATIONS
            },
        )

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
