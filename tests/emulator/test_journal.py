"""The journal holds what a client actually sent, rejected requests included, and is bounded."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import DEFAULT_MEMORY_ID, Emulator, ReceivedRequest
from tests.emulator.helpers import LATER
from tests.helpers import emulator_client, record_input


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
