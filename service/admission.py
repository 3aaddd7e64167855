"""Bounded admission: how many RPCs, and how many request bytes, the process holds at once.

A facade RPC is admitted or refused at once (RESOURCE_EXHAUSTED, `SERVER_OVERLOADED`, RetryInfo). An
admitted RPC then waits for one of GRPC_MAX_WORKERS turns to call AWS, and answers DEADLINE_EXCEEDED,
without calling AWS, if its deadline passes first. The gRPC thread pool holds every admitted RPC plus
a reserve (server.py), so that health checks and refusals never queue behind work.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from service import calls, upstream

# The limits an RPC can be refused for: the `reason` label of the refusals counter.
LIMITS = ("rpcs", "bytes")
# Retry after this long: the oldest admitted RPCs will mostly have finished by then.
RETRY_DELAY_SECONDS = 1.0


class OverloadedError(Exception):
    """Admission refused the RPC; `reason` is `rpcs` or `bytes`, the limit it would have broken."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"the server is overloaded (too many {'RPCs' if reason == 'rpcs' else 'request bytes'})"
        )
        self.reason = reason


class Admission:
    """The limits of one process, shared by every handler thread."""

    def __init__(
        self,
        *,
        max_rpcs: int,
        max_bytes: int,
        max_running: int,
        count_waiting: Callable[[float], None] = lambda change: None,
    ) -> None:
        self._max_rpcs = max_rpcs
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._rpcs = 0
        self._bytes = 0
        self._turns = threading.BoundedSemaphore(max_running)
        self._count_waiting = count_waiting  # +1 and -1 as RPCs start and stop waiting for a turn

    @contextlib.contextmanager
    def admitted(self, request_bytes: int) -> Iterator[None]:
        """Hold a place for an RPC of `request_bytes`, or raise OverloadedError."""
        with self._lock:
            if self._rpcs >= self._max_rpcs:
                raise OverloadedError("rpcs")
            # Alone, any RPC gets in: gRPC's message size limit bounds it already.
            if self._rpcs and self._bytes + request_bytes > self._max_bytes:
                raise OverloadedError("bytes")
            self._rpcs += 1
            self._bytes += request_bytes
        try:
            yield
        finally:
            with self._lock:
                self._rpcs -= 1
                self._bytes -= request_bytes

    @contextlib.contextmanager
    def turn(self, call: calls.Call) -> Iterator[None]:
        """Wait for a turn to call AWS; DeadlineExceededError if the call's deadline passes first."""
        acquired = self._turns.acquire(blocking=False)
        if not acquired:
            self._count_waiting(1)
            try:
                remaining = call.time_remaining()
                acquired = self._turns.acquire(timeout=None if remaining is None else max(remaining, 0.0))
            finally:
                self._count_waiting(-1)
        if not acquired:
            raise upstream.DeadlineExceededError("the deadline passed while the RPC waited for its turn")
        try:
            yield
        finally:
            self._turns.release()
