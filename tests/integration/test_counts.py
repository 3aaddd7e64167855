"""The metrics count what callers saw, code by code: callers that cancel at any moment, deadlines that
pass while AWS answers, and RPCs cut off when the shutdown grace runs out (issue 16: 35 of 70
cancellations were counted as Canceled, the rest as OK or RESOURCE_EXHAUSTED; calls cut off at stop were
counted Canceled while callers saw UNAVAILABLE)."""

from __future__ import annotations

import collections
import concurrent.futures
import random
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc

from emulator import Emulator, FaultConfig
from service.calls import GO_CODE_NAMES
from service.runtime.server import create_server
from service.settings import Backend
from service.telemetry.metrics import Metrics
from service.upstream import aws
from tests.helpers import settings_for_tests
from tests.integration.test_overload import GET, MEMORY_ID, handled, service_on

LATENCY_SECONDS = 0.2


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(memory_ids=[MEMORY_ID], faults=FaultConfig(latency_seconds=LATENCY_SECONDS)) as running:
        yield running


def seen_by_callers(futures: list[grpc.Future]) -> collections.Counter[str]:
    codes: collections.Counter[str] = collections.Counter()
    for future in futures:
        try:
            future.result(timeout=10)
            codes["OK"] += 1
        except grpc.FutureCancelledError:
            codes["Canceled"] += 1
        except grpc.RpcError as error:
            codes[GO_CODE_NAMES[error.code()]] += 1
    return codes


def settled(service: object, method: str, total: int) -> dict[str, float]:
    """handled_total of `method` once `total` RPCs are counted (a cancelled RPC is counted when grpc
    tells the server, a moment after the caller let go)."""
    deadline = time.monotonic() + 5
    while True:
        counts = handled(service, method)  # type: ignore[arg-type]
        if sum(counts.values()) >= total or time.monotonic() > deadline:
            return counts
        time.sleep(0.02)


def assert_counted_as_seen(
    counted: dict[str, float], callers: collections.Counter[str], crossing: float = 0.05
) -> None:
    """Equal, code by code, but for a cancel or a deadline that crossed the server's answer on the wire
    (the server sent its answer, the caller had let go first: no server can tell); those stay few."""
    assert sum(counted.values()) == sum(callers.values()), (counted, callers)
    gone = ("Canceled", "DeadlineExceeded")
    crossed = sum(callers[code] - counted.get(code, 0) for code in gone)
    assert all(counted.get(code, 0) <= callers[code] for code in gone), (counted, callers)
    assert crossed <= max(1, int(crossing * sum(callers.values()))), (counted, callers)
    for code, count in callers.items():
        if code not in gone:
            assert 0 <= counted.get(code, 0) - count <= crossed, (counted, callers)


def test_cancellations_and_deadlines_are_counted_as_callers_saw_them(emulator: Emulator) -> None:
    rng = random.Random(16)
    with service_on(emulator, max_workers=4, max_concurrent_rpcs=128) as service:
        futures = []
        for index in range(90):
            if index % 9 == 0:  # a deadline shorter than AWS's answer
                futures.append(service.stub.Get.future(GET, timeout=LATENCY_SECONDS / 2))
                continue
            future = service.stub.Get.future(GET, timeout=10)
            futures.append(future)
            if index % 9 < 8:  # cancelled at a moment anywhere in its life, or left alone
                delay = rng.uniform(0, 2 * LATENCY_SECONDS)
                threading.Timer(delay, future.cancel).start()
        callers = seen_by_callers(futures)
        counted = settled(service, "Get", len(futures))
    # A short deadline ends DEADLINE_EXCEEDED, or is refused at once when the wait for a turn cannot fit.
    assert callers["Canceled"] >= 20, callers
    assert callers["DeadlineExceeded"] + callers["ResourceExhausted"] == 10, callers
    assert_counted_as_seen(counted, callers)


def test_rpcs_cut_off_when_the_grace_runs_out_are_counted_as_callers_saw_them(emulator: Emulator) -> None:
    slow = FaultConfig(latency_seconds=3.0)
    with Emulator(memory_ids=[MEMORY_ID], faults=slow) as very_slow:
        settings = settings_for_tests(backend=Backend.LOCAL, max_workers=8)
        client = aws.create_client(settings, endpoint_url=very_slow.endpoint_url)
        metrics = Metrics(backend="local")
        server, port = create_server(settings, client, metrics=metrics)
        server.start()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.MemoryRecordsServiceStub(channel)
            futures = [stub.Get.future(GET, timeout=20) for _ in range(6)]
            time.sleep(0.5)  # all six are waiting on AWS
            server.stop(0.3).wait(10)
            callers = seen_by_callers(futures)
        service = type("Service", (), {"metrics": metrics})()
        counted = settled(service, "Get", len(futures))
    assert sum(callers.values()) == 6 and "OK" not in callers, callers
    assert counted == dict(callers), (counted, callers)


def test_a_flood_of_cancellations_leaves_no_rpc_uncounted(emulator: Emulator) -> None:
    with (
        service_on(emulator, max_workers=2, max_concurrent_rpcs=8) as service,
        concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool,
    ):

        def cancel_soon(_: int) -> grpc.Future:
            future = service.stub.Get.future(GET, timeout=10)
            time.sleep(0.01)
            future.cancel()
            return future

        futures = list(pool.map(cancel_soon, range(40)))
        callers = seen_by_callers(futures)
        counted = settled(service, "Get", len(futures))
    # Cancelled 10 ms in, as refusals leave: crossings are the point here, and none may be lost. How
    # many cross is the machine's scheduling (a refusal sent at once reaches a busy caller after its
    # cancel: 13 of 40 on a loaded CI machine), so only the totals and the direction are held here; the
    # rate of crossings is held by the test above, whose cancellations fall anywhere in a call's life.
    assert_counted_as_seen(counted, callers, crossing=1.0)
