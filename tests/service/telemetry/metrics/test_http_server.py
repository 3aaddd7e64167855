"""The /metrics listener's bounds, over real sockets on 127.0.0.1: one request per connection, the head's
size and deadline, the connection cap (the oldest waiting one goes), and closures logged once per burst.
(Thousands of idle connections, HTTPS and rotation: tests/integration/test_metrics_http.py.)"""

from __future__ import annotations

import gzip
import logging
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.registry import Collector

from service.telemetry.metrics import http_server

SCRAPE = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
CLOSED_MESSAGE = "metrics connections closed before a whole request"


def metrics_app() -> http_server.WsgiApp:
    registry = CollectorRegistry()
    Counter("agentcore_one", "The first family.", registry=registry).inc()
    Counter("agentcore_two", "The second family.", registry=registry).inc(2)
    return prometheus_client.make_wsgi_app(registry)


Serve = Callable[..., int]


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Serve]:
    """Starts the listener on 127.0.0.1 (at most `cap` connections when given); its port."""
    stops: list[Callable[[], None]] = []

    def start(
        app: http_server.WsgiApp | None = None,
        *,
        cap: int | None = None,
        head_timeout: float = http_server.HEAD_TIMEOUT_SECONDS,
    ) -> int:
        if cap is not None:
            monkeypatch.setattr(http_server, "max_connections", lambda: cap)
        port, stop = http_server.start(app or metrics_app(), "127.0.0.1", 0, head_timeout=head_timeout)
        stops.append(stop)
        return port

    yield start
    for stop in stops:
        stop()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def read_to_end(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes (or resets) the connection."""
    received = bytearray()
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return bytes(received)


def exchange(port: int, request: bytes) -> bytes:
    with connect(port) as connection:
        connection.sendall(request)
        return read_to_end(connection)


def parsed(answer: bytes) -> tuple[str, dict[str, str], bytes]:
    """The status, headers (lower-case names) and body of one HTTP answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return status, headers, body


def test_a_scrape_gets_one_answer_of_its_length_and_the_connection_closes(serve: Serve) -> None:
    port = serve()
    answer = exchange(port, SCRAPE + SCRAPE)  # a second request on the connection is not answered
    assert answer.count(b"HTTP/1.1 ") == 1
    status, headers, body = parsed(answer)
    assert status == "HTTP/1.1 200 OK"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    assert headers["content-type"].startswith("text/plain")
    assert b"agentcore_one_total 1.0" in body
    assert b"agentcore_two_total 2.0" in body


def test_a_scrapes_query_and_headers_reach_the_app(serve: Serve) -> None:
    port = serve()
    request = b"GET /metrics?name[]=agentcore_two_total HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n"
    status, headers, body = parsed(exchange(port, request))
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-encoding"] == "gzip"
    text = gzip.decompress(body)
    assert b"agentcore_two_total 2.0" in text
    assert b"agentcore_one" not in text


def test_a_head_just_within_16_kib_is_answered(serve: Serve) -> None:
    port = serve()
    head = b"GET /metrics HTTP/1.1\r\nX-Padding: "
    padded = head + b"a" * (http_server.MAX_HEAD_BYTES - len(head)) + b"\r\n\r\n"
    assert padded.index(b"\r\n\r\n") == http_server.MAX_HEAD_BYTES
    assert parsed(exchange(port, padded))[0] == "HTTP/1.1 200 OK"


@pytest.mark.parametrize("ended", [False, True], ids=["never ending", "ending too late"])
def test_a_head_beyond_16_kib_is_refused_with_431(serve: Serve, ended: bool) -> None:
    port = serve()
    head = b"GET /metrics HTTP/1.1\r\nX-Padding: " + b"a" * http_server.MAX_HEAD_BYTES
    status, _, body = parsed(exchange(port, head + (b"\r\n\r\n" if ended else b"")))
    assert status == "HTTP/1.1 431 Request Header Fields Too Large"
    assert b"agentcore_one" not in body


@pytest.mark.parametrize(
    "request_head",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /metrics HTTP/2.0\r\n\r\n",
        b"G3T /metrics HTTP/1.1\r\n\r\n",
        b"GET  /metrics HTTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
    ],
    ids=["no request line", "not HTTP/1", "method not a word", "two spaces", "header without a colon"],
)
def test_a_request_that_is_not_http_1_is_refused_with_400(serve: Serve, request_head: bytes) -> None:
    port = serve()
    status, headers, _ = parsed(exchange(port, request_head))
    assert status == "HTTP/1.1 400 Bad Request"
    assert headers["connection"] == "close"


class FailsOnce(Collector):
    def __init__(self) -> None:
        self.failed = False

    def collect(self) -> Iterable[Any]:
        if not self.failed:
            self.failed = True
            raise RuntimeError("a collector broke")
        return []


