"""Shared fixtures: the real server on an ephemeral loopback port, over a real gRPC channel, in front
of the real emulator (or the wire stub) over real HTTP. Builders live in tests/helpers.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from emulator import Emulator
from service.settings import Backend
from service.upstream import aws
from tests.helpers import (
    MEMORY_ID,
    OTHER_MEMORY_ID,
    AwsServiceFactory,
    RunningService,
    run_service,
    settings_for_tests,
)
from tests.wire_stub import WireStub


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(memory_ids=[MEMORY_ID, OTHER_MEMORY_ID]) as running:
        yield running


@pytest.fixture
def local_service(emulator: Emulator) -> Iterator[RunningService]:
    """The facade in local mode, exactly as `make run` wires it."""
    settings = settings_for_tests(backend=Backend.LOCAL)
    yield from run_service(settings, aws.create_client(settings, endpoint_url=emulator.endpoint_url))


@pytest.fixture
def wire_stub() -> Iterator[WireStub]:
    with WireStub() as stub:
        yield stub


@pytest.fixture
def aws_service_factory(wire_stub: WireStub, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsServiceFactory]:
    """Builds the facade in aws mode, configured only through the standard AWS variables and aimed at
    the wire stub; keyword arguments override settings."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_AGENTCORE", wire_stub.endpoint_url)
    running: list[Iterator[RunningService]] = []

    def build(**overrides: Any) -> RunningService:
        settings = settings_for_tests(**{"backend": Backend.AWS, "aws_max_attempts": 1, **overrides})
        service = run_service(settings, aws.create_client(settings))
        running.append(service)
        return next(service)

    yield build
    for service in running:
        for _ in service:
            pass


@pytest.fixture
def aws_service(aws_service_factory: AwsServiceFactory) -> RunningService:
    """The facade in aws mode with one attempt per call, aimed at the wire stub."""
    return aws_service_factory()
