"""The upstream (AWS) metrics and the botocore hooks that record them: how AWS answers, call by call.
How a call ended is `outcomes.classify`'s decision; these hooks count it, and note AWS's request id
and error code on the current `calls.Call` for the access log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from service import calls
from service.api import operations
from service.telemetry.metrics.children import Children
from service.upstream import outcomes

if TYPE_CHECKING:
    from mypy_boto3_bedrock_agentcore import BedrockAgentCoreClient


class AwsCallMetrics:
    """Duration, errors, retries and throttles of AWS calls."""

    def __init__(self, registry: CollectorRegistry, buckets: Sequence[float]) -> None:
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
        # Where a call's (operation, start) and its attempts sent wait in botocore's request context;
        # one pair per instance.
        self._context_key = f"agentcore_metrics.{id(self)}"
        self._sent_key = f"agentcore_metrics.{id(self)}.sent"

    def instrument(self, client: BedrockAgentCoreClient) -> None:
        """Record every call `client` makes (botocore event hooks)."""
        service_id = client.meta.service_model.service_id.hyphenize()
        hooks: dict[str, Callable[..., None]] = {
            "before-call": self._before_call,
            "response-received": self._on_attempt,
            "after-call": self._after_call,
            "after-call-error": self._after_call_error,
        }
        for event, hook in hooks.items():
            client.meta.events.register(f"{event}.{service_id}", hook, unique_id=f"{id(self)}-{event}")

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        context[self._context_key] = (model.name, time.perf_counter())

    def _on_attempt(
        self,
        parsed_response: Any,
        response_dict: Any,
        context: dict[str, Any],
        exception: BaseException | None = None,
        **_: Any,
    ) -> None:
        """Once per attempt, retries included, and one that the deadline hooks refused to send."""
        if self._context_key not in context:
            return
        # botocore numbers an attempt before its before-send hooks run: count only those sent.
        if not isinstance(exception, calls.CallerGoneError):
            context[self._sent_key] = context.get(self._sent_key, 0) + 1
        if not parsed_response:
            return
        status = int((response_dict or {}).get("status_code") or 0)
        if outcomes.Answer.read(parsed_response, status).throttled:
            self._throttles(context[self._context_key][0]).inc()

    def _after_call(self, http_response: Any, parsed: Any, context: dict[str, Any], **_: Any) -> None:
        """The call is over and AWS answered (success or error), after botocore's retries."""
        answer = outcomes.Answer.read(parsed, int(http_response.status_code))
        request_id = answer.request_id or None
        if answer.http_status < 300:
            self._end_call(context, outcomes.Outcome.SUCCESS, None, request_id)
            return
        code = str(context.get("error_code_override") or answer.code)
        failure = outcomes.classify_answer(answer.http_status, code)
        operation = self._end_call(context, failure.outcome, failure.error_code, request_id)
        if operation is not None and answer.retry_quota_reached:
            self._retries_refused(operation).inc()

    def _after_call_error(self, exception: BaseException, context: dict[str, Any], **_: Any) -> None:
        """The call is over and AWS never answered (transport failure, deadline, credentials)."""
        failure = outcomes.classify(exception)
        self._end_call(context, failure.outcome, failure.error_code, None)

    def _end_call(
        self, context: dict[str, Any], outcome: outcomes.Outcome, code: str | None, request_id: str | None
    ) -> str | None:
        """Count the call's end; the AWS operation it was, or None when this instance did not see it start."""
        started = context.pop(self._context_key, None)
        if started is None:
            return None
        operation, started_at = started
        self._duration(operation, outcome).observe(time.perf_counter() - started_at)
        if code is not None:
            self._errors(operation, code).inc()
        retries = int(context.pop(self._sent_key, 0)) - 1
        if retries > 0:
            self._retries(operation).inc(retries)
        call = calls.current()
        if call is not None:
            call.aws_request_id = request_id
            # The calls of a large batch share one Call: a later success must not hide a failure.
            call.aws_error_code = code or call.aws_error_code
        return str(operation)