def test_a_failing_collector_answers_500_and_the_next_scrape_is_served(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    Counter("agentcore_one", "The first family.", registry=registry).inc()
    registry.register(FailsOnce())
    port = serve(prometheus_client.make_wsgi_app(registry))
    with caplog.at_level(logging.ERROR, logger="service.telemetry.metrics"):
        assert parsed(exchange(port, SCRAPE))[0] == "HTTP/1.1 500 Internal Server Error"
    assert [r.getMessage() for r in caplog.records] == ["metrics could not be collected"]
    status, _, body = parsed(exchange(port, SCRAPE))
    assert status == "HTTP/1.1 200 OK"
    assert b"agentcore_one_total 1.0" in body


def test_the_head_timeout_stops_once_the_request_is_whole(serve: Serve) -> None:
    """An answer that takes longer to render than the head timeout is still sent."""
    inner = metrics_app()

    def slow_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        time.sleep(0.5)  # five head timeouts
        return inner(environ, start_response)

    port = serve(slow_app, head_timeout=0.1)
    status, _, body = parsed(exchange(port, SCRAPE))
    assert status == "HTTP/1.1 200 OK"
    assert b"agentcore_one_total 1.0" in body


def test_a_connection_without_a_whole_request_is_closed_unanswered_at_the_head_timeout(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    port = serve(head_timeout=0.2)
    with caplog.at_level(logging.WARNING, logger="service.telemetry.metrics"):
        assert exchange(port, b"GET /metr") == b""
    [closed] = [r for r in caplog.records if r.getMessage() == CLOSED_MESSAGE]
    assert (closed.timedOut, closed.evicted) == (1, 0)  # type: ignore[attr-defined]


def test_at_the_cap_a_new_connection_closes_the_oldest_one_still_waiting_for_its_request(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    port = serve(cap=3)
    with caplog.at_level(logging.WARNING, logger="service.telemetry.metrics"):
        oldest, second, third = connect(port), connect(port), connect(port)
        oldest.sendall(b"GET /metr")  # half a request is still waiting
        with connect(port) as newest:
            assert read_to_end(oldest) == b""  # closed, unanswered
            newest.sendall(SCRAPE)
            assert parsed(read_to_end(newest))[0] == "HTTP/1.1 200 OK"
        # The others were left alone: each still gets its answer.
        for waiting in (second, third):
            waiting.sendall(SCRAPE)
            assert parsed(read_to_end(waiting))[0] == "HTTP/1.1 200 OK"
    for connection in (oldest, second, third):
        connection.close()
    [closed] = [r for r in caplog.records if r.getMessage() == CLOSED_MESSAGE]
    assert (closed.timedOut, closed.evicted, closed.maxConnections) == (0, 1, 3)  # type: ignore[attr-defined]


def test_at_the_cap_with_every_connection_being_answered_a_new_one_is_closed(serve: Serve) -> None:
    inner = metrics_app()
    rendering, release = threading.Event(), threading.Event()

    def held_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        rendering.set()
        release.wait(timeout=5)
        return inner(environ, start_response)

    port = serve(held_app, cap=1)
    with connect(port) as answered:
        answered.sendall(SCRAPE)
        assert rendering.wait(timeout=5)
        try:
            with connect(port) as refused:
                assert read_to_end(refused) == b""  # closed at once, before any request
        finally:
            release.set()
        assert parsed(read_to_end(answered))[0] == "HTTP/1.1 200 OK"


@pytest.mark.parametrize(
    ("soft_limit", "expected"),
    [(resource.RLIM_INFINITY, 1000), (1_000_000, 1000), (1024, 512), (3, 1), (1, 1)],
)
def test_connections_are_capped_at_1000_and_half_the_descriptor_limit(
    monkeypatch: pytest.MonkeyPatch, soft_limit: int, expected: int
) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda which: (soft_limit, resource.RLIM_INFINITY))
    assert http_server.max_connections() == expected


class FakeLoop:
    """call_later recorded rather than scheduled: the test runs each report when it chooses."""

    def __init__(self) -> None:
        self.scheduled: list[tuple[float, Callable[[], None]]] = []

    def call_later(self, delay: float, callback: Callable[[], None]) -> Any:
        self.scheduled.append((delay, callback))
        return object()

    def run_next(self) -> None:
        delay, callback = self.scheduled.pop(0)
        assert delay == http_server.REPORT_SECONDS
        callback()


def test_closures_are_logged_at_the_first_then_as_one_count_per_report_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = FakeLoop()
    closures = http_server._Closures(loop, head_timeout=10.0, max_connections=1000)  # type: ignore[arg-type]

    def logged() -> list[tuple[int, int]]:
        lines = [(r.timedOut, r.evicted) for r in caplog.records if r.getMessage() == CLOSED_MESSAGE]  # type: ignore[attr-defined]
        caplog.clear()
        return lines

    with caplog.at_level(logging.WARNING, logger="service.telemetry.metrics"):
        closures.add(evicted=False)
        assert logged() == [(1, 0)]  # the first, at once
        for _ in range(40):
            closures.add(evicted=False)
        for _ in range(7):
            closures.add(evicted=True)
        assert logged() == []  # the rest of the burst waits for the report
        loop.run_next()
        assert logged() == [(40, 7)]
        loop.run_next()  # a quiet interval: the burst is over, nothing is logged or scheduled
        assert logged() == []
        assert loop.scheduled == []
        closures.add(evicted=True)
        assert logged() == [(0, 1)]  # a new burst is logged at once
