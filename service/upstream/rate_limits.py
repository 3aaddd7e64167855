"""UPSTREAM_RATE_LIMITS: the most AWS calls a second, per operation, that the whole fleet sends, so that
the account's quota is not overshot (by N replicas each retrying on their own).

Each attempt takes a token (botocore's retries spend the account's quota too), counted in
rate_counters.py's storage: shared by the fleet with `redis://`, per process with `memory://`. A
botocore `before-send` hook, first of them, waits for the token within the RPC's deadline, or refuses
the attempt (UpstreamRateLimitedError: RESOURCE_EXHAUSTED, `UPSTREAM_RATE_LIMITED`, with the time until
a token is free) when the wait would outlive it. The wait holds the RPC's AWS turn: when the rate is
reached, turns are what the waiting RPCs share, in admission's fair order. A rate R is a moving window
of 1 s holding ceil(R) calls.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from service import calls
from service.rate_counters import Counters, window

if TYPE_CHECKING:
    from mypy_boto3_bedrock_agentcore import BedrockAgentCoreClient

REASON = "UPSTREAM_RATE_LIMITED"


class UpstreamRateLimitedError(Exception):
    """No token of `operation`'s rate is free before the RPC's deadline; one is in `retry_after` s."""

    def __init__(self, operation: str, retry_after: float) -> None:
        super().__init__(
            f"the fleet's rate of {operation} calls to AWS is reached (UPSTREAM_RATE_LIMITS), and the "
            f"deadline would pass before the next; retry in {retry_after:.3g} s"
        )
        self.operation = operation
        self.retry_after = retry_after


def parse(text: str, operations: set[str]) -> dict[str, float]:
    """`BatchUpdateMemoryRecords=20,GetMemoryRecord=50` as {operation: calls a second}; ValueError
    naming what is wrong."""
    rates: dict[str, float] = {}
    for part in (part.strip() for part in text.split(",")):
        if not part:
            continue
        name, equals, rate = part.partition("=")
        name = name.strip()
        if not equals or name not in operations:
            raise ValueError(
                f"{part!r} is not OPERATION=RATE with an operation of {', '.join(sorted(operations))}"
            )
        try:
            value = float(rate)
        except ValueError:
            raise ValueError(f"{part!r}: the rate must be a number") from None
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{part!r}: the rate must be a positive number")
        rates[name] = value
    return rates


class UpstreamRateLimits:
    """Holds each attempt of an operation in `rates` to its calls a second, counted in `counters`."""

    def __init__(self, rates: Mapping[str, float], counters: Counters) -> None:
        self._windows = {
            operation: window(rate, max(1, math.ceil(rate))) for operation, rate in rates.items()
        }
        self._counters = counters

    def instrument(self, client: BedrockAgentCoreClient) -> None:
        if not self._windows:
            return
        service_id = client.meta.service_model.service_id.hyphenize()
        # First: the attempt's own deadline and timeouts (deadlines.py, attempts.py) start after the wait.
        client.meta.events.register_first(f"before-send.{service_id}", self._before_send)

    def _before_send(self, event_name: str = "", **_: Any) -> None:
        operation = event_name.rpartition(".")[2]
        item = self._windows.get(operation)
        if item is None:
            return
        call = calls.current()
        while not self._counters.hit(item, "upstream", operation):
            wait = self._counters.until_free(item, "upstream", operation)
            remaining = None if call is None else call.time_remaining()
            if remaining is not None and wait >= remaining:
                raise UpstreamRateLimitedError(operation, wait)
            if call is not None:
                call.event("agentcore.upstream_rate.waiting", {"agentcore.upstream_rate.wait_seconds": wait})
            time.sleep(wait)
