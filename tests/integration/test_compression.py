"""gzip requests cannot multiply memory: grpc's own decompression is off, and the service inflates a gzip
request a step at a time within the admission byte budget (service/compression.py)."""

from __future__ import annotations

import collections
import concurrent.futures
import gzip

import grpc
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc
from google.rpc import error_details_pb2

from emulator import DEFAULT_MEMORY_ID
from tests.helpers import record_create, service_process
from tests.integration.helpers import details_of, peak_rss_bytes
from tests.integration.test_overload import code_name, outcome

MIB = 1024 * 1024
INFLIGHT = 64 * MIB


def bomb(inflated_bytes: int) -> bytes:
    """A BatchCreate whose one record's text is `inflated_bytes` of one letter: a few hundred KB of gzip."""
    record = record_create("a" * inflated_bytes, request_identifier="r1")
    return pb.BatchCreateRequest(memory_id=DEFAULT_MEMORY_ID, records=[record]).SerializeToString()


def sixteen_bombs(inflated_bytes: int) -> tuple[int, collections.Counter[str]]:
    """16 concurrent gzip BatchCreates inflating to `inflated_bytes` each, against a service that admits
    64 MiB of requests: how much its peak RSS grew, and the codes the callers got."""
    payload = bomb(inflated_bytes)
    with service_process(AGENTCORE_BACKEND="local", MAX_INFLIGHT_BYTES=str(INFLIGHT)) as (process, start):  # noqa: SIM117
        with grpc.insecure_channel(
            f"127.0.0.1:{start['grpcPort']}", options=[("grpc.max_send_message_length", 128 * MIB)]
        ) as channel:
            call = channel.unary_unary("/agentcore.memory.v1.MemoryRecordsService/BatchCreate")
            stub = pb_grpc.MemoryRecordsServiceStub(channel)
            outcome(stub.BatchCreate, pb.BatchCreateRequest(memory_id=DEFAULT_MEMORY_ID), timeout=10)  # warm
            before = peak_rss_bytes(process.pid)
            with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
                errors = list(
                    pool.map(
                        lambda _: outcome(call, payload, timeout=60, compression=grpc.Compression.Gzip),
                        range(16),
                    )
                )
            grown = peak_rss_bytes(process.pid) - before
    for error in errors:
        assert error is not None
        reason = details_of(error)[error_details_pb2.ErrorInfo].reason
        assert reason in {"INVALID_ARGUMENT", "SERVER_OVERLOADED", "REQUEST_TOO_LARGE"}, reason
    seen = collections.Counter(code_name(error) for error in errors)
    print(f"\n{inflated_bytes // MIB} MiB bombs: peak RSS grew by {grown / MIB:.0f} MiB; outcomes {seen}")
    return grown, seen


def test_sixteen_gzip_bombs_raise_peak_rss_by_at_most_the_byte_budget() -> None:
    """16 concurrent requests of ~60 KB gzip that inflate to 60 MiB each (under the 64 MiB receive limit
    that MAX_INFLIGHT_BYTES=64 MiB sets): grpc inflated them all at once before (peak RSS +1.9-2.4 GiB).
    Now each is refused once it inflates past a third of the budget, and peak RSS grows by at most
    MAX_INFLIGHT_BYTES + 100 MiB."""
    grown, seen = sixteen_bombs(60 * MIB)
    assert grown <= INFLIGHT + 100 * MIB, f"peak RSS grew by {grown / MIB:.0f} MiB"
    assert set(seen) == {"ResourceExhausted"}, seen


def test_a_gzip_request_is_served_and_a_deflate_one_refused_before_it_costs_anything() -> None:
    with service_process(AGENTCORE_BACKEND="local") as (_, start):  # noqa: SIM117
        with grpc.insecure_channel(f"127.0.0.1:{start['grpcPort']}") as channel:
            stub = pb_grpc.MemoryRecordsServiceStub(channel)
            request = pb.BatchCreateRequest(
                memory_id=DEFAULT_MEMORY_ID,
                records=[record_create("likes green tea", request_identifier="r1")],
            )
            created = stub.BatchCreate(request, timeout=10, compression=grpc.Compression.Gzip)
            assert len(created.successful_records) == 1
            error = outcome(stub.BatchCreate, request, timeout=10, compression=grpc.Compression.Deflate)
            assert error is not None and error.code() is grpc.StatusCode.UNIMPLEMENTED


def test_a_gzip_request_that_inflates_past_the_receive_limit_is_refused() -> None:
    with service_process(AGENTCORE_BACKEND="local", MAX_INFLIGHT_BYTES=str(4 * MIB)) as (_, start):  # noqa: SIM117
        with grpc.insecure_channel(
            f"127.0.0.1:{start['grpcPort']}", options=[("grpc.max_send_message_length", 64 * MIB)]
        ) as channel:
            call = channel.unary_unary("/agentcore.memory.v1.MemoryRecordsService/BatchCreate")
            error = outcome(call, bomb(2 * MIB), timeout=10, compression=grpc.Compression.Gzip)
            assert error is not None and error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert details_of(error)[error_details_pb2.ErrorInfo].reason == "REQUEST_TOO_LARGE"
            garbage = outcome(call, gzip.compress(b"not a message")[:-4], timeout=10)
            assert garbage is not None and garbage.code() is grpc.StatusCode.INVALID_ARGUMENT
