"""The /metrics HTTP server: one asyncio loop on a thread of its own, so that a connection waiting for
its request costs about 2.5 KiB and no thread.

prometheus_client's own server gives every connection a thread that waits for its request without a
time limit, behind a listen backlog of 5: a thousand idle connections stopped scrapes for 20-30 s.
Here a connection has HEAD_TIMEOUT_SECONDS from its accept to the end of its request head (the TLS
handshake included), at most `max_connections()` are open (a new one closes the oldest still without
a request), and the answer is prometheus_client's WSGI app (content negotiation, gzip, `name[]`), run
on one render thread so that the loop never waits for collectors. One request per connection, as
prometheus_client's server answers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import resource
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from service import listening

log = logging.getLogger("service.telemetry.metrics")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Prometheus's default scrape timeout: a scraper sends its whole request at once, well within it.
HEAD_TIMEOUT_SECONDS = 10.0
# A reader that stops reading the answer is dropped after as long again.
ANSWER_TIMEOUT_SECONDS = 10.0
# Open connections at most (and never more than half of RLIMIT_NOFILE, which gRPC shares): an idle one
# costs about 2.5 KiB, so the cap bounds descriptors more than memory.
MAX_CONNECTIONS = 1000
MAX_HEAD_BYTES = 16 * 1024
REPORT_SECONDS = 60.0  # connections closed before a whole request: one log line per minute at most
_HEAD_END = b"\r\n\r\n"
_TLS_HANDSHAKE_RECORD = 0x16  # the content type of the record that carries a ClientHello


def max_connections() -> int:
    """MAX_CONNECTIONS, or half the process's soft descriptor limit when that is lower."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return MAX_CONNECTIONS if soft == resource.RLIM_INFINITY else max(1, min(MAX_CONNECTIONS, soft // 2))


def start(
    app: WsgiApp,
    host: str,
    port: int,
    *,
    tls: Callable[[], ssl.SSLContext] | None = None,
    head_timeout: float = HEAD_TIMEOUT_SECONDS,
) -> tuple[int, Callable[[], None]]:
    """Serve `app` on host:port (port 0: any free port), over HTTPS when `tls` gives the context for
    each new connection; the bound port and a stop function."""
    listener = _bind(host, port)
    server = _Server(app, listener, tls, head_timeout, max_connections())
    thread = threading.Thread(target=server.run, name="metrics-http", daemon=True)
    thread.start()
    server.started.wait()

    def stop() -> None:
        server.stop()
        thread.join(timeout=5)

    bound: int = listener.getsockname()[1]
    return bound, stop


def _bind(host: str, port: int) -> socket.socket:
    failure: OSError | None = None
    for family, sockaddr in listening.addresses(host, port):
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as http.server does
            listener.bind((sockaddr[0], port))
            listener.listen(socket.SOMAXCONN)
            return listener
        except OSError as exc:
            listener.close()
            failure = exc  # e.g. no IPv6 here: try the next address
    reason = failure.strerror or failure if failure is not None else "no address"
    raise OSError(f"cannot listen for metrics on {host}:{port}: {reason}") from failure


