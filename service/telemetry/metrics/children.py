"""A metric's children by label values, each looked up through `labels()` once.

prometheus_client's `labels()` checks and converts the values and takes the metric's lock on every
call; an RPC records about ten series, so the children it touches are kept in a dict keyed by the
label values. A child is the object `labels()` would return again, so counts are unchanged.
"""

from __future__ import annotations

from typing import Any


class Children:
    """`children(*values)` is `metric.labels(*values)`, made once per distinct values."""

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._made: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._made.get(values)
        if child is None:
            # A race makes the same child twice: labels() returns one object for equal values.
            child = self._made[values] = self._metric.labels(*values)
        return child
