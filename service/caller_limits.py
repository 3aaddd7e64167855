"""Per-caller limits, from the `limits` entries of the authorization policy (authz.Limit): requests and
records per second, RPCs at once, and the weight of a caller's fair share of AWS turns.

A caller is its certificate's identity (`anonymous` without mutual TLS: then every caller shares one
entry). The first entry whose principals match applies; a caller matching none is unlimited. An RPC is
refused before its first AWS call or not at all: `enter` (on the event loop, before the request is read:
RPCs at once, counted in this process) and `admit` (on the RPC's thread, before its first AWS call: one
request, and the records of its first chunk) refuse with CallerLimitedError; a batch's later chunks then
wait for their records' tokens within the deadline (`take_records`). Rates are counted in
rate_counters.py's storage (`memory://` or a shared Redis).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from limits import RateLimitItem

from service import calls
from service.rate_counters import Counters, open_storage, window
from service.security import authz

CALLER_RATE_LIMITED = "CALLER_RATE_LIMITED"
CALLER_CONCURRENCY_LIMITED = "CALLER_CONCURRENCY_LIMITED"
# The `limit` label of agentcore_caller_limited_total, and what a QuotaFailure names.
LIMITS = ("requests_per_second", "records_per_second", "max_concurrent")
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


class CallerLimits:
    """The limits of `policy_file` (none without one), their rates counted in `counters`."""

    def __init__(
        self,
        policy_file: authz.PolicyFile | None,
        counters: Counters | None = None,
        *,
        count_limited: Callable[[str, str], None] = lambda limit, entry: None,
    ) -> None:
        self._policy_file = policy_file
        self._counters = counters or Counters(open_storage("memory://"))
        self._count_limited = count_limited
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
        return self._counters.hit(item, entry, caller, counted, cost=cost)

    def _until_free(self, item: RateLimitItem, entry: str, caller: str, counted: str) -> float:
        return self._counters.until_free(item, entry, caller, counted)

    def _limited(
        self, name: str, limit: authz.Limit, item: RateLimitItem, caller: str, counted: str
    ) -> CallerLimitedError:
        return CallerLimitedError(name, limit.entry, self._until_free(item, limit.entry, caller, counted))

    def _refused(self, call: calls.Call, error: CallerLimitedError) -> Any:
        self._count_limited(error.limit, error.entry)
        call.event("agentcore.caller_limit.refused", {"agentcore.caller_limit": error.limit})
        raise error


def _nothing() -> None:
    pass