class _Server:
    """The loop's side: the listening socket, the open connections, the render thread."""

    def __init__(
        self,
        app: WsgiApp,
        listener: socket.socket,
        tls: Callable[[], ssl.SSLContext] | None,
        head_timeout: float,
        max_connections: int,
    ) -> None:
        self.app = app
        self.listener = listener
        self.tls = tls
        self.head_timeout = head_timeout
        self.max_connections = max_connections
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(self._loop_failure)
        self.renderer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="metrics-render")
        self.started = threading.Event()
        self.stopping = asyncio.Event()
        self.open: set[_Connection] = set()
        self.waiting: dict[_Connection, None] = {}  # without a whole request yet, oldest first
        self.closures = _Closures(self.loop, head_timeout, max_connections)

    def run(self) -> None:
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            self.renderer.shutdown(wait=False, cancel_futures=True)
            self.loop.close()

    async def _serve(self) -> None:
        server = await self.loop.create_server(
            lambda: _Connection(self), sock=self.listener, backlog=socket.SOMAXCONN
        )
        self.started.set()
        await self.stopping.wait()
        server.close()
        for connection in list(self.open):
            connection.abort()
        await server.wait_closed()
        await asyncio.sleep(0)  # the transports' connection_lost callbacks

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has already closed
            self.loop.call_soon_threadsafe(self.stopping.set)

    def opened(self, connection: _Connection) -> None:
        if len(self.open) >= self.max_connections:
            if self.waiting:
                oldest = next(iter(self.waiting))
                self.closures.add(evicted=True)
                oldest.abort()
            else:
                connection.abort()  # every other one is being answered: this one waits for none of them
                return
        self.open.add(connection)
        self.waiting[connection] = None

    def closed(self, connection: _Connection) -> None:
        self.open.discard(connection)
        self.waiting.pop(connection, None)

    def _loop_failure(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # No traceback: a scanner must not be able to fill stderr (e.g. descriptors running out).
        failure = context.get("exception")
        log.warning(
            "metrics server trouble",
            extra={"problem": context.get("message"), "error": type(failure).__name__ if failure else None},
        )


class _Connection(asyncio.Protocol):
    """One connection: its request head read against the deadline, then answered once and closed.

    TLS runs through an ssl.SSLObject made once the ClientHello is in, not asyncio's start_tls, whose
    protocol holds a 256 KiB buffer per connection from the start (Python 3.11)."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.head = bytearray()
        self.deadline: asyncio.TimerHandle | None = None
        self.hello = bytearray()
        self.secured: ssl.SSLObject | None = None
        self.incoming: ssl.MemoryBIO | None = None
        self.outgoing: ssl.MemoryBIO | None = None
        self.done = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.opened(self)
        if not self.done:
            self.deadline = self.server.loop.call_later(self.server.head_timeout, self._head_timed_out)

    def data_received(self, data: bytes) -> None:
        if self.done or self not in self.server.waiting:
            return  # already answering: one request per connection
        if self.server.tls is not None:
            try:
                data = self._decrypt(data)
            except ssl.SSLError as exc:
                # A plaintext request on HTTPS, a failed handshake: one quiet line.
                log.debug("metrics connection failed", extra={"error": type(exc).__name__})
                self._send_tls()  # the alert, if any
                self.abort()
                return
        self.head += data
        end = self.head.find(_HEAD_END)
        if end < 0 and len(self.head) <= MAX_HEAD_BYTES:
            return
        if end < 0 or end > MAX_HEAD_BYTES:
            self._reply_now("431 Request Header Fields Too Large")
            return
        self._stop_deadline()
        del self.server.waiting[self]
        try:
            environ = _environ(bytes(self.head[:end]), self.server.tls is not None)
        except ValueError:
            self._reply_now("400 Bad Request")
            return
        future = self.server.loop.run_in_executor(self.server.renderer, _render, self.server.app, environ)
        future.add_done_callback(self._rendered)

    def _decrypt(self, data: bytes) -> bytes:
        """The plaintext that `data` completes (after the handshake, which it may advance)."""
        if self.secured is None:
            # Raw bytes until the first record (the ClientHello) is whole: an SSLObject in a handshake
            # holds ~47 KiB, which a trickle of bytes must not get.
            self.hello += data
            if self.hello[0] != _TLS_HANDSHAKE_RECORD:
                raise ssl.SSLError("not a TLS handshake")
            if len(self.hello) < 5 or len(self.hello) < 5 + int.from_bytes(self.hello[3:5], "big"):
                return b""
            data, self.hello = bytes(self.hello), bytearray()
            assert self.server.tls is not None
            self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            self.secured = self.server.tls().wrap_bio(self.incoming, self.outgoing, server_side=True)
        assert self.incoming is not None
        self.incoming.write(data)
        plain = bytearray()
        try:
            self.secured.do_handshake()  # a no-op once done
            while chunk := self.secured.read(MAX_HEAD_BYTES):
                plain += chunk
        except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            pass
        finally:
            self._send_tls()
        return bytes(plain)

    def _send_tls(self) -> None:
        if self.outgoing is not None and self.outgoing.pending and self.transport is not None:
            self.transport.write(self.outgoing.read())

    def _rendered(self, future: asyncio.Future[tuple[str, list[tuple[str, str]], bytes]]) -> None:
        if self.done or future.cancelled():
            return
        self._write(*future.result())

    def _reply_now(self, status: str) -> None:
        self._stop_deadline()
        self.server.waiting.pop(self, None)
        self._write(status, [("Content-Type", "text/plain; charset=utf-8")], f"{status}\n".encode())

    def _write(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers)]
        lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
        answer = "\r\n".join(lines).encode("latin-1") + body
        if self.secured is None:
            self.transport.write(answer)
        else:
            try:
                self.secured.write(answer)
                self.secured.unwrap()  # close_notify
            except ssl.SSLError:
                pass  # unwrap waits for the peer's close_notify: not needed, the answer has a length
            self._send_tls()
        self.transport.close()  # once the answer is sent
        # Until the peer has read it all, or as long as the head had.
        self.deadline = self.server.loop.call_later(ANSWER_TIMEOUT_SECONDS, self.abort)

    def _head_timed_out(self) -> None:
        self.deadline = None
        self.server.closures.add(evicted=False)
        self.abort()

    def _stop_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.connection_lost(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done:
            return
        self.done = True
        self._stop_deadline()
        self.server.closed(self)


def _environ(head: bytes, secure: bool) -> dict[str, Any]:
    """The WSGI environ of a request head: ValueError when it is not one."""
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, version = request_line.split(" ")
    if not version.startswith("HTTP/1.") or not method.isalpha():
        raise ValueError(request_line)
    path, _, query = target.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": urllib.parse.unquote(path, "latin-1"),
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": version,
        "wsgi.url_scheme": "https" if secure else "http",
    }
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise ValueError(line)
        environ["HTTP_" + name.strip().upper().replace("-", "_")] = value.strip()
    return environ


def _render(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """The app's status, headers and body (on the render thread)."""
    answer: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        answer[:] = [status, headers]

    try:
        body = b"".join(app(environ, start_response))
    except Exception:
        log.exception("metrics could not be collected")
        return "500 Internal Server Error", [], b""
    return answer[0], answer[1], body


class _Closures:
    """Connections closed before a whole request (timed out, or the oldest when the cap was reached),
    logged once per burst: at the first, then a count each REPORT_SECONDS while they go on."""

    def __init__(self, loop: asyncio.AbstractEventLoop, head_timeout: float, max_connections: int) -> None:
        self._loop = loop
        self._limits = {"headTimeoutSeconds": head_timeout, "maxConnections": max_connections}
        self._timed_out = 0
        self._evicted = 0
        self._report: asyncio.TimerHandle | None = None

    def add(self, *, evicted: bool) -> None:
        if evicted:
            self._evicted += 1
        else:
            self._timed_out += 1
        if self._report is None:
            self._flush()

    def _flush(self) -> None:
        self._report = None
        if not self._timed_out and not self._evicted:
            return  # the burst is over
        log.warning(
            "metrics connections closed before a whole request",
            extra={"timedOut": self._timed_out, "evicted": self._evicted, **self._limits},
        )
        self._timed_out = self._evicted = 0
        self._report = self._loop.call_later(REPORT_SECONDS, self._flush)
