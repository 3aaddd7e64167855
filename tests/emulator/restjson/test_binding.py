"""Request binding: body and query members."""

from __future__ import annotations

import http.client
import json
import uuid

import pytest

from emulator import DEFAULT_MEMORY_ID, Emulator
from tests.emulator.helpers import BATCH_CREATE_PATH, assert_aws_headers, exchange


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'["a list"]', b'"text"', b'{"records": NaN}', b"\xff\xfe", b"[" * 100_000],
    ids=["syntax", "array", "string", "nan", "not-utf8", "deep"],
)
def test_malformed_body_cannot_parse(connection: http.client.HTTPConnection, body: bytes) -> None:
    status, headers, payload = exchange(connection, "POST", BATCH_CREATE_PATH, body)
    assert status == 400
    assert_aws_headers(headers, payload)
    assert headers["x-amzn-errortype"] == "ValidationException"
    error = json.loads(payload)
    assert error["reason"] == "CannotParse"
    assert isinstance(error["message"], str)


def test_query_string_is_journaled_and_applied(
    emulator: Emulator, connection: http.client.HTTPConnection
) -> None:
    emulator.clear_received()
    record_id = f"mem-{uuid.uuid4()}"
    status, _, _ = exchange(
        connection, "GET", f"/memories/{DEFAULT_MEMORY_ID}/memoryRecord/{record_id}?namespace=a%2Fb"
    )
    assert status == 404
    [request] = emulator.received("GetMemoryRecord")
    assert request.query == {"namespace": ["a/b"]}
    assert request.json is None
