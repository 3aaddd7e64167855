"""Routing: a request that no operation matches."""

from __future__ import annotations

import http.client

import pytest

from emulator import DEFAULT_MEMORY_ID, Emulator
from tests.emulator.helpers import BATCH_CREATE_PATH, assert_aws_headers, exchange


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("POST", "/memories/x/unknown"),
        ("GET", BATCH_CREATE_PATH),  # known path, wrong method
        ("POST", BATCH_CREATE_PATH + "/"),
        ("DELETE", f"/memories/{DEFAULT_MEMORY_ID}/memoryRecord/mem-1"),
    ],
)
def test_unknown_route(
    emulator: Emulator, connection: http.client.HTTPConnection, method: str, path: str
) -> None:
    emulator.clear_received()
    status, headers, payload = exchange(connection, method, path)
    assert status == 404
    assert_aws_headers(headers, payload)
    assert headers["x-amzn-errortype"] == "UnknownOperationException"
    [request] = emulator.received()
    assert request.operation is None
    assert request.method == method
