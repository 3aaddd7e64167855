"""Fixtures of the emulator's tests: one emulator per test module, knowing two memories, and clients for
it."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any

import pytest

from emulator import DEFAULT_MEMORY_ID, Emulator
from tests.helpers import OTHER_MEMORY_ID, emulator_client


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(memory_ids=(DEFAULT_MEMORY_ID, OTHER_MEMORY_ID)) as running:
        yield running


@pytest.fixture(scope="module")
def client(emulator: Emulator) -> Any:
    return emulator_client(emulator.endpoint_url)


@pytest.fixture(scope="module")
def raw_client(emulator: Emulator) -> Any:
    """A client that skips botocore's own parameter validation, so the emulator's is exercised."""
    return emulator_client(emulator.endpoint_url, validate=False)


@pytest.fixture
def connection(emulator: Emulator) -> Iterator[http.client.HTTPConnection]:
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
    yield conn
    conn.close()
