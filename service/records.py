"""The servicer: one thin method per RPC. Validate, translate, call boto3 once, translate back.

A failure of any kind leaves through `errors.to_status` exactly once, so nothing reaches a caller
as UNKNOWN.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import grpc
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc

from service import deadlines, errors, translate, validate

Request = TypeVar("Request", pb.BatchCreateRequest, pb.BatchUpdateRequest, pb.GetRequest)
Response = TypeVar("Response")


@dataclasses.dataclass(frozen=True)
class _Operation(Generic[Request, Response]):
    """How one RPC maps onto one boto3 call."""

    to_params: Callable[[Request], dict[str, Any]]
    boto_method: str
    to_response: Callable[[Any], Response]
    resource: Callable[[Request], errors.Resource]


_BATCH_CREATE = _Operation(
    translate.to_boto_batch_create,
    "batch_create_memory_records",
    translate.from_boto_batch_create,
    lambda request: errors.Resource.memory(request.memory_id),
)
_BATCH_UPDATE = _Operation(
    translate.to_boto_batch_update,
    "batch_update_memory_records",
    translate.from_boto_batch_update,
    lambda request: errors.Resource.memory(request.memory_id),
)
_GET = _Operation(
    translate.to_boto_get,
    "get_memory_record",
    translate.from_boto_get,
    lambda request: errors.Resource.memory_record(request.memory_id, request.memory_record_id),
)


class MemoryRecordsServicer(pb_grpc.MemoryRecordsServiceServicer):
    """`agentcore.memory.v1.MemoryRecordsService` on top of one shared boto3 client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def BatchCreate(
        self, request: pb.BatchCreateRequest, context: grpc.ServicerContext
    ) -> pb.BatchCreateResponse:
        return self._call(_BATCH_CREATE, request, context)

    def BatchUpdate(
        self, request: pb.BatchUpdateRequest, context: grpc.ServicerContext
    ) -> pb.BatchUpdateResponse:
        return self._call(_BATCH_UPDATE, request, context)

    def Get(self, request: pb.GetRequest, context: grpc.ServicerContext) -> pb.GetResponse:
        return self._call(_GET, request, context)

    def _call(
        self, operation: _Operation[Request, Response], request: Request, context: grpc.ServicerContext
    ) -> Response:
        try:
            params = validate.validated_params(request, operation.to_params)
            with deadlines.bounded_by(context):
                reply = getattr(self._client, operation.boto_method)(**params)
            return operation.to_response(reply)
        except Exception as exc:
            failure: BaseException = exc
            if not context.is_active() and not isinstance(exc, errors.InvalidRequestError):
                # Whatever broke last (often a read timeout cut short), the caller is gone: say why.
                remaining = context.time_remaining()
                if remaining is not None and remaining <= 0:
                    failure = deadlines.DeadlineExceededError("the caller's deadline passed")
                else:
                    failure = deadlines.CancelledError("the caller cancelled")
            context.abort_with_status(errors.to_status(failure, resource=operation.resource(request)))
            raise  # abort_with_status always raises; this keeps type checkers honest
