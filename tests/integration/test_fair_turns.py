"""Fair turns (service/admission.py): when every AWS turn is busy, a caller with one RPC waiting is
served before a busy caller's backlog, not after it. Two callers, each with its own client certificate,
on a facade with mutual TLS, two turns and 200 ms of injected AWS latency."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc

from emulator import Emulator, FaultConfig
from service.runtime.server import create_server
from service.settings import Backend
from service.telemetry.metrics import Metrics
from service.upstream import aws
from tests.certs import Authority, channel_credentials, secure_channel
from tests.helpers import MEMORY_ID, UNKNOWN_RECORD_ID, settings_for_tests

LATENCY_SECONDS = 0.2
TURNS = 2
BUSY_IN_FLIGHT = 50
QUIET_CALLS = 5
# One upstream call's time of waiting at most (a turn comes free every LATENCY_SECONDS / TURNS on
# average, at worst after a whole call), its own call, and room for TLS and a shared machine.
QUIET_SECONDS_AT_MOST = LATENCY_SECONDS + LATENCY_SECONDS + 0.15
# Long enough for the busy caller's last in line (about 50 / 2 x 0.2 s), short enough that its RPCs
# still waiting when the test ends give their threads back soon.
BUSY_DEADLINE_SECONDS = 8.0
# First come first served, the quiet caller would face about 5 s of waiting, and be refused at once.
QUIET_DEADLINE_SECONDS = 3.0
GET = pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=UNKNOWN_RECORD_ID)


class Facade:
    """The facade with mutual TLS in front of a slow emulator, and a channel for each caller."""

    def __init__(self, folder: Path, emulator: Emulator) -> None:
        self.authority = Authority()
        cert, key, ca = folder / "tls.crt", folder / "tls.key", folder / "ca.crt"
        self.authority.issue(server=True, common_name="facade").write(cert, key)
        ca.write_bytes(self.authority.cert_pem)
        settings = settings_for_tests(
            backend=Backend.LOCAL,
            tls_cert_file=str(cert),
            tls_key_file=str(key),
            tls_client_ca_file=str(ca),
            max_workers=TURNS,
            max_concurrent_rpcs=2 * BUSY_IN_FLIGHT,
        )
        self.metrics = Metrics(backend="local")
        client = aws.create_client(settings, endpoint_url=emulator.endpoint_url)
        self.server, self.port = create_server(settings, client, metrics=self.metrics)

    def channel(self, spiffe_id: str) -> grpc.Channel:
        leaf = self.authority.issue(spiffe_id=spiffe_id)
        channel = secure_channel(self.port, channel_credentials(self.authority, leaf))
        grpc.channel_ready_future(channel).result(timeout=10)
        return channel

    def waiting(self) -> float:
        return self.metrics.registry.get_sample_value("agentcore_grpc_server_requests_waiting") or 0.0


@pytest.fixture
def facade(tmp_path: Path) -> Iterator[Facade]:
    faults = FaultConfig(latency_seconds=LATENCY_SECONDS)
    with Emulator(memory_ids=[MEMORY_ID], faults=faults) as emulator:
        running = Facade(tmp_path, emulator)
        running.server.start()
        try:
            yield running
        finally:
            running.server.stop(None).wait(5)


class Backlog:
    """BUSY_IN_FLIGHT RPCs of one caller in flight at all times: each sends the next as it ends."""

    def __init__(self, stub: pb_grpc.MemoryRecordsServiceStub) -> None:
        self._stub = stub
        self._lock = threading.Lock()
        self._stopped = False
        self._in_flight: set[grpc.Future] = set()
        for _ in range(BUSY_IN_FLIGHT):
            self._send()

    def _send(self) -> None:
        with self._lock:
            if self._stopped:
                return
            future = self._stub.Get.future(GET, timeout=BUSY_DEADLINE_SECONDS)
            self._in_flight.add(future)
        future.add_done_callback(self._ended)

    def _ended(self, future: grpc.Future) -> None:
        with self._lock:
            self._in_flight.discard(future)
        self._send()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            in_flight = list(self._in_flight)
        for future in in_flight:
            future.cancel()


def test_a_quiet_caller_waits_at_most_one_upstream_call_behind_a_busy_callers_fifty(facade: Facade) -> None:
    busy_channel = facade.channel("spiffe://cluster.local/ns/batch/sa/importer")
    quiet_channel = facade.channel("spiffe://cluster.local/ns/chat/sa/chat-api")
    backlog = Backlog(pb_grpc.MemoryRecordsServiceStub(busy_channel))
    quiet = pb_grpc.MemoryRecordsServiceStub(quiet_channel)
    took: list[tuple[float, float, str]] = []  # seconds, busy RPCs waiting as it was sent, its code
    try:
        deadline = time.monotonic() + 10
        while facade.waiting() < BUSY_IN_FLIGHT - TURNS:
            assert time.monotonic() < deadline, "the busy caller's backlog never formed"
            time.sleep(0.01)
        for _ in range(QUIET_CALLS):
            second = time.monotonic() + 1
            ahead = facade.waiting()
            started = time.perf_counter()
            try:
                quiet.Get(GET, timeout=QUIET_DEADLINE_SECONDS)
                code = "OK"
            except grpc.RpcError as error:
                code = error.code().name
            took.append((time.perf_counter() - started, ahead, code))
            time.sleep(max(second - time.monotonic(), 0.0))
    finally:
        backlog.stop()
        busy_channel.close()
        quiet_channel.close()
    # Each quiet RPC found the busy caller's RPCs waiting, answered NOT_FOUND after one AWS call.
    assert all(ahead >= BUSY_IN_FLIGHT - TURNS - 2 for _, ahead, _ in took), took
    assert [code for *_, code in took] == ["NOT_FOUND"] * QUIET_CALLS, took
    assert max(seconds for seconds, *_ in took) < QUIET_SECONDS_AT_MOST, took
