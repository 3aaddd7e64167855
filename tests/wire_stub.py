"""A stand-in for AWS at the wire, independent of our emulator: it answers canned rest-json responses
and records every request. Tests use it to check the facade against responses the emulator never
produces (every optional member, unknown values, any error shape, slow answers, bodies that trickle,
never end or are far too large)."""

from __future__ import annotations

import collections
import dataclasses
import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclasses.dataclass(frozen=True)
class StubRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclasses.dataclass(frozen=True)
class CannedResponse:
    status: int
    body: bytes
    headers: dict[str, str]
    delay_seconds: float = 0.0
    drop_connection: bool = False
    # Instead of `body`: pieces sent one after another, each after its pause in seconds (the pieces
    # may never end); chunked unless `declared_length` is given.
    stream: Callable[[], Iterator[tuple[float, bytes]]] | None = None
    declared_length: int | None = None


@dataclasses.dataclass
class Exchange:
    """How one streamed response went, as the stand-in saw it (time.monotonic())."""

    started_at: float
    bytes_sent: int = 0
    closed_at: float | None = None  # when the facade closed the connection, if it did


def trickle(
    interval_seconds: float, body: bytes = b"", *, endless: bool = False
) -> Callable[[], Iterator[tuple[float, bytes]]]:
    """`body` a byte every `interval_seconds`, then (if `endless`) spaces for ever."""

    def pieces() -> Iterator[tuple[float, bytes]]:
        for index in range(len(body)):
            yield interval_seconds, body[index : index + 1]
        while endless:
            yield interval_seconds, b" "

    return pieces


def flood(total_bytes: int, piece_bytes: int = 64 * 1024) -> Callable[[], Iterator[tuple[float, bytes]]]:
    """`total_bytes` of spaces (valid JSON whitespace) as fast as the facade takes them."""

    def pieces() -> Iterator[tuple[float, bytes]]:
        for start in range(0, total_bytes, piece_bytes):
            yield 0.0, b" " * min(piece_bytes, total_bytes - start)

    return pieces


def streamed(
    stream: Callable[[], Iterator[tuple[float, bytes]]],
    *,
    status: int = 200,
    declared_length: int | None = None,
    delay_seconds: float = 0.0,
) -> CannedResponse:
    return CannedResponse(
        status,
        b"",
        {"x-amzn-RequestId": "req-streamed"},
        delay_seconds,
        stream=stream,
        declared_length=declared_length,
    )


def aws_error(status: int, code: str, message: str, **members: Any) -> CannedResponse:
    """An error the way AWS rest-json services send one."""
    body = json.dumps({"message": message, **members}).encode()
    return CannedResponse(status, body, {"x-amzn-ErrorType": code, "x-amzn-RequestId": f"req-{code}"})


def aws_reply(status: int, body: dict[str, Any], *, delay_seconds: float = 0.0) -> CannedResponse:
    return CannedResponse(status, json.dumps(body).encode(), {"x-amzn-RequestId": "req-ok"}, delay_seconds)


class WireStub:
    """Serves queued responses in order; when the queue is empty, answers `default`."""

    def __init__(self, default: CannedResponse | None = None) -> None:
        self.default = default or aws_error(500, "ServiceException", "no canned response queued")
        self.requests: list[StubRequest] = []
        self.exchanges: list[Exchange] = []  # one per streamed response
        # When set, it chooses the response to each request (the queue is not used).
        self.respond: Callable[[StubRequest], CannedResponse] | None = None
        self._queue: collections.deque[CannedResponse] = collections.deque()
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = StubRequest(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                with stub._lock:
                    stub.requests.append(request)
                    if stub.respond is not None:
                        canned = stub.respond(request)
                    else:
                        canned = stub._queue.popleft() if stub._queue else stub.default
                if canned.delay_seconds:
                    time.sleep(canned.delay_seconds)
                if canned.drop_connection:
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(canned.status)
                headers = {"Content-Type": "application/json", **canned.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                if canned.stream is not None:
                    self._stream(canned)
                    return
                self.send_header("Content-Length", str(len(canned.body)))
                self.end_headers()
                try:
                    self.wfile.write(canned.body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the facade gave up on a late answer

            def _stream(self, canned: CannedResponse) -> None:
                assert canned.stream is not None
                chunked = canned.declared_length is None
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(canned.declared_length))
                self.end_headers()
                self.wfile.flush()
                self.close_connection = True
                exchange = Exchange(time.monotonic())
                with stub._lock:
                    stub.exchanges.append(exchange)
                connection: socket.socket = self.connection
                # A small send buffer, so that what was sent is close to what the facade took.
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
                try:
                    for pause, piece in canned.stream():
                        if self._closed_by_peer(pause):
                            exchange.closed_at = time.monotonic()
                            return
                        framed = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
                        connection.sendall(framed)
                        exchange.bytes_sent += len(piece)
                    if chunked:
                        connection.sendall(b"0\r\n\r\n")
                    if self._closed_by_peer(5.0):
                        exchange.closed_at = time.monotonic()
                except OSError:
                    exchange.closed_at = time.monotonic()

            def _closed_by_peer(self, seconds: float) -> bool:
                """Whether the facade closes the connection within `seconds` (it sends nothing more)."""
                readable, _, _ = select.select([self.connection], [], [], seconds)
                if not readable:
                    return False
                try:
                    return self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    return True

            do_GET = do_POST = do_DELETE = do_PUT = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="wire-stub", daemon=True)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def queue(self, *responses: CannedResponse) -> None:
        with self._lock:
            self._queue.extend(responses)

    def __enter__(self) -> WireStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
