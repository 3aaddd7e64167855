"""Hostile connections (issue #16): a `python -m service` process under attack from another process
(tests/integration/attackers.py) while this one checks that health, and the facade, still answer.
Latencies come from at least 500 health checks where the claim is a p99; `pytest -s` prints what
was measured."""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.certs import Authority, channel_credentials, secure_channel
from tests.helpers import MEMORY_ID, ROOT, free_port, record_create, require, service_env, service_process
from tests.integration.helpers import rss_bytes

# What a Check may take at p99 while a port is under attack. The rapid reset's bound is the one the
# issue asks for (still open: xfail). The watch race's harm was a deadlock, checks unanswered for good;
# on CI's shared 2-core machine, with the fix in place, its p99 once reached 100.2 ms, so its bound is
# 250 ms: an eighth of the 2 s after which the manifests' probes count a check as failed.
RAPID_RESET_P99_SECONDS = 0.1
WATCH_RACE_P99_SECONDS = 0.25
MiB = 1024 * 1024
GET = "/agentcore.memory.v1.MemoryRecordsService/Get"
CHECK = "/grpc.health.v1.Health/Check"


# --- the attacker, the prober and what they measure ---------------------------------------------


@contextlib.contextmanager
def attacker(attack: str, port: int, seconds: float, *args: str) -> Iterator[subprocess.Popen[str]]:
    """tests/integration/attackers.py's `attack` on `port` for `seconds`, in a process of its own."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.attackers",
            attack,
            "--port",
            str(port),
            "--seconds",
            str(seconds),
            *args,
        ],
        cwd=ROOT,
        env=service_env(GRPC_VERBOSITY="ERROR"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def next_report(process: subprocess.Popen[str]) -> dict[str, Any]:
    """The attacker's next JSON line."""
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, f"the attacker ended without a report (exit {process.wait(timeout=10)})"
    report: dict[str, Any] = json.loads(line)
    return report


def final_report(process: subprocess.Popen[str], timeout: float = 30) -> dict[str, Any]:
    """The attacker's last JSON line, once it has ended (by itself, or for its stdin closing)."""
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"the attacker failed (exit {process.returncode})"
    report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return report


def percentile(latencies: list[float], fraction: float) -> float:
    ordered = sorted(latencies)
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


def check(stub: health_pb2_grpc.HealthStub, timeout: float = 2.0) -> float:
    """One health Check that must answer SERVING; its latency."""
    sent = time.perf_counter()
    response = stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    return time.perf_counter() - sent


def probe(channels: dict[str, grpc.Channel], seconds: float, interval: float) -> dict[str, list[float]]:
    """A health Check on each channel every `interval` for `seconds`, sent on schedule whether or not
    the earlier ones have answered (so that a slow server is not asked less often): their latencies.
    A Check that fails or takes longer than 2 s fails the test."""
    request = health_pb2.HealthCheckRequest()
    latencies: dict[str, list[float]] = {name: [] for name in channels}
    pending = []
    stubs = {name: health_stub(channel) for name, channel in channels.items()}
    began = time.monotonic()
    for tick in range(int(seconds / interval)):
        time.sleep(max(0.0, began + tick * interval - time.monotonic()))
        for name, stub in stubs.items():
            sent = time.perf_counter()
            answer = stub.Check.future(request, timeout=2)
            answer.add_done_callback(
                lambda done, name=name, sent=sent: latencies[name].append(time.perf_counter() - sent)
            )
            pending.append((name, answer))
    failed: collections.Counter[str] = collections.Counter()
    for name, answer in pending:
        try:
            assert answer.result(timeout=5).status == health_pb2.HealthCheckResponse.SERVING
        except grpc.RpcError as error:
            failed[f"{name}: {error.code().name}"] += 1
    assert not failed, f"checks that failed: {dict(failed)} (of {len(pending)})"
    return latencies


def assert_fast(attack: str, latencies: dict[str, list[float]], p99_seconds: float) -> None:
    """Print each port's p50/p99/max; assert p99 <= `p99_seconds` over all of them."""
    every = [latency for port in latencies.values() for latency in port]
    for name, port in latencies.items():
        print(
            f"\n{attack}: {name}: {len(port)} checks, p50 {percentile(port, 0.5) * 1000:.1f} ms, "
            f"p99 {percentile(port, 0.99) * 1000:.1f} ms, max {max(port) * 1000:.1f} ms"
        )
    assert len(every) >= 500
    assert percentile(every, 0.99) <= p99_seconds, f"p99 {percentile(every, 0.99) * 1000:.1f} ms"


def health_stub(channel: grpc.Channel) -> health_pb2_grpc.HealthStub:
    return health_pb2_grpc.HealthStub(channel)


def plaintext(port: int, **options: int) -> grpc.Channel:
    return grpc.insecure_channel(f"127.0.0.1:{port}", options=list(options.items()))


