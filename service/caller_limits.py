"""Per-caller limits, from the `limits` entries of the authorization policy (authz.Limit): requests and
records per second, RPCs at once, and the weight of a caller's fair share of AWS turns.

A caller is its certificate's identity (`anonymous` without mutual TLS: then every caller shares one
entry). The first entry whose principals match applies; a caller matching none is unlimited. An RPC is
refused before its first AWS call or not at all: `enter` (on the event loop, before the request is read:
RPCs at once, counted in this process) and `admit` (on the RPC's thread, before its first AWS call: one
request, and the records of its first chunk) refuse with CallerLimitedError; a batch's later chunks then
wait for their records' tokens within the deadline (`take_records`).

Rates are counted by the `limits` library, in RATE_LIMIT_STORAGE_URI's storage: `memory://` counts in
this process alone, `redis://` in one Redis every replica shares. `limits` offers windows, not token
buckets: a rate R with a burst B is a moving window of ceil(B / R) seconds holding at most B hits
(records count as hits of their number), so a caller may spend B at once and R a second on average (a
little less when B / R is not whole); the time until a token is free is when the oldest hit in the
window leaves it. Storage that fails (Redis down) lets RPCs through (`RATE_LIMIT_STORAGE_FAILURE=open`)
or refuses them (`closed`); each change between working and failing is logged once and reported.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from limits import RateLimitItem, RateLimitItemPerSecond, storage, strategies

from service import calls
from service.security import authz

log = logging.getLogger(__name__)

CALLER_RATE_LIMITED = "CALLER_RATE_LIMITED"
CALLER_CONCURRENCY_LIMITED = "CALLER_CONCURRENCY_LIMITED"
STORAGE_UNAVAILABLE = "RATE_LIMIT_STORAGE_UNAVAILABLE"
# The `limit` label of agentcore_caller_limited_total, and what a QuotaFailure names.
LIMITS = ("requests_per_second", "records_per_second", "max_concurrent")
# A Redis that does not answer within this fails the call to it (open or closed, as configured): no
# RPC waits on it longer.
STORAGE_TIMEOUT_SECONDS = 0.25
# What a refusal for failing storage (closed) tells the caller to wait.
STORAGE_RETRY_SECONDS = 1.0
# A caller refused for concurrency is told to come back after about one AWS call.
CONCURRENCY_RETRY_SECONDS = 0.1


class CallerLimitedError(Exception):
    """The caller's `limit` of its entry `entry` refuses the RPC; a token is free in `retry_after` s."""

    def __init__(self, limit: str, entry: str, retry_after: float) -> None:
        super().__init__(
            f"the caller is over its {limit.replace('_', ' ')} (limits entry {entry}); retry in "
            f"{retry_after:.3g} s"
        )
        self.limit = limit
        self.entry = entry
        self.retry_after = retry_after

    @property
    def reason(self) -> str:
        return CALLER_CONCURRENCY_LIMITED if self.limit == "max_concurrent" else CALLER_RATE_LIMITED


class StorageUnavailableError(Exception):
    """RATE_LIMIT_STORAGE_FAILURE=closed and the storage of the counters failed."""


def open_storage(uri: str) -> storage.Storage:
    """The `limits` storage at `uri`; a Redis one with short timeouts and errors it raises as its own."""
    if uri.startswith(("redis://", "rediss://")):
        opened = storage.storage_from_string(
            uri,
            key_prefix="agentcore",
            wrap_exceptions=True,
            socket_timeout=STORAGE_TIMEOUT_SECONDS,
            socket_connect_timeout=STORAGE_TIMEOUT_SECONDS,
        )
    else:
        opened = storage.storage_from_string(uri)
    if not isinstance(opened, storage.Storage):  # an async:// scheme
        raise ValueError(f"{uri.split(':', 1)[0]}: not a storage for threads")
    return opened


def window(rate: float, burst: int) -> RateLimitItem:
    """The moving window that stands for a token bucket of `rate` a second holding `burst`."""
    return RateLimitItemPerSecond(burst, max(1, math.ceil(burst / rate)))


