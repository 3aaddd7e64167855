"""The server's connection options, on real connections, with their times scaled down: clients that ping
as often as Go's and Java's may (without calls too) are never sent GOAWAY `too_many_pings`, a client
pinging much faster is, and a connection older than its maximum age is recycled."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from emulator import Emulator
from service.runtime import server
from service.upstream import aws
from tests.helpers import run_service, settings_for_tests

# Time scaled by 1/10: grpc's Python client pings at most once a second (its own floor), standing for the
# 10 s that Go's and Java's clients use at least; the server's interval is scaled alike.
CLIENT_PING_MS = 1_000
SCALE = CLIENT_PING_MS / 10_000
# Six pings or more: grpc's server sends GOAWAY on the third strike (a ping too soon), with margin for a
# loaded machine.
IDLE_SECONDS = 6.5


class Connections:
    """A channel to the server on a connection of its own, and every connectivity state it went through."""

    def __init__(self, port: int, **options: int) -> None:
        self.states: list[grpc.ChannelConnectivity] = []
        self._lock = threading.Lock()
        self.channel = grpc.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1), *options.items()]
        )
        self.channel.subscribe(self._saw, try_to_connect=True)

    def _saw(self, state: grpc.ChannelConnectivity) -> None:
        with self._lock:
            self.states.append(state)

    def check(self) -> int:
        stub = health_pb2_grpc.HealthStub(self.channel)
        return stub.Check(health_pb2.HealthCheckRequest(), timeout=5, wait_for_ready=True).status

    def times_ready(self) -> int:
        with self._lock:
            return self.states.count(grpc.ChannelConnectivity.READY)

    def close(self) -> None:
        self.channel.unsubscribe(self._saw)
        self.channel.close()


def serve_scaled(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, **constants: int) -> Iterator[int]:
    """The server's port, with its ping interval scaled as the clients' here, and `constants` of
    service/runtime/server.py set for the test."""
    constants.setdefault("MIN_CLIENT_PING_INTERVAL_MS", int(server.MIN_CLIENT_PING_INTERVAL_MS * SCALE))
    for name, value in constants.items():
        monkeypatch.setattr(server, name, value)
    settings = settings_for_tests()
    for running in run_service(settings, aws.create_client(settings, endpoint_url=emulator.endpoint_url)):
        yield running.port


def idle_and_pinging(port: int) -> Connections:
    """A connection that pings every CLIENT_PING_MS, without calls too, after IDLE_SECONDS of that."""
    pinging = Connections(
        port,
        **{
            "grpc.keepalive_time_ms": CLIENT_PING_MS,
            "grpc.keepalive_permit_without_calls": 1,
            "grpc.http2.max_pings_without_data": 0,
        },
    )
    assert pinging.check() == health_pb2.HealthCheckResponse.SERVING
    time.sleep(IDLE_SECONDS)
    assert pinging.check() == health_pb2.HealthCheckResponse.SERVING
    return pinging


def test_the_server_accepts_pings_at_the_rate_go_and_java_clients_may_send_them(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for port in serve_scaled(emulator, monkeypatch):
        pinging = idle_and_pinging(port)
        pinging.close()
        assert pinging.times_ready() == 1, pinging.states  # never sent away


def test_a_server_stricter_than_the_clients_sends_them_away(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The control: with a minimum above the clients' interval, the same client is sent GOAWAY.
    for port in serve_scaled(emulator, monkeypatch, MIN_CLIENT_PING_INTERVAL_MS=2 * CLIENT_PING_MS):
        pinging = idle_and_pinging(port)
        pinging.close()
        assert pinging.times_ready() > 1, pinging.states  # too_many_pings, then a reconnect


def test_a_connection_older_than_its_maximum_age_is_recycled(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for port in serve_scaled(
        emulator, monkeypatch, MAX_CONNECTION_AGE_MS=1_000, MAX_CONNECTION_AGE_GRACE_MS=3_000
    ):
        connection = Connections(port)
        try:
            deadline = time.monotonic() + 6.0
            while time.monotonic() < deadline and connection.times_ready() < 2:
                assert connection.check() == health_pb2.HealthCheckResponse.SERVING  # no call fails
                time.sleep(0.1)
            assert connection.times_ready() >= 2, connection.states
        finally:
            connection.close()
