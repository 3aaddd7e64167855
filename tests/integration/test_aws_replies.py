"""AWS's replies are checked, not trusted: against the botocore model's output shapes (replies.py) and,
for batches, against the records each call sent (batches.py). Canned replies at the wire (the wire
stub), parsed by real botocore, in aws mode."""

from __future__ import annotations

import json
import logging
from typing import Any

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from google.rpc import error_details_pb2

from tests.helpers import MEMORY_ID, RECORD_ID, AwsServiceFactory, RunningService, record_create
from tests.integration.helpers import details_of
from tests.wire_stub import CannedResponse, WireStub, aws_reply

SECRET = "MY SECRET DIARY"  # record text: never in an error message or a log line
RECORD = {
    "memoryRecordId": RECORD_ID,
    "content": {"text": SECRET},
    "memoryStrategyId": "strategy-1",
    "namespaces": ["users/alice"],
    "createdAt": 1_732_560_000,
}
OTHER_ID = "mem-bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb"
THIRD_ID = "mem-cccccccc-cccc-cccc-cccc-cccccccccccc"
UNKNOWN_ID = "mem-dddddddd-dddd-dddd-dddd-dddddddddddd"


def record_id(number: int) -> str:
    return f"mem-{number:036d}"


def succeeded(memory_record_id: str, **members: Any) -> dict[str, Any]:
    return {"memoryRecordId": memory_record_id, "status": "SUCCEEDED", **members}


def failed(memory_record_id: str, error_code: int, **members: Any) -> dict[str, Any]:
    return {
        "memoryRecordId": memory_record_id,
        "status": "FAILED",
        "errorCode": error_code,
        "errorMessage": "refused",
        **members,
    }


def update(*ids: str) -> pb.BatchUpdateRequest:
    request = pb.BatchUpdateRequest(
        memory_id=MEMORY_ID, records=[pb.MemoryRecordUpdate(memory_record_id=i) for i in ids]
    )
    for record in request.records:
        record.timestamp.seconds = 1
    return request


def delete(*ids: str) -> pb.BatchDeleteRequest:
    return pb.BatchDeleteRequest(
        memory_id=MEMORY_ID, records=[pb.MemoryRecordDelete(memory_record_id=i) for i in ids]
    )


def batch_reply(successful: list[Any], failed_records: list[Any]) -> CannedResponse:
    return aws_reply(200, {"successfulRecords": successful, "failedRecords": failed_records})


def assert_malformed(error: grpc.RpcError, path: str) -> None:
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    found = details_of(error)
    assert found[error_details_pb2.ErrorInfo].reason == "AWS_MALFORMED_RESPONSE"
    assert error_details_pb2.RetryInfo in found
    assert path in (error.details() or "")
    assert SECRET not in (error.details() or "")


def failure_of(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def get(service: RunningService) -> grpc.RpcError:
    return failure_of(
        lambda: service.stub.Get(pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID), timeout=10)
    )


# --- bytes botocore cannot parse --------------------------------------------------------------


@pytest.mark.parametrize(
    "canned",
    [
        CannedResponse(200, b'{"memoryRecord": {"memoryRecordId": "\xff\xfe"}}', {}),
        CannedResponse(500, b'{"message": "\xff\xfe broken"}', {"x-amzn-ErrorType": "ServiceException"}),
    ],
    ids=["200", "500"],
)
def test_invalid_utf8_is_a_malformed_reply_not_an_internal_error(
    aws_service: RunningService, wire_stub: WireStub, caplog: pytest.LogCaptureFixture, canned: CannedResponse
) -> None:
    wire_stub.queue(canned)
    assert_malformed(get(aws_service), "GetMemoryRecord")
    assert not [record for record in caplog.records if record.exc_info], "no traceback: not a bug"


# --- replies that do not fit the model's output shapes ----------------------------------------


def get_reply(**changes: Any) -> dict[str, Any]:
    record = {**RECORD, **changes}
    return {"memoryRecord": {name: value for name, value in record.items() if value is not None}}


