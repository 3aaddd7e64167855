"""attempts.py: each HTTP attempt of a real boto3 client ends at the caller's deadline or the attempt timeout,
whatever the stand-in for AWS sends or withholds, and a reply larger than the model allows is refused."""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import boto3
import botocore.awsrequest
import botocore.config
import botocore.exceptions
import pytest

from service import calls
from service.api import operations, reply_sizes
from service.upstream import attempts
from tests.helpers import MEMORY_ID, RECORD_ID
from tests.wire_stub import CannedResponse, WireStub, aws_reply, flood, streamed, trickle

T = TypeVar("T")
ReadTimeout = botocore.exceptions.ReadTimeoutError
# The attempt timeout of a test whose attempt is to be cut off: short, so that it ends soon.
SHORT_ATTEMPT_SECONDS = 0.3
# Every other test's: an answer in time is never cut off, however slow the machine.
ATTEMPT_TIMEOUT_SECONDS = 10.0
# How long the stand-in takes over a reply that an attempt must not wait for: ten short attempts' time.
WITHHELD_SECONDS = 3.0
DELETE_LIMIT = reply_sizes.largest_reply_bytes("DeleteMemoryRecord", {})
GET_REPLY = {
    "memoryRecord": {
        "memoryRecordId": RECORD_ID,
        "content": {"text": "likes green tea"},
        "memoryStrategyId": "strategy-1",
        "namespaces": ["users/alice"],
        "createdAt": 1_732_560_000,
    }
}


def a_call(seconds_left: float | None) -> calls.Call:
    """A Call of Get whose caller's deadline is `seconds_left` away (None: no deadline)."""
    deadline = None if seconds_left is None else time.perf_counter() + seconds_left
    return calls.Call(
        context=None, full_method=operations.GET.full_method, deadline=deadline, default_deadline=None
    )


def client_for(
    stub: WireStub, *, max_attempts: int = 1, attempt_timeout_seconds: float = ATTEMPT_TIMEOUT_SECONDS
) -> Any:
    """A boto3 client with botocore's own long read timeout, its attempts bounded as aws.py bounds them."""
    client = boto3.client(
        "bedrock-agentcore",
        endpoint_url=stub.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore.config.Config(
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            connect_timeout=60,
            read_timeout=60,
        ),
    )
    attempts.install(client, attempt_timeout_seconds)
    return client


def serving(
    call: calls.Call | None, work: Callable[[], T]
) -> tuple[T | BaseException, attempts.Attempt | None]:
    """`work()` (a boto3 call) as the thread of an RPC serving `call` runs it (None: outside any RPC), in a
    context of its own: what it returned or raised, and the attempt it made last."""

    def run() -> tuple[T | BaseException, attempts.Attempt | None]:
        if call is not None:
            calls.make_current(call)
        try:
            outcome: T | BaseException = work()
        except Exception as exc:
            outcome = exc
        return outcome, attempts.current()

    return contextvars.Context().run(run)


def get(client: Any, call: calls.Call | None = None) -> Any:
    outcome, _ = serving(call, lambda: client.get_memory_record(memoryId=MEMORY_ID, memoryRecordId=RECORD_ID))
    return outcome


def delete(client: Any) -> Any:
    outcome, _ = serving(
        None, lambda: client.delete_memory_record(memoryId=MEMORY_ID, memoryRecordId=RECORD_ID)
    )
    return outcome


def get_body(padded_to: int | None = None) -> bytes:
    raw = json.dumps(GET_REPLY).encode()
    return raw if padded_to is None else raw + b" " * (padded_to - len(raw))


def delete_body(padded_to: int) -> bytes:
    """A valid DeleteMemoryRecord reply of exactly `padded_to` bytes (JSON whitespace after it)."""
    raw = json.dumps({"memoryRecordId": RECORD_ID}).encode()
    return raw + b" " * (padded_to - len(raw))


def ok(body: bytes) -> CannedResponse:
    return CannedResponse(200, body, {"x-amzn-RequestId": "req-ok"})


# --- the limits of one attempt -------------------------------------------------------------------


def test_an_attempt_outside_any_rpc_ends_at_the_attempt_timeout(wire_stub: WireStub) -> None:
    wire_stub.queue(aws_reply(200, GET_REPLY))
    client = client_for(wire_stub, attempt_timeout_seconds=42.0)
    started = time.monotonic()
    outcome, attempt = serving(
        None, lambda: client.get_memory_record(memoryId=MEMORY_ID, memoryRecordId=RECORD_ID)
    )
    assert not isinstance(outcome, BaseException)
    assert attempt is not None
    assert not attempt.by_deadline
    assert started + 42.0 <= attempt.ends_at <= time.monotonic() + 42.0


