"""HTTP/1.1 transport: a threaded server that frames requests and responses for a dispatcher.

Connections are persistent (keep-alive) as SDK clients expect; every response carries an exact
Content-Length. Handler threads are daemons, and stopping closes open connections so that idle
keep-alive threads end promptly.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import sys
import threading
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import BaseServer, TCPServer
from typing import Any, cast

from emulator.restjson.dispatch import Dispatcher, DropConnection
from emulator.restjson.exceptions import ApiError, bad_request, request_too_large
from emulator.restjson.wire import REQUEST_ID_HEADER, Response

logger = logging.getLogger(__name__)

# Idle keep-alive connections are closed after this many seconds.
IDLE_TIMEOUT_SECONDS = 120.0


# Set by the transport itself, whatever a (hook-supplied) response says.
_FRAMING_HEADERS = frozenset({"content-length", "connection", "transfer-encoding"})
# int() alone would also accept signs, underscores, "0x" prefixes and non-ASCII digits.
_DECIMAL = re.compile(r"[0-9]{1,20}")
_HEXADECIMAL = re.compile(rb"[0-9a-fA-F]{1,16}")


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, host: str, port: int, dispatcher: Dispatcher, *, server_version: str, max_body_bytes: int
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.dispatcher = dispatcher
        self.server_version = server_version
        self.max_body_bytes = max_body_bytes
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((host, port), _RequestHandler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            # Let "::" accept IPv4 too, where the platform allows it.
            with contextlib.suppress(OSError, AttributeError):
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        # HTTPServer.server_bind would resolve the host's FQDN, which can stall on reverse DNS.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr; a client hanging up is routine.
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            logger.debug("connection from %s failed: %s", client_address, error)
        else:
            logger.exception("error while serving %s", client_address)

    def close_connections(self) -> None:
        """Disconnect every open client connection; their handler threads then exit."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_SECONDS
    # Headers and body leave in one segment (buffered writer, flushed per request) without Nagle
    # delays; otherwise each call can stall on delayed ACKs.
    wbufsize = -1
    disable_nagle_algorithm = True

    def __init__(self, request: Any, client_address: Any, server: BaseServer) -> None:
        http_server = cast(HttpServer, server)
        self._dispatcher = http_server.dispatcher
        self._max_body_bytes = http_server.max_body_bytes
        self.server_version = http_server.server_version
        super().__init__(request, client_address, server)

    def version_string(self) -> str:
        return self.server_version

    def handle_expect_100(self) -> bool:
        accepted = super().handle_expect_100()
        self.wfile.flush()  # the writer is buffered; the client waits for this interim response
        return accepted

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except ApiError as error:
            # The body was not (fully) read, so the connection cannot be reused.
            self.close_connection = True
            self._write_error(error)
            return
        try:
            response = self._dispatcher.handle(self.command, self.path, dict(self.headers.items()), body)
        except DropConnection:
            # Injected fault: the peer sees the connection close with no answer, like a reset.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._write(response)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        if not _DECIMAL.fullmatch(length_header.strip()):
            raise bad_request("Invalid Content-Length")
        length = int(length_header)
        if length > self._max_body_bytes:
            raise request_too_large(self._max_body_bytes)
        body = self.rfile.read(length)
        if len(body) != length:
            raise bad_request("Request body is shorter than its Content-Length")
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            if not _HEXADECIMAL.fullmatch(size_line):
                raise bad_request("Invalid chunked encoding")
            size = int(size_line, 16)
            if size == 0:
                while self.rfile.readline(8192) not in {b"\r\n", b"\n", b""}:
                    pass  # trailers are ignored
                return b"".join(chunks)
            total += size
            if total > self._max_body_bytes:
                raise request_too_large(self._max_body_bytes)
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                raise bad_request("Truncated chunk")
            chunks.append(chunk)
            if self.rfile.read(2) != b"\r\n":  # the CRLF closing the chunk
                raise bad_request("Invalid chunked encoding")

    def _write_error(self, error: ApiError) -> None:
        # Answered before any dispatching, so the request id is made here.
        response = error.to_response()
        response.headers[REQUEST_ID_HEADER] = str(uuid.uuid4())
        self._write(response)

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            if name.lower() not in _FRAMING_HEADERS:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Only the method and status: the path and query carry resource ids and the caller's values.
        logger.debug("%s %s", getattr(self, "command", "-"), code)

    def log_message(self, format: str, *args: Any) -> None:
        # The standard library's own messages quote the request line; keep the text, drop the values.
        logger.debug("http: %s", format)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors the HTTP layer finds itself (a malformed request line, too many headers) in AWS's
        format rather than the standard library's HTML page."""
        self.close_connection = True
        # The standard library's message quotes the request line; the status phrase is enough.
        error = bad_request(
            HTTPStatus(code).phrase if code in HTTPStatus._value2member_map_ else "Bad request"
        )
        error.status = code
        self.request_version = self.protocol_version  # an unparsed request reads as HTTP/0.9: no headers
        if not getattr(self, "command", None):
            self.command = "GET"  # no request line was parsed; any method without HEAD semantics
        self._write_error(error)
