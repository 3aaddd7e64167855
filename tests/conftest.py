"""Shared fixtures: the real server on an ephemeral loopback port, over a real gRPC channel, in front
of the real emulator (or the wire stub) over real HTTP."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import botocore.config
import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc

from emulator import DEFAULT_MEMORY_ID, Emulator
from service import aws
from service.metrics import Metrics
from service.server import create_server
from service.settings import Backend, Settings
from tests.wire_stub import WireStub

MEMORY_ID = DEFAULT_MEMORY_ID
OTHER_MEMORY_ID = "other_memory-abcdefghij"


def emulator_client(
    endpoint_url: str, *, attempts: int = 1, validate: bool = True, timeout_seconds: float = 10
) -> Any:
    """An unmodified boto3 client aimed at an emulator. `validate=False` skips botocore's client-side
    checks so that the emulator's own validation is exercised. `attempts` counts calls, retries included."""
    config = botocore.config.Config(
        parameter_validation=validate,
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=timeout_seconds,
        read_timeout=timeout_seconds,
    )
    return boto3.client(
        "bedrock-agentcore",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=config,
    )


def prometheus_tool(name: str) -> str:
    """The path of `prometheus` or `promtool` (Debian's prometheus package). Missing: a skip on a
    developer's machine, a failure in CI, where .ci/run installs the package."""
    found = shutil.which(name)
    if found is None:
        reason = f"{name} is not installed: .ci/run installs Debian's prometheus package, which has it"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def settings_for_tests(**overrides: Any) -> Settings:
    """Settings for a server on a free loopback port, with fast failure on a dead upstream."""
    defaults: dict[str, Any] = {
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "max_workers": 8,
        "aws_connect_timeout_seconds": 2.0,
        "aws_read_timeout_seconds": 10.0,
    }
    return Settings(**{**defaults, **overrides})


@dataclasses.dataclass
class RunningService:
    stub: pb_grpc.MemoryRecordsServiceStub
    channel: grpc.Channel
    port: int
    client: Any
    metrics: Metrics


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(memory_ids=[MEMORY_ID, OTHER_MEMORY_ID]) as running:
        yield running


def run_service(settings: Settings, client: Any) -> Iterator[RunningService]:
    metrics = Metrics(backend=settings.backend.value)
    server, port = create_server(settings, client, metrics=metrics)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield RunningService(pb_grpc.MemoryRecordsServiceStub(channel), channel, port, client, metrics)
    finally:
        channel.close()
        server.stop(grace=None).wait(timeout=5)


@pytest.fixture
def local_service(emulator: Emulator) -> Iterator[RunningService]:
    """The facade in local mode, exactly as `make run` wires it."""
    settings = settings_for_tests(backend=Backend.LOCAL)
    yield from run_service(settings, aws.create_client(settings, endpoint_url=emulator.endpoint_url))


@pytest.fixture
def wire_stub() -> Iterator[WireStub]:
    with WireStub() as stub:
        yield stub


AwsServiceFactory = Callable[..., RunningService]


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