def new_connection(port: int) -> grpc.Channel:
    """A channel on a connection of its own (grpc's channels in one process share their connections
    to one address unless told otherwise)."""
    return plaintext(port, **{"grpc.use_local_subchannel_pool": 1})


def metric_total(metrics_port: int, name: str) -> float:
    """The sum of every series of `name` on the process's /metrics."""
    connection = http.client.HTTPConnection("127.0.0.1", metrics_port, timeout=5)
    connection.request("GET", "/metrics")
    body = connection.getresponse().read().decode()
    connection.close()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


LOCAL = {"AGENTCORE_BACKEND": "local", "SHUTDOWN_GRACE_SECONDS": "1"}


# --- 1. the Watch race on HEALTH_PORT under mutual TLS -----------------------------------------


def test_watch_and_cancel_loops_on_the_health_port_never_block_checks_or_sigterm(tmp_path: Path) -> None:
    """4 threads looping Watch, read one answer, cancel on HEALTH_PORT for 4.5 s (with grpcio's
    health servicer this deadlocked health on both ports within ~4 s, and SIGTERM did not stop the
    process): Checks on both ports answer, p99 <= 250 ms, and SIGTERM still ends the process."""
    authority = Authority()
    cert, key, ca = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.crt"
    ca.write_bytes(authority.cert_pem)
    authority.issue(server=True, common_name="facade").write(cert, key)
    health_port = free_port()
    tls = {"TLS_CERT_FILE": str(cert), "TLS_KEY_FILE": str(key), "TLS_CLIENT_CA_FILE": str(ca)}
    with service_process(**LOCAL, **tls, HEALTH_PORT=str(health_port)) as (process, start):
        client = authority.issue(spiffe_id="spiffe://cluster.local/ns/probe/sa/prober")
        mtls = secure_channel(int(str(start["grpcPort"])), channel_credentials(authority, client))
        with plaintext(health_port) as health_channel, mtls:
            channels = {"HEALTH_PORT": health_channel, "mTLS gRPC port": mtls}
            for channel in channels.values():
                check(health_stub(channel), timeout=10)  # connected before the clock starts
            with attacker("watch-race", health_port, 4.5, "--threads", "4") as race:
                time.sleep(0.5)  # the loops are running
                latencies = probe(channels, seconds=3.0, interval=0.01)
                assert race.poll() is None, "the attack ended before the checks did"
                process.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
                exit_code = process.wait(timeout=15)
                stopped_in = time.monotonic() - signalled
                report = final_report(race)
    print(f"\nwatch race: {report['cycles']}; exit {exit_code} {stopped_in:.2f} s after SIGTERM")
    assert_fast("watch race", latencies, WATCH_RACE_P99_SECONDS)
    assert report["cycles"].get("answered", 0) >= 200, report
    assert exit_code == 0
    assert stopped_in < 5


# --- 2. Watch and Check for names the server does not serve ------------------------------------


def test_watches_on_unknown_names_get_service_unknown_and_keep_nothing() -> None:
    """200 Watches on unique 1 MB names (with grpcio's servicer: +200 MB, never freed) answer
    SERVICE_UNKNOWN; the process's RSS grows by far less than the 200 MB they weigh, while they are
    open and after they are cancelled. HEALTH_PORT refuses such a name (its limit is 4 KiB); Check on
    an unknown name is NOT_FOUND on both ports."""
    health_port = free_port()
    with service_process(**LOCAL, HEALTH_PORT=str(health_port)) as (process, start):
        big = {"grpc.max_send_message_length": 2 * MiB}
        with plaintext(int(str(start["grpcPort"])), **big) as main, plaintext(health_port, **big) as health:
            for channel in (main, health):
                with pytest.raises(grpc.RpcError) as unknown:
                    health_stub(channel).Check(
                        health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5
                    )
                assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
            name = "x" * MiB
            with pytest.raises(grpc.RpcError) as too_large:
                next(health_stub(health).Watch(health_pb2.HealthCheckRequest(service=name), timeout=5))
            assert too_large.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            stub = health_stub(main)
            warm = stub.Watch(health_pb2.HealthCheckRequest(service=name), timeout=30)
            assert next(warm).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
            warm.cancel()
            time.sleep(0.3)
            before = rss_bytes(process.pid)
            watches = []
            for i in range(200):
                unique = f"{i:08d}".ljust(MiB, "y")
                watch = stub.Watch(health_pb2.HealthCheckRequest(service=unique), timeout=60)
                watches.append(watch)
                assert next(watch).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
                del unique
            time.sleep(0.3)
            while_open = rss_bytes(process.pid) - before
            for watch in watches:
                watch.cancel()
            del watches
            time.sleep(1.0)
            after = rss_bytes(process.pid) - before
            check(stub)
    print(
        f"\nunknown names: RSS +{while_open / MiB:.1f} MiB with 200 Watches of 1 MB open, "
        f"+{after / MiB:.1f} MiB after they were cancelled"
    )
    assert while_open < 40 * MiB, f"+{while_open / MiB:.0f} MiB while open"
    assert after < 40 * MiB, f"+{after / MiB:.0f} MiB after they were cancelled"


