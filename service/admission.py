"""Bounded admission: how many RPCs, and how many request bytes, the process holds at once.

A facade RPC is admitted or refused at once (RESOURCE_EXHAUSTED, `SERVER_OVERLOADED`, RetryInfo). An
admitted RPC then waits for one of GRPC_MAX_WORKERS turns to call AWS, and answers DEADLINE_EXCEEDED,
without calling AWS, if its deadline passes first; it is refused at once instead (reason `turns`) when
waiting cannot help: every turn has been held past AWS_ATTEMPT_TIMEOUT_SECONDS (AWS is slow or stuck,
and attempts.py will cut those calls off), or its deadline is shorter than the wait it faces. The wait
is estimated from the line: the RPCs the fair order puts ahead and this one share the turns that are
not stuck, and those come free at about one per mean hold time of the last RECENT_HOLDS turns, so the
wait is (ahead + 1) x mean hold / turns not stuck; no estimate until a turn has been given back.

Waiting RPCs get turns round-robin by caller (its certificate's identity), weighted, rather than first
come first served, so that one caller's hundred waiting RPCs do not delay another's one: start-time fair
queuing, as stride scheduling does it. Each caller with RPCs waiting has a line (FIFO) and a virtual
time, the start of its first RPC; a turn goes to the line that starts first (the older RPC on a tie),
and that line's start moves on by 1 / the RPC's weight. A caller that was not waiting joins at the
start of the RPC last handed a turn, so that it goes next but banks no credit for the time it was
quiet. A line is dropped once empty, so memory and the cost of a hand-off grow with the callers
waiting, at most MAX_CONCURRENT_RPCS.

RPCs are admitted on the event loop once their request message is read (servicer.py), so refusals
never wait for a thread; only an admitted RPC is handed one (server.py's executor has a thread for each).
With tracing on, a wait for a turn (how many were ahead, when it ended) and a refusal are events on the
RPC's span.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

from service import calls

# The limits an RPC can be refused for: the `reason` label of the refusals counter.

LIMITS = ("rpcs", "bytes", "turns")
# Retry after this long: the oldest admitted RPCs will mostly have finished by then.
RETRY_DELAY_SECONDS = 1.0
# The turns given back that the wait estimate averages over: recent enough to follow AWS's pace.
RECENT_HOLDS = 32
# The stuck-turn watcher of an Admission nobody holds any more ends within this long.
_WATCH_SECONDS_AT_MOST = 60.0
_WHY = {"rpcs": "too many RPCs", "bytes": "too many request bytes"}
# The line of every caller whose certificate's identity is refused: like `anonymous`, one line for all,
# so that unnamed callers cannot claim a share each. No accepted identity holds a control character.
_REFUSED_CALLERS = "\x00refused"
# Slack for the float sums of 1 / weight when the fair order is counted.
_VIRTUAL_SLACK = 1e-9


class OverloadedError(Exception):
    """The RPC was refused; `reason` is the limit it would have broken: `rpcs`, `bytes` or `turns`."""

    def __init__(self, reason: str, why: str | None = None) -> None:
        super().__init__(f"the server is overloaded ({why or _WHY[reason]})")
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


class _Waiter:
    """One RPC waiting for a turn: set `handed` once the turn is its own."""

    __slots__ = ("handed", "token", "weight")

    def __init__(self, token: int, weight: float) -> None:
        self.token = token
        self.weight = weight
        self.handed = threading.Event()


class _Line:
    """One caller's waiting RPCs, oldest first, and the virtual time its first one starts at; `tail` is
    where an RPC that joins now would start (start + the sum of 1 / weight of those waiting)."""

    __slots__ = ("caller", "start", "tail", "waiters")

    def __init__(self, caller: str, start: float) -> None:
        self.caller = caller
        self.start = start
        self.tail = start
        self.waiters: collections.deque[_Waiter] = collections.deque()

    def order(self) -> tuple[float, int]:
        """Lines are served by their start, then by the age of their first RPC."""
        return self.start, self.waiters[0].token

    def ahead_of(self, start: float) -> int:
        """How many of this line's RPCs the fair order serves before one that starts at `start` and
        is newer than all of them; the RPCs after the first are counted at its weight."""
        if start < self.start - _VIRTUAL_SLACK:
            return 0
        served = math.floor((start - self.start) * self.waiters[0].weight + _VIRTUAL_SLACK) + 1
        return min(len(self.waiters), served)


class Admission:
    """The limits of one process, shared by every handler thread."""

    def __init__(
        self,
        *,
        max_rpcs: int,
        max_bytes: int,
        max_running: int,
        count_waiting: Callable[[float], None] = lambda change: None,
        stuck_after_seconds: float = 10.0,
        report_stuck: Callable[[float], None] = lambda count: None,
    ) -> None:
        self._max_rpcs = max_rpcs
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._rpcs = 0
        self._bytes = 0
        self._max_running = max_running
        self._free_turns = max_running
        # The callers with RPCs waiting for a turn, each its own line (none is ever empty).
        self._lines: dict[str, _Line] = {}
        # The virtual time of the RPC last handed a turn from a line: where a caller joins that was not
        # waiting. Back to 0 whenever nobody waits, so that it stays small.
        self._virtual_now = 0.0
        self._count_waiting = count_waiting  # +1 and -1 as RPCs start and stop waiting for a turn
        self._tokens = itertools.count()
        # When each held turn was taken (time.monotonic()), oldest first: taken in order, under the lock.
        self._held: dict[int, float] = {}
        self._holds: collections.deque[float] = collections.deque(maxlen=RECENT_HOLDS)  # seconds
        self._stuck_after = stuck_after_seconds
        self._report_stuck = report_stuck  # the count of turns held past `stuck_after_seconds`
        self._stuck = 0
        self._turns_changed = threading.Condition(self._lock)
        self._watcher: threading.Thread | None = None
        self._watcher_idle = False  # it waits for a turn to be taken, with none to watch

    def admit(self, request_bytes: int) -> Ticket:
        """A place for an RPC of `request_bytes`, held until its Ticket is released; or OverloadedError."""
        with self._lock:
            self._take_bytes(request_bytes, first=True)
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

    def _take_bytes(self, request_bytes: int, *, first: bool) -> None:
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
            self._take_bytes(change, first=False)

    def _release(self, request_bytes: int) -> None:
        with self._lock:
            self._rpcs -= 1
            self._bytes -= request_bytes

    @contextlib.contextmanager
    def turn(self, call: calls.Call) -> Iterator[None]:
        """Wait for a turn to call AWS, in the fair order of callers; DeadlineExceededError if the
        call's deadline passes first, OverloadedError (`turns`) at once if waiting cannot help."""
        with self._lock:
            token = next(self._tokens)
            waiter: _Waiter | None = None
            if self._free_turns and not self._lines:
                self._free_turns -= 1
                self._take(token, time.monotonic())
            else:
                caller = _caller_of(call)
                line = self._lines.get(caller)
                ahead = self._ahead(line)
                self._refuse_if_hopeless(call, ahead, time.monotonic())
                waiter = _Waiter(token, _weight_of(call))
                if line is None:
                    line = self._lines[caller] = _Line(caller, self._virtual_now)
                line.waiters.append(waiter)
                line.tail += 1 / waiter.weight
        if waiter is not None:
            call.event("agentcore.turn.waiting", {"agentcore.turn.ahead": ahead})
            self._wait_for(waiter, caller, call)
            call.event("agentcore.turn.taken", {})
        try:
            yield
        finally:
            with self._lock:
                now = time.monotonic()
                self._holds.append(now - self._held.pop(token))
                handed = self._next_waiter()
                if handed is not None:
                    self._take(handed.token, now)  # the turn passes straight to the next in fair order
                    handed.handed.set()
                else:
                    self._free_turns += 1
                self._update_stuck(now)

    def _next_waiter(self) -> _Waiter | None:
        """The waiting RPC whose turn is next, out of its line; None when nobody waits (under the lock)."""
        if not self._lines:
            return None
        line = min(self._lines.values(), key=_Line.order)
        waiter = line.waiters.popleft()
        self._virtual_now = line.start
        line.start += 1 / waiter.weight
        if not line.waiters:
            self._drop(line)
        return waiter

    def _drop(self, line: _Line) -> None:
        """Forget an empty line (under the lock)."""
        del self._lines[line.caller]
        if not self._lines:
            self._virtual_now = 0.0

    def _ahead(self, line: _Line | None) -> int:
        """How many waiting RPCs the fair order serves before one that joins `line` now (its caller's;
        None when the caller has none waiting): the line's own, and those of each other line that start
        no later (under the lock). A caller not waiting now may still join ahead of it later, so this
        errs short: a quiet caller's RPC counts about one of each busy caller's, not their backlogs."""
        start = self._virtual_now if line is None else line.tail
        own = 0 if line is None else len(line.waiters)
        return own + sum(other.ahead_of(start) for other in self._lines.values() if other is not line)

    def _wait_for(self, waiter: _Waiter, caller: str, call: calls.Call) -> None:
        self._count_waiting(1)
        try:
            remaining = call.time_remaining()
            # threading refuses timeouts past TIMEOUT_MAX; a caller may send any grpc-timeout.
            timeout = None if remaining is None else min(max(remaining, 0.0), threading.TIMEOUT_MAX)
            waiter.handed.wait(timeout)
        finally:
            self._count_waiting(-1)
        with self._lock:
            if waiter.handed.is_set():
                return
            line = self._lines[caller]
            line.waiters.remove(waiter)
            line.tail -= 1 / waiter.weight  # its place in the fair order was never used
            if not line.waiters:
                self._drop(line)
        call.event("agentcore.turn.deadline", {})
        raise calls.DeadlineExceededError("the deadline passed while the RPC waited for its turn")

    def _refuse_if_hopeless(self, call: calls.Call, ahead: int, now: float) -> None:
        """OverloadedError when no turn is free and waiting for one cannot help: `ahead` RPCs go before
        this one (under the lock)."""
        stuck = self._update_stuck(now)
        if stuck == self._max_running:
            raise OverloadedError(
                "turns", "every AWS turn has been held longer than AWS_ATTEMPT_TIMEOUT_SECONDS"
            )
        remaining = call.time_remaining()
        if remaining is None or not self._holds:
            return
        mean_hold = sum(self._holds) / len(self._holds)
        wait = (ahead + 1) * mean_hold / (self._max_running - stuck)
        if remaining < wait:
            raise OverloadedError(
                "turns", f"the wait for an AWS turn, about {wait:.3g} s, is longer than the deadline"
            )

    def _take(self, token: int, now: float) -> None:
        """`token` holds a turn from `now` on (under the lock)."""
        self._held[token] = now
        if self._watcher is None:
            self._watcher = threading.Thread(
                target=_watch_stuck_turns, args=(weakref.ref(self),), name="turns-stuck", daemon=True
            )
            self._watcher.start()
        elif self._watcher_idle:
            self._turns_changed.notify()

    def _update_stuck(self, now: float) -> int:
        """The turns held past `stuck_after_seconds`, reported when the count changed (under the lock)."""
        since = now - self._stuck_after
        stuck = 0
        for taken_at in self._held.values():
            if taken_at > since:
                break
            stuck += 1
        if stuck != self._stuck:
            self._stuck = stuck
            self._report_stuck(stuck)
        return stuck

    def _watch_once(self) -> None:
        """Report the stuck turns, then wait until the next held turn becomes stuck (or a turn is taken
        while none is held), at most _WATCH_SECONDS_AT_MOST."""
        with self._lock:
            now = time.monotonic()
            stuck = self._update_stuck(now)
            next_taken = next(itertools.islice(self._held.values(), stuck, None), None)
            self._watcher_idle = next_taken is None
            wait = _WATCH_SECONDS_AT_MOST if next_taken is None else next_taken + self._stuck_after - now
            self._turns_changed.wait(min(max(wait, 0.0), _WATCH_SECONDS_AT_MOST))
            self._watcher_idle = False


def _caller_of(call: calls.Call) -> str:
    """The line `call` waits in: its caller's identity (`anonymous` without mutual TLS)."""
    identity = call.identity
    return identity if isinstance(identity, str) else _REFUSED_CALLERS


def _weight_of(call: calls.Call) -> float:
    """The call's share of turns; the policy allows positive finite weights only, and anything else
    counts as 1 rather than divide by zero (or starve every other caller) under the lock."""
    weight = call.weight
    return weight if 0 < weight < math.inf else 1.0


def _watch_stuck_turns(admission: weakref.ref[Admission]) -> None:
    """Keep the stuck-turn count of `admission` current as time passes, while it exists."""
    while True:
        watched = admission()
        if watched is None:
            return
        watched._watch_once()
        del watched
