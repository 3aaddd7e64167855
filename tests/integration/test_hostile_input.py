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
from google.protobuf import descriptor, message
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import operations
from service.calls import GO_CODE_NAMES
from service.logs import JsonFormatter
from service.server import MAX_REQUEST_BYTES
from tests.helpers import MEMORY_ID, RECORD_ID, RunningService, details_of, record_create

FD = descriptor.FieldDescriptor
INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", MEMORY_ID, RECORD_ID, "users/alice", " ", "\u00a0", "x" * 16_001]),
)
REFUSED_CODES = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
TIMESTAMPS = st.builds(
    lambda s, n: {"seconds": s, "nanos": n},
    st.integers(-62_135_596_800, 253_402_300_799),
    st.integers(0, 999_999_999),
)
RECORD_IDS = st.from_regex(r"mem-[a-zA-Z0-9_-]{36,46}", fullmatch=True)
METADATA_VALUES = st.one_of(
    st.builds(lambda v: {"string_value": v}, st.from_regex(r"[a-zA-Z0-9 ._:/=+@-]{1,40}", fullmatch=True)),
    st.builds(lambda v: {"string_list_value": {"values": v}}, st.lists(st.just("v"), min_size=1, max_size=5)),
    st.builds(lambda v: {"number_value": v}, st.floats(allow_nan=False, allow_infinity=False)),
    st.builds(lambda v: {"date_time_value": v}, TIMESTAMPS),
)
# Values that pass validation, so that generated requests also reach AWS (the emulator) and back.
VALID_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "memory_id": st.sampled_from([MEMORY_ID, "unknown_memory-0123456789"]),
    "memory_record_id": RECORD_IDS,
    "request_identifier": st.from_regex(r"[a-zA-Z0-9_-]{1,80}", fullmatch=True),
    "content": st.builds(lambda t: {"text": t}, st.text(min_size=1, max_size=300)),
    "timestamp": TIMESTAMPS,
    "memory_strategy_id": st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,30}", fullmatch=True),
    "metadata": st.dictionaries(
        st.from_regex(r"[a-zA-Z0-9_]{1,10}", fullmatch=True), METADATA_VALUES, min_size=1, max_size=3
    ),
    "namespace": st.just("users/alice"),
}


def scalars(field: descriptor.FieldDescriptor) -> st.SearchStrategy[Any]:
    """Any value the field's wire type can carry, unknown enum numbers included."""
    kind = field.type
    if kind == FD.TYPE_ENUM:
        return INT32  # proto3 enums are open: any number arrives
    if kind in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
        return INT32
    if kind in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64):
        return INT64
    if kind in (FD.TYPE_UINT32, FD.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if kind in (FD.TYPE_UINT64, FD.TYPE_FIXED64):
        return st.integers(0, 2**64 - 1)
    if kind in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return st.floats(width=32 if kind == FD.TYPE_FLOAT else 64)
    if kind == FD.TYPE_BOOL:
        return st.booleans()
    if kind == FD.TYPE_BYTES:
        return st.binary(max_size=20)
    return TEXT


def messages(message_type: descriptor.Descriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    """Messages of `message_type` with any subset of fields set, found from the descriptor alone."""
    if message_type.full_name == "google.protobuf.Timestamp":
        return st.builds(lambda s, n: {"seconds": s, "nanos": n}, INT64, INT32)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in message_type.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key = scalars(field.message_type.fields_by_name["key"])
            value_field = field.message_type.fields_by_name["value"]
            value = value_of(value_field, depth + 1)
            fields[field.name] = st.dictionaries(key, value, max_size=3)
        elif field.is_repeated:
            # `records` sometimes at AWS's limit and one past it; other lists short.
            if field.name == "records":
                fields[field.name] = st.one_of(
                    st.lists(value_of(field, depth + 1), max_size=3),
                    st.sampled_from([100, 101]).map(lambda n, f=field: [many_records(f)] * n),
                )
            else:
                fields[field.name] = st.lists(value_of(field, depth + 1), max_size=3)
        else:
            fields[field.name] = value_of(field, depth + 1)
        if field.name in VALID_FIELDS:
            fields[field.name] = st.one_of(VALID_FIELDS[field.name], fields[field.name])
    return st.fixed_dictionaries({}, optional=fields)


def value_of(field: descriptor.FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is None:
        return scalars(field)
    if depth > 4:
        return st.just({})
    return messages(field.message_type, depth)


def many_records(field: descriptor.FieldDescriptor) -> dict[str, Any]:
    """A valid record (as a dict), repeated to reach the 100-record boundary cheaply."""
    record = record_create()
    if field.message_type.name == "MemoryRecordUpdate":
        return {"memory_record_id": RECORD_ID, "timestamp": {"seconds": 1_732_560_000}}
    return {
        "request_identifier": record.request_identifier,
        "namespaces": list(record.namespaces),
        "content": {"text": record.content.text},
        "timestamp": {"seconds": record.timestamp.seconds},
    }


def build(message_type: type[message.Message], values: dict[str, Any]) -> message.Message | None:
    """The message for `values`, or None when protobuf itself refuses them (e.g. a oneof set twice)."""
    built = message_type()
    try:
        _fill(built, values)
    except (ValueError, TypeError, OverflowError):
        return None
    return built


def _fill(target: message.Message, values: dict[str, Any]) -> None:
    for name, value in values.items():
        field = target.DESCRIPTOR.fields_by_name[name]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            mapped = getattr(target, name)
            for key, member in value.items():
                if field.message_type.fields_by_name["value"].message_type is None:
                    mapped[key] = member
                else:
                    _fill(mapped[key], member)
        elif field.is_repeated:
            repeated = getattr(target, name)
            for member in value:
                if field.message_type is None:
                    repeated.append(member)
                else:
                    _fill(repeated.add(), member)
        elif field.message_type is not None:
            sub = getattr(target, name)
            sub.SetInParent()
            _fill(sub, value)
        else:
            setattr(target, name, value)


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

    @HYPOTHESIS
    @given(values=messages(operation.request_type.DESCRIPTOR))
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
        try:
            call_raw(local_service, operation, payload)
        except grpc.RpcError as error:
            assert_answered_properly(error)

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
    """The one exception to the error model: gRPC's core refuses it before the service sees it."""
    with pytest.raises(grpc.RpcError) as caught:
        call_raw(local_service, operations.BATCH_CREATE, b"\x00" * (MAX_REQUEST_BYTES + 1))
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in (caught.value.details() or "")
    assert rpc_status.from_call(caught.value) is None  # no google.rpc.Status, so no ErrorInfo
    started = local_service.metrics.registry.get_sample_value(
        "grpc_server_started_total",
        {"grpc_type": "unary", "grpc_service": operations.SERVICE_NAME, "grpc_method": "BatchCreate"},
    )
    assert started == 0