class CallerLimits:
    """The limits of `policy_file` (none without one), counted in `counters`."""

    def __init__(
        self,
        policy_file: authz.PolicyFile | None,
        counters: storage.Storage,
        *,
        fail_open: bool = True,
        count_limited: Callable[[str, str], None] = lambda limit, entry: None,
        report_storage: Callable[[bool], None] = lambda working: None,
    ) -> None:
        self._policy_file = policy_file
        self._limiter = strategies.MovingWindowRateLimiter(counters)
        self._fail_open = fail_open
        self._count_limited = count_limited
        self._report_storage = report_storage
        self._storage_working = True
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], int] = {}  # (entry, caller): RPCs admitted, this process

    def limit_for(self, call: calls.Call) -> authz.Limit | None:
        if self._policy_file is None or not isinstance(call.identity, str):
            return None
        return self._policy_file.current().limit_for(call.identity)

    def enter(self, call: calls.Call) -> Callable[[], None]:
        """Take the caller's place among its RPCs at once, and note its weight on `call`; the function
        that gives the place back. CallerLimitedError when its `max_concurrent` are all taken."""
        limit = self.limit_for(call)
        if limit is None:
            return _nothing
        call.weight = limit.weight
        if limit.max_concurrent is None:
            return _nothing
        key = (limit.entry, str(call.identity))
        with self._lock:
            running = self._running.get(key, 0)
            if running >= limit.max_concurrent:
                self._refused(
                    call, CallerLimitedError("max_concurrent", limit.entry, CONCURRENCY_RETRY_SECONDS)
                )
            self._running[key] = running + 1
        return lambda: self._leave(key)

    def _leave(self, key: tuple[str, str]) -> None:
        with self._lock:
            left = self._running[key] - 1
            if left:
                self._running[key] = left
            else:
                del self._running[key]

    def admit(self, call: calls.Call, first_records: int | None) -> None:
        """Spend one request and, for a batch, the records of its first AWS call (`first_records`), or
        refuse the RPC (CallerLimitedError) spending nothing. Blocking (storage): on the RPC's thread."""
        limit = self.limit_for(call)
        if limit is None:
            return
        caller = str(call.identity)
        if limit.requests_per_second is not None:
            item = window(limit.requests_per_second, limit.requests_burst)
            if not self._hit(item, limit.entry, caller, "requests", 1):
                self._refused(call, self._limited("requests_per_second", limit, item, caller, "requests"))
        if limit.records_per_second is not None and first_records:
            item = window(limit.records_per_second, limit.records_burst)
            if not self._hit(item, limit.entry, caller, "records", first_records):
                self._refused(call, self._limited("records_per_second", limit, item, caller, "records"))

    def take_records(self, call: calls.Call, count: int) -> None:
        """Spend `count` records for a later chunk of a batch already started, waiting for them as long
        as the RPC's deadline allows; DeadlineExceededError when it would pass first."""
        limit = self.limit_for(call)
        if limit is None or limit.records_per_second is None or not count:
            return
        caller = str(call.identity)
        item = window(limit.records_per_second, limit.records_burst)
        while not self._hit(item, limit.entry, caller, "records", count):
            wait = self._until_free(item, limit.entry, caller, "records")
            remaining = call.time_remaining()
            if remaining is not None and wait >= remaining:
                raise calls.DeadlineExceededError(
                    "the deadline would pass before the caller's records were free"
                )
            call.event("agentcore.caller_limit.waiting", {"agentcore.caller_limit.wait_seconds": wait})
            time.sleep(wait)

    def _hit(self, item: RateLimitItem, entry: str, caller: str, counted: str, cost: int) -> bool:
        try:
            taken = self._limiter.hit(item, entry, caller, counted, cost=cost)
        except Exception as exc:  # the storage's own errors, whatever its kind
            return self._storage_failed(exc)
        self._storage_back()
        return taken

    def _until_free(self, item: RateLimitItem, entry: str, caller: str, counted: str) -> float:
        try:
            stats = self._limiter.get_window_stats(item, entry, caller, counted)
        except Exception as exc:
            self._storage_failed(exc)
            return STORAGE_RETRY_SECONDS
        return max(0.001, stats.reset_time - time.time())

    def _limited(
        self, name: str, limit: authz.Limit, item: RateLimitItem, caller: str, counted: str
    ) -> CallerLimitedError:
        return CallerLimitedError(name, limit.entry, self._until_free(item, limit.entry, caller, counted))

    def _refused(self, call: calls.Call, error: CallerLimitedError) -> Any:
        self._count_limited(error.limit, error.entry)
        call.event("agentcore.caller_limit.refused", {"agentcore.caller_limit": error.limit})
        raise error

    def _storage_failed(self, exc: Exception) -> bool:
        """Whether an RPC goes on without the storage (fail open); StorageUnavailableError if closed."""
        with self._lock:
            changed, self._storage_working = self._storage_working, False
        if changed:
            log.error(
                "the rate-limit storage failed",
                extra={"problem": type(exc).__name__, "failing": "open" if self._fail_open else "closed"},
            )
            self._report_storage(False)
        if self._fail_open:
            return True
        raise StorageUnavailableError("the rate-limit storage is unavailable") from None

    def _storage_back(self) -> None:
        if self._storage_working:
            return
        with self._lock:
            changed, self._storage_working = not self._storage_working, True
        if changed:
            log.info("the rate-limit storage works again")
            self._report_storage(True)


def _nothing() -> None:
    pass