def test_an_attempt_for_a_caller_with_a_nearer_deadline_ends_at_that_deadline(wire_stub: WireStub) -> None:
    wire_stub.queue(aws_reply(200, GET_REPLY))
    client = client_for(wire_stub, attempt_timeout_seconds=42.0)
    call = a_call(seconds_left=5.0)
    started = time.monotonic()
    _, attempt = serving(call, lambda: client.get_memory_record(memoryId=MEMORY_ID, memoryRecordId=RECORD_ID))
    assert attempt is not None
    assert attempt.by_deadline
    assert started < attempt.ends_at < started + 6.0  # the deadline's 5 s, not the 42 s attempt timeout


def test_an_attempt_for_a_caller_with_a_farther_deadline_ends_at_the_attempt_timeout(
    wire_stub: WireStub,
) -> None:
    wire_stub.queue(aws_reply(200, GET_REPLY))
    client = client_for(wire_stub, attempt_timeout_seconds=5.0)
    started = time.monotonic()
    _, attempt = serving(
        a_call(seconds_left=60.0),
        lambda: client.get_memory_record(memoryId=MEMORY_ID, memoryRecordId=RECORD_ID),
    )
    assert attempt is not None
    assert not attempt.by_deadline
    assert started + 5.0 <= attempt.ends_at < started + 60.0


def test_an_attempt_carries_the_largest_reply_its_request_allows(wire_stub: WireStub) -> None:
    wire_stub.queue(aws_reply(200, {"successfulRecords": [], "failedRecords": []}))
    client = client_for(wire_stub)
    records = [{"memoryRecordId": f"mem-{index:036d}"} for index in range(3)]
    _, attempt = serving(
        None, lambda: client.batch_delete_memory_records(memoryId=MEMORY_ID, records=records)
    )
    assert attempt is not None
    expected = reply_sizes.largest_reply_bytes("BatchDeleteMemoryRecords", {"records": records})
    assert attempt.max_reply_bytes == expected > reply_sizes.MIN_REPLY_BYTES


def test_a_socket_timeout_is_lowered_to_the_time_the_attempt_has_left() -> None:
    attempt = attempts.Attempt(ends_at=time.monotonic() + 100.0, by_deadline=False, max_reply_bytes=None)
    assert 0 < attempts._bounded_timeout(None, attempt) <= 100.0  # no timeout: the time left
    assert 0 < attempts._bounded_timeout(1000, attempt) <= 100.0
    assert attempts._bounded_timeout(2.5, attempt) == 2.5


def test_no_socket_operation_starts_once_the_attempts_time_is_up() -> None:
    attempt = attempts.Attempt(ends_at=time.monotonic() - 0.001, by_deadline=True, max_reply_bytes=None)
    assert attempt.seconds_left() < 0
    with pytest.raises(TimeoutError):
        attempts._bounded_timeout(60.0, attempt)


# --- each attempt ends on time, whatever AWS does ------------------------------------------------


def test_a_reply_trickled_a_byte_at_a_time_ends_at_the_attempt_timeout(wire_stub: WireStub) -> None:
    """Each byte comes well within botocore's 60 s read timeout, the whole well after the attempt's end."""
    body = get_body()
    wire_stub.queue(streamed(trickle(WITHHELD_SECONDS / len(body), body), declared_length=len(body)))
    assert isinstance(get(client_for(wire_stub, attempt_timeout_seconds=SHORT_ATTEMPT_SECONDS)), ReadTimeout)


def test_a_chunked_reply_trickled_past_the_callers_deadline_ends_at_the_deadline(wire_stub: WireStub) -> None:
    body = get_body()
    wire_stub.queue(streamed(trickle(WITHHELD_SECONDS / len(body), body)))  # a chunk a byte
    client = client_for(wire_stub, attempt_timeout_seconds=60.0)
    assert isinstance(get(client, a_call(seconds_left=SHORT_ATTEMPT_SECONDS)), ReadTimeout)


def test_headers_then_silence_end_at_the_attempt_timeout(wire_stub: WireStub) -> None:
    body = get_body()

    def silence_then_body() -> Iterator[tuple[float, bytes]]:
        yield WITHHELD_SECONDS, body

    wire_stub.queue(streamed(silence_then_body, declared_length=len(body)))
    assert isinstance(get(client_for(wire_stub, attempt_timeout_seconds=SHORT_ATTEMPT_SECONDS)), ReadTimeout)


