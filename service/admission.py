"""Bounded admission: how many RPCs, and how many request bytes, the process holds at once.

A facade RPC is admitted or refused at once (RESOURCE_EXHAUSTED, `SERVER_OVERLOADED`, RetryInfo). An
admitted RPC then waits for one of GRPC_MAX_WORKERS turns to call AWS, and answers DEADLINE_EXCEEDED,
without calling AWS, if its deadline passes first. The gRPC thread pool holds every admitted RPC plus
a reserve (server.py), so that refusals never queue behind work; health checks have threads of their
own (thread_pools.py).
"""

from __future__ import annotations

import collections
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
        self._free_turns = max_running
        self._waiting: collections.deque[threading.Event] = collections.deque()
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
        """Wait for a turn to call AWS, first come first served; DeadlineExceededError if the call's
        deadline passes first."""
        with self._lock:
            handed: threading.Event | None = None
            if self._free_turns and not self._waiting:
                self._free_turns -= 1
            else:
                handed = threading.Event()
                self._waiting.append(handed)
        if handed is not None:
            self._wait_for(handed, call)
        try:
            yield
        finally:
            with self._lock:
                if self._waiting:
                    self._waiting.popleft().set()  # the turn passes straight to the longest waiter
                else:
                    self._free_turns += 1

    def _wait_for(self, handed: threading.Event, call: calls.Call) -> None:
        self._count_waiting(1)
        try:
            remaining = call.time_remaining()
            # threading refuses timeouts past TIMEOUT_MAX; a caller may send any grpc-timeout.
            timeout = None if remaining is None else min(max(remaining, 0.0), threading.TIMEOUT_MAX)
            handed.wait(timeout)
        finally:
            self._count_waiting(-1)
        with self._lock:
            if handed.is_set():
                return
            self._waiting.remove(handed)
        raise upstream.DeadlineExceededError("the deadline passed while the RPC waited for its turn")