def metadata(entries: int, value: Any) -> dict[str, Any]:
    return {f"key{index}": value for index in range(entries)}


SUMMARY = {name: value for name, value in RECORD.items()}
UPDATE = update(RECORD_ID)

# (RPC, its request, AWS's reply body, the member path the error names)
WRONG_TYPED: list[tuple[str, Any, Any, str]] = [
    ("Get", None, {"memoryRecord": [RECORD]}, "memoryRecord must be an object"),
    ("Get", None, get_reply(memoryRecordId=5), "memoryRecord.memoryRecordId must be a string"),
    ("Get", None, get_reply(content=None), "memoryRecord.content is required"),
    ("Get", None, get_reply(createdAt=None), "memoryRecord.createdAt is required"),
    ("Get", None, get_reply(content=SECRET), "memoryRecord.content must be an object"),
    (
        "Get",
        None,
        get_reply(content={"text": "x" * 16_001}),
        "memoryRecord.content.text must have 1 to 16000",
    ),
    ("Get", None, get_reply(content={"text": 7}), "memoryRecord.content.text must be a string"),
    ("Get", None, get_reply(createdAt=SECRET), "memoryRecord.createdAt must be a timestamp"),
    ("Get", None, get_reply(createdAt=True), "memoryRecord.createdAt must be a timestamp"),
    ("Get", None, get_reply(expiresAt=1e20), "memoryRecord.expiresAt must be a timestamp"),
    ("Get", None, get_reply(namespaces=["a", "b"]), "memoryRecord.namespaces must have at most 1 entries"),
    ("Get", None, get_reply(namespaces=[5]), "memoryRecord.namespaces[0] must be a string"),
    ("Get", None, get_reply(metadata=[SECRET]), "memoryRecord.metadata must be an object"),
    (
        "Get",
        None,
        get_reply(metadata=metadata(21, {"stringValue": "v"})),
        "memoryRecord.metadata must have 1 to 20 entries",
    ),
    (
        "Get",
        None,
        get_reply(metadata={"k": {"numberValue": SECRET}}),
        "memoryRecord.metadata[<key>].numberValue must be a number",
    ),
    (
        "Get",
        None,
        get_reply(metadata={"k": {"stringListValue": ["v"] * 6}}),
        "memoryRecord.metadata[<key>].stringListValue must have 1 to 5 entries",
    ),
    (
        "BatchUpdate",
        UPDATE,
        {"successfulRecords": [succeeded(RECORD_ID, status="MAYBE")], "failedRecords": []},
        "successfulRecords[0].status must be one of FAILED, SUCCEEDED",
    ),
    (
        "BatchUpdate",
        UPDATE,
        {"successfulRecords": SECRET, "failedRecords": []},
        "successfulRecords must be a list",
    ),
    (
        "BatchUpdate",
        UPDATE,
        {"successfulRecords": [], "failedRecords": [failed(RECORD_ID, 400, errorCode=SECRET)]},
        "failedRecords[0].errorCode must be an integer",
    ),
    (
        "BatchUpdate",
        UPDATE,
        {"successfulRecords": [], "failedRecords": [failed(RECORD_ID, 400, errorCode=400.5)]},
        "failedRecords[0].errorCode must be an integer",
    ),
    (
        "BatchUpdate",
        UPDATE,
        {"successfulRecords": [succeeded("mem-short")], "failedRecords": []},
        "successfulRecords[0].memoryRecordId must have 40 to 50 characters",
    ),
    (
        "Delete",
        pb.DeleteRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID),
        {"memoryRecordId": ["x"]},
        "memoryRecordId must be a string",
    ),
    (
        "List",
        pb.ListRequest(memory_id=MEMORY_ID, namespace="users/alice"),
        {"memoryRecordSummaries": {"0": SUMMARY}},
        "memoryRecordSummaries must be a list",
    ),
    (
        "List",
        pb.ListRequest(memory_id=MEMORY_ID, namespace="users/alice"),
        {"memoryRecordSummaries": [{**SUMMARY, "score": "high"}]},
        "memoryRecordSummaries[0].score must be a number",
    ),
    (
        "List",
        pb.ListRequest(memory_id=MEMORY_ID, namespace="users/alice"),
        {"memoryRecordSummaries": [], "nextToken": 5},
        "nextToken must be a string",
    ),
]


