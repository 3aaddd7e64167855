"""A record's members make the trip to the store and back exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from emulator import DEFAULT_MEMORY_ID, Emulator
from tests.emulator.helpers import LATER
from tests.helpers import TIMESTAMP, create_one, get_record, record_input


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
