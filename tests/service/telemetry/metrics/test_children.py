"""Children: a metric's child looked up through `labels()` once per label values, the very child
`labels()` returns, so that counts through either are one count."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter

from service.telemetry.metrics.children import Children


class CountingLabels:
    """A metric whose `labels()` calls are counted."""

    def __init__(self, metric: Counter) -> None:
        self.metric = metric
        self.lookups = 0

    def labels(self, *values: str) -> Any:
        self.lookups += 1
        return self.metric.labels(*values)


def test_a_child_is_looked_up_once_per_label_values() -> None:
    counter = CountingLabels(Counter("c", "c", ("method",), registry=CollectorRegistry()))
    children = Children(counter)
    for _ in range(5):
        children("Get")
        children("List")
    assert counter.lookups == 2


def test_counts_through_children_and_through_labels_are_one_count() -> None:
    registry = CollectorRegistry()
    counter = Counter("calls", "Calls.", ("method", "code"), registry=registry)
    children = Children(counter)
    assert children("Get", "OK") is counter.labels("Get", "OK")
    children("Get", "OK").inc()
    children("Get", "OK").inc()
    counter.labels("Get", "OK").inc()
    children("Get", "NotFound").inc()
    assert registry.get_sample_value("calls_total", {"method": "Get", "code": "OK"}) == 3
    assert registry.get_sample_value("calls_total", {"method": "Get", "code": "NotFound"}) == 1
