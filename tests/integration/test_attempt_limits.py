"""Every AWS attempt ends on time and every reply stays within what the request allows, whatever the
upstream sends or withholds: the facade in aws mode against the wire stub, which trickles bodies a
byte at a time, never ends them, goes silent after its headers, answers late, or floods.
The stand-in sees when the facade closes each connection, and how many bytes it sent."""

from __future__ import annotations

import json
import time
from typing import Any

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from google.rpc import error_details_pb2

from service.api.operations import SERVICE_NAME
from tests.helpers import MEMORY_ID, RECORD_ID, AwsServiceFactory, RunningService
from tests.integration.helpers import details_of, sample
from tests.wire_stub import (
    CannedResponse,
    StubRequest,
    WireStub,
    aws_reply,
    flood,
    streamed,
    trickle,
)

GET = pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID)
LIST = pb.ListRequest(memory_id=MEMORY_ID, namespace="users/alice")
# How long past its deadline an attempt may last.
SLACK_SECONDS = 0.1


def answer_get(get: CannedResponse, other: CannedResponse | None = None) -> Any:
    """A stub policy: `get` for GetMemoryRecord, `other` (an empty List page) for anything else."""
    healthy = other or aws_reply(200, {"memoryRecordSummaries": []})

    def respond(request: StubRequest) -> CannedResponse:
        return get if request.method == "GET" else healthy

    return respond


def error_of(future: Any, seconds: float = 10.0) -> grpc.RpcError | None:
    """How an RPC started as a future ended; a test that waits longer fails (and cancels it)."""
    try:
        future.result(timeout=seconds)
    except grpc.RpcError as error:
        return error
    except grpc.FutureTimeoutError:
        future.cancel()
        raise AssertionError(f"the RPC had not ended after {seconds} s") from None
    return None


def test_trickling_replies_end_at_each_callers_deadline_and_free_their_turns(
    aws_service_factory: AwsServiceFactory, wire_stub: WireStub
) -> None:
    """16 callers (as many as turns) with 1 s deadlines, each answered a byte every 0.5 s for ever:
    each attempt ends within 100 ms of its deadline (the stand-in sees the connection closed), none is
    retried, and List calls queued behind them succeed within 1 s of those deadlines."""
    service = aws_service_factory(max_workers=16, max_concurrent_rpcs=64, aws_max_attempts=3)
    wire_stub.respond = answer_get(streamed(trickle(0.5, endless=True)))
    deadline_seconds = 1.0
    started = time.monotonic()
    gets = [service.stub.Get.future(GET, timeout=deadline_seconds) for _ in range(16)]
    last_deadline = time.monotonic() + deadline_seconds
    time.sleep(0.3)  # every turn is held by a trickle now
    lists = [service.stub.List.future(LIST, timeout=10) for _ in range(4)]
    listed_at: list[float] = []
    for future in lists:
        future.add_done_callback(lambda _: listed_at.append(time.monotonic()))
    for future in gets:
        error = error_of(future)
        assert error is not None and error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    for future in lists:
        assert error_of(future) is None
    wait_until(lambda: len(wire_stub.exchanges) == 16 and all(e.closed_at for e in wire_stub.exchanges))
    closed = [exchange.closed_at for exchange in wire_stub.exchanges]
    assert all(started + deadline_seconds <= at <= last_deadline + SLACK_SECONDS for at in closed if at), [
        round((at or 0) - started, 3) for at in closed
    ]
    assert max(listed_at) <= last_deadline + 1.0
    assert sum(1 for request in wire_stub.requests if request.method == "GET") == 16  # no retry


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(streamed(trickle(0.2, endless=True)), id="a byte every 0.2 s"),
        pytest.param(streamed(lambda: iter([(30.0, b"{}")])), id="headers then silence"),
        pytest.param(aws_reply(200, {}, delay_seconds=5), id="a reply after 5 s"),
    ],
)
def test_without_a_deadline_each_attempt_is_cut_at_the_attempt_timeout(
    aws_service_factory: AwsServiceFactory, wire_stub: WireStub, reply: CannedResponse
) -> None:
    """No caller deadline (the default one is 60 s): two attempts of 0.4 s, then UNAVAILABLE AWS_TIMEOUT."""
    service = aws_service_factory(aws_attempt_timeout_seconds=0.4, aws_max_attempts=2)
    wire_stub.respond = answer_get(reply)
    started = time.monotonic()
    error = error_of(service.stub.Get.future(GET))  # no deadline
    elapsed = time.monotonic() - started
    assert error is not None and error.code() is grpc.StatusCode.UNAVAILABLE
    assert details_of(error)[error_details_pb2.ErrorInfo].reason == "AWS_TIMEOUT"
    # Two attempts, and botocore's first back-off (at most 50 ms) between them.
    assert 0.8 <= elapsed <= 0.8 + 0.05 + 2 * SLACK_SECONDS, elapsed
    assert len(wire_stub.requests) == 2