def test_a_reply_that_comes_after_the_attempts_end_is_not_waited_for(wire_stub: WireStub) -> None:
    wire_stub.queue(aws_reply(200, GET_REPLY, delay_seconds=WITHHELD_SECONDS))
    assert isinstance(get(client_for(wire_stub, attempt_timeout_seconds=SHORT_ATTEMPT_SECONDS)), ReadTimeout)


def test_no_connection_is_made_for_an_attempt_whose_time_is_up(wire_stub: WireStub) -> None:
    outcome = get(client_for(wire_stub), a_call(seconds_left=-1.0))
    assert isinstance(outcome, botocore.exceptions.ConnectTimeoutError)
    assert wire_stub.requests == []


def test_a_pooled_connection_sends_nothing_for_an_attempt_whose_time_is_up(wire_stub: WireStub) -> None:
    client = client_for(wire_stub)
    wire_stub.queue(aws_reply(200, GET_REPLY))
    assert not isinstance(get(client), BaseException)  # the connection is now in the pool
    outcome = get(client, a_call(seconds_left=-1.0))
    assert isinstance(outcome, botocore.exceptions.HTTPClientError)  # urllib3 saw the send refused
    assert len(wire_stub.requests) == 1


def test_a_reply_in_time_is_read_through_the_bounds(wire_stub: WireStub) -> None:
    client = client_for(wire_stub)
    wire_stub.queue(aws_reply(200, GET_REPLY), aws_reply(200, GET_REPLY))
    for _ in range(2):  # a new connection, then the pooled one
        reply = get(client, a_call(seconds_left=5.0))
        assert reply["memoryRecord"]["content"]["text"] == "likes green tea"


# --- a reply larger than the model allows ------------------------------------------------------------


def test_a_reply_of_exactly_the_largest_size_the_model_allows_is_read(wire_stub: WireStub) -> None:
    wire_stub.queue(ok(delete_body(DELETE_LIMIT)))
    assert delete(client_for(wire_stub))["memoryRecordId"] == RECORD_ID


def test_a_reply_declaring_one_byte_more_than_the_model_allows_is_refused_and_not_retried(
    wire_stub: WireStub,
) -> None:
    wire_stub.queue(*[ok(delete_body(DELETE_LIMIT + 1))] * 3)
    outcome = delete(client_for(wire_stub, max_attempts=3))
    assert isinstance(outcome, attempts.ReplyTooLargeError)
    assert f"declares {DELETE_LIMIT + 1} bytes, more than the {DELETE_LIMIT} allowed" in str(outcome)
    assert len(wire_stub.requests) == 1


def test_a_chunked_reply_far_over_the_limit_is_refused_before_it_is_read_whole_and_not_retried(
    wire_stub: WireStub,
) -> None:
    oversized = 64 * DELETE_LIMIT
    wire_stub.respond = lambda _: streamed(flood(oversized))
    outcome = delete(client_for(wire_stub, max_attempts=3))
    assert isinstance(outcome, attempts.ReplyTooLargeError)
    assert f"longer than the {DELETE_LIMIT} bytes" in str(outcome)
    assert len(wire_stub.requests) == 1


def test_a_chunked_reply_within_the_limit_is_read(wire_stub: WireStub) -> None:
    body = delete_body(DELETE_LIMIT)

    def in_pieces() -> Iterator[tuple[float, bytes]]:
        for start in range(0, len(body), 4096):
            yield 0.0, body[start : start + 4096]

    wire_stub.queue(streamed(in_pieces))
    assert delete(client_for(wire_stub))["memoryRecordId"] == RECORD_ID


# --- installed on one client ---------------------------------------------------------------------


def test_installing_bounds_only_the_client_it_is_given(wire_stub: WireStub) -> None:
    bounded = client_for(wire_stub)
    other = boto3.client(
        "bedrock-agentcore",
        endpoint_url=wire_stub.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    assert (
        bounded._endpoint.http_session._pool_classes_by_scheme["http"] is attempts._BoundedHTTPConnectionPool
    )
    assert (
        other._endpoint.http_session._pool_classes_by_scheme["http"]
        is botocore.awsrequest.AWSHTTPConnectionPool
    )
    assert other._endpoint.http_session._pool_classes_by_scheme["https"] is (
        botocore.awsrequest.AWSHTTPSConnectionPool
    )


def test_a_botocore_whose_session_has_no_pool_classes_is_refused_at_start(wire_stub: WireStub) -> None:
    client = boto3.client(
        "bedrock-agentcore",
        endpoint_url=wire_stub.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    del client._endpoint.http_session._pool_classes_by_scheme
    with pytest.raises(RuntimeError, match="no longer has pool classes"):
        attempts.install(client, ATTEMPT_TIMEOUT_SECONDS)
