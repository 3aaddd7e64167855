"""HTTP/1.1 transport: a threaded server that frames requests and responses for the service.

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

from emulator.faults import DropConnection
from emulator.restjson.dispatch import Service
from emulator.restjson.exceptions import ApiError, bad_request, request_too_large
from emulator.restjson.wire import REQUEST_ID_HEADER, Response

logger = logging.getLogger(__name__)

# 100 records of 16,000 characters (up to 4 UTF-8 bytes each, or 6 escaped) fit with room to spare.
MAX_BODY_BYTES = 16 * 1024 * 1024
# Idle keep-alive connections are closed after this many seconds.
IDLE_TIMEOUT_SECONDS = 120.0


# Set by the transport itself, whatever a (hook-supplied) response says.
_FRAMING_HEADERS = frozenset({"content-length", "connection", "transfer-encoding"})
# int() alone would also accept signs, underscores, "0x" prefixes and non-ASCII digits.
_DECIMAL = re.compile(r"[0-9]{1,20}")
_HEXADECIMAL = re.compile(rb"[0-9a-fA-F]{1,16}")


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, service: Service) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.service = service
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
    server_version = "AgentCoreMemoryEmulator"
    timeout = IDLE_TIMEOUT_SECONDS
    # Headers and body leave in one segment (buffered writer, flushed per request) without Nagle
    # delays; otherwise each call can stall on delayed ACKs.
    wbufsize = -1
    disable_nagle_algorithm = True

    def __init__(self, request: Any, client_address: Any, server: BaseServer) -> None:
        self._service = cast(HttpServer, server).service
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
            response = error.to_response()
            response.headers[REQUEST_ID_HEADER] = str(uuid.uuid4())
            self._write(response)
            return
        try:
            response = self._service.handle(self.command, self.path, dict(self.headers.items()), body)
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
        if length > MAX_BODY_BYTES:
            raise request_too_large(MAX_BODY_BYTES)
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
            if total > MAX_BODY_BYTES:
                raise request_too_large(MAX_BODY_BYTES)
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                raise bad_request("Truncated chunk")
            chunks.append(chunk)
            if self.rfile.read(2) != b"\r\n":  # the CRLF closing the chunk
                raise bad_request("Invalid chunked encoding")

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
        # Only the method and status: the path names memories and records, the query namespaces.
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
        response = error.to_response()
        response.headers[REQUEST_ID_HEADER] = str(uuid.uuid4())
        if not getattr(self, "command", None):
            self.command = "GET"  # no request line was parsed; any method without HEAD semantics
        self._write(response)
