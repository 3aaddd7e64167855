"""A caller process: runs the bench's calls, either through direct boto3 (`direct`), through the facade
over gRPC (`facade`), or as bare gRPC echoes (`echo`), and answers each command with its latencies.

One JSON command a line on stdin: {"op": "update", "records": 10, "calls": 200, "callers": 16}, or
{"op": "warm"}; one JSON answer a line on stdout: {"latencies": [...seconds], "seconds": wall, "errors": n}.
A caller is its own process so that direct boto3 and the facade's client are measured alike, and so
that callgrind can count the direct boto3 call's instructions in a process of its own.

`facade-connections` calls the facade like `facade`, but each calling thread on a channel (a TCP
connection) of its own, as a fleet of clients would: the kernel spreads connections, not calls, over
the worker processes of WORKERS > 1.
"""

from __future__ import annotations

import concurrent.futures
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

MEMORY_ID = "demo_memory-0123456789"
# What a caller builds: update(records), get(), and the ids of the records it created.
Calls = tuple[Callable[[int], Any], Callable[[], Any], Callable[[], list[str]]]
TEXT = "The user prefers green tea in the afternoon and black coffee in the morning. " * 2


def boto3_calls(endpoint_url: str) -> Calls:
    import boto3

    # The default client a service would build: default retries, timeouts, pool and validation.
    client = boto3.client(
        "bedrock-agentcore",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    ids: list[str] = []

    def create(count: int) -> list[str]:
        records = [
            {"requestIdentifier": f"r{i}", "namespaces": ["bench"], "content": {"text": TEXT}, "timestamp": 1}
            for i in range(count)
        ]
        reply = client.batch_create_memory_records(memoryId=MEMORY_ID, records=records)
        return [r["memoryRecordId"] for r in reply["successfulRecords"]]

    def update(count: int) -> Any:
        records = [
            {"memoryRecordId": record_id, "timestamp": 2, "content": {"text": TEXT}}
            for record_id in ids[:count]
        ]
        return client.batch_update_memory_records(memoryId=MEMORY_ID, records=records)

    def get() -> Any:
        return client.get_memory_record(memoryId=MEMORY_ID, memoryRecordId=ids[0])

    ids.extend(create(100))
    return update, get, lambda: ids


def facade_calls(target: str, *, connection_per_thread: bool = False) -> Calls:
    import grpc
    from agentcore.memory.v1 import memory_records_pb2 as pb
    from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc
    from google.protobuf import timestamp_pb2

    shared_stub = pb_grpc.MemoryRecordsServiceStub(grpc.insecure_channel(target))
    per_thread = threading.local()

    def stub() -> pb_grpc.MemoryRecordsServiceStub:
        if not connection_per_thread:
            return shared_stub
        if not hasattr(per_thread, "stub"):
            # Channels with the same target share one connection unless their subchannel pool is local.
            channel = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
            per_thread.stub = pb_grpc.MemoryRecordsServiceStub(channel)
        found: pb_grpc.MemoryRecordsServiceStub = per_thread.stub
        return found

    first, second = timestamp_pb2.Timestamp(seconds=1), timestamp_pb2.Timestamp(seconds=2)
    creates = [
        pb.MemoryRecordCreate(
            request_identifier=f"r{i}",
            namespaces=["bench"],
            content=pb.MemoryContent(text=TEXT),
            timestamp=first,
        )
        for i in range(100)
    ]
    reply = shared_stub.BatchCreate(pb.BatchCreateRequest(memory_id=MEMORY_ID, records=creates), timeout=60)
    ids = [r.memory_record_id for r in reply.successful_records]
    updates = {
        count: pb.BatchUpdateRequest(
            memory_id=MEMORY_ID,
            records=[
                pb.MemoryRecordUpdate(
                    memory_record_id=i, timestamp=second, content=pb.MemoryContent(text=TEXT)
                )
                for i in ids[:count]
            ],
        )
        for count in (1, 10, 100)
    }
    get_request = pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=ids[0])

    def update(count: int) -> Any:
        return stub().BatchUpdate(updates[count], timeout=60)

    def get() -> Any:
        return stub().Get(get_request, timeout=60)

    return update, get, lambda: ids


def echo_calls(target: str) -> Calls:
    import grpc

    echo: grpc.UnaryUnaryMultiCallable[bytes, bytes] = grpc.insecure_channel(target).unary_unary(
        "/bench.Echo/Echo"
    )

    def call(count: int = 0) -> Any:
        return echo(b"x" * 64, timeout=60)

    return call, call, list


def run(command: dict[str, Any], update: Callable[[int], Any], get: Callable[[], Any]) -> dict[str, Any]:
    records = int(command.get("records", 0))

    def one(_: int) -> float | None:
        started = time.perf_counter()
        try:
            update(records) if command["op"] == "update" else get()
        except Exception:
            return None
        return time.perf_counter() - started

    calls, callers = int(command["calls"]), int(command["callers"])
    started = time.perf_counter()
    if callers == 1:
        results = [one(i) for i in range(calls)]
    else:
        with concurrent.futures.ThreadPoolExecutor(callers) as pool:
            results = list(pool.map(one, range(calls)))
    seconds = time.perf_counter() - started
    latencies = [r for r in results if r is not None]
    return {"latencies": latencies, "seconds": seconds, "errors": len(results) - len(latencies)}


def main() -> None:
    mode, target = sys.argv[1], sys.argv[2]
    builds: dict[str, Callable[[str], Calls]] = {
        "direct": boto3_calls,
        "facade": facade_calls,
        "facade-connections": lambda target: facade_calls(target, connection_per_thread=True),
        "echo": echo_calls,
    }
    update, get, _ = builds[mode](target)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "quit":
            break
        print(json.dumps(run(command, update, get)), flush=True)


if __name__ == "__main__":
    main()
