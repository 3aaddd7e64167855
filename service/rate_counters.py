"""Counters of rates, shared by every limit of the service (the policy's per-caller `limits`,
caller_limits.py; UPSTREAM_RATE_LIMITS, upstream/rate_limits.py), in RATE_LIMIT_STORAGE_URI's storage,
counted by the `limits` library: `memory://` counts in this process alone, `redis://` in one Redis that
every process and replica shares.

`limits` offers windows, not token buckets: a rate R with a burst B is a moving window of ceil(B / R)
seconds holding at most B hits (`window`), so a caller may spend B at once and R a second on average (a
little less when B / R is not whole); the time until a token is free is when the oldest hit in the
window leaves it. Storage that fails (Redis down, or slower than STORAGE_TIMEOUT_SECONDS) lets the
counted work through (`RATE_LIMIT_STORAGE_FAILURE=open`) or refuses it (`closed`:
StorageUnavailableError); each change between working and failing is logged once and reported.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from limits import RateLimitItem, RateLimitItemPerSecond, storage, strategies

log = logging.getLogger(__name__)

STORAGE_UNAVAILABLE = "RATE_LIMIT_STORAGE_UNAVAILABLE"
# A Redis that does not answer within this fails the call to it (open or closed, as configured): no
# RPC waits on it longer.
STORAGE_TIMEOUT_SECONDS = 0.25
# What a refusal for failing storage (closed) tells the caller to wait.
STORAGE_RETRY_SECONDS = 1.0


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


class Counters:
    """Hits counted in `counters`, and what its failures mean (`fail_open`), told to `report_storage`."""

    def __init__(
        self,
        counters: storage.Storage,
        *,
        fail_open: bool = True,
        report_storage: Callable[[bool], None] = lambda working: None,
    ) -> None:
        self._limiter = strategies.MovingWindowRateLimiter(counters)
        self._fail_open = fail_open
        self._report_storage = report_storage
        self._working = True
        self._lock = threading.Lock()

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        """Whether `cost` hits fit in the window now (and are taken); True when the storage failed and
        failing open, StorageUnavailableError when failing closed."""
        try:
            taken = self._limiter.hit(item, *identifiers, cost=cost)
        except Exception as exc:  # the storage's own errors, whatever its kind
            return self._failed(exc)
        self._back()
        return taken

    def until_free(self, item: RateLimitItem, *identifiers: str) -> float:
        """Seconds until the oldest hit leaves the window (a token is free again)."""
        try:
            stats = self._limiter.get_window_stats(item, *identifiers)
        except Exception as exc:
            self._failed(exc)
            return STORAGE_RETRY_SECONDS
        return max(0.001, stats.reset_time - time.time())

    def _failed(self, exc: Exception) -> bool:
        with self._lock:
            changed, self._working = self._working, False
        if changed:
            log.error(
                "the rate-limit storage failed",
                extra={"problem": type(exc).__name__, "failing": "open" if self._fail_open else "closed"},
            )
            self._report_storage(False)
        if self._fail_open:
            return True
        raise StorageUnavailableError("the rate-limit storage is unavailable") from None

    def _back(self) -> None:
        if self._working:
            return
        with self._lock:
            changed, self._working = not self._working, True
        if changed:
            log.info("the rate-limit storage works again")
            self._report_storage(True)
