"""grpc.health.v1.Health on grpc's asyncio server: Check, List and Watch that cannot block each other,
or SIGTERM, and keep nothing for a service name the server does not serve.

Ours rather than grpcio-health-checking's: its servicer holds one lock between the RPCs and the
callbacks of cancelled Watches, which deadlocked health for good under a few Watch-and-cancel loops, and
it keeps a condition per service name ever watched (200 Watches on 1 MB names: +200 MB, never freed).
Here the statuses are a dict written by set() and read without locks; each Watch of a served name
waits on an asyncio.Event of its own loop, woken through call_soon_threadsafe, so that the gRPC port
and HEALTH_PORT (each on a loop of its own, server.py) share one state.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from service import calls

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
HEALTH_SERVICE_NAME: str = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


class Health:
    """The serving status of each name in `services` ("" is the server as a whole), SERVING at first."""

    def __init__(self, services: Iterable[str]) -> None:
        self._statuses: dict[str, int] = {name: SERVING for name in ("", *services)}
        self._lock = threading.Lock()  # guards _watchers only
        self._watchers: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {
            name: set() for name in self._statuses
        }
        # Watches of names the server does not serve: they wait for the end alone.
        self._unserved: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._ended = False
        self._read_timeout_seconds = 10.0

    def set(self, service: str, status: int) -> None:
        """Change a served name's status (any thread); its Watches are told."""
        if service not in self._statuses:
            raise KeyError(service)
        self._statuses[service] = status
        with self._lock:
            watchers = list(self._watchers[service])
        for loop, changed in watchers:
            loop.call_soon_threadsafe(changed.set)

    def status(self, service: str) -> int | None:
        """The status of a served name; None for any other."""
        return self._statuses.get(service)

    def enter_graceful_shutdown(self) -> None:
        """Every name NOT_SERVING, for good (set() after this changes nothing visible to callers)."""
        for name in self._statuses:
            self.set(name, NOT_SERVING)

    def end_watches(self) -> None:
        """End every open Watch, and any Watch that starts later, with OK (any thread): called when the
        drain is over and the server stops, so that the Watches of clients that balance by health
        (deploy/clients/service-config.json) do not hold the stop for its whole grace."""
        self._ended = True
        with self._lock:
            watchers = [watcher for names in self._watchers.values() for watcher in names]
            watchers += self._unserved
        for loop, changed in watchers:
            loop.call_soon_threadsafe(changed.set)

    def add_to_server(self, server: grpc.aio.Server, *, read_timeout_seconds: float) -> None:
        """Check, List and Watch, registered so that this code reads their request bytes itself (as
        the servicer does the facade's): a request is parsed, its name looked up and the bytes dropped,
        so an open Watch holds no request, and one that never arrives is ended at the read timeout."""
        self._read_timeout_seconds = read_timeout_seconds
        respond = health_pb2.HealthCheckResponse.SerializeToString
        handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "Check": grpc.stream_unary_rpc_method_handler(self._check, None, respond),
            "List": grpc.stream_unary_rpc_method_handler(
                self._list, None, health_pb2.HealthListResponse.SerializeToString
            ),
            "Watch": grpc.stream_stream_rpc_method_handler(self._watch, None, respond),
        }
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(HEALTH_SERVICE_NAME, handlers),)
        )

    async def _service_name(self, context: Any) -> str:
        """The service name of the request, read and parsed; the bytes go at once."""
        request = await self._request(context, health_pb2.HealthCheckRequest)
        service: str = request.service
        return service

    async def _request(self, context: Any, message: Any) -> Any:
        """The one request message of the RPC, read within the read timeout and parsed as `message`."""
        try:
            async with asyncio.timeout(self._read_timeout_seconds):  # no task of its own, unlike wait_for
                raw = await context.read()
        except TimeoutError:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the request did not arrive in time")
        if raw is grpc.aio.EOF:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "the request is over the receive limit")
        call = calls.current()
        if call is not None:
            call.on_received(call)
        try:
            return message.FromString(raw)
        except Exception:  # DecodeError, or text that is not UTF-8
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"not a {message.DESCRIPTOR.name}")

    async def _check(self, requests: Any, context: Any) -> health_pb2.HealthCheckResponse:
        status = self._statuses.get(await self._service_name(context))
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return health_pb2.HealthCheckResponse(status=status)

    async def _list(self, requests: Any, context: Any) -> health_pb2.HealthListResponse:
        """Every served name ("" included) and its status, as grpc-go's health server answers List."""
        await self._request(context, health_pb2.HealthListRequest)
        statuses = {
            name: health_pb2.HealthCheckResponse(status=status) for name, status in self._statuses.items()
        }
        return health_pb2.HealthListResponse(statuses=statuses)

    async def _watch(self, requests: Any, context: Any) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        service = await self._service_name(context)
        if service not in self._statuses:
            # As the protocol says: SERVICE_UNKNOWN, and the stream stays open, holding no name.
            del service
            yield health_pb2.HealthCheckResponse(status=SERVICE_UNKNOWN)
            ended = asyncio.Event()
            watcher = (asyncio.get_running_loop(), ended)
            with self._lock:
                self._unserved.add(watcher)
            try:
                while not self._ended:  # until the caller leaves or the server stops
                    await ended.wait()
            finally:
                with self._lock:
                    self._unserved.discard(watcher)
            return
        async for response in self._statuses_of(service):
            yield response

    async def _statuses_of(self, service: str) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        changed = asyncio.Event()
        watcher = (asyncio.get_running_loop(), changed)
        with self._lock:
            self._watchers[service].add(watcher)
        try:
            last = None
            while True:
                changed.clear()
                status = self._statuses[service]
                if status != last:
                    last = status
                    yield health_pb2.HealthCheckResponse(status=status)
                if self._ended:
                    return
                await changed.wait()
        finally:
            with self._lock:
                self._watchers[service].discard(watcher)