# --- 3. rapid reset aimed at Health/Check -------------------------------------------------------


@pytest.mark.xfail(
    strict=False,
    reason="open in issue 16: at GRPC_MAX_CONCURRENT_STREAMS=200 the attacked port's Checks take p99 "
    "77-117 ms over runs (1000: 160-290 ms), at the 100 ms bound; HEALTH_PORT stays p99 < 50 ms",
)
def test_a_rapid_reset_on_check_does_not_slow_other_callers_checks() -> None:
    """An attacker loops HEADERS + DATA (a Check) and RST_STREAM at once, as fast as it can for 3 s,
    on the plaintext gRPC port (it made 7 of 65 checks on that port go unanswered within 1.5 s):
    Checks on that port and on HEALTH_PORT answer, p99 <= 100 ms."""
    health_port = free_port()
    with service_process(**LOCAL, HEALTH_PORT=str(health_port)) as (process, start):
        grpc_port = int(str(start["grpcPort"]))
        with plaintext(grpc_port) as main, plaintext(health_port) as health:
            channels = {"gRPC port (attacked)": main, "HEALTH_PORT": health}
            for channel in channels.values():
                check(health_stub(channel), timeout=10)
            with attacker("rapid-reset", grpc_port, 3.0) as reset:
                time.sleep(0.3)
                latencies = probe(channels, seconds=2.4, interval=0.008)
                assert reset.poll() is None, "the attack ended before the checks did"
                report = final_report(reset)
            check(health_stub(main))
        alive = process.poll() is None
    print(f"\nrapid reset: {report}")
    assert alive
    assert report["streams"] >= 10_000, report  # the attack happened
    assert_fast("rapid reset", latencies, RAPID_RESET_P99_SECONDS)


# --- 4. streams that never send their request message -------------------------------------------


def test_held_streams_cost_no_thread_and_facade_ones_are_reset_at_the_read_timeout() -> None:
    """120 streams that send HEADERS for Get and never a message (kept at 120 for 3.5 s: each one the
    server ends is opened again), and 120 for Check on HEALTH_PORT: real Gets and Checks still answer
    at once (100 such streams used to make every facade RPC DEADLINE_EXCEEDED); with
    REQUEST_READ_TIMEOUT_SECONDS=1 each held Get is ended 1-2 s after it opened, and counted."""
    health_port = free_port()
    variables = {**LOCAL, "HEALTH_PORT": str(health_port), "REQUEST_READ_TIMEOUT_SECONDS": "1"}
    with service_process(**variables) as (_, start):
        grpc_port, metrics_port = int(str(start["grpcPort"])), int(str(start["metricsPort"]))
        with plaintext(grpc_port) as main, plaintext(health_port) as health:
            facade = pb_grpc.MemoryRecordsServiceStub(main)
            created = facade.BatchCreate(
                pb.BatchCreateRequest(memory_id=MEMORY_ID, records=[record_create()]), timeout=10
            )
            get = pb.GetRequest(
                memory_id=MEMORY_ID, memory_record_id=created.successful_records[0].memory_record_id
            )
            facade.Get(get, timeout=10)
            check(health_stub(health), timeout=10)
            streams = ("--streams", "120", "--connections", "4")
            with (
                attacker("hold", grpc_port, 3.5, "--path", GET, "--replace", *streams) as gets,
                attacker("hold", health_port, 3.5, "--path", CHECK, *streams) as checks,
            ):
                assert next_report(gets)["held"] == 120 and next_report(checks)["held"] == 120
                get_latencies: list[float] = []
                get_failures: list[str] = []

                def gets_for(seconds: float) -> None:
                    end = time.monotonic() + seconds
                    while time.monotonic() < end and len(get_latencies) < 1_000:
                        sent = time.perf_counter()
                        try:
                            facade.Get(get, timeout=2)
                        except grpc.RpcError as error:
                            get_failures.append(error.code().name)
                        get_latencies.append(time.perf_counter() - sent)
                        time.sleep(0.02)

                probing = threading.Thread(target=gets_for, args=(2.5,))
                probing.start()
                check_latencies = probe(
                    {"HEALTH_PORT": health, "gRPC port": main}, seconds=2.5, interval=0.01
                )
                probing.join(10)
                get_report, check_report = final_report(gets), final_report(checks)
            time.sleep(0.2)  # the last timeouts are counted
            counted = metric_total(metrics_port, "agentcore_grpc_server_request_read_timeouts_total")
    print(f"\nheld Get streams: {get_report}; read timeouts counted: {counted}")
    print(f"held Check streams on HEALTH_PORT: {check_report}")
    print(
        f"real Gets: {len(get_latencies)}, failed {get_failures}, "
        f"p50 {percentile(get_latencies, 0.5) * 1000:.1f} ms, max {max(get_latencies) * 1000:.1f} ms"
    )
    for name, port in check_latencies.items():
        print(f"checks on {name}: p99 {percentile(port, 0.99) * 1000:.1f} ms, max {max(port) * 1000:.1f} ms")
    assert not get_failures
    assert len(get_latencies) >= 20 and max(get_latencies) < 1.0
    assert all(max(port) < 1.0 for port in check_latencies.values())
    assert get_report["least_held"] >= 100, get_report
    ended = sum(get_report["ended"].values())
    assert ended >= 120, get_report
    assert set(get_report["ended"]) <= {"grpc-status 4", "RST_STREAM 8"}, get_report
    assert get_report["delay_min"] >= 0.9 and get_report["delay_max"] <= 2.0, get_report
    assert ended <= counted <= get_report["opened"]


