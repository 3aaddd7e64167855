"""`python -m service` as a user runs it: a real process, its start line, a real call, a clean stop."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from emulator import DEFAULT_MEMORY_ID
from tests.helpers import ROOT, service_env, service_process


def failing_start(**variables: str) -> subprocess.CompletedProcess[str]:
    """`python -m service` that is expected to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "service"],
        cwd=ROOT,
        env=service_env(**variables),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def local_process() -> Iterator[tuple[subprocess.Popen[str], dict[str, object]]]:
    with service_process(read_log=True, AGENTCORE_BACKEND="local", SHUTDOWN_GRACE_SECONDS="2") as running:
        yield running


def test_local_mode_serves_and_stops_on_sigterm(
    local_process: tuple[subprocess.Popen[str], dict[str, object]],
) -> None:
    process, start = local_process
    assert start["backend"] == "local"
    assert isinstance(start["metricsPort"], int) and start["metricsPort"] > 0
    assert str(start["awsEndpoint"]).startswith("http://127.0.0.1:")
    assert start["localMemoryIds"] == [DEFAULT_MEMORY_ID]
    assert start["localFaults"] == "none"
    port = start["grpcPort"]

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stub = pb_grpc.MemoryRecordsServiceStub(channel)
        created = stub.BatchCreate(
            pb.BatchCreateRequest(
                memory_id=DEFAULT_MEMORY_ID,
                records=[
                    pb.MemoryRecordCreate(
                        request_identifier="r1",
                        content=pb.MemoryContent(text="hello"),
                        timestamp=timestamp_pb2.Timestamp(seconds=1),
                    )
                ],
            ),
            timeout=10,
        )
        record_id = created.successful_records[0].memory_record_id
        got = stub.Get(pb.GetRequest(memory_id=DEFAULT_MEMORY_ID, memory_record_id=record_id), timeout=10)
        assert got.memory_record.content.text == "hello"

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0


def test_invalid_setting_fails_at_start_naming_the_variable() -> None:
    process = failing_start(AGENTCORE_BACKEND="aws", GRPC_PORT="not-a-port")
    assert process.returncode == 2
    assert "GRPC_PORT" in process.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_faults_that_do_not_parse_fail_at_start_naming_the_variable(workers: str) -> None:
    process = failing_start(AGENTCORE_BACKEND="local", LOCAL_FAULTS="NoSuchException=1", WORKERS=workers)
    assert process.returncode == 2
    assert "LOCAL_FAULTS" in process.stderr
    assert "Traceback" not in process.stderr


def test_aws_mode_without_region_fails_at_start_with_a_clear_message() -> None:
    process = failing_start(AGENTCORE_BACKEND="aws", AWS_CONFIG_FILE="/nonexistent")
    assert process.returncode == 2
    assert "AWS_REGION" in process.stderr


@pytest.mark.parametrize("variable", ["GRPC_PORT", "METRICS_PORT"])
def test_a_port_in_use_fails_at_start_with_a_clear_message(variable: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        process = failing_start(AGENTCORE_BACKEND="local", **{variable: port})
    assert process.returncode == 1
    assert "cannot start" in process.stderr
    assert "Traceback" not in process.stderr


def test_faults_in_the_embedded_emulator_from_the_environment() -> None:
    request = pb.GetRequest(memory_id=DEFAULT_MEMORY_ID, memory_record_id="mem-" + "a" * 36)
    with service_process(
        read_log=True, AGENTCORE_BACKEND="local", LOCAL_FAULTS="AccessDeniedException=1"
    ) as (_, start):
        assert start["localFaults"] == "AccessDeniedException=1"
        channel = grpc.insecure_channel(f"127.0.0.1:{start['grpcPort']}")
        with channel, pytest.raises(grpc.RpcError) as caught:
            pb_grpc.MemoryRecordsServiceStub(channel).Get(request, timeout=10)
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_a_missing_aws_profile_fails_at_start_with_a_clear_message() -> None:
    process = failing_start(AGENTCORE_BACKEND="aws", AWS_PROFILE="no-such-profile", AWS_REGION="us-east-1")
    assert process.returncode == 2
    assert "no-such-profile" in process.stderr
    assert "Traceback" not in process.stderr


def test_at_debug_level_no_log_line_holds_record_text_or_ids() -> None:
    secret = "SECRET-diary-entry-4111"
    with service_process(read_log=True, AGENTCORE_BACKEND="local", LOG_LEVEL="DEBUG") as (process, start):
        with grpc.insecure_channel(f"127.0.0.1:{start['grpcPort']}") as channel:
            stub = pb_grpc.MemoryRecordsServiceStub(channel)
            record = pb.MemoryRecordCreate(
                request_identifier="r1",
                namespaces=["users/secret-namespace"],
                content=pb.MemoryContent(text=secret),
                timestamp=timestamp_pb2.Timestamp(seconds=1),
            )
            created = stub.BatchCreate(
                pb.BatchCreateRequest(memory_id=DEFAULT_MEMORY_ID, records=[record]), timeout=10
            )
            record_id = created.successful_records[0].memory_record_id
            get = pb.GetRequest(
                memory_id=DEFAULT_MEMORY_ID, memory_record_id=record_id, namespace="users/secret-namespace"
            )
            assert stub.Get(get, timeout=10).memory_record.content.text == secret
            with pytest.raises(grpc.RpcError):
                stub.BatchCreate(
                    pb.BatchCreateRequest(memory_id=DEFAULT_MEMORY_ID, records=[record] * 101), timeout=10
                )
        process.send_signal(signal.SIGTERM)
        assert process.stderr is not None
        rest = process.stderr.read()
        assert process.wait(timeout=15) == 0
    lines = rest.splitlines()
    assert sum('"finished call"' in line for line in lines) == 3
    for leaked in (secret, record_id, "secret-namespace"):
        assert not [line for line in lines if leaked in line], leaked
