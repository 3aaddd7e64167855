"""The /metrics listener against connections that never finish a request.

An attacker process of its own (so that its sockets and its loop take nothing from the server's
process) opens 2,000 connections to the metrics port on loopback: some send nothing, some half a
request line, some trickle header bytes. A real scrape (urllib) must still answer within 1 s, over
HTTP and over HTTPS; the idle ones are closed after the head timeout, with one log line per burst.
"""

from __future__ import annotations

import logging
import os
import resource
import select
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from service.security import tls
from service.telemetry.metrics import Metrics, exposition
from tests.certs import Authority
from tests.helpers import require

IDLE_CONNECTIONS = 2_000
SCRAPES = 5
SCRAPE_SECONDS = 1.0
# The attacker's sockets live in its own process; the server needs one descriptor for each, plus margin.
DESCRIPTORS_NEEDED = IDLE_CONNECTIONS + 500

ATTACKER = """
import resource, selectors, socket, sys, time
port, count, hold, tls = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "tls"
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
sockets = []
# In waves, as a flood arrives: the scrapes start after the first, while the others come in.
for index in range(count):
    attacker = socket.socket()
    attacker.setblocking(False)
    attacker.connect_ex(("127.0.0.1", port))  # not waited for: a full backlog must not stall the others
    sockets.append(attacker)
    if index % 100 == 99:
        if index == 99:
            print("flooding", flush=True)
        time.sleep(0.1)
waiter = selectors.DefaultSelector()
for attacker in sockets:
    waiter.register(attacker, selectors.EVENT_WRITE)
connected, deadline = set(), time.monotonic() + 10
while len(connected) < count and time.monotonic() < deadline:
    for key, _ in waiter.select(0.5):
        connected.add(key.fileobj)
        waiter.unregister(key.fileobj)
# A third send nothing, a third half a request line (on HTTPS: of a ClientHello), a third (slowloris)
# trickle a byte at a time.
half, trickle = (b"\\x16\\x03\\x01\\x02\\x00\\x01", b"\\x00") if tls else (b"GET /metr", b"a")
thirds = count // 3
for attacker in sockets[thirds:]:
    try:
        attacker.send(half)
    except OSError:
        pass
trickling = sockets[2 * thirds :]
print(len(connected), flush=True)
waiter.register(sys.stdin, selectors.EVENT_READ)
end = time.monotonic() + hold
while time.monotonic() < end and not waiter.select(0.5):
    for attacker in trickling:
        try:
            attacker.send(trickle)
        except OSError:
            pass
"""


