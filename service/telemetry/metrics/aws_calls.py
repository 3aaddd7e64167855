"""The upstream (AWS) metrics, declared, and recorded by the botocore hooks of telemetry/aws_hooks.py:
how AWS answers, call by call. Declarations are a table of names, help and labels, alike in shape on
purpose (as prometheus/client_golang's are), so a duplicate scan pairs them."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from service.api import operations
from service.telemetry.metrics import exposition
from service.telemetry.metrics.children import Children
from service.upstream import outcomes


class AwsCallMetrics:
    """Duration, errors, retries and throttles of AWS calls."""

    def __init__(self, registry: CollectorRegistry, buckets: Sequence[float]) -> None:
        # A traced call's trace on its duration bucket; multiprocess values have no room for it.
        self.keeps_exemplars = not exposition.multiprocess_mode()
        self.duration = Histogram(
            "agentcore_upstream_request_duration_seconds",
            "Duration of AWS calls, from boto3's call to its answer, retries and back-off included.",
            ("operation", "outcome"),
            buckets=buckets,
            registry=registry,
        )
        self.errors = Counter(
            "agentcore_upstream_errors_total",
            "AWS calls that failed, after retries, by AWS error code (or transport failure).",
            ("operation", "aws_error_code"),
            registry=registry,
        )
        self.retries = Counter(
            "agentcore_upstream_retries_total",
            "Attempts botocore sent, beyond each call's first (one refused before sending is not).",
            ("operation",),
            registry=registry,
        )
        self.throttles = Counter(
            "agentcore_upstream_throttles_total",
            "Attempts AWS answered with a throttling error.",
            ("operation",),
            registry=registry,
        )
        self.retries_refused = Counter(
            "agentcore_upstream_retries_refused_total",
            "AWS calls that failed retryably but were not retried because botocore's retry quota was empty.",
            ("operation",),
            registry=registry,
        )
        self.turns_stuck = Gauge(
            "agentcore_upstream_turns_stuck",
            "Turns to call AWS held longer than AWS_ATTEMPT_TIMEOUT_SECONDS; when all are, RPCs are refused.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self._duration = Children(self.duration)
        self._errors = Children(self.errors)
        self._retries = Children(self.retries)
        self._throttles = Children(self.throttles)
        self._retries_refused = Children(self.retries_refused)
        for operation in operations.OPERATIONS:
            self._duration(operation.aws_operation, outcomes.Outcome.SUCCESS)
            self._retries(operation.aws_operation)
            self._throttles(operation.aws_operation)
            self._retries_refused(operation.aws_operation)

    def attempt_throttled(self, operation: str) -> None:
        """AWS answered an attempt of `operation` with a throttle."""
        self._throttles(operation).inc()

    def call_ended(
        self,
        operation: str,
        outcome: outcomes.Outcome,
        error_code: str | None,
        *,
        seconds: float,
        retries: int,
        retry_refused: bool,
        exemplar: dict[str, str] | None = None,
    ) -> None:
        """A call of `operation` ended, after `retries` attempts beyond its first; `retry_refused`: the
        retry quota kept botocore from retrying it; `exemplar`: the labels of its trace, if traced."""
        self._duration(operation, outcome).observe(seconds, exemplar)
        if error_code is not None:
            self._errors(operation, error_code).inc()
        if retries > 0:
            self._retries(operation).inc(retries)
        if retry_refused:
            self._retries_refused(operation).inc()
