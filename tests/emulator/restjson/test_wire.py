"""Wire values: epoch-seconds timestamps."""

from __future__ import annotations

import http.client
import json

from emulator import DEFAULT_MEMORY_ID
from tests.emulator.helpers import BATCH_CREATE_PATH, VALID_BODY, exchange


def test_timestamps_round_half_even_to_microseconds(connection: http.client.HTTPConnection) -> None:
    _, _, body = exchange(connection, "POST", BATCH_CREATE_PATH, VALID_BODY)
    record_id = json.loads(body)["successfulRecords"][0]["memoryRecordId"]
    _, _, body = exchange(connection, "GET", f"/memories/{DEFAULT_MEMORY_ID}/memoryRecord/{record_id}")
    assert json.loads(body)["memoryRecord"]["timestamp"] == 1.0  # 1.0000005 s is a tie: to even
