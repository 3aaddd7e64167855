"""Overload: beyond MAX_CONCURRENT_RPCS or MAX_INFLIGHT_BYTES an RPC is refused at once with
RESOURCE_EXHAUSTED; admitted RPCs complete; health is answered throughout; an RPC whose deadline
passes while it waits never reaches AWS; and the metrics equal what the clients saw, code by code.
The emulator's injected latency keeps the admitted RPCs busy."""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from emulator import Emulator, FaultConfig
from service.api import operations
from service.calls import GO_CODE_NAMES
from service.settings import Backend
from service.upstream import aws
from tests.helpers import (
    MEMORY_ID,
    UNKNOWN_RECORD_ID,
    RunningService,
    record_create,
    run_service,
    service_process,
    settings_for_tests,
)
from tests.integration.helpers import details_of, peak_rss_bytes, sample

LATENCY_SECONDS = 1.0
FLOOD_SECONDS = float(os.environ.get("FLOOD_SECONDS", "5"))
GET = pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=UNKNOWN_RECORD_ID)


@pytest.fixture
def slow_emulator() -> Iterator[Emulator]:
    with Emulator(memory_ids=[MEMORY_ID], faults=FaultConfig(latency_seconds=LATENCY_SECONDS)) as running:
        yield running


@contextlib.contextmanager
def service_on(emulator: Emulator, **overrides: Any) -> Iterator[RunningService]:
    settings = settings_for_tests(backend=Backend.LOCAL, **overrides)
    yield from run_service(settings, aws.create_client(settings, endpoint_url=emulator.endpoint_url))


def outcome(invoke: Callable[..., Any], request: Any, **kwargs: Any) -> grpc.RpcError | None:
    try:
        invoke(request, **kwargs)
    except grpc.RpcError as error:
        return error
    return None


def code_name(error: grpc.RpcError | None) -> str:
    return "OK" if error is None else GO_CODE_NAMES[error.code()]


def handled(service: RunningService, method: str) -> dict[str, float]:
    """grpc_server_handled_total of `method`, by code, zeros left out."""
    counts = {}
    for code in GO_CODE_NAMES.values():
        labels = {
            "grpc_type": "unary",
            "grpc_service": operations.SERVICE_NAME,
            "grpc_method": method,
            "grpc_code": code,
        }
        value = service.metrics.registry.get_sample_value("grpc_server_handled_total", labels)
        if value:
            counts[code] = value
    return counts


def refused(service: RunningService, method: str, reason: str) -> float:
    labels = {"grpc_type": "unary", "grpc_service": operations.SERVICE_NAME, "grpc_method": method}
    return sample(service, "agentcore_grpc_server_requests_refused_total", **labels, reason=reason)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_beyond_the_limit_rpcs_are_refused_and_health_is_answered(slow_emulator: Emulator) -> None:
    with service_on(slow_emulator, max_workers=2, max_concurrent_rpcs=4) as service:
        health = health_pb2_grpc.HealthStub(service.channel)
        with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
            calls = [pool.submit(outcome, service.stub.Get, GET, timeout=30) for _ in range(12)]
            # Two RPCs call AWS, two wait for a turn, eight are refused: every handler slot is busy.
            wait_for(lambda: len(slow_emulator.received()) == 2 and sum(f.done() for f in calls) == 8)
            assert sample(service, "agentcore_grpc_server_requests_waiting") == 2
            for _ in range(5):
                reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            errors = [future.result() for future in calls]

        seen = collections.Counter(code_name(error) for error in errors)
        assert seen == {"NotFound": 4, "ResourceExhausted": 8}
        for error in errors:
            if error is not None and error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
                details = details_of(error)
                assert details[error_details_pb2.ErrorInfo].reason == "SERVER_OVERLOADED"
                assert error_details_pb2.RetryInfo in details
        assert len(slow_emulator.received("GetMemoryRecord")) == 4  # the refused never reached AWS
        assert handled(service, "Get") == seen
        assert refused(service, "Get", "rpcs") == 8
        assert sample(service, "agentcore_grpc_server_requests_waiting") == 0


def test_health_checks_do_not_wait_behind_open_streams_or_refusals(slow_emulator: Emulator) -> None:
    """Many open Watch streams, every turn taken and refusals queueing: a health check still answers at
    once (on the event loop, which no stream or admitted RPC holds)."""
    with service_on(slow_emulator, max_workers=1, max_concurrent_rpcs=2) as service:
        health = health_pb2_grpc.HealthStub(service.channel)
        watches = [health.Watch(health_pb2.HealthCheckRequest()) for _ in range(50)]
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=24) as pool:
                calls = [pool.submit(outcome, service.stub.Get, GET, timeout=30) for _ in range(24)]
                wait_for(lambda: len(slow_emulator.received()) == 1)
                for _ in range(5):
                    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    assert reply.status == health_pb2.HealthCheckResponse.SERVING
                assert len(slow_emulator.received()) == 1, "still saturated while health answered"
                errors = [future.result() for future in calls]
        finally:
            for watch in watches:
                watch.cancel()
        seen = collections.Counter(code_name(error) for error in errors)
        assert seen == {"NotFound": 2, "ResourceExhausted": 22}


