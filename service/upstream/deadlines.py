"""The caller's deadline and cancellation bound the upstream work, through two botocore hooks.

`before-send` refuses an attempt the caller can no longer wait for (attempts.py ends a started one at
the deadline); `needs-retry` reports an attempt the deadline ended as DEADLINE_EXCEEDED, and stops
retrying when no back-off and attempt would fit. docs/batches-and-retries.md (Deadlines) says what
callers see.
The RPC in progress is the current `calls.Call`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service import calls
from service.upstream import outcomes
from service.upstream.attempts import current as current_attempt

if TYPE_CHECKING:
    from mypy_boto3_bedrock_agentcore import BedrockAgentCoreClient

# Below this, an attempt cannot finish in time: refuse it rather than start it.
MIN_ATTEMPT_SECONDS = 0.001
# The AWS SDKs' standard retry back-off: a random delay up to base * 2^(attempt-1), capped at 20 s,
# with base 1 s after a throttle and 50 ms after any other error.
_THROTTLE_BACKOFF_BASE_SECONDS = 1.0
_OTHER_BACKOFF_BASE_SECONDS = 0.05
_MAX_BACKOFF_SECONDS = 20.0


def _before_send(**_: Any) -> None:
    call = calls.current()
    if call is None:
        return
    gone = call.caller_gone()
    if gone is not None:
        raise gone
    remaining = call.time_remaining()
    if remaining is None:
        return
    if remaining < MIN_ATTEMPT_SECONDS:
        raise calls.DeadlineExceededError("the caller's deadline passed before the upstream call")


def _worst_backoff_seconds(attempts: int, response: Any) -> float:
    throttled = False
    if response is not None:
        http_response, parsed = response
        throttled = outcomes.Answer.read(parsed, http_response.status_code).throttled
    base = _THROTTLE_BACKOFF_BASE_SECONDS if throttled else _OTHER_BACKOFF_BASE_SECONDS
    return float(min(_MAX_BACKOFF_SECONDS, base * 2 ** (attempts - 1)))


def _before_retry(attempts: int, response: Any = None, caught_exception: Any = None, **_: Any) -> bool | None:
    """False stops botocore from retrying (the last error is raised); None leaves the choice to it."""
    call = calls.current()
    if call is None:
        return None
    if caught_exception is None and (response is None or response[0].status_code < 400):
        return None  # a success: nothing to retry
    attempt = current_attempt()
    # The deadline cut the attempt off: however it failed (a timeout, mostly), that is the deadline.
    if (
        caught_exception is not None
        and attempt is not None
        and attempt.by_deadline
        and attempt.seconds_left() <= 0
    ):
        raise calls.DeadlineExceededError("the deadline passed while AWS was answering")
    if call.caller_gone() is not None:
        return False
    remaining = call.time_remaining()
    if remaining is None:
        return None
    if remaining < _worst_backoff_seconds(attempts, response) + MIN_ATTEMPT_SECONDS:
        return False
    return None


def register(client: BedrockAgentCoreClient) -> None:
    """Install both hooks on `client` (once, at start)."""
    service_id = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-send.{service_id}", _before_send)
    # First, so that its False is the answer botocore reads before its own retry handler's delay.
    client.meta.events.register_first(f"needs-retry.{service_id}", _before_retry)
