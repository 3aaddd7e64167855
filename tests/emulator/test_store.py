"""SQLite persistence: records survive a restart, concurrent batches all land."""

from __future__ import annotations

import threading
from pathlib import Path

from emulator import DEFAULT_MEMORY_ID, Emulator
from tests.helpers import TIMESTAMP, create_one, emulator_client, get_record, record_input


def test_records_survive_a_restart_with_the_same_database(tmp_path: Path) -> None:
    db_path = str(tmp_path / "emulator.sqlite3")
    with Emulator(db_path=db_path) as first:
        record_id = create_one(emulator_client(first.endpoint_url), metadata={"k": {"numberValue": 2.5}})
    with Emulator(db_path=db_path) as second:
        record = get_record(emulator_client(second.endpoint_url), record_id)
    assert record["content"] == {"text": "likes green tea"}
    assert record["metadata"] == {"k": {"numberValue": 2.5}}
    assert record["timestamp"] == TIMESTAMP


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
