"""Fixtures of the emulator's tests: one emulator per test module, knowing two memories, and clients for
it; the module's client checks every successful reply against the model's output shape."""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from emulator import DEFAULT_MEMORY_ID, Emulator
from emulator.restjson.validation import ShapeValidator
from emulator.restjson.wire import decode_json
from tests.helpers import OTHER_MEMORY_ID, emulator_client


class OutputShapeCheck:
    """A botocore after-call hook: validates each 2xx reply body, as sent, against its operation's output
    shape (required members, lengths, patterns, enums, unions), with the validator the emulator applies
    to input."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.checked: list[str] = []
        self._validators: dict[str, ShapeValidator] = {}

    def __call__(self, http_response: Any, model: Any, **_: Any) -> None:
        if not 200 <= http_response.status_code < 300:
            return
        name: str = model.name
        validator = self._validators.setdefault(name, ShapeValidator(model.output_shape))
        body = http_response.content
        reply = decode_json(body) if body.strip() else {}
        self.violations.extend(
            f"{name}: {violation.message}" for violation in validator.validate_value(reply)
        )
        self.checked.append(name)

    def attach(self, client: Any) -> Any:
        client.meta.events.register("after-call.bedrock-agentcore", self)
        return client


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(memory_ids=(DEFAULT_MEMORY_ID, OTHER_MEMORY_ID)) as running:
        yield running


@pytest.fixture(scope="module")
def client(emulator: Emulator) -> Any:
    return emulator_client(emulator.endpoint_url)


@pytest.fixture
def checked_client(emulator: Emulator) -> Iterator[Any]:
    """A client whose test fails if any successful reply does not validate against the model."""
    check = OutputShapeCheck()
    yield check.attach(emulator_client(emulator.endpoint_url))
    assert check.violations == []


@pytest.fixture(scope="module")
def raw_client(emulator: Emulator) -> Any:
    """A client that skips botocore's own parameter validation, so the emulator's is exercised."""
    return emulator_client(emulator.endpoint_url, validate=False)


@pytest.fixture
def namespace() -> str:
    """A namespace no other test writes to, so a module's tests share an emulator but not results."""
    return f"tests/{uuid.uuid4().hex}"


@pytest.fixture
def connection(emulator: Emulator) -> Iterator[http.client.HTTPConnection]:
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
    yield conn
    conn.close()
