"""deadlines.py: the botocore hooks that refuse an attempt the caller cannot wait for and stop retries whose
back-off and attempt no longer fit in the caller's deadline; and that they are wired into a real client."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, TypeVar

import boto3
import botocore.config
import botocore.exceptions
import pytest

from service import calls
from service.api import operations
from service.upstream import attempts, deadlines
from tests.helpers import MEMORY_ID, UNKNOWN_RECORD_ID
from tests.wire_stub import WireStub, aws_error

T = TypeVar("T")
ATTEMPT_TIMEOUT_SECONDS = 10.0


def a_call(*, seconds_left: float | None = None, default_seconds_left: float | None = None) -> calls.Call:
    """A Call of Get whose caller's deadline (or the service's default one) is `seconds_left` away."""
    now = time.perf_counter()
    return calls.Call(
        context=None,
        full_method=operations.GET.full_method,
        deadline=None if seconds_left is None else now + seconds_left,
        default_deadline=None if default_seconds_left is None else now + default_seconds_left,
    )


def serving(call: calls.Call | None, hook: Callable[..., T], **kwargs: Any) -> T:
    """`hook(**kwargs)` as botocore runs it on the thread of an RPC serving `call` (None: no RPC), in a
    context of its own so that nothing leaks into other tests."""

    def run() -> T:
        if call is not None:
            calls.make_current(call)
        return hook(**kwargs)

    return contextvars.Context().run(run)


def http_response(status: int) -> Any:
    return SimpleNamespace(status_code=status, headers={})


def answered(status: int, code: str = "") -> tuple[Any, dict[str, Any]]:
    """The (http_response, parsed) pair botocore passes needs-retry for an answer."""
    parsed: dict[str, Any] = {"ResponseMetadata": {"HTTPStatusCode": status}}
    if code:
        parsed["Error"] = {"Code": code, "Message": "m"}
    return http_response(status), parsed


def before_retry(call: calls.Call | None, attempts_made: int = 1, **kwargs: Any) -> bool | None:
    return serving(call, deadlines._before_retry, attempts=attempts_made, **kwargs)


def read_timeout() -> botocore.exceptions.ReadTimeoutError:
    return botocore.exceptions.ReadTimeoutError(endpoint_url="http://127.0.0.1:1")


# --- before-send: whether an attempt starts --------------------------------------------------------


def test_an_attempt_outside_any_rpc_is_left_alone() -> None:
    assert serving(None, deadlines._before_send) is None


@pytest.mark.parametrize("seconds_left", [None, 30.0], ids=["no deadline", "time enough"])
def test_an_attempt_starts_when_the_caller_can_wait_for_it(seconds_left: float | None) -> None:
    assert serving(a_call(seconds_left=seconds_left), deadlines._before_send) is None


def test_an_attempt_after_the_callers_deadline_is_refused_as_deadline_exceeded() -> None:
    with pytest.raises(calls.DeadlineExceededError):
        serving(a_call(seconds_left=-1.0), deadlines._before_send)


def test_an_attempt_for_a_caller_that_cancelled_is_refused_as_cancelled() -> None:
    call = a_call(seconds_left=30.0)
    call.cancelled = True
    with pytest.raises(calls.CancelledError):
        serving(call, deadlines._before_send)


def test_an_attempt_with_less_than_the_minimum_left_of_the_default_deadline_is_refused() -> None:
    # The default deadline is not the caller's: the caller is not gone, yet there is no time to try.
    call = a_call(default_seconds_left=deadlines.MIN_ATTEMPT_SECONDS / 2)
    assert call.caller_gone() is None
    with pytest.raises(calls.DeadlineExceededError, match="before the upstream call"):
        serving(call, deadlines._before_send)


def test_an_attempt_with_half_a_millisecond_left_is_refused_rather_than_started() -> None:
    call = a_call(default_seconds_left=0.0005)
    with pytest.raises(calls.DeadlineExceededError, match="before the upstream call"):
        serving(call, deadlines._before_send)


def test_an_attempt_with_more_than_the_minimum_left_of_the_default_deadline_starts() -> None:
    assert serving(a_call(default_seconds_left=5.0), deadlines._before_send) is None


# --- needs-retry: whether botocore may retry --------------------------------------------------------


def test_no_rpc_leaves_the_retry_to_botocore_even_after_a_failure() -> None:
    assert before_retry(None, response=answered(500, "ServiceException")) is None


@pytest.mark.parametrize("status", [200, 204, 399])
def test_a_success_is_not_a_retry_decision_even_with_no_time_left(status: int) -> None:
    call = a_call(default_seconds_left=0.0001)
    assert before_retry(call, response=(http_response(status), {})) is None


def test_a_failure_without_any_deadline_leaves_the_retry_to_botocore() -> None:
    assert before_retry(a_call(), 10, response=answered(500, "ServiceException")) is None


def test_a_failure_for_a_caller_that_cancelled_is_not_retried() -> None:
    call = a_call(seconds_left=30.0)
    call.cancelled = True
    assert before_retry(call, response=answered(500, "ServiceException")) is False


def test_a_failure_after_the_callers_deadline_is_not_retried() -> None:
    assert before_retry(a_call(seconds_left=-1.0), response=answered(500, "ServiceException")) is False


def test_a_server_error_is_retried_when_its_short_back_off_and_an_attempt_fit() -> None:
    # 50 ms worst back-off after a first non-throttle failure: it fits in half a second.
    assert before_retry(a_call(seconds_left=0.5), response=answered(500, "ServiceException")) is None


def test_a_server_error_is_not_retried_when_even_its_short_back_off_does_not_fit() -> None:
    assert before_retry(a_call(seconds_left=0.02), response=answered(500, "ServiceException")) is False


@pytest.mark.parametrize(
    "response",
    [answered(429), answered(400, "ThrottlingException"), answered(400, "TooManyRequestsException")],
    ids=["HTTP 429", "ThrottlingException", "TooManyRequestsException"],
)
def test_a_throttle_is_not_retried_when_its_one_second_back_off_does_not_fit(response: Any) -> None:
    # Half a second is enough for another error's 50 ms back-off, not for a throttle's 1 s.
    assert before_retry(a_call(seconds_left=0.5), response=response) is False


def test_a_throttle_is_retried_when_its_one_second_back_off_and_an_attempt_fit() -> None:
    assert before_retry(a_call(seconds_left=2.0), response=answered(429)) is None


def test_a_client_error_that_is_no_throttle_gets_the_short_back_off() -> None:
    assert before_retry(a_call(seconds_left=0.5), response=answered(400, "ValidationException")) is None


def test_the_back_off_doubles_with_each_attempt() -> None:
    # Non-throttle worst back-off: 50 ms x 2^(attempts - 1): 400 ms at the 4th attempt, 800 ms at the 5th.
    failure = answered(503, "ServiceUnavailable")
    assert before_retry(a_call(seconds_left=0.6), 4, response=failure) is None
    assert before_retry(a_call(seconds_left=0.6), 5, response=failure) is False


def test_the_back_off_is_capped_at_twenty_seconds() -> None:
    # A throttle's 10th attempt would back off up to 512 s uncapped; the cap makes it 20 s.
    assert before_retry(a_call(seconds_left=25.0), 10, response=answered(429)) is None
    assert before_retry(a_call(seconds_left=19.0), 10, response=answered(429)) is False


def test_the_default_deadline_bounds_retries_when_the_caller_set_none() -> None:
    failure = answered(500, "ServiceException")
    assert before_retry(a_call(default_seconds_left=0.02), response=failure) is False
    assert before_retry(a_call(default_seconds_left=5.0), response=failure) is None


def test_the_nearer_of_the_callers_and_the_default_deadline_bounds_retries() -> None:
    call = a_call(seconds_left=30.0, default_seconds_left=0.5)
    assert before_retry(call, response=answered(429)) is False


def test_an_exception_without_an_answer_gets_the_short_back_off() -> None:
    assert before_retry(a_call(seconds_left=0.5), caught_exception=read_timeout()) is None
    assert before_retry(a_call(seconds_left=0.02), caught_exception=read_timeout()) is False


# --- an attempt the deadline cut off ----------------------------------------------------------------


def after_attempt(call: calls.Call, attempt: attempts.Attempt, **kwargs: Any) -> bool | None:
    """needs-retry on the thread that made `attempt` for `call`."""

    def run() -> bool | None:
        calls.make_current(call)
        attempts._current.set(attempt)
        return deadlines._before_retry(attempts=1, **kwargs)

    return contextvars.Context().run(run)


def test_an_attempt_the_callers_deadline_cut_off_fails_as_deadline_exceeded() -> None:
    # The attempt ended at the deadline (a read timeout, mostly); the RPC's own deadline is a hair away.
    ended = attempts.Attempt(ends_at=time.monotonic() - 0.001, by_deadline=True, max_reply_bytes=None)
    with pytest.raises(calls.DeadlineExceededError, match="while AWS was answering"):
        after_attempt(a_call(default_seconds_left=5.0), ended, caught_exception=read_timeout())


def test_an_attempt_ended_by_the_attempt_timeout_is_retried_as_botocore_decides() -> None:
    ended = attempts.Attempt(ends_at=time.monotonic() - 0.001, by_deadline=False, max_reply_bytes=None)
    assert after_attempt(a_call(seconds_left=30.0), ended, caught_exception=read_timeout()) is None


def test_an_attempt_bounded_by_the_deadline_that_failed_early_is_not_a_deadline() -> None:
    # By the deadline, but with time left: it failed for its own reason, and may be retried.
    early = attempts.Attempt(ends_at=time.monotonic() + 5.0, by_deadline=True, max_reply_bytes=None)
    assert after_attempt(a_call(seconds_left=5.0), early, caught_exception=read_timeout()) is None


def test_an_answer_from_an_attempt_cut_at_the_deadline_is_judged_by_its_back_off() -> None:
    # An HTTP answer (no exception) is not what the deadline cut off: no DeadlineExceededError.
    ended = attempts.Attempt(ends_at=time.monotonic() - 0.001, by_deadline=True, max_reply_bytes=None)
    assert (
        after_attempt(a_call(seconds_left=0.02), ended, response=answered(500, "ServiceException")) is False
    )


# --- wired into a real client -----------------------------------------------------------------------


def client_for(endpoint_url: str, max_attempts: int = 3) -> Any:
    """A boto3 client with the facade's hooks, as aws.create_client installs them."""
    client = boto3.client(
        "bedrock-agentcore",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": max_attempts}),
    )
    attempts.install(client, ATTEMPT_TIMEOUT_SECONDS)
    deadlines.register(client)
    return client