def test_turns_held_past_the_attempt_timeout_are_stuck_and_the_next_rpc_is_refused_at_once(
    aws_service_factory: AwsServiceFactory, wire_stub: WireStub
) -> None:
    service = aws_service_factory(max_workers=2, aws_attempt_timeout_seconds=0.3, aws_max_attempts=3)
    wire_stub.respond = answer_get(streamed(trickle(0.1, endless=True)))
    held = [service.stub.Get.future(GET) for _ in range(2)]  # each about 3 x 0.3 s
    wait_until(lambda: stuck(service) == 2, seconds=0.6)
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as refused:
        service.stub.Get(GET, timeout=30)
    assert time.monotonic() - started < 0.1
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    details = details_of(refused.value)
    assert details[error_details_pb2.ErrorInfo].reason == "SERVER_OVERLOADED"
    assert error_details_pb2.RetryInfo in details
    for future in held:
        error = error_of(future)
        assert error is not None and error.code() is grpc.StatusCode.UNAVAILABLE
    wait_until(lambda: stuck(service) == 0)
    labels = {"grpc_type": "unary", "grpc_service": SERVICE_NAME, "grpc_method": "Get"}
    assert sample(service, "agentcore_grpc_server_requests_refused_total", **labels, reason="turns") == 1
    assert service.stub.List(LIST, timeout=5) == pb.ListResponse()  # turns are free again


def stuck(service: RunningService) -> float:
    return sample(service, "agentcore_upstream_turns_stuck")


def wait_until(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


OVERSIZED_BYTES = 50 * 1024 * 1024


@pytest.mark.parametrize("declared", [True, False], ids=["Content-Length", "chunked"])
def test_a_reply_larger_than_the_model_allows_is_refused_unread(
    aws_service_factory: AwsServiceFactory, wire_stub: WireStub, declared: bool
) -> None:
    """A 50 MB answer to a Get (whose largest reply is about 370 KiB): UNAVAILABLE AWS_MALFORMED_RESPONSE
    at once, not retried, and the facade took a small part of it. Declared by Content-Length, no byte of
    the body is read; chunked, reading stops at the limit."""
    service = aws_service_factory(aws_max_attempts=3)
    length = OVERSIZED_BYTES if declared else None
    wire_stub.respond = answer_get(streamed(flood(OVERSIZED_BYTES), declared_length=length))
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as raised:
        service.stub.Get(GET, timeout=30)
    assert time.monotonic() - started < 2
    assert raised.value.code() is grpc.StatusCode.UNAVAILABLE
    assert details_of(raised.value)[error_details_pb2.ErrorInfo].reason == "AWS_MALFORMED_RESPONSE"
    assert len(wire_stub.requests) == 1
    wait_until(lambda: len(wire_stub.exchanges) == 1 and wire_stub.exchanges[0].closed_at is not None)
    sent = wire_stub.exchanges[0].bytes_sent
    # What the kernel's socket buffers took beside what the facade read (a few MiB on loopback).
    assert sent < OVERSIZED_BYTES / 5, sent


def test_a_reply_at_the_limit_of_the_model_is_read(
    aws_service_factory: AwsServiceFactory, wire_stub: WireStub
) -> None:
    """The cap is no tighter than the model: a Get reply with 16,000 characters of text, each outside
    the Basic Multilingual Plane and escaped as a surrogate pair (12 bytes on the wire), is answered."""
    service = aws_service_factory()
    text = "\U0001f375" * 16_000
    record = {
        "memoryRecordId": RECORD_ID,
        "content": {"text": text},
        "memoryStrategyId": "s" * 100,
        "namespaces": ["n" * 1024],
        "createdAt": 1.7e9,
    }
    body = json.dumps({"memoryRecord": record}).encode()
    assert len(body) > 192_000
    wire_stub.respond = answer_get(CannedResponse(200, body, {"x-amzn-RequestId": "req-ok"}))
    assert service.stub.Get(GET, timeout=10).memory_record.content.text == text
