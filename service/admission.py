"""Bounded admission: how many RPCs, and how many request bytes, the process holds at once.

A facade RPC is admitted or refused at once (RESOURCE_EXHAUSTED, `SERVER_OVERLOADED`, RetryInfo). An
admitted RPC then waits for one of GRPC_MAX_WORKERS turns to call AWS, and answers DEADLINE_EXCEEDED,
without calling AWS, if its deadline passes first. RPCs are admitted on the event loop once their
request message is read (servicer.py), so refusals never wait for a thread; only an admitted RPC is
handed one (server.py's executor has a thread for each).
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

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


class Ticket:
    """One admitted RPC's place: its bytes may grow (a request being inflated) until it is released;
    release() is safe to call twice (the thread that serves it, or the task whose thread never ran)."""

    def __init__(self, admission: Admission, request_bytes: int) -> None:
        self._admission = admission
        self._bytes = request_bytes
        self._released = False
        self._pinned = False

    def grow(self, change: int) -> None:
        """Hold `change` more bytes (less, when negative), or OverloadedError("bytes")."""
        self._admission._grow(change)
        self._bytes += change

    def hold_until(self, work: futures.Future[Any]) -> None:
        """Keep the place until `work` ends, even if release() is called before."""
        self._pinned = True
        work.add_done_callback(lambda _: self._unpin())

    def _unpin(self) -> None:
        self._pinned = False
        self.release()

    def release(self) -> None:
        if self._pinned:
            return
        if not self._released:
            self._released = True
            self._admission._release(self._bytes)


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

    def admit(self, request_bytes: int) -> Ticket:
        """A place for an RPC of `request_bytes`, held until its Ticket is released; or OverloadedError."""
        with self._lock:
            self._take(request_bytes, first=True)
            self._rpcs += 1
        return Ticket(self, request_bytes)

    @contextlib.contextmanager
    def admitted(self, request_bytes: int) -> Iterator[Ticket]:
        """admit() for the length of a block."""
        ticket = self.admit(request_bytes)
        try:
            yield ticket
        finally:
            ticket.release()

    def _take(self, request_bytes: int, *, first: bool) -> None:
        # Called with the lock held.
        if first and self._rpcs >= self._max_rpcs:
            raise OverloadedError("rpcs")
        # Alone, any RPC gets in: gRPC's message size limit (or inflation's, compression.py) bounds it.
        alone = self._rpcs == (0 if first else 1)
        if not alone and request_bytes > 0 and self._bytes + request_bytes > self._max_bytes:
            raise OverloadedError("bytes")
        self._bytes += request_bytes

    def _grow(self, change: int) -> None:
        with self._lock:
            self._take(change, first=False)

    def _release(self, request_bytes: int) -> None:
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
