"""aws_hooks.py: the botocore hooks of a real client, against the wire stub, counted in a fresh registry
(each attempt, throttles, retries, a retry the quota refused), and AWS's answer noted on the current Call."""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import botocore.exceptions
import pytest
from botocore.retries import standard

from emulator import Emulator
from service import calls
from service.api import operations
from service.settings import Backend
from service.telemetry.aws_hooks import AwsCallRecorder
from service.telemetry.metrics import Metrics
from service.upstream import aws
from tests.helpers import MEMORY_ID, RECORD_ID, settings_for_tests
from tests.wire_stub import CannedResponse, WireStub, aws_error, aws_reply

OPERATION = "DeleteMemoryRecord"
DELETED = {"memoryRecordId": RECORD_ID}  # DeleteMemoryRecord's reply, as the model allows it


@pytest.fixture(autouse=True)
def no_back_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore retries at once: the counts are the same, the test is faster."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@dataclasses.dataclass
class Recorded:
    """A client as the server builds it (aws.create_client), its calls recorded into `metrics`."""

    client: Any
    metrics: Metrics

    def sample(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, {"operation": OPERATION, **labels})

    def counts(self) -> dict[str, dict[str, float]]:
        """The upstream series of OPERATION that are not zero, by metric and its other label ("" if none)."""
        found: dict[str, dict[str, float]] = {}
        for family in self.metrics.registry.collect():
            for sample in family.samples:
                if not sample.name.startswith("agentcore_upstream_") or not sample.value:
                    continue
                if sample.labels.get("operation") != OPERATION or "le" in sample.labels:
                    continue
                if sample.name.endswith("_sum"):
                    continue
                other = {k: v for k, v in sample.labels.items() if k != "operation"}
                found.setdefault(sample.name, {})[",".join(other.values())] = sample.value
        return found

    def delete(self, call: calls.Call | None = None) -> str:
        """One DeleteMemoryRecord, on the thread of an RPC serving `call` (None: none); how it ended."""

        def run() -> str:
            if call is not None:
                calls.make_current(call)
            try:
                self.client.delete_memory_record(memoryId=MEMORY_ID, memoryRecordId=RECORD_ID)
            except botocore.exceptions.ClientError as failure:
                return str(failure.response["Error"]["Code"])
            except Exception as failure:  # a transport failure, the caller gone
                return type(failure).__name__
            return "ok"

        return contextvars.Context().run(run)  # nothing of the RPC leaks into other tests


def a_call() -> calls.Call:
    return calls.Call(context=None, full_method=operations.DELETE.full_method)


@pytest.fixture(scope="module")
def shared_stub() -> Iterator[WireStub]:
    with WireStub() as stub:
        yield stub


@pytest.fixture
def wire_stub(shared_stub: WireStub) -> WireStub:
    """conftest's wire stub, but one for the module (each stops in half a second), emptied for each test."""
    with shared_stub._lock:
        shared_stub._queue.clear()
        shared_stub.requests.clear()
    return shared_stub


def recorder_on(endpoint_url: str, attempts: int) -> Recorded:
    settings = settings_for_tests(backend=Backend.LOCAL, aws_max_attempts=attempts)
    client = aws.create_client(settings, endpoint_url=endpoint_url)
    metrics = Metrics(backend="local")
    AwsCallRecorder(metrics.aws_calls).instrument(client)
    return Recorded(client, metrics)


@pytest.fixture
def recorded(wire_stub: WireStub) -> Callable[..., Recorded]:
    """Builds a recorded client aimed at the wire stub, with `attempts` per call."""
    return lambda attempts=2: recorder_on(wire_stub.endpoint_url, attempts)


def test_a_call_aws_answers_counts_one_success_and_notes_its_request_id(
    recorded: Callable[..., Recorded], wire_stub: WireStub
) -> None:
    upstream = recorded()
    wire_stub.queue(aws_reply(200, DELETED))
    call = a_call()
    assert upstream.delete(call) == "ok"
    assert upstream.counts() == {"agentcore_upstream_request_duration_seconds_count": {"success": 1}}
    assert (call.aws_request_id, call.aws_error_code) == ("req-ok", None)


def test_a_call_outside_any_rpc_is_counted_all_the_same(
    recorded: Callable[..., Recorded], wire_stub: WireStub
) -> None:
    upstream = recorded()
    wire_stub.queue(aws_reply(200, DELETED), aws_error(404, "ResourceNotFoundException", "no such record"))
    assert [upstream.delete(), upstream.delete()] == ["ok", "ResourceNotFoundException"]
    assert upstream.counts() == {
        "agentcore_upstream_request_duration_seconds_count": {"success": 1, "client_error": 1},
        "agentcore_upstream_errors_total": {"ResourceNotFoundException": 1},
    }


