"""The botocore hooks that record AWS calls: each attempt (throttles), each call's end (duration,
outcome, error code, retries, a retry the quota refused; the duration with the RPC's trace as exemplar
when it is traced), and AWS's request id and error code noted
on the current `calls.Call` for the access log. How a call ended is `outcomes.classify`'s decision;
what AWS answered is read by `outcomes.Answer`; the metrics are declared in metrics/aws_calls.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from service import calls
from service.telemetry import tracing
from service.telemetry.metrics.aws_calls import AwsCallMetrics
from service.upstream import outcomes

if TYPE_CHECKING:
    from mypy_boto3_bedrock_agentcore import BedrockAgentCoreClient


class AwsCallRecorder:
    """Records every call of the clients it instruments into one AwsCallMetrics."""

    def __init__(self, metrics: AwsCallMetrics) -> None:
        self._metrics = metrics
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
            self._metrics.attempt_throttled(context[self._context_key][0])

    def _after_call(self, http_response: Any, parsed: Any, context: dict[str, Any], **_: Any) -> None:
        """The call is over and AWS answered (success or error), after botocore's retries."""
        answer = outcomes.Answer.read(parsed, int(http_response.status_code))
        request_id = answer.request_id or None
        if answer.http_status < 300:
            self._end_call(context, outcomes.Outcome.SUCCESS, None, request_id)
            return
        code = str(context.get("error_code_override") or answer.code)
        failure = outcomes.classify_answer(answer.http_status, code)
        self._end_call(context, failure.outcome, failure.error_code, request_id, answer.retry_quota_reached)

    def _after_call_error(self, exception: BaseException, context: dict[str, Any], **_: Any) -> None:
        """The call is over and AWS never answered (transport failure, deadline, credentials)."""
        failure = outcomes.classify(exception)
        self._end_call(context, failure.outcome, failure.error_code, None)

    def _end_call(
        self,
        context: dict[str, Any],
        outcome: outcomes.Outcome,
        code: str | None,
        request_id: str | None,
        retry_refused: bool = False,
    ) -> None:
        """Count the call's end, unless this instance did not see it start."""
        started = context.pop(self._context_key, None)
        if started is None:
            return
        operation, started_at = started
        retries = int(context.pop(self._sent_key, 0)) - 1
        seconds = time.perf_counter() - started_at
        call = calls.current()
        self._metrics.call_ended(
            operation,
            outcome,
            code,
            seconds=seconds,
            retries=retries,
            retry_refused=retry_refused,
            exemplar=(
                tracing.exemplar(call.span)
                if call is not None and call.span is not None and self._metrics.keeps_exemplars
                else None
            ),
        )
        if call is not None:
            call.aws_request_id = request_id
            # The calls of a large batch share one Call: a later success must not hide a failure.
            call.aws_error_code = code or call.aws_error_code