def test_request_bytes_are_bounded_too(slow_emulator: Emulator) -> None:
    records = [record_create("x" * 15_000, request_identifier=f"r{i}") for i in range(7)]
    request = pb.BatchCreateRequest(memory_id=MEMORY_ID, records=records)
    size = request.ByteSize()
    with service_on(slow_emulator, max_concurrent_rpcs=10, max_inflight_bytes=size + size // 2) as service:
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            errors = list(
                pool.map(lambda _: outcome(service.stub.BatchCreate, request, timeout=30), range(3))
            )
        seen = collections.Counter(code_name(error) for error in errors)
        assert seen == {"OK": 1, "ResourceExhausted": 2}
        assert handled(service, "BatchCreate") == seen
        assert refused(service, "BatchCreate", "bytes") == 2


def test_a_deadline_that_passes_while_waiting_never_reaches_aws(
    slow_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service.rpc")
    with service_on(slow_emulator, max_workers=1) as service:
        first = service.stub.Get.future(GET, timeout=30)
        wait_for(lambda: len(slow_emulator.received()) == 1)
        late = outcome(service.stub.Get, GET, timeout=0.3)
        assert late is not None and late.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        with pytest.raises(grpc.RpcError):
            first.result(timeout=30)  # NotFound, after the injected latency
        assert len(slow_emulator.received("GetMemoryRecord")) == 1
        wait_for(lambda: handled(service, "Get") == {"NotFound": 1, "DeadlineExceeded": 1})
        codes = [getattr(r, "grpcCode", None) for r in caplog.records if r.name == "service.rpc"]
        assert sorted(code for code in codes if code) == ["DeadlineExceeded", "NotFound"]


def test_a_call_without_a_deadline_gets_the_default_one(slow_emulator: Emulator) -> None:
    with service_on(slow_emulator, default_deadline_seconds=0.3) as service:
        error = outcome(service.stub.Get, GET)  # no deadline: AWS answers only after a second
        assert error is not None and error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert handled(service, "Get") == {"DeadlineExceeded": 1}


def test_memory_stays_bounded_under_a_flood_of_large_batches() -> None:
    """100 concurrent 1.5 MB batches against a process that admits 4 MiB of requests: the bytes being
    read are all held (docs/overload.md: what the model does not bound, open in issue 16), the 150 MB
    the batches weigh; admission bounds what they cost once read, so the peak stays within twice the
    batches' weight (a message being read is for a moment both grpc's buffer and Python's bytes):
    measured 114 to 204 MiB over runs alone, 250 MiB once in a whole `make test`."""
    limits = {"GRPC_MAX_WORKERS": "2", "MAX_CONCURRENT_RPCS": "8", "MAX_INFLIGHT_BYTES": str(4 * 1024 * 1024)}
    with service_process(AGENTCORE_BACKEND="local", LOCAL_FAULTS="latency=1", **limits) as (process, start):
        port = start["grpcPort"]
        records = [record_create("y" * 15_000, request_identifier=f"r{i}") for i in range(100)]
        request = pb.BatchCreateRequest(memory_id=MEMORY_ID, records=records)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.MemoryRecordsServiceStub(channel)
            outcome(stub.Get, GET, timeout=30)  # warm: every module loaded, one call served
            before = peak_rss_bytes(process.pid)
            with concurrent.futures.ThreadPoolExecutor(max_workers=100) as pool:
                errors = list(pool.map(lambda _: outcome(stub.BatchCreate, request, timeout=60), range(100)))
            grown = peak_rss_bytes(process.pid) - before
        seen = collections.Counter(code_name(error) for error in errors)
        assert set(seen) <= {"OK", "ResourceExhausted"} and seen["OK"] >= 1, seen
        weight = 100 * request.ByteSize()
        assert grown < 2 * weight + 16 * 1024 * 1024, f"peak RSS grew by {grown / 2**20:.0f} MiB"


def test_health_answers_fast_under_a_flood_of_refusals() -> None:
    """A separate service process at the default limits, 1 s of injected AWS latency and 150 callers
    in a closed loop (thousands of refusals a second): health checks every 20 ms. Prints the
    percentiles (`pytest -s`); the bound asserted allows for a loaded CI machine. The callers share
    one connection, as one busy client would (past GRPC_MAX_CONCURRENT_STREAMS its RPCs queue in the
    client); the probe has its own, as a kubelet does."""
    with service_process(AGENTCORE_BACKEND="local", LOCAL_FAULTS="latency=1") as (_, start):
        port = start["grpcPort"]
        own_connection = [("grpc.use_local_subchannel_pool", 1)]
        with (
            grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
            grpc.insecure_channel(f"127.0.0.1:{port}", options=own_connection) as probe,
        ):
            stub, health = pb_grpc.MemoryRecordsServiceStub(channel), health_pb2_grpc.HealthStub(probe)
            end = time.monotonic() + FLOOD_SECONDS
            seen: collections.Counter[str] = collections.Counter()

            def flood() -> None:
                while time.monotonic() < end:
                    seen[code_name(outcome(stub.Get, GET, timeout=5))] += 1

            with concurrent.futures.ThreadPoolExecutor(max_workers=150) as pool:
                for _ in range(150):
                    pool.submit(flood)
                time.sleep(1)  # the flood is on
                latencies = []
                while time.monotonic() < end - 0.5:
                    sent = time.perf_counter()
                    health.Check(health_pb2.HealthCheckRequest(), timeout=5)
                    latencies.append(time.perf_counter() - sent)
                    time.sleep(0.02)
        latencies.sort()
        p50, p99 = (latencies[int(f * len(latencies))] * 1000 for f in (0.5, 0.99))
        print(f"\nflood: {dict(seen)}; health checks: {len(latencies)}, p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        assert seen["ResourceExhausted"] > 10 * seen["NotFound"] > 0, seen
        assert p99 < 1000
