"""A phase of `make bench` (alone: `python -m bench.large_batch`): a 1,000-record BatchUpdate through the
facade (BATCH_CONCURRENCY=10) against a sequential boto3 loop of ten 100-record calls, both on one
emulator answering each call after 200 ms of injected latency (AWS batch writes take hundreds of ms).
Latency-bound, not CPU-bound: the facade and the emulator run in the bench's own process."""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import boto3
import grpc
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc
from google.protobuf import timestamp_pb2

from emulator import DEFAULT_MEMORY_ID, Emulator
from service.runtime.server import create_server
from service.settings import Backend, Settings
from service.upstream import aws

RECORDS = 1000
LATENCY_SECONDS = 0.2
ROUNDS = 3


def measure(rounds: int = ROUNDS) -> dict[str, Any]:
    """Seconds per round of each side, facade first (A B interleaved)."""
    found: dict[str, Any] = {
        "records": RECORDS,
        "upstream_latency": LATENCY_SECONDS,
        "facade": [],
        "loop": [],
    }
    with Emulator(memory_ids=[DEFAULT_MEMORY_ID]) as emulator:
        settings = Settings(grpc_host="127.0.0.1", grpc_port=0, backend=Backend.LOCAL, batch_concurrency=10)
        server, port = create_server(
            settings, aws.create_client(settings, endpoint_url=emulator.endpoint_url)
        )
        server.start()
        try:
            stub = pb_grpc.MemoryRecordsServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
            now = timestamp_pb2.Timestamp(seconds=1_732_560_000)
            creates = [
                pb.MemoryRecordCreate(
                    request_identifier=f"r{i}",
                    namespaces=["bench"],
                    content=pb.MemoryContent(text="t"),
                    timestamp=now,
                )
                for i in range(RECORDS)
            ]
            created = stub.BatchCreate(
                pb.BatchCreateRequest(memory_id=DEFAULT_MEMORY_ID, records=creates), timeout=60
            )
            ids = [result.memory_record_id for result in created.successful_records]
            update = pb.BatchUpdateRequest(
                memory_id=DEFAULT_MEMORY_ID,
                records=[
                    pb.MemoryRecordUpdate(
                        memory_record_id=i, timestamp=now, content=pb.MemoryContent(text="u")
                    )
                    for i in ids
                ],
            )
            client: Any = boto3.client(
                "bedrock-agentcore",
                endpoint_url=emulator.endpoint_url,
                region_name="us-east-1",
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
            )
            emulator.faults.configure(latency_seconds=LATENCY_SECONDS)
            for _ in range(rounds):
                started = time.perf_counter()
                reply = stub.BatchUpdate(update, timeout=60)
                facade = time.perf_counter() - started
                if len(reply.successful_records) != RECORDS:
                    raise RuntimeError(f"{len(reply.failed_records)} records of the BatchUpdate failed")
                started = time.perf_counter()
                for start in range(0, RECORDS, 100):
                    records = [
                        {"memoryRecordId": i, "timestamp": now.seconds, "content": {"text": "u"}}
                        for i in ids[start : start + 100]
                    ]
                    client.batch_update_memory_records(memoryId=DEFAULT_MEMORY_ID, records=records)
                found["loop"].append(time.perf_counter() - started)
                found["facade"].append(facade)
            return found
        finally:
            server.stop(grace=None).wait(timeout=5)


def speedup(found: dict[str, Any]) -> float:
    """The median of loop / facade over the rounds."""
    ratios: list[float] = [loop / facade for facade, loop in zip(found["facade"], found["loop"], strict=True)]
    return statistics.median(ratios)


def main() -> int:
    found = measure()
    for facade, loop in zip(found["facade"], found["loop"], strict=True):
        print(f"facade {facade:.3f} s, boto3 loop {loop:.3f} s, {loop / facade:.1f}x")
    print(f"median speed-up {speedup(found):.1f}x (target: at least 5x)")
    return 0 if speedup(found) >= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
