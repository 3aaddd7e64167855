"""The supervisor's own metric (WORKERS > 1): worker processes restarted after they died.

A collector rather than a prometheus_client Counter, so that its value lives in the supervisor's memory
whatever multiprocess mode prometheus_client chose at import; /metrics serves it beside the workers'
merged values.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


class WorkerRestarts(Collector):
    """`agentcore_worker_restarts_total`: worker processes started again after one died."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def inc(self) -> None:
        with self._lock:
            self._count += 1

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            count = self._count
        yield CounterMetricFamily(
            "agentcore_worker_restarts",
            "Worker processes started again after one died (crash, kill, out of memory).",
            value=count,
        )
