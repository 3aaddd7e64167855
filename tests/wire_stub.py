"""A stand-in for AWS at the wire, independent of our emulator: it answers canned rest-json responses
and records every request. Tests use it to check the facade against responses the emulator never
produces (every optional member, unknown values, any error shape, slow answers)."""

from __future__ import annotations

import collections
import dataclasses
import json
import threading
import time
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
                self.send_header("Content-Length", str(len(canned.body)))
                self.end_headers()
                self.wfile.write(canned.body)

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
