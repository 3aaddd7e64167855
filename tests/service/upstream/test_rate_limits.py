"""upstream/rate_limits.py: UPSTREAM_RATE_LIMITS parsed and checked, each attempt taking a token, a wait
within the deadline, and a refusal that says when to come back. Over the wire, two facades sharing a
Redis: tests/integration/test_upstream_rate.py."""

from __future__ import annotations

import time

import grpc
import pytest
from google.rpc import error_details_pb2

from service import calls, errors
from service.rate_counters import Counters, open_storage
from service.upstream import outcomes, rate_limits
from tests.service.test_errors import unpack

OPERATIONS = {"BatchUpdateMemoryRecords", "GetMemoryRecord"}


def test_the_setting_names_operations_and_positive_rates() -> None:
    assert rate_limits.parse(" BatchUpdateMemoryRecords=20, GetMemoryRecord=0.5,", OPERATIONS) == {
        "BatchUpdateMemoryRecords": 20.0,
        "GetMemoryRecord": 0.5,
    }
    assert rate_limits.parse("", OPERATIONS) == {}
    for wrong in (
        "Nope=1",
        "GetMemoryRecord",
        "GetMemoryRecord=x",
        "GetMemoryRecord=0",
        "GetMemoryRecord=inf",
    ):
        with pytest.raises(ValueError, match=r"GetMemoryRecord|Nope"):
            rate_limits.parse(wrong, OPERATIONS)


def a_call(seconds_left: float) -> calls.Call:
    call = calls.Call(context=None)
    call.deadline = time.perf_counter() + seconds_left
    return call


def send(limits: rate_limits.UpstreamRateLimits, call: calls.Call, operation: str) -> None:
    token = calls._current.set(call)
    try:
        limits._before_send(event_name=f"before-send.bedrock-agentcore.{operation}")
    finally:
        calls._current.reset(token)


def test_each_attempt_takes_a_token_and_waits_for_one_within_its_deadline() -> None:
    limits = rate_limits.UpstreamRateLimits({"GetMemoryRecord": 2}, Counters(open_storage("memory://")))
    started = time.monotonic()
    for _ in range(3):
        send(limits, a_call(5), "GetMemoryRecord")
    assert 0.5 < time.monotonic() - started < 1.5  # the third waited for the window to move
    for _ in range(20):
        send(limits, a_call(5), "BatchUpdateMemoryRecords")  # not limited


def test_a_wait_that_would_outlive_the_deadline_is_refused_with_when_to_come_back() -> None:
    limits = rate_limits.UpstreamRateLimits({"GetMemoryRecord": 1}, Counters(open_storage("memory://")))
    send(limits, a_call(5), "GetMemoryRecord")
    with pytest.raises(rate_limits.UpstreamRateLimitedError) as refused:
        send(limits, a_call(0.2), "GetMemoryRecord")
    assert 0 < refused.value.retry_after <= 1.0
    status = errors.to_status(refused.value)
    assert status.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    _, details = unpack(status)
    assert details[error_details_pb2.ErrorInfo].reason == "UPSTREAM_RATE_LIMITED"
    assert 0 < details[error_details_pb2.RetryInfo].retry_delay.ToTimedelta().total_seconds() <= 1.0
    # A chunk of a batch refused so fails its records alone, as never sent.
    failure = outcomes.classify(refused.value)
    assert (failure.row.code, failure.row.reason, failure.outcome) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "UPSTREAM_RATE_LIMITED",
        outcomes.Outcome.CANCELLED,
    )
