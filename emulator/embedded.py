"""The embeddable emulator: the memory-records backend behind the rest-json dispatcher and HTTP
transport, with its lifecycle, the request journal and fault injection."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from types import TracebackType

from emulator.backend import DEFAULT_MEMORY_ID, MODEL, MemoryRecordsBackend, check_memory_id, service_failure
from emulator.faults import FaultConfig, Faults
from emulator.journal import Journal
from emulator.restjson.dispatch import BeforeOperationHook, Dispatcher
from emulator.restjson.http import HttpServer
from emulator.restjson.routing import RouteTable
from emulator.restjson.wire import ReceivedRequest
from emulator.store import Store

_SERVER_VERSION = "AgentCoreMemoryEmulator"
# 100 records of 16,000 characters (up to 4 UTF-8 bytes each, or 6 escaped) fit with room to spare.
_MAX_BODY_BYTES = 16 * 1024 * 1024

# How often the serve loop checks for shutdown; bounds how long stop() waits.
_POLL_INTERVAL_SECONDS = 0.05
_STOP_TIMEOUT_SECONDS = 10.0


class Emulator:
    """A local Bedrock AgentCore memory-records endpoint for an unmodified boto3 client.

    >>> with Emulator() as emu:  # doctest: +SKIP
    ...     client = boto3.client("bedrock-agentcore", endpoint_url=emu.endpoint_url, ...)
    """

    def __init__(
        self,
        *,
        memory_ids: Iterable[str] = (DEFAULT_MEMORY_ID,),
        db_path: str = ":memory:",
        host: str = "127.0.0.1",
        port: int = 0,
        journal_size: int = 1000,
        faults: FaultConfig | None = None,
    ) -> None:
        self._memory_ids = tuple(memory_ids)
        if not self._memory_ids:
            raise ValueError("at least one memory id is required")
        for memory_id in self._memory_ids:
            check_memory_id(memory_id)
        self._db_path = db_path
        self._host = host
        self._requested_port = port
        self._journal = Journal(journal_size)
        self._faults = Faults(faults)
        self._hook: BeforeOperationHook | None = self._faults
        self._lifecycle = threading.Lock()
        self._store: Store | None = None
        self._dispatcher: Dispatcher | None = None
        self._server: HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._bound_port: int | None = None

    def start(self) -> Emulator:
        """Bind and serve on a background daemon thread; returns self."""
        with self._lifecycle:
            if self._server is not None:
                raise RuntimeError("emulator is already running")
            store = Store(self._db_path)
            try:
                backend = MemoryRecordsBackend(store=store, memory_ids=self._memory_ids)
                dispatcher = Dispatcher(
                    RouteTable(MODEL, backend.handlers),
                    on_request=self._journal.record,
                    service_failure=service_failure,
                )
                dispatcher.set_before_operation_hook(self._hook)
                server = HttpServer(
                    self._host,
                    self._requested_port,
                    dispatcher,
                    server_version=_SERVER_VERSION,
                    max_body_bytes=_MAX_BODY_BYTES,
                )
            except BaseException:
                store.close()
                raise
            self._store, self._dispatcher, self._server = store, dispatcher, server
            self._bound_port = server.server_port
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": _POLL_INTERVAL_SECONDS},
                name=f"agentcore-emulator-{self._bound_port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close client connections and the database. Safe to call repeatedly."""
        with self._lifecycle:
            server, thread, store = self._server, self._thread, self._store
            self._server = self._thread = self._store = self._dispatcher = None
            if server is not None:
                server.shutdown()
                server.close_connections()
                server.server_close()
            if thread is not None:
                thread.join(_STOP_TIMEOUT_SECONDS)
            if store is not None:
                store.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with ``port=0``)."""
        if self._bound_port is None:
            raise RuntimeError("emulator has not been started")
        return self._bound_port

    @property
    def endpoint_url(self) -> str:
        host = self._host
        # A wildcard bind address is not something a client can connect to.
        if host in {"", "0.0.0.0"}:
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def received(self, operation: str | None = None) -> list[ReceivedRequest]:
        """Requests received so far (including rejected ones), oldest first."""
        return self._journal.entries(operation)

    def clear_received(self) -> None:
        self._journal.clear()

    @property
    def faults(self) -> Faults:
        """The fault injection in force; `faults.configure(...)` changes it at run time."""
        return self._faults

    def set_before_operation_hook(self, hook: BeforeOperationHook | None) -> None:
        """Install (or with None, remove) the hook run before every routed operation."""
        with self._lifecycle:
            self._hook = hook
            if self._dispatcher is not None:
                self._dispatcher.set_before_operation_hook(hook)