def test_a_throttle_retried_away_counts_one_throttle_one_retry_and_a_success(
    recorded: Callable[..., Recorded], wire_stub: WireStub
) -> None:
    upstream = recorded(attempts=2)
    wire_stub.queue(aws_error(429, "ThrottledException", "slow down"), aws_reply(200, DELETED))
    call = a_call()
    assert upstream.delete(call) == "ok"
    assert upstream.counts() == {
        "agentcore_upstream_request_duration_seconds_count": {"success": 1},
        "agentcore_upstream_retries_total": {"": 1},
        "agentcore_upstream_throttles_total": {"": 1},
    }
    assert (call.aws_request_id, call.aws_error_code) == ("req-ok", None)  # the attempt that answered


def test_every_throttled_attempt_is_counted_and_the_call_once_as_throttled(
    recorded: Callable[..., Recorded], wire_stub: WireStub
) -> None:
    upstream = recorded(attempts=3)
    wire_stub.queue(*[aws_error(429, "ThrottledException", "slow down")] * 3)
    call = a_call()
    assert upstream.delete(call) == "ThrottledException"
    assert upstream.counts() == {
        "agentcore_upstream_request_duration_seconds_count": {"throttled": 1},
        "agentcore_upstream_errors_total": {"ThrottledException": 1},
        "agentcore_upstream_retries_total": {"": 2},
        "agentcore_upstream_throttles_total": {"": 3},
    }
    assert (call.aws_request_id, call.aws_error_code) == ("req-ThrottledException", "ThrottledException")
    assert len(wire_stub.requests) == 3


def test_a_429_is_a_throttle_whatever_its_error_code(
    recorded: Callable[..., Recorded], wire_stub: WireStub
) -> None:
    upstream = recorded(attempts=1)
    wire_stub.queue(aws_error(429, "SlowDownPleaseException", "slow down"))
    upstream.delete()
    assert upstream.sample("agentcore_upstream_throttles_total") == 1
    assert upstream.counts()["agentcore_upstream_request_duration_seconds_count"] == {"throttled": 1}


@pytest.mark.parametrize(
    ("status", "code", "outcome", "label"),
    [
        (400, "ValidationException", "client_error", "ValidationException"),
        (503, "ServiceException", "server_error", "ServiceException"),
        (400, "BrandNewFancyException", "client_error", "Other"),
        (500, "SomeInternalBlowupNobodyModelled", "server_error", "Other"),
    ],
)
def test_the_error_code_label_is_awss_code_only_when_it_is_a_known_one(
    recorded: Callable[..., Recorded], wire_stub: WireStub, status: int, code: str, outcome: str, label: str
) -> None:
    upstream = recorded(attempts=1)
    wire_stub.queue(aws_error(status, code, "refused"))
    call = a_call()
    assert upstream.delete(call) == code
    assert upstream.counts() == {
        "agentcore_upstream_request_duration_seconds_count": {outcome: 1},
        "agentcore_upstream_errors_total": {label: 1},
    }
    # The access log gets the same bounded code, and AWS's request id to quote.
    assert (call.aws_request_id, call.aws_error_code) == (f"req-{code}", label)


def test_attempts_that_got_no_answer_count_as_retries_and_the_call_as_a_network_error(
    recorded: Callable[..., Recorded], wire_stub: WireStub
) -> None:
    upstream = recorded(attempts=2)
    dropped = CannedResponse(200, b"", {}, drop_connection=True)
    wire_stub.queue(dropped, dropped)
    call = a_call()
    assert upstream.delete(call) == "ConnectionClosedError"
    assert upstream.counts() == {
        "agentcore_upstream_request_duration_seconds_count": {"network_error": 1},
        "agentcore_upstream_errors_total": {"ConnectionError": 1},
        "agentcore_upstream_retries_total": {"": 1},
    }
    assert (call.aws_request_id, call.aws_error_code) == (None, "ConnectionError")  # AWS never answered


