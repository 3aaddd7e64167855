"""The emulator through an unmodified boto3 client: operations, persistence, idempotency, journal."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import DEFAULT_MEMORY_ID, Emulator, ReceivedRequest, Response
from tests.helpers import emulator_client

OTHER_MEMORY_ID = "other_memory-ABCDEFGHIJ"
UNKNOWN_MEMORY_ID = "missing_memory-0000000000"
TIMESTAMP = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
LATER = datetime(2025, 6, 7, 8, 9, 10, 654321, tzinfo=UTC)
SECRET_TEXT = "the-user-said-their-password-is-hunter2"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(memory_ids=(DEFAULT_MEMORY_ID, OTHER_MEMORY_ID)) as emu:
        yield emu


@pytest.fixture(scope="module")
def client(emulator: Emulator) -> Any:
    return emulator_client(emulator.endpoint_url)


@pytest.fixture(scope="module")
def raw_client(emulator: Emulator) -> Any:
    """A client that skips botocore's own parameter validation, so the emulator's is exercised."""
    return emulator_client(emulator.endpoint_url, validate=False)


def record_input(text: str = "likes green tea", **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "requestIdentifier": f"req-{uuid.uuid4().hex[:8]}",
        "namespaces": ["users/alice/preferences"],
        "content": {"text": text},
        "timestamp": TIMESTAMP,
    }
    record.update(overrides)
    return record


def create_one(client: Any, memory_id: str = DEFAULT_MEMORY_ID, **overrides: Any) -> str:
    response = client.batch_create_memory_records(memoryId=memory_id, records=[record_input(**overrides)])
    assert response["failedRecords"] == []
    record_id: str = response["successfulRecords"][0]["memoryRecordId"]
    return record_id


def get_record(client: Any, record_id: str, memory_id: str = DEFAULT_MEMORY_ID) -> dict[str, Any]:
    record: dict[str, Any] = client.get_memory_record(memoryId=memory_id, memoryRecordId=record_id)[
        "memoryRecord"
    ]
    return record


def test_create_then_get_round_trips_every_field(client: Any) -> None:
    metadata = {
        "topic": {"stringValue": "beverages"},
        "tags": {"stringListValue": ["tea", "green"]},
        "score": {"numberValue": 0.125},
        "seen at": {"dateTimeValue": LATER},
    }
    before = datetime.now(UTC)
    response = client.batch_create_memory_records(
        memoryId=DEFAULT_MEMORY_ID,
        records=[record_input(requestIdentifier="req-1", memoryStrategyId="strategy-1", metadata=metadata)],
        recordExpirySpecification={"recordExpiryDurationDays": 31},
    )
    after = datetime.now(UTC)

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert response["failedRecords"] == []
    [created] = response["successfulRecords"]
    assert created["status"] == "SUCCEEDED"
    assert created["requestIdentifier"] == "req-1"
    record_id = created["memoryRecordId"]
    assert record_id.startswith("mem-")
    assert len(record_id) == 40

    record = get_record(client, record_id)
    assert record["memoryRecordId"] == record_id
    assert record["content"] == {"text": "likes green tea"}
    assert record["namespaces"] == ["users/alice/preferences"]
    assert record["memoryStrategyId"] == "strategy-1"
    assert record["timestamp"] == TIMESTAMP
    assert record["metadata"] == metadata
    assert before - timedelta(milliseconds=1) <= record["createdAt"] <= after + timedelta(milliseconds=1)
    assert record["expiresAt"] == record["createdAt"] + timedelta(days=31)


def test_get_omits_optional_members_that_were_never_set(client: Any) -> None:
    record = get_record(client, create_one(client))
    assert "memoryStrategyId" not in record
    assert "metadata" not in record
    assert "expiresAt" not in record


def test_timestamps_keep_microseconds_in_both_directions(client: Any, emulator: Emulator) -> None:
    odd = datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)
    record_id = create_one(client, timestamp=odd)
    sent = emulator.received("BatchCreateMemoryRecords")[-1].json
    assert sent["records"][0]["timestamp"] == odd.timestamp()
    assert get_record(client, record_id)["timestamp"] == odd


def test_batch_update_applies_known_records_and_reports_unknown_ones(client: Any) -> None:
    record_id = create_one(client, memoryStrategyId="strategy-1", metadata={"a": {"stringValue": "b"}})
    unknown_id = f"mem-{uuid.uuid4()}"

    response = client.batch_update_memory_records(
        memoryId=DEFAULT_MEMORY_ID,
        records=[
            {
                "memoryRecordId": record_id,
                "timestamp": LATER,
                "content": {"text": "now prefers coffee"},
                "metadata": {"mood": {"stringValue": "awake"}},
            },
            {"memoryRecordId": unknown_id, "timestamp": LATER, "content": {"text": "x"}},
        ],
    )

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["successfulRecords"] == [{"memoryRecordId": record_id, "status": "SUCCEEDED"}]
    assert response["failedRecords"] == [
        {
            "memoryRecordId": unknown_id,
            "status": "FAILED",
            "errorCode": 404,
            "errorMessage": "Memory record not found",
        }
    ]
    record = get_record(client, record_id)
    assert record["content"] == {"text": "now prefers coffee"}
    assert record["metadata"] == {"mood": {"stringValue": "awake"}}  # replaced, not merged
    assert record["timestamp"] == LATER
    # Members absent from the update are unchanged.
    assert record["namespaces"] == ["users/alice/preferences"]
    assert record["memoryStrategyId"] == "strategy-1"


def test_batch_update_replaces_namespaces_and_strategy(client: Any) -> None:
    record_id = create_one(client)
    client.batch_update_memory_records(
        memoryId=DEFAULT_MEMORY_ID,
        records=[
            {
                "memoryRecordId": record_id,
                "timestamp": LATER,
                "namespaces": ["users/alice/facts"],
                "memoryStrategyId": "strategy-2",
            }
        ],
    )
    record = get_record(client, record_id)
    assert record["namespaces"] == ["users/alice/facts"]
    assert record["memoryStrategyId"] == "strategy-2"
    assert record["content"] == {"text": "likes green tea"}


def test_batch_update_with_other_source_namespaces_fails_that_record(client: Any) -> None:
    record_id = create_one(client)
    mismatch = client.batch_update_memory_records(
        memoryId=DEFAULT_MEMORY_ID,
        records=[
            {
                "memoryRecordId": record_id,
                "timestamp": LATER,
                "content": {"text": "should not be stored"},
                "sourceNamespaces": ["users/bob/preferences"],
            }
        ],
    )
    assert mismatch["successfulRecords"] == []
    [failure] = mismatch["failedRecords"]
    assert failure["memoryRecordId"] == record_id
    assert failure["status"] == "FAILED"
    assert failure["errorCode"] == 403
    assert get_record(client, record_id)["content"] == {"text": "likes green tea"}

    match = client.batch_update_memory_records(
        memoryId=DEFAULT_MEMORY_ID,
        records=[
            {
                "memoryRecordId": record_id,
                "timestamp": LATER,
                "content": {"text": "stored"},
                "sourceNamespaces": ["users/alice/preferences"],
            }
        ],
    )
    assert match["failedRecords"] == []
    assert get_record(client, record_id)["content"] == {"text": "stored"}


def test_batch_update_record_expiry(client: Any) -> None:
    record_id = create_one(client)
    update = {"memoryRecordId": record_id, "timestamp": LATER}

    def expires_at() -> datetime | None:
        value: datetime | None = get_record(client, record_id).get("expiresAt")
        return value

    client.batch_update_memory_records(
        memoryId=DEFAULT_MEMORY_ID,
        records=[update],
        recordExpirySpecification={"recordExpiryDurationDays": 40},
    )
    first = expires_at()
    assert first is not None
    assert abs(first - (datetime.now(UTC) + timedelta(days=40))) < timedelta(seconds=5)

    # Without an expiry, the last duration is re-applied from the time of the update.
    client.batch_update_memory_records(memoryId=DEFAULT_MEMORY_ID, records=[update])
    second = expires_at()
    assert second is not None
    assert second >= first
    assert abs(second - (datetime.now(UTC) + timedelta(days=40))) < timedelta(seconds=5)

    client.batch_update_memory_records(
        memoryId=DEFAULT_MEMORY_ID, records=[update], recordExpirySpecification={"action": "REMOVE"}
    )
    assert expires_at() is None
    client.batch_update_memory_records(memoryId=DEFAULT_MEMORY_ID, records=[update])
    assert expires_at() is None


def test_duplicate_request_identifier_fails_only_the_duplicate(client: Any) -> None:
    response = client.batch_create_memory_records(
        memoryId=DEFAULT_MEMORY_ID,
        records=[
            record_input(requestIdentifier="same", content={"text": "first"}),
            record_input(requestIdentifier="same", content={"text": "second"}),
            record_input(requestIdentifier="other"),
        ],
    )
    assert [r["requestIdentifier"] for r in response["successfulRecords"]] == ["same", "other"]
    [failure] = response["failedRecords"]
    assert failure["requestIdentifier"] == "same"
    assert failure["status"] == "FAILED"
    assert failure["errorCode"] == 400
    stored = get_record(client, response["successfulRecords"][0]["memoryRecordId"])
    assert stored["content"] == {"text": "first"}
    with pytest.raises(ClientError) as raised:
        get_record(client, failure["memoryRecordId"])
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_create_rejects_the_remove_action(raw_client: Any) -> None:
    with pytest.raises(ClientError) as raised:
        raw_client.batch_create_memory_records(
            memoryId=DEFAULT_MEMORY_ID,
            records=[record_input()],
            recordExpirySpecification={"action": "REMOVE"},
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert [f["name"] for f in raised.value.response["fieldList"]] == ["recordExpirySpecification.action"]


def count_rows(db_path: Path, table: str) -> int:
    connection = sqlite3.connect(db_path)
    try:
        (count,) = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    finally:
        connection.close()
    return int(count)


def test_client_token_replays_the_first_response_and_creates_nothing(tmp_path: Path) -> None:
    db_path = tmp_path / "emulator.sqlite3"
    with Emulator(db_path=str(db_path)) as emu:
        client = emulator_client(emu.endpoint_url)
        records = [record_input(requestIdentifier="a"), record_input(requestIdentifier="b")]
        first = client.batch_create_memory_records(
            memoryId=DEFAULT_MEMORY_ID, records=records, clientToken="tok-1"
        )
        assert count_rows(db_path, "memory_records") == 2

        replay = client.batch_create_memory_records(
            memoryId=DEFAULT_MEMORY_ID, records=records, clientToken="tok-1"
        )

        assert replay["ResponseMetadata"]["HTTPStatusCode"] == 201
        assert replay["successfulRecords"] == first["successfulRecords"]
        assert replay["failedRecords"] == first["failedRecords"] == []
        assert count_rows(db_path, "memory_records") == 2
        assert len(emu.received("BatchCreateMemoryRecords")) == 2


def test_client_token_reused_with_another_body_is_rejected(client: Any) -> None:
    token = f"tok-{uuid.uuid4()}"
    client.batch_create_memory_records(
        memoryId=DEFAULT_MEMORY_ID, records=[record_input()], clientToken=token
    )
    with pytest.raises(ClientError) as raised:
        client.batch_create_memory_records(
            memoryId=DEFAULT_MEMORY_ID, records=[record_input(text=SECRET_TEXT)], clientToken=token
        )
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "ValidationException"
    assert error["reason"] == "IdempotentParameterMismatchException"
    assert SECRET_TEXT not in error["message"]


def test_client_tokens_are_scoped_to_a_memory(client: Any) -> None:
    token = f"tok-{uuid.uuid4()}"
    records = [record_input()]
    first = client.batch_create_memory_records(memoryId=DEFAULT_MEMORY_ID, records=records, clientToken=token)
    other = client.batch_create_memory_records(memoryId=OTHER_MEMORY_ID, records=records, clientToken=token)
    assert other["successfulRecords"][0]["memoryRecordId"] != first["successfulRecords"][0]["memoryRecordId"]


@pytest.mark.parametrize("operation", ["create", "update", "get", "delete", "batch_delete"])
def test_unknown_memory_is_resource_not_found(client: Any, operation: str) -> None:
    record_id = f"mem-{uuid.uuid4()}"
    calls = {
        "create": lambda: client.batch_create_memory_records(
            memoryId=UNKNOWN_MEMORY_ID, records=[record_input()]
        ),
        "update": lambda: client.batch_update_memory_records(
            memoryId=UNKNOWN_MEMORY_ID, records=[{"memoryRecordId": record_id, "timestamp": LATER}]
        ),
        "get": lambda: client.get_memory_record(memoryId=UNKNOWN_MEMORY_ID, memoryRecordId=record_id),
        "delete": lambda: client.delete_memory_record(memoryId=UNKNOWN_MEMORY_ID, memoryRecordId=record_id),
        "batch_delete": lambda: client.batch_delete_memory_records(
            memoryId=UNKNOWN_MEMORY_ID, records=[{"memoryRecordId": record_id}]
        ),
    }
    with pytest.raises(ClientError) as raised:
        calls[operation]()
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert UNKNOWN_MEMORY_ID in error["Error"]["Message"]


def test_records_are_isolated_per_memory(client: Any) -> None:
    record_id = create_one(client, memory_id=OTHER_MEMORY_ID)
    assert get_record(client, record_id, memory_id=OTHER_MEMORY_ID)["memoryRecordId"] == record_id
    with pytest.raises(ClientError) as raised:
        get_record(client, record_id, memory_id=DEFAULT_MEMORY_ID)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_memory_arn_addresses_the_same_memory(client: Any) -> None:
    arn = f"arn:aws:bedrock-agentcore:us-east-1:123456789012:memory/{DEFAULT_MEMORY_ID}"
    record_id = create_one(client, memory_id=arn)
    assert get_record(client, record_id, memory_id=DEFAULT_MEMORY_ID)["memoryRecordId"] == record_id


def test_get_unknown_record_is_resource_not_found(client: Any) -> None:
    with pytest.raises(ClientError) as raised:
        get_record(client, f"mem-{uuid.uuid4()}")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_get_with_another_namespace_is_resource_not_found(client: Any) -> None:
    record_id = create_one(client)
    found = client.get_memory_record(
        memoryId=DEFAULT_MEMORY_ID, memoryRecordId=record_id, namespace="users/alice/preferences"
    )
    assert found["memoryRecord"]["memoryRecordId"] == record_id
    with pytest.raises(ClientError) as raised:
        client.get_memory_record(memoryId=DEFAULT_MEMORY_ID, memoryRecordId=record_id, namespace="users/bob")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def assert_not_found(client: Any, record_id: str) -> None:
    with pytest.raises(ClientError) as raised:
        get_record(client, record_id)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_delete_memory_record(client: Any) -> None:
    record_id = create_one(client)
    response = client.delete_memory_record(memoryId=DEFAULT_MEMORY_ID, memoryRecordId=record_id)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["memoryRecordId"] == record_id
    assert_not_found(client, record_id)

    with pytest.raises(ClientError) as raised:
        client.delete_memory_record(memoryId=DEFAULT_MEMORY_ID, memoryRecordId=record_id)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_delete_with_another_namespace_is_resource_not_found_and_keeps_the_record(client: Any) -> None:
    record_id = create_one(client)
    with pytest.raises(ClientError) as raised:
        client.delete_memory_record(
            memoryId=DEFAULT_MEMORY_ID, memoryRecordId=record_id, namespace="users/bob"
        )
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert get_record(client, record_id)["memoryRecordId"] == record_id

    client.delete_memory_record(
        memoryId=DEFAULT_MEMORY_ID, memoryRecordId=record_id, namespace="users/alice/preferences"
    )
    assert_not_found(client, record_id)


def test_batch_delete_reports_each_record(client: Any) -> None:
    deleted, guarded, kept = create_one(client), create_one(client), create_one(client)
    unknown = f"mem-{uuid.uuid4()}"
    response = client.batch_delete_memory_records(
        memoryId=DEFAULT_MEMORY_ID,
        records=[
            {"memoryRecordId": deleted, "namespace": "users/alice/preferences"},
            {"memoryRecordId": unknown},
            {"memoryRecordId": guarded, "namespace": "users/bob"},
            {"memoryRecordId": deleted},  # already gone by now
        ],
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["successfulRecords"] == [{"memoryRecordId": deleted, "status": "SUCCEEDED"}]
    assert [(f["memoryRecordId"], f["status"], f["errorCode"]) for f in response["failedRecords"]] == [
        (unknown, "FAILED", 404),
        (guarded, "FAILED", 403),
        (deleted, "FAILED", 404),
    ]
    assert_not_found(client, deleted)
    assert get_record(client, guarded)["memoryRecordId"] == guarded
    assert get_record(client, kept)["memoryRecordId"] == kept


def test_records_survive_a_restart_with_the_same_database(tmp_path: Path) -> None:
    db_path = str(tmp_path / "emulator.sqlite3")
    with Emulator(db_path=db_path) as first:
        record_id = create_one(emulator_client(first.endpoint_url), metadata={"k": {"numberValue": 2.5}})
    with Emulator(db_path=db_path) as second:
        record = get_record(emulator_client(second.endpoint_url), record_id)
    assert record["content"] == {"text": "likes green tea"}
    assert record["metadata"] == {"k": {"numberValue": 2.5}}
    assert record["timestamp"] == TIMESTAMP


def test_the_journal_holds_the_exact_body_the_client_sent(client: Any, emulator: Emulator) -> None:
    emulator.clear_received()
    client.batch_create_memory_records(
        memoryId=DEFAULT_MEMORY_ID,
        records=[record_input(requestIdentifier="journal-1", metadata={"k": {"dateTimeValue": LATER}})],
        clientToken="journal-token",
    )
    [request] = emulator.received()
    assert isinstance(request, ReceivedRequest)
    assert request.operation == "BatchCreateMemoryRecords"
    assert request.method == "POST"
    assert request.path == f"/memories/{DEFAULT_MEMORY_ID}/memoryRecords/batchCreate"
    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256")
    assert request.json == {
        "records": [
            {
                "requestIdentifier": "journal-1",
                "namespaces": ["users/alice/preferences"],
                "content": {"text": "likes green tea"},
                "timestamp": 1735787045.123456,
                "metadata": {"k": {"dateTimeValue": 1749283750.654321}},
            }
        ],
        "clientToken": "journal-token",
    }
    assert emulator.received("GetMemoryRecord") == []


def test_the_journal_records_rejected_requests_and_is_bounded(raw_client: Any, emulator: Emulator) -> None:
    emulator.clear_received()
    with pytest.raises(ClientError):
        raw_client.get_memory_record(memoryId=DEFAULT_MEMORY_ID, memoryRecordId="too-short")
    [request] = emulator.received("GetMemoryRecord")
    assert request.path.endswith("/memoryRecord/too-short")

    with Emulator(journal_size=2) as small:
        client = emulator_client(small.endpoint_url)
        for _ in range(3):
            with pytest.raises(ClientError):
                client.get_memory_record(memoryId=DEFAULT_MEMORY_ID, memoryRecordId=f"mem-{uuid.uuid4()}")
        assert len(small.received()) == 2


def test_error_members_parse_through_boto3(raw_client: Any) -> None:
    with pytest.raises(ClientError) as raised:
        raw_client.get_memory_record(memoryId=DEFAULT_MEMORY_ID, memoryRecordId="mem-short")
    error = raised.value.response
    assert error["Error"]["Code"] == "ValidationException"
    expected = (
        "1 validation error detected: Value at 'memoryRecordId' failed to satisfy constraint: "
        "Member must have length greater than or equal to 40"
    )
    assert error["Error"]["Message"] == expected
    assert error["message"] == expected
    assert error["reason"] == "FieldValidationFailed"
    assert error["fieldList"] == [
        {"name": "memoryRecordId", "message": "Member must have length greater than or equal to 40"}
    ]
    assert error["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ValidationException"
    uuid.UUID(error["ResponseMetadata"]["RequestId"])


def test_before_operation_hook_can_answer_instead_of_the_operation(emulator: Emulator, client: Any) -> None:
    seen: list[tuple[str, str]] = []
    throttled = Response(status=429, body=b'{"message":"Rate exceeded"}')
    throttled.headers["x-amzn-ErrorType"] = "ThrottledException"

    def throttle_gets(operation: str, request: ReceivedRequest) -> Response | None:
        seen.append((operation, request.method))
        return throttled if operation == "GetMemoryRecord" else None

    emulator.set_before_operation_hook(throttle_gets)
    try:
        record_id = create_one(client)
        errors = []
        for _ in range(2):
            with pytest.raises(ClientError) as raised:
                get_record(client, record_id)
            errors.append(raised.value.response)
    finally:
        emulator.set_before_operation_hook(None)
    assert [error["Error"]["Code"] for error in errors] == ["ThrottledException"] * 2
    assert [error["ResponseMetadata"]["HTTPStatusCode"] for error in errors] == [429] * 2
    # Each answer gets its own request id even though the hook returned one shared object.
    assert errors[0]["ResponseMetadata"]["RequestId"] != errors[1]["ResponseMetadata"]["RequestId"]
    assert seen == [
        ("BatchCreateMemoryRecords", "POST"),
        ("GetMemoryRecord", "GET"),
        ("GetMemoryRecord", "GET"),
    ]
    assert get_record(client, record_id)["memoryRecordId"] == record_id


def test_concurrent_batches_all_land(emulator: Emulator) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            client = emulator_client(emulator.endpoint_url)
            response = client.batch_create_memory_records(
                memoryId=DEFAULT_MEMORY_ID, records=[record_input() for _ in range(5)]
            )
            results.append([r["memoryRecordId"] for r in response["successfulRecords"]])
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    ids = [record_id for batch in results for record_id in batch]
    assert len(ids) == len(set(ids)) == 30
