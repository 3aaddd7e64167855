"""The servicer: one thin method per RPC. Validate, translate, call boto3 once, translate back.

A failure of any kind leaves through `errors.to_status` exactly once, so nothing reaches a caller
as UNKNOWN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc

from service import deadlines, errors, translate, validate

Request = TypeVar("Request", pb.BatchCreateRequest, pb.BatchUpdateRequest, pb.GetRequest)
Response = TypeVar("Response")


class MemoryRecordsServicer(pb_grpc.MemoryRecordsServiceServicer):
    """`agentcore.memory.v1.MemoryRecordsService` on top of one shared boto3 client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def BatchCreate(
        self, request: pb.BatchCreateRequest, context: grpc.ServicerContext
    ) -> pb.BatchCreateResponse:
        return _call(
            context,
            request,
            translate.to_boto_batch_create,
            self._client.batch_create_memory_records,
            translate.from_boto_batch_create,
        )

    def BatchUpdate(
        self, request: pb.BatchUpdateRequest, context: grpc.ServicerContext
    ) -> pb.BatchUpdateResponse:
        return _call(
            context,
            request,
            translate.to_boto_batch_update,
            self._client.batch_update_memory_records,
            translate.from_boto_batch_update,
        )

    def Get(self, request: pb.GetRequest, context: grpc.ServicerContext) -> pb.GetResponse:
        return _call(
            context, request, translate.to_boto_get, self._client.get_memory_record, translate.from_boto_get
        )


def _call(
    context: grpc.ServicerContext,
    request: Request,
    to_params: Callable[[Request], dict[str, Any]],
    boto_method: Callable[..., Any],
    to_response: Callable[[Any], Response],
) -> Response:
    try:
        params = validate.validated_params(request, to_params)
        with deadlines.bounded_by(context):
            reply = boto_method(**params)
        return to_response(reply)
    except Exception as exc:
        failure: BaseException = exc
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0 and not isinstance(exc, errors.InvalidRequestError):
            # Whatever broke last (often a read timeout cut short), the caller ran out of time.
            failure = deadlines.DeadlineExceededError("the caller's deadline passed")
        context.abort_with_status(errors.to_status(failure, memory_id=request.memory_id))
        raise  # abort_with_status always raises; this keeps type checkers honest
