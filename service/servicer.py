"""The servicer: one generic method, driven by the operation table. Admit, parse, validate, authorize,
translate, wait for a turn, call boto3 once, translate back (batches: once per 100 records, batches.py).

A failure of any kind leaves through `errors.to_status` exactly once, so nothing reaches a caller
as UNKNOWN. Requests arrive as bytes and are parsed here, so that bytes which are not the method's
message are the caller's mistake (INVALID_ARGUMENT), counted and logged like any other outcome.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import grpc

from service import authz, calls, errors, operations, tls, upstream, validate
from service.admission import Admission, OverloadedError
from service.batches import Batches
from service.operations import Operation


class MemoryRecordsServicer:
    """`agentcore.memory.v1.MemoryRecordsService`; `batches` makes its AWS calls, on one shared boto3
    client."""

    def __init__(
        self,
        admission: Admission,
        batches: Batches,
        *,
        default_deadline_seconds: float,
        authorizer: authz.Authorizer | None = None,
    ) -> None:
        self._admission = admission
        self._batches = batches
        self._authorizer = authorizer or authz.Authorizer(None)
        self._default_deadline_seconds = default_deadline_seconds

    def add_to_server(self, server: grpc.Server) -> None:
        """One method per entry of the operation table, registered as the generated code does: by
        name for stubs that send registered calls, and generically for every other client."""
        handlers: dict[str, grpc.RpcMethodHandler[bytes, Any]] = {
            operation.rpc: grpc.unary_unary_rpc_method_handler(
                functools.partial(self.call, operation),
                request_deserializer=None,  # bytes: parsed in `call`
                response_serializer=operation.response_type.SerializeToString,
            )
            for operation in operations.OPERATIONS
        }
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(operations.SERVICE_NAME, handlers),)
        )
        server.add_registered_method_handlers(operations.SERVICE_NAME, handlers)

    def call(self, operation: Operation[Any, Any], raw: bytes, context: grpc.ServicerContext) -> Any:
        """Serve one RPC of `operation`, whose request arrived as `raw` bytes."""
        with calls.scope(context, operation.full_method) as call:
            if not calls.has_deadline(context):
                call.default_deadline = time.perf_counter() + self._default_deadline_seconds
            request = None
            try:
                gone = upstream.caller_gone(context)
                if gone is not None:
                    raise gone  # its deadline passed while it waited in gRPC's queue
                self._authorizer.check_identity(call.identity, operation.full_method)  # raises when refused
                with self._admission.admitted(len(raw)):
                    request = call.request = validate.parse(operation, raw)
                    if not operation.batch:
                        params = validate.validated_params(operation, request)
                        self._authorizer.verdict(operation, request, call.caller)  # raises when denied
                        return self._batches.send(operation, params, call)
                    params = self._batches.validated_params(operation, request)
                    verdict = self._authorizer.verdict(operation, request, call.caller)
                    if verdict.refused and len(verdict.refused) == len(request.records):
                        return verdict.completed(operation, request, None)  # nothing left for AWS
                    response = self._batches.call(
                        operation, request, verdict.narrowed(params), call, verdict.kept(request.records)
                    )
                    return verdict.completed(operation, request, response)
            except Exception as exc:
                failure: BaseException = exc
                if isinstance(exc, OverloadedError):
                    call.refused = exc.reason
                elif not isinstance(
                    exc,
                    errors.InvalidRequestError
                    | errors.MalformedRequestError
                    | authz.CallerNotAllowedError
                    | tls.CallerIdentityError,
                ):
                    # Whatever broke last (often a read timeout cut short), the caller is gone: say why.
                    failure = upstream.caller_gone(context) or exc
                resource = operation.resource(request) if request is not None else None
                context.abort_with_status(errors.to_status(failure, resource=resource))
                raise  # abort_with_status always raises; this keeps type checkers honest
