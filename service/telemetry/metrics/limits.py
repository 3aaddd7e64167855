"""The metrics of per-caller limits (caller_limits.py): refusals by limit and entry, and the health of
the storage their counters live in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from service import caller_limits
from service.telemetry.metrics.children import Children


class LimitMetrics:
    """Refused RPCs by `limit` and `entry` (the policy's entry name or index: never a caller's
    identity), and whether the rate-limit storage answers."""

    def __init__(self, registry: CollectorRegistry) -> None:
        # Declarations, alike in shape on purpose (see grpc_server.ServerMetrics).
        self.caller_limited = Counter(
            "agentcore_caller_limited_total",
            "RPCs refused by a per-caller limit of the policy, by limit and limits entry.",
            ("limit", "entry"),
            registry=registry,
        )
        self.storage_up = Gauge(
            "agentcore_rate_limit_storage_up",
            "1 while the rate-limit storage (RATE_LIMIT_STORAGE_URI) answers, 0 since it failed.",
            # Several workers: 0 while any live one finds it failing.
            multiprocess_mode="livemin",
            registry=registry,
        )
        self.storage_failures = Counter(
            "agentcore_rate_limit_storage_failures_total",
            "Times the rate-limit storage went from answering to failing.",
            registry=registry,
        )
        self.storage_up.set(1)
        self._limited = Children(self.caller_limited)
        for limit in caller_limits.LIMITS:
            self._limited(limit, "0")  # the first entry's series exist from the start

    def count_limited(self, limit: str, entry: str) -> None:
        self._limited(limit, entry).inc()

    def report_storage(self, working: bool) -> None:
        self.storage_up.set(1 if working else 0)
        if not working:
            self.storage_failures.inc()
