"""Hostile input through a real server: every request message type generated from its descriptor (any
field values, unknown enum numbers, extreme strings and numbers, up to 101 records) and raw random
bytes to every method. Never UNKNOWN or INTERNAL, always exactly one ErrorInfo, and the server stays up.
"""

from __future__ import annotations

import collections
import json
import logging
from typing import Any

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.api import operations
from service.calls import GO_CODE_NAMES
from service.settings import Settings
from service.telemetry.json_logs import JsonFormatter
from tests.helpers import MEMORY_ID, RECORD_ID, RunningService
from tests.integration.helpers import details_of
from tests.strategies import build, messages

REFUSED_CODES = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}


def assert_answered_properly(error: grpc.RpcError) -> None:
    assert error.code() not in REFUSED_CODES, (error.code(), error.details())
    details = details_of(error)  # asserts exactly one ErrorInfo, and each detail type at most once
    assert details[error_details_pb2.ErrorInfo].reason


def call_raw(service: RunningService, operation: operations.Operation[Any, Any], payload: bytes) -> Any:
    invoke = service.channel.unary_unary(
        operation.full_method, request_serializer=None, response_deserializer=None
    )
    return invoke(payload, timeout=30)


HYPOTHESIS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("operation", operations.OPERATIONS, ids=lambda op: op.rpc)
def test_generated_requests_never_fail_as_the_services_fault(
    local_service: RunningService, operation: operations.Operation[Any, Any]
) -> None:
    seen: collections.Counter[str] = collections.Counter()

    # Half of them valid where a valid strategy exists, so that requests with many required members
    # (Retrieve) also reach AWS.
    descriptor = operation.request_type.DESCRIPTOR

    @HYPOTHESIS
    @given(values=st.one_of(messages(descriptor), messages(descriptor, valid=True)))
    def check(values: dict[str, Any]) -> None:
        request = build(operation.request_type, values)
        if request is None:
            return
        try:
            call_raw(local_service, operation, request.SerializeToString())
            seen["OK"] += 1
        except grpc.RpcError as error:
            assert_answered_properly(error)
            seen[GO_CODE_NAMES[error.code()]] += 1

    check()
    assert seen["OK"] + seen["NotFound"] > 0, seen  # some requests reached AWS and were served
    assert sum(seen.values()) > 0
    assert_serving(local_service)


@pytest.mark.parametrize("operation", operations.OPERATIONS, ids=lambda op: op.rpc)
def test_random_bytes_are_the_callers_mistake(
    local_service: RunningService, operation: operations.Operation[Any, Any]
) -> None:
    @HYPOTHESIS
    @given(payload=st.binary(max_size=200))
    def check(payload: bytes) -> None:
        with pytest.raises(grpc.RpcError) as caught:
            call_raw(local_service, operation, payload)
        assert_answered_properly(caught.value)
        # Not a message, or one that breaks the model (random bytes never make a valid memory id).
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    check()
    assert_serving(local_service)


def test_malformed_bytes_answer_invalid_argument_counted_and_logged_once(
    local_service: RunningService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(grpc.RpcError) as caught:
        call_raw(local_service, operations.BATCH_UPDATE, b"\xff\xff\xff")
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(caught.value)[error_details_pb2.ErrorInfo].reason == "MALFORMED_REQUEST"
    assert "BatchUpdateRequest" in (caught.value.details() or "")
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    assert [line["grpcCode"] for line in lines if line["logger"] == "service.rpc"] == ["InvalidArgument"]
    assert all(line["level"] in {"DEBUG", "INFO", "WARNING"} and "exception" not in line for line in lines)
    handled = local_service.metrics.registry.get_sample_value(
        "grpc_server_handled_total",
        {
            "grpc_type": "unary",
            "grpc_service": operations.SERVICE_NAME,
            "grpc_method": "BatchUpdate",
            "grpc_code": "InvalidArgument",
        },
    )
    assert handled == 1


def test_an_enum_number_the_proto_does_not_define_is_named(local_service: RunningService) -> None:
    request = pb.BatchUpdateRequest(
        memory_id=MEMORY_ID,
        record_expiry_specification=pb.RecordExpirySpecification(action=2),  # type: ignore[arg-type]
        records=[pb.MemoryRecordUpdate(memory_record_id=RECORD_ID, timestamp={"seconds": 1})],
    )
    with pytest.raises(grpc.RpcError) as caught:
        local_service.stub.BatchUpdate(request, timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = details_of(caught.value)[error_details_pb2.BadRequest].field_violations
    assert [v.field for v in violations] == ["record_expiry_specification.action"]
    assert "RECORD_EXPIRY_ACTION_REMOVE" in violations[0].description


def assert_serving(service: RunningService) -> None:
    health = health_pb2_grpc.HealthStub(service.channel)
    status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING


def test_a_message_over_the_size_limit_is_refused_by_grpc_itself(local_service: RunningService) -> None:
    """The one exception to the error model: gRPC's core refuses the message itself (no rich details),
    but the RPC, which started before its message arrived, is counted as what the caller saw."""
    with pytest.raises(grpc.RpcError) as caught:
        call_raw(local_service, operations.BATCH_CREATE, b"\x00" * (Settings().max_request_bytes + 1))
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in (caught.value.details() or "")
    assert rpc_status.from_call(caught.value) is None  # no google.rpc.Status, so no ErrorInfo
    started = local_service.metrics.registry.get_sample_value(
        "grpc_server_started_total",
        {"grpc_type": "unary", "grpc_service": operations.SERVICE_NAME, "grpc_method": "BatchCreate"},
    )
    assert started == 1
    handled = local_service.metrics.registry.get_sample_value(
        "grpc_server_handled_total",
        {
            "grpc_type": "unary",
            "grpc_service": operations.SERVICE_NAME,
            "grpc_method": "BatchCreate",
            "grpc_code": "ResourceExhausted",
        },
    )
    assert handled == 1