def get_unknown(client: Any, call: calls.Call) -> BaseException:
    def run() -> BaseException:
        calls.make_current(call)
        try:
            client.get_memory_record(memoryId=MEMORY_ID, memoryRecordId=UNKNOWN_RECORD_ID)
        except Exception as exc:
            return exc
        raise AssertionError("the call succeeded")

    return contextvars.Context().run(run)


def test_a_real_client_sends_nothing_once_the_callers_deadline_passed(wire_stub: WireStub) -> None:
    failure = get_unknown(client_for(wire_stub.endpoint_url), a_call(seconds_left=-1.0))
    assert isinstance(failure, calls.DeadlineExceededError)
    assert wire_stub.requests == []


def test_a_real_client_retries_server_errors_but_not_throttles_within_half_a_second(
    wire_stub: WireStub,
) -> None:
    client = client_for(wire_stub.endpoint_url, max_attempts=3)
    wire_stub.default = aws_error(500, "ServiceException", "busy")
    failure = get_unknown(client, a_call(seconds_left=0.5))
    assert isinstance(failure, botocore.exceptions.ClientError)
    assert len(wire_stub.requests) == 3  # 50 ms and 100 ms back-offs fit: every attempt was made

    wire_stub.requests.clear()
    wire_stub.default = aws_error(429, "ThrottlingException", "slow down")
    failure = get_unknown(client, a_call(seconds_left=0.5))
    assert isinstance(failure, botocore.exceptions.ClientError)
    assert failure.response["Error"]["Code"] == "ThrottlingException"  # the last error, not a deadline
    assert len(wire_stub.requests) == 1  # a 1 s back-off does not fit: no retry


def test_a_real_client_without_an_rpc_retries_as_botocore_alone_would(wire_stub: WireStub) -> None:
    wire_stub.default = aws_error(500, "ServiceException", "busy")
    client = client_for(wire_stub.endpoint_url, max_attempts=2)
    with pytest.raises(botocore.exceptions.ClientError):
        contextvars.Context().run(
            client.get_memory_record, memoryId=MEMORY_ID, memoryRecordId=UNKNOWN_RECORD_ID
        )
    assert len(wire_stub.requests) == 2