@pytest.mark.parametrize(("rpc", "request_message", "body", "named"), WRONG_TYPED)
def test_a_reply_that_does_not_fit_the_model_is_malformed_never_internal(
    aws_service: RunningService, wire_stub: WireStub, rpc: str, request_message: Any, body: Any, named: str
) -> None:
    wire_stub.queue(aws_reply(200, body))
    request = request_message or pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID)
    error = failure_of(lambda: getattr(aws_service.stub, rpc)(request, timeout=10))
    assert_malformed(error, f"AWS sent a malformed reply ({operation_of(rpc)}: {named}")


def operation_of(rpc: str) -> str:
    return {
        "Get": "GetMemoryRecord",
        "BatchUpdate": "BatchUpdateMemoryRecords",
        "Delete": "DeleteMemoryRecord",
        "List": "ListMemoryRecords",
    }[rpc]


def test_get_with_namespaces_as_a_string_is_refused_not_split_into_letters(
    aws_service: RunningService, wire_stub: WireStub
) -> None:
    """botocore would parse `"namespaces": "abc"` as ['a', 'b', 'c']: the raw reply is what is checked."""
    wire_stub.queue(aws_reply(200, get_reply(namespaces="abc")))
    assert_malformed(get(aws_service), "memoryRecord.namespaces must be a list")


def test_a_reply_at_every_limit_of_the_model_is_served(
    aws_service: RunningService, wire_stub: WireStub
) -> None:
    """The checks refuse what the model does not allow, not what it does (patterns are not checked)."""
    full = get_reply(
        memoryRecordId="m" * 50,
        content={"text": "\U0001f600" * 16_000},
        namespaces=[],
        timestamp=253_402_214_400.999999,  # 9999-12-31, in any local time zone
        expiresAt=-62_135_510_400,  # 0001-01-02
        memoryStrategyId=None,  # the model requires it; AWS omits it for a record created without one
        metadata={
            "k" * 128: {"stringListValue": ["v" * 64] * 5},
            "n": {"numberValue": "NaN"},
            "d": {"dateTimeValue": 0},
            "s": {"stringValue": "x" * 256},
        },
        somethingAwsAddedLater={"any": ["thing"]},
    )
    wire_stub.queue(aws_reply(200, full))
    response = aws_service.stub.Get(
        pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID), timeout=10
    )
    assert response.memory_record.memory_record_id == "m" * 50
    assert len(response.memory_record.content.text) == 16_000
    assert not response.memory_record.HasField("memory_strategy_id")


# --- batch replies must account for every record they were sent --------------------------------


def test_a_record_aws_did_not_mention_fails_on_its_own(
    aws_service: RunningService, wire_stub: WireStub
) -> None:
    wire_stub.queue(batch_reply([], []))
    response = aws_service.stub.BatchUpdate(update(RECORD_ID, OTHER_ID), timeout=10)
    assert list(response.successful_records) == []
    assert [r.memory_record_id for r in response.failed_records] == [RECORD_ID, OTHER_ID]
    for result in response.failed_records:
        assert result.status == pb.MEMORY_RECORD_STATUS_FAILED
        assert result.error_code == 502
        assert result.error_message.startswith("AWS_MALFORMED_RESPONSE: ")
        assert "did not mention this record" in result.error_message


