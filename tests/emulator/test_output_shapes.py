"""Every operation's successful reply, as sent, validates against the model's output shape."""

from __future__ import annotations

import uuid
from typing import Any

from emulator import DEFAULT_MEMORY_ID, Emulator
from emulator.backend import OPERATIONS
from tests.emulator.conftest import OutputShapeCheck
from tests.emulator.helpers import LATER
from tests.emulator.pages import create_records
from tests.helpers import create_one, emulator_client

EVERY_KIND = {
    "s": {"stringValue": "apple"},
    "l": {"stringListValue": ["a", "b"]},
    "n": {"numberValue": 1.5},
    "d": {"dateTimeValue": LATER},
}


def test_every_operation_answers_its_output_shape(emulator: Emulator, namespace: str) -> None:
    check = OutputShapeCheck()
    client = check.attach(emulator_client(emulator.endpoint_url))
    first, second, third = create_records(
        client, namespace, *({"content": {"text": f"tea {n}"}, "metadata": EVERY_KIND} for n in range(3))
    )
    client.batch_update_memory_records(
        memoryId=DEFAULT_MEMORY_ID,
        records=[
            {"memoryRecordId": first, "timestamp": LATER},
            {"memoryRecordId": f"mem-{uuid.uuid4()}", "timestamp": LATER},
        ],
        recordExpirySpecification={"recordExpiryDurationDays": 31},
    )
    client.get_memory_record(memoryId=DEFAULT_MEMORY_ID, memoryRecordId=first)
    listed = client.list_memory_records(memoryId=DEFAULT_MEMORY_ID, namespace=namespace, maxResults=2)
    assert "nextToken" in listed
    retrieved = client.retrieve_memory_records(
        memoryId=DEFAULT_MEMORY_ID, namespace=namespace, searchCriteria={"searchQuery": "tea"}, maxResults=2
    )
    assert "nextToken" in retrieved
    client.delete_memory_record(memoryId=DEFAULT_MEMORY_ID, memoryRecordId=second)
    client.batch_delete_memory_records(
        memoryId=DEFAULT_MEMORY_ID, records=[{"memoryRecordId": third}, {"memoryRecordId": second}]
    )

    assert check.violations == []
    assert set(check.checked) == set(OPERATIONS)


def test_a_record_created_without_a_strategy_lacks_the_required_strategy(
    emulator: Emulator, client: Any
) -> None:
    """The one known departure from the output shapes: MemoryRecord and MemoryRecordSummary require
    memoryStrategyId, but a record created without one has none to report, so it is omitted."""
    check = OutputShapeCheck()
    checked = check.attach(emulator_client(emulator.endpoint_url))
    checked.get_memory_record(memoryId=DEFAULT_MEMORY_ID, memoryRecordId=create_one(client))
    assert check.violations == [
        "GetMemoryRecord: Value null at 'memoryRecord.memoryStrategyId' failed to satisfy constraint: "
        "Member must not be null"
    ]