# --- 5. idle connections, and the connection limit ----------------------------------------------


@pytest.fixture
def open_files_limit() -> Iterator[int]:
    """RLIMIT_NOFILE's soft limit raised to its hard one (the service process inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_two_thousand_idle_connections_cost_no_more_than_before(open_files_limit: int) -> None:
    """2,000 connections that send the HTTP/2 preface and SETTINGS, then nothing: the process's RSS
    grows by no more per connection than under the sync server before (the issue's "~16 KiB"; this
    test measured that server at 17.7 KiB, of which grpc.max_connection_age_ms is 3 KiB: 14.9 without
    it), 18 KiB, and a Check (on an open channel and on a new one) still answers within 1 s."""
    require(open_files_limit >= 2_500, f"RLIMIT_NOFILE's hard limit is {open_files_limit}, under 2,500")
    with service_process(**LOCAL) as (process, start):
        grpc_port = int(str(start["grpcPort"]))
        with plaintext(grpc_port) as channel:
            check(health_stub(channel), timeout=10)
            before = rss_bytes(process.pid)
            with attacker("idle", grpc_port, 20, "--connections", "2000", "--settle", "1.5") as idling:
                opened = next_report(idling)
                time.sleep(0.5)
                grown = rss_bytes(process.pid) - before
                on_open = check(health_stub(channel), timeout=1)
                with new_connection(grpc_port) as fresh:
                    on_new = check(health_stub(fresh), timeout=1)
                final = final_report(idling)
    per_connection = grown / opened["open"]
    print(
        f"\nidle connections: {opened}, at the end {final}; RSS +{grown / MiB:.1f} MiB, "
        f"{per_connection / 1024:.1f} KiB each; Check {on_open * 1000:.1f} ms on an open channel, "
        f"{on_new * 1000:.1f} ms on a new one"
    )
    assert opened["open"] == 2_000, opened
    assert per_connection <= 18 * 1024, f"{per_connection / 1024:.1f} KiB per connection"
    assert on_open < 1 and on_new < 1


def test_connections_beyond_grpc_max_connections_are_refused_and_open_ones_still_work(
    open_files_limit: int,
) -> None:
    """GRPC_MAX_CONNECTIONS=50: with one channel and 49 idle connections open, the 51st connection
    is refused, while a Check over the channel already open still answers."""
    with service_process(**LOCAL, GRPC_MAX_CONNECTIONS="50") as (_, start):
        grpc_port = int(str(start["grpcPort"]))
        with plaintext(grpc_port) as channel:
            check(health_stub(channel), timeout=10)
            with attacker("idle", grpc_port, 20, "--connections", "49", "--settle", "1") as idling:
                opened = next_report(idling)
                with attacker("idle", grpc_port, 2, "--connections", "1", "--settle", "1") as extra:
                    fifty_first = next_report(extra)
                    final_report(extra)
                with new_connection(grpc_port) as fresh, pytest.raises(grpc.RpcError) as refused:
                    check(health_stub(fresh), timeout=1)
                on_open = check(health_stub(channel), timeout=1)
                final_report(idling)
            with new_connection(grpc_port) as later:
                check(health_stub(later), timeout=5)  # a slot again once the idle ones are gone
    print(
        f"\nGRPC_MAX_CONNECTIONS=50: 49 idle {opened}; the 51st {fifty_first}; a new channel's Check: "
        f"{refused.value.code().name}; the open channel's {on_open * 1000:.1f} ms"
    )
    assert opened["open"] == 49, opened
    assert fifty_first["open"] == 0, fifty_first
    assert refused.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert on_open < 1