def test_the_call_whose_retry_the_quota_refuses_is_counted_once(emulator: Emulator) -> None:
    """botocore's retry quota (standard mode) runs dry after some dozens of retried 5xx: the first call
    it refuses a retry is counted as refused, and its one attempt as no retry."""
    emulator.faults.configure(error_rates={"ServiceException": 1.0}, operations=frozenset({OPERATION}))
    upstream = recorder_on(emulator.endpoint_url, attempts=2)
    made = 0
    while not upstream.sample("agentcore_upstream_retries_refused_total"):
        assert made < 200, "the retry quota never ran dry"
        assert upstream.delete() == "ServiceException"
        made += 1
    assert made > 1
    assert upstream.counts() == {
        "agentcore_upstream_request_duration_seconds_count": {"server_error": made},
        "agentcore_upstream_errors_total": {"ServiceException": made},
        "agentcore_upstream_retries_total": {"": made - 1},
        "agentcore_upstream_retries_refused_total": {"": 1},
    }
    assert len(emulator.received(OPERATION)) == 2 * (made - 1) + 1


def test_a_call_refused_before_its_first_attempt_counts_as_cancelled_with_no_retry(
    recorded: Callable[..., Recorded], wire_stub: WireStub
) -> None:
    upstream = recorded(attempts=2)
    call = a_call()
    call.deadline = call.started_at  # the caller's deadline has passed
    assert upstream.delete(call) == "DeadlineExceededError"
    assert wire_stub.requests == []
    assert upstream.counts() == {
        "agentcore_upstream_request_duration_seconds_count": {"cancelled": 1},
        "agentcore_upstream_errors_total": {"DeadlineExceeded": 1},
    }
    assert (call.aws_request_id, call.aws_error_code) == (None, "DeadlineExceeded")


def test_a_retry_refused_before_sending_because_the_caller_left_is_no_retry(
    recorded: Callable[..., Recorded], wire_stub: WireStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = recorded(attempts=3)
    call = a_call()

    def caller_leaves_during_back_off(self: Any, context: Any) -> float:
        call.cancelled = True  # botocore has decided to retry; the next attempt is never sent
        return 0.0

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", caller_leaves_during_back_off)
    wire_stub.queue(aws_error(503, "ServiceException", "down"))
    assert upstream.delete(call) == "CancelledError"
    assert len(wire_stub.requests) == 1
    assert upstream.counts() == {
        "agentcore_upstream_request_duration_seconds_count": {"cancelled": 1},
        "agentcore_upstream_errors_total": {"Cancelled": 1},
    }
    assert call.aws_error_code == "Cancelled"


def test_a_later_success_on_the_same_rpc_keeps_the_earlier_failures_code(
    recorded: Callable[..., Recorded], wire_stub: WireStub
) -> None:
    """The calls of a large batch share one Call: the access log must still show the failure."""
    upstream = recorded(attempts=1)
    wire_stub.queue(aws_error(404, "ResourceNotFoundException", "gone"), aws_reply(200, DELETED))
    call = a_call()
    assert [upstream.delete(call), upstream.delete(call)] == ["ResourceNotFoundException", "ok"]
    assert (call.aws_request_id, call.aws_error_code) == ("req-ok", "ResourceNotFoundException")


def test_two_recorders_on_one_client_each_count_every_call_once(
    recorded: Callable[..., Recorded], wire_stub: WireStub
) -> None:
    first = recorded(attempts=2)
    second = Recorded(first.client, Metrics(backend="local"))
    AwsCallRecorder(second.metrics.aws_calls).instrument(first.client)
    wire_stub.queue(aws_error(429, "ThrottledException", "slow down"), aws_reply(200, DELETED))
    assert first.delete() == "ok"
    for upstream in (first, second):
        assert upstream.counts() == {
            "agentcore_upstream_request_duration_seconds_count": {"success": 1},
            "agentcore_upstream_retries_total": {"": 1},
            "agentcore_upstream_throttles_total": {"": 1},
        }


def test_instrumenting_a_client_twice_counts_each_call_once(
    recorded: Callable[..., Recorded], wire_stub: WireStub
) -> None:
    upstream = recorded(attempts=2)
    second = Metrics(backend="local")
    recorder = AwsCallRecorder(second.aws_calls)  # a second recorder, instrumented twice
    recorder.instrument(upstream.client)
    recorder.instrument(upstream.client)
    wire_stub.queue(aws_error(429, "ThrottledException", "slow down"), aws_reply(200, DELETED))
    assert upstream.delete() == "ok"
    for counted in (upstream, Recorded(upstream.client, second)):
        assert counted.counts() == {
            "agentcore_upstream_request_duration_seconds_count": {"success": 1},
            "agentcore_upstream_retries_total": {"": 1},
            "agentcore_upstream_throttles_total": {"": 1},
        }