def test_creations_are_matched_by_request_identifier(
    aws_service: RunningService, wire_stub: WireStub
) -> None:
    """r2 is missing: it fails with the facade's 502; r3 keeps AWS's own failure."""
    wire_stub.queue(
        aws_reply(
            201,
            {
                "successfulRecords": [succeeded(RECORD_ID, requestIdentifier="r1")],
                "failedRecords": [failed(OTHER_ID, 400, requestIdentifier="r3")],
            },
        )
    )
    records = [record_create(request_identifier=name) for name in ("r1", "r2", "r3")]
    response = aws_service.stub.BatchCreate(
        pb.BatchCreateRequest(memory_id=MEMORY_ID, records=records), timeout=10
    )
    assert [(r.request_identifier, r.memory_record_id) for r in response.successful_records] == [
        ("r1", RECORD_ID)
    ]
    assert [(r.request_identifier, r.error_code) for r in response.failed_records] == [
        ("r3", 400),
        ("r2", 502),
    ]
    assert response.failed_records[1].memory_record_id == ""  # AWS named no id for it


def test_results_for_records_not_sent_and_second_results_are_dropped_and_logged_without_ids(
    aws_service: RunningService, wire_stub: WireStub, caplog: pytest.LogCaptureFixture
) -> None:
    wire_stub.queue(
        batch_reply(
            [succeeded(RECORD_ID), succeeded(UNKNOWN_ID)],
            [failed(RECORD_ID, 500), failed(OTHER_ID, 404), failed(OTHER_ID, 404)],
        )
    )
    with caplog.at_level(logging.WARNING):
        response = aws_service.stub.BatchDelete(delete(RECORD_ID, OTHER_ID), timeout=10)
    assert [r.memory_record_id for r in response.successful_records] == [RECORD_ID]
    assert [(r.memory_record_id, r.error_code) for r in response.failed_records] == [(OTHER_ID, 404)]
    [dropped] = [record for record in caplog.records if hasattr(record, "droppedResults")]
    assert (dropped.droppedResults, dropped.operation) == (3, "BatchDeleteMemoryRecords")  # type: ignore[attr-defined]
    logged = json.dumps([record.__dict__ for record in caplog.records], default=str)
    for memory_record_id in (RECORD_ID, OTHER_ID, UNKNOWN_ID):
        assert memory_record_id not in logged


def test_a_one_record_update_answered_with_extra_results_answers_one(
    aws_service: RunningService, wire_stub: WireStub
) -> None:
    """Results for records the call did not send are dropped (within the reply-size cap, which refuses
    a 10,000-result reply before reading it: test_attempt_limits.py)."""
    wire_stub.queue(batch_reply([succeeded(RECORD_ID)] + [succeeded(record_id(n)) for n in range(99)], []))
    response = aws_service.stub.BatchUpdate(update(RECORD_ID), timeout=30)
    assert [r.memory_record_id for r in response.successful_records] == [RECORD_ID]
    assert list(response.failed_records) == []
    assert response.ByteSize() < 100


def test_a_one_record_update_answered_with_ten_thousand_results_is_refused_unread(
    aws_service: RunningService, wire_stub: WireStub
) -> None:
    wire_stub.queue(batch_reply([succeeded(RECORD_ID)] + [succeeded(record_id(n)) for n in range(9_999)], []))
    with pytest.raises(grpc.RpcError) as caught:
        aws_service.stub.BatchUpdate(update(RECORD_ID), timeout=30)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert details_of(caught.value)[error_details_pb2.ErrorInfo].reason == "AWS_MALFORMED_RESPONSE"


def test_each_call_of_a_large_batch_is_accounted_for_with_its_own_records(
    aws_service_factory: AwsServiceFactory, wire_stub: WireStub
) -> None:
    """150 records go in two calls (100 + 50); the second call is answered with the first call's
    results, which are not its own: its 50 records fail, and nothing is counted twice."""
    service = aws_service_factory(batch_concurrency=1)  # the calls reach the stub in order
    ids = [record_id(n) for n in range(150)]
    first_call = batch_reply([succeeded(i) for i in ids[:100]], [])
    wire_stub.queue(first_call, first_call)
    response = service.stub.BatchDelete(delete(*ids), timeout=30)
    assert [r.memory_record_id for r in response.successful_records] == ids[:100]
    assert [r.memory_record_id for r in response.failed_records] == ids[100:]
    assert {r.error_code for r in response.failed_records} == {502}