@pytest.fixture(autouse=True)
def descriptors() -> Iterator[None]:
    """RLIMIT_NOFILE's soft limit raised to the hard one for the server's side, as it was afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    require(
        hard == resource.RLIM_INFINITY or hard >= DESCRIPTORS_NEEDED,
        f"RLIMIT_NOFILE's hard limit {hard} is below the {DESCRIPTORS_NEEDED} descriptors this test needs",
    )
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class Attacker:
    """The attacker process, holding its connections until closed (or for at most `hold` seconds)."""

    def __init__(self, port: int, count: int = IDLE_CONNECTIONS, hold: float = 60, tls: bool = False) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", ATTACKER, str(port), str(count), str(hold), "tls" if tls else "plain"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.process.stdout.readline()  # the flood is under way

    def connected(self) -> int:
        """How many connections it opened, once it is done opening them."""
        assert self.process.stdout is not None
        return int(self.process.stdout.readline() or 0)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


@pytest.fixture
def attack() -> Iterator[Callable[..., Attacker]]:
    started: list[Attacker] = []

    def start(port: int, **kwargs: Any) -> Attacker:
        started.append(Attacker(port, **kwargs))
        return started[-1]

    yield start
    for attacker in started:
        attacker.close()


@pytest.fixture
def https(tmp_path: Path) -> tuple[Callable[[], ssl.SSLContext], ssl.SSLContext]:
    """The server's context source (as serve() builds it) and a client context that trusts it."""
    authority = Authority()
    authority.issue(server=True, common_name="metrics").write(tmp_path / "cert.pem", tmp_path / "key.pem")
    pair = tls.WatchedPair(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"), listener="metrics")
    return tls.ssl_contexts(pair), ssl.create_default_context(cadata=authority.cert_pem.decode())


def scrape_seconds(url: str, context: ssl.SSLContext | None = None) -> float:
    began = time.monotonic()
    with urllib.request.urlopen(url, timeout=10, context=context) as answer:
        body = answer.read().decode()
    elapsed = time.monotonic() - began
    assert "agentcore_build_info{" in body
    return elapsed


def resident_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_scrape_answers_within_a_second_while_2000_connections_idle(
    scheme: str,
    attack: Callable[..., Attacker],
    https: tuple[Callable[[], ssl.SSLContext], ssl.SSLContext],
) -> None:
    server_tls, client_tls = https if scheme == "https" else (None, None)
    port, stop = exposition.start_http_server(Metrics(backend="aws").registry, "127.0.0.1", 0, tls=server_tls)
    try:
        scrape_seconds(f"{scheme}://127.0.0.1:{port}/metrics", client_tls)  # the first render's imports
        before = resident_bytes()
        attacker = attack(port, tls=scheme == "https")
        # While the flood arrives, then with every connection open.
        during = []
        for _ in range(2 * SCRAPES):
            during.append(scrape_seconds(f"{scheme}://127.0.0.1:{port}/metrics", client_tls))
            time.sleep(0.2)  # through the flood (2 s) and the retries of connections a server dropped
        assert attacker.connected() == IDLE_CONNECTIONS
        grown = resident_bytes() - before
        after = [scrape_seconds(f"{scheme}://127.0.0.1:{port}/metrics", client_tls) for _ in range(SCRAPES)]
        assert max(during + after) < SCRAPE_SECONDS, (during, after)
        # Small per connection: the issue's bar for the gRPC port is 16 KiB for each idle connection.
        assert grown < IDLE_CONNECTIONS * 16 * 1024, f"{grown / IDLE_CONNECTIONS:.0f} bytes per connection"
    finally:
        stop()


def test_a_scrape_answers_while_idle_connections_outnumber_the_descriptor_limit(
    attack: Callable[..., Attacker],
) -> None:
    # Python keeps the soft limit it is given, 1,024 under many container runtimes: the connections the
    # server holds must leave descriptors free (without that, accept fails and a scrape waits 1 s or more).
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    port, stop = exposition.start_http_server(Metrics(backend="aws").registry, "127.0.0.1", 0)
    try:
        attacker = attack(port)
        assert attacker.connected() == IDLE_CONNECTIONS
        took = [scrape_seconds(f"http://127.0.0.1:{port}/metrics") for _ in range(SCRAPES)]
        assert max(took) < SCRAPE_SECONDS, took
    finally:
        stop()


def test_connections_without_a_whole_request_are_closed_after_the_head_timeout(
    attack: Callable[..., Attacker], caplog: pytest.LogCaptureFixture
) -> None:
    head_seconds = 0.5
    port, stop = exposition.start_http_server(
        Metrics(backend="aws").registry, "127.0.0.1", 0, head_timeout=head_seconds
    )
    try:
        with caplog.at_level(logging.INFO, logger="service.telemetry.metrics"):
            attack(port, count=30)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as trickler:
                began = time.monotonic()
                trickler.sendall(b"GET /metrics HTTP/1.1\r\n")
                # A header byte every 0.1 s keeps the connection busy, but not past the head timeout.
                while time.monotonic() - began < 5:
                    readable, _, _ = select.select([trickler], [], [], 0.1)
                    try:
                        if readable and trickler.recv(1) == b"":
                            break
                        trickler.sendall(b"X")
                    except OSError:
                        break
                closed_after = time.monotonic() - began
        assert head_seconds <= closed_after < head_seconds + 1
        # 31 connections closed in one burst: one line, not 31.
        closures = [r for r in caplog.records if "before a whole request" in r.getMessage()]
        assert len(closures) == 1, [r.getMessage() for r in closures]
    finally:
        stop()


def test_stop_is_prompt_while_connections_idle(attack: Callable[..., Attacker]) -> None:
    port, stop = exposition.start_http_server(Metrics(backend="aws").registry, "127.0.0.1", 0)
    attack(port, count=200)
    began = time.monotonic()
    stop()
    assert time.monotonic() - began < 1
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_plaintext_request_on_https_prints_no_traceback(
    https: tuple[Callable[[], ssl.SSLContext], ssl.SSLContext], capfd: pytest.CaptureFixture[str]
) -> None:
    port, stop = exposition.start_http_server(Metrics(backend="aws").registry, "127.0.0.1", 0, tls=https[0])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            assert not raw.recv(100).startswith(b"HTTP/")
        assert scrape_seconds(f"https://127.0.0.1:{port}/metrics", https[1]) < SCRAPE_SECONDS
    finally:
        stop()
    assert "Traceback" not in capfd.readouterr().err


def test_a_rotated_certificate_is_served_to_the_next_connection(tmp_path: Path) -> None:
    authority = Authority()
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    authority.issue(server=True).write(cert_file, key_file)
    pair = tls.WatchedPair(str(cert_file), str(key_file), listener="metrics")
    port, stop = exposition.start_http_server(
        Metrics(backend="aws").registry, "127.0.0.1", 0, tls=tls.ssl_contexts(pair)
    )
    client = ssl.create_default_context(cadata=authority.cert_pem.decode())

    def served_serial() -> int:
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        with client.wrap_socket(raw, server_hostname="127.0.0.1") as secured:
            der = secured.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der).serial_number

    try:
        first = served_serial()
        rotated = authority.issue(server=True)
        rotated.write(cert_file, key_file)
        assert served_serial() == rotated.serial != first
        assert scrape_seconds(f"https://127.0.0.1:{port}/metrics", client) < SCRAPE_SECONDS
    finally:
        stop()
