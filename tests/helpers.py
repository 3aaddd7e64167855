"""What more than one suite shares besides fixtures: ids, timestamps and records (as protos, and as the
emulator's wire dicts); settings and boto3 clients for tests; a facade in process or in a process of
its own; reading an error's rich details back; skips that CI turns into failures; a free port."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import boto3
import botocore.config
import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc
from google.protobuf import message, timestamp_pb2
from google.rpc import error_details_pb2, status_pb2

from emulator import DEFAULT_MEMORY_ID
from service.api.operations import SERVICE_NAME
from service.runtime.server import create_server
from service.settings import Settings
from service.telemetry.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
MEMORY_ID = DEFAULT_MEMORY_ID
OTHER_MEMORY_ID = "other_memory-abcdefghij"
RECORD_ID = "mem-aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"
UNKNOWN_RECORD_ID = "mem-00000000-0000-0000-0000-000000000000"
DETAIL_TYPES: tuple[type[message.Message], ...] = (
    error_details_pb2.ErrorInfo,
    error_details_pb2.BadRequest,
    error_details_pb2.RetryInfo,
    error_details_pb2.ResourceInfo,
    error_details_pb2.QuotaFailure,
    error_details_pb2.RequestInfo,
)


def timestamp(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def record_create(text: str = "likes green tea", **fields: Any) -> pb.MemoryRecordCreate:
    """A valid record to create; `fields` override or add to it."""
    values: dict[str, Any] = {
        "request_identifier": "r1",
        "namespaces": ["users/alice"],
        "content": pb.MemoryContent(text=text),
        "timestamp": timestamp(1_732_560_000),
        **fields,
    }
    return pb.MemoryRecordCreate(**values)


def update_request(contents: dict[str, str]) -> pb.BatchUpdateRequest:
    """A BatchUpdate setting each record's text, stamped now."""
    now = timestamp(int(time.time()))
    return pb.BatchUpdateRequest(
        memory_id=MEMORY_ID,
        records=[
            pb.MemoryRecordUpdate(
                memory_record_id=record_id, timestamp=now, content=pb.MemoryContent(text=text)
            )
            for record_id, text in contents.items()
        ],
    )


def status_details(status: status_pb2.Status) -> dict[type[Any], Any]:
    """The google.rpc details of `status` by type; each type at most once, and always one ErrorInfo."""
    found: dict[type[Any], Any] = {}
    for packed in status.details:
        for kind in DETAIL_TYPES:
            if packed.Is(kind.DESCRIPTOR):
                detail = kind()
                packed.Unpack(detail)
                assert kind not in found, f"two {kind.__name__} details"
                found[kind] = detail
    assert error_details_pb2.ErrorInfo in found, "every error carries one ErrorInfo"
    info = found[error_details_pb2.ErrorInfo]
    assert info.reason == info.reason.upper() and " " not in info.reason
    return found


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


START_TIMEOUT_SECONDS = 20


def service_env(**variables: str) -> dict[str, str]:
    """The environment of a `python -m service` process on free loopback ports, without AWS variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "PYTHONPATH": f"{ROOT / 'generated'}:{ROOT}",
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": "0",
            "METRICS_PORT": "0",
            # As the image sets it: a crash leaves every thread's traceback in the log a test keeps.
            "PYTHONFAULTHANDLER": "1",
        }
    )
    env.update(variables)
    return env


def read_json_line(stream: IO[str], message: str) -> dict[str, object]:
    """The first JSON log line on `stream` whose message is `message`."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        entry = json.loads(line)
        if entry.get("message") == message:
            return dict(entry)
    raise AssertionError(f"no {message!r} line")


@contextlib.contextmanager
def service_process(
    *, read_log: bool = False, log_tail: collections.deque[str] | None = None, **variables: str
) -> Iterator[tuple[subprocess.Popen[str], dict[str, object]]]:
    """`python -m service` in a process of its own, and its start line. Unless the test reads the rest
    of the log (`read_log`), it is drained (into `log_tail` when given, for a failure's message), so
    that no pipe fills. Killed when the block ends."""
    process = subprocess.Popen(
        [sys.executable, "-m", "service"],
        cwd=ROOT,
        env=service_env(**variables),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        start = read_json_line(process.stderr, f"serving {SERVICE_NAME}")
        if not read_log:
            drain = process.stderr.read if log_tail is None else lambda: log_tail.extend(process.stderr)
            threading.Thread(target=drain, daemon=True).start()
        yield process, start
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


@dataclasses.dataclass
class RunningService:
    stub: pb_grpc.MemoryRecordsServiceStub
    channel: grpc.Channel
    port: int
    client: Any
    metrics: Metrics


AwsServiceFactory = Callable[..., RunningService]


def run_service(settings: Settings, client: Any) -> Iterator[RunningService]:
    """The facade on `client`, served until the generator is closed."""
    metrics = Metrics(backend=settings.backend.value)
    server, port = create_server(settings, client, metrics=metrics)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield RunningService(pb_grpc.MemoryRecordsServiceStub(channel), channel, port, client, metrics)
    finally:
        channel.close()
        server.stop(grace=None).wait(timeout=5)


# --- the emulator's records as boto3 dicts ---------------------------------------------------------

TIMESTAMP = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def record_input(text: str = "likes green tea", **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "requestIdentifier": f"req-{uuid.uuid4().hex[:8]}",
        "namespaces": ["users/alice/preferences"],
        "content": {"text": text},
        "timestamp": TIMESTAMP,
    }
    record.update(overrides)
    return record


def create_one(client: Any, memory_id: str = DEFAULT_MEMORY_ID, **overrides: Any) -> str:
    response = client.batch_create_memory_records(memoryId=memory_id, records=[record_input(**overrides)])
    assert response["failedRecords"] == []
    record_id: str = response["successfulRecords"][0]["memoryRecordId"]
    return record_id


def get_record(client: Any, record_id: str, memory_id: str = DEFAULT_MEMORY_ID) -> dict[str, Any]:
    record: dict[str, Any] = client.get_memory_record(memoryId=memory_id, memoryRecordId=record_id)[
        "memoryRecord"
    ]
    return record


def require(condition: bool, reason: str) -> None:
    """Skip the test unless `condition` holds; on CI (`CI=true`) fail instead: what CI must prove."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def free_port() -> int:
    """A loopback port free right now (a child process binds it next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def dashboard() -> dict[str, Any]:
    """deploy/grafana's dashboard, as Grafana reads it."""
    document: dict[str, Any] = json.loads(
        (ROOT / "deploy" / "grafana" / "agentcore-memory-grpc.json").read_text()
    )
    return document


def dashboard_panels() -> list[dict[str, Any]]:
    """The dashboard's panels, those inside collapsed rows too, rows left out."""
    return [
        panel
        for top in dashboard()["panels"]
        for panel in [top, *top.get("panels", [])]
        if panel["type"] != "row"
    ]
