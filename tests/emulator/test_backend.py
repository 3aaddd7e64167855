"""The memory-record operations through an unmodified boto3 client: batches, client tokens, memories,
namespaces, expiry."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import DEFAULT_MEMORY_ID, Emulator
from tests.emulator.helpers import LATER
from tests.helpers import OTHER_MEMORY_ID, create_one, emulator_client, get_record, record_input

UNKNOWN_MEMORY_ID = "missing_memory-0000000000"
SECRET_TEXT = "the-user-said-their-password-is-hunter2"


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

    def update(text: str, source_namespace: str) -> Any:
        item = {
            "memoryRecordId": record_id,
            "timestamp": LATER,
            "content": {"text": text},
            "sourceNamespaces": [source_namespace],
        }
        return client.batch_update_memory_records(memoryId=DEFAULT_MEMORY_ID, records=[item])

    mismatch = update("should not be stored", "users/bob/preferences")
    assert mismatch["successfulRecords"] == []
    [failure] = mismatch["failedRecords"]
    assert failure["memoryRecordId"] == record_id
    assert failure["status"] == "FAILED"
    assert failure["errorCode"] == 403
    assert get_record(client, record_id)["content"] == {"text": "likes green tea"}

    match = update("stored", "users/alice/preferences")
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


@pytest.mark.parametrize("days", [3_000_000, 2_147_483_647])
def test_an_expiry_past_the_year_9999_is_a_validation_error(emulator: Emulator, days: int) -> None:
    """The model sets no maximum; a date no SDK can parse back is refused rather than stored."""
    client = emulator_client(emulator.endpoint_url)
    record = {
        "requestIdentifier": "r1",
        "namespaces": [],
        "content": {"text": "x"},
        "timestamp": dt.datetime.now(dt.UTC),
    }
    expiry = {"recordExpiryDurationDays": days}
    with pytest.raises(client.exceptions.ValidationException) as caught:
        client.batch_create_memory_records(
            memoryId=DEFAULT_MEMORY_ID, records=[record], recordExpirySpecification=expiry
        )
    assert (
        caught.value.response["fieldList"][0]["name"] == "recordExpirySpecification.recordExpiryDurationDays"
    )
    created = client.batch_create_memory_records(memoryId=DEFAULT_MEMORY_ID, records=[record])
    record_id = created["successfulRecords"][0]["memoryRecordId"]
    update = {"memoryRecordId": record_id, "timestamp": dt.datetime.now(dt.UTC)}
    with pytest.raises(client.exceptions.ValidationException):
        client.batch_update_memory_records(
            memoryId=DEFAULT_MEMORY_ID, records=[update], recordExpirySpecification=expiry
        )
    assert (
        "expiresAt"
        not in client.get_memory_record(memoryId=DEFAULT_MEMORY_ID, memoryRecordId=record_id)["memoryRecord"]
    )
