"""What an installed facade must do once started, wherever it runs (a fresh venv, a container): log only
JSON, answer health SERVING, and take one BatchUpdate of a record it created."""

from __future__ import annotations

import json
import time

import grpc
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.helpers import MEMORY_ID, record_create, update_request

START_SECONDS = 60


def wait_until_serving(port: int) -> None:
    """Health says SERVING on 127.0.0.1:`port` within START_SECONDS (the process may still be starting)."""
    deadline = time.monotonic() + START_SECONDS
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                answer = health.Check(health_pb2.HealthCheckRequest(), timeout=2, wait_for_ready=True)
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
                continue
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
            return


def assert_updates_a_record(port: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.MemoryRecordsServiceStub(channel)
        created = stub.BatchCreate(
            pb.BatchCreateRequest(memory_id=MEMORY_ID, records=[record_create()]), timeout=10
        )
        assert not created.failed_records
        record_id = created.successful_records[0].memory_record_id
        updated = stub.BatchUpdate(update_request({record_id: "likes black tea"}), timeout=10)
        assert [result.memory_record_id for result in updated.successful_records] == [record_id]
        assert not updated.failed_records


def assert_json_lines(output: str) -> list[dict[str, object]]:
    """Every line of `output` is one JSON object; they are returned."""
    lines = output.splitlines()
    assert lines, "no output"
    return [json.loads(line) for line in lines]
