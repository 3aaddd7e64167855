"""Batches of any size, end to end: gRPC -> facade -> boto3 -> emulator over HTTP. A batch beyond 100
records reaches AWS as calls of at most 100, and a call that fails as a whole is reported per record.

The emulator's fault injection fails chosen calls: `fail_calls_holding` applies a Faults only to the
calls whose body holds a given marker (a record's request identifier or id)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from google.rpc import error_details_pb2

from emulator import Emulator, FaultConfig
from emulator.faults import Faults
from emulator.restjson.wire import ReceivedRequest
from service.upstream import aws
from tests.helpers import MEMORY_ID, RunningService, record_create, run_service, settings_for_tests
from tests.integration.helpers import details_of, sample

CREATE = "BatchCreateMemoryRecords"
UPDATE = "BatchUpdateMemoryRecords"
NOT_APPLIED, UNKNOWN = pb.RECORD_OUTCOME_NOT_APPLIED, pb.RECORD_OUTCOME_UNKNOWN


def service_for(emulator: Emulator, **overrides: Any) -> Iterator[RunningService]:
    settings = settings_for_tests(**{"aws_max_attempts": 1, **overrides})
    return run_service(settings, aws.create_client(settings, endpoint_url=emulator.endpoint_url))


@pytest.fixture
def service(emulator: Emulator) -> Iterator[RunningService]:
    yield from service_for(emulator, batch_concurrency=4)


def creates(count: int, prefix: str = "r") -> list[pb.MemoryRecordCreate]:
    return [record_create(f"text {i}", request_identifier=f"{prefix}{i:04}") for i in range(count)]


def created_ids(service: RunningService, count: int) -> list[str]:
    reply = service.stub.BatchCreate(
        pb.BatchCreateRequest(memory_id=MEMORY_ID, records=creates(count)), timeout=30
    )
    assert len(reply.successful_records) == count, reply.failed_records[:1]
    return [result.memory_record_id for result in reply.successful_records]


def updates(record_ids: list[str]) -> pb.BatchUpdateRequest:
    now = record_create().timestamp
    return pb.BatchUpdateRequest(
        memory_id=MEMORY_ID,
        records=[
            pb.MemoryRecordUpdate(
                memory_record_id=record_id, timestamp=now, content=pb.MemoryContent(text="new")
            )
            for record_id in record_ids
        ],
    )


def fail_calls_holding(emulator: Emulator, marker: str, **config: Any) -> None:
    """From now on, the calls whose body holds `marker` meet the faults `config`; others are served."""
    faults = Faults(FaultConfig(**config))

    def hook(operation: str, request: ReceivedRequest) -> Any:
        return faults(operation, request) if marker.encode() in request.body else None

    emulator.set_before_operation_hook(hook)


def test_a_large_batch_is_sent_in_calls_of_100_and_merged_in_request_order(
    service: RunningService, emulator: Emulator
) -> None:
    reply = service.stub.BatchCreate(
        pb.BatchCreateRequest(memory_id=MEMORY_ID, records=creates(250)), timeout=30
    )
    assert [r.request_identifier for r in reply.successful_records] == [f"r{i:04}" for i in range(250)]
    assert list(reply.failed_records) == []
    sizes = sorted(len(sent.json["records"]) for sent in emulator.received(CREATE))
    assert sizes == [50, 100, 100]
    # One RPC, one upstream call per chunk, every record.
    rpc = {"grpc_type": "unary", "grpc_service": "agentcore.memory.v1.MemoryRecordsService"}
    assert sample(service, "grpc_server_handled_total", **rpc, grpc_method="BatchCreate", grpc_code="OK") == 1
    assert (
        sample(
            service, "agentcore_upstream_request_duration_seconds_count", operation=CREATE, outcome="success"
        )
        == 3
    )
    records = {"operation": CREATE, "outcome": "succeeded", "error_code": "none"}
    assert sample(service, "agentcore_records_total", **records) == 250


@pytest.mark.parametrize(
    ("faults", "error_code", "named", "outcome"),
    [
        # A 4xx: AWS applied nothing. A 5xx or no answer: AWS may have applied the call.
        ({"error_rates": {"ThrottledException": 1.0}}, 429, "ThrottledException", NOT_APPLIED),
        ({"error_rates": {"ServiceException": 1.0}}, 500, "ServiceException", UNKNOWN),
        ({"drop_connection_rate": 1.0}, 504, "AWS_UNREACHABLE", UNKNOWN),
    ],
)
def test_a_chunk_that_fails_as_a_whole_is_reported_per_record(
    service: RunningService,
    emulator: Emulator,
    faults: dict[str, Any],
    error_code: int,
    named: str,
    outcome: Any,
) -> None:
    record_ids = created_ids(service, 250)
    fail_calls_holding(emulator, record_ids[150], **faults)  # the second call: records 100 to 199
    reply = service.stub.BatchUpdate(updates(record_ids), timeout=30)
    assert [r.memory_record_id for r in reply.successful_records] == record_ids[:100] + record_ids[200:]
    assert [r.memory_record_id for r in reply.failed_records] == record_ids[100:200]
    for result in reply.failed_records:
        assert result.status == pb.MEMORY_RECORD_STATUS_FAILED
        assert result.error_code == error_code
        assert named in result.error_message
        assert result.outcome == outcome
    counted = "unknown" if outcome == UNKNOWN else "failed"
    labels = {"operation": UPDATE, "outcome": counted, "error_code": str(error_code)}
    assert sample(service, "agentcore_records_total", **labels) == 100


def test_when_every_chunk_fails_the_rpc_fails_with_the_first_chunks_error(
    service: RunningService, emulator: Emulator
) -> None:
    record_ids = created_ids(service, 150)
    server_error = Faults(FaultConfig(error_rates={"ServiceException": 1.0}))
    throttle = Faults(FaultConfig(error_rates={"ThrottledException": 1.0}))

    def hook(operation: str, request: ReceivedRequest) -> Any:
        # The first call (records 0-99) fails with a 500; the second, which answers first, with a 429.
        if record_ids[0].encode() in request.body:
            time.sleep(0.3)
            return server_error(operation, request)
        return throttle(operation, request)

    emulator.set_before_operation_hook(hook)
    with pytest.raises(grpc.RpcError) as caught:
        service.stub.BatchUpdate(updates(record_ids), timeout=30)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert details_of(caught.value)[error_details_pb2.ErrorInfo].reason == "AWS_SERVICE_ERROR"


def test_client_tokens_make_every_chunk_idempotent(service: RunningService, emulator: Emulator) -> None:
    request = pb.BatchCreateRequest(memory_id=MEMORY_ID, records=creates(150), client_token="caller-token-1")
    first = service.stub.BatchCreate(request, timeout=30)
    again = service.stub.BatchCreate(request, timeout=30)
    assert list(again.successful_records) == list(first.successful_records)  # nothing created twice
    tokens = [sent.json["clientToken"] for sent in emulator.received(CREATE)]
    assert len(set(tokens)) == 2 and sorted(tokens[:2]) == sorted(tokens[2:])
    assert all(re.fullmatch(r"[0-9a-f]{64}", token) for token in tokens)
    assert "caller-token-1" not in tokens
    # Retrying exactly the records of one call (say its call had no answer) replays that call.
    tail = pb.BatchCreateRequest(
        memory_id=MEMORY_ID, records=creates(150)[100:], client_token="caller-token-1"
    )
    assert list(service.stub.BatchCreate(tail, timeout=30).successful_records) == list(
        first.successful_records[100:]
    )
    # Retrying another subset with the same token: a fresh token for its content, no idempotency mismatch.
    other = pb.BatchCreateRequest(
        memory_id=MEMORY_ID, records=creates(150)[90:], client_token="caller-token-1"
    )
    assert len(service.stub.BatchCreate(other, timeout=30).successful_records) == 60
    assert emulator.received(CREATE)[-1].json["clientToken"] not in tokens


def test_without_a_client_token_boto3_makes_one_per_call(service: RunningService, emulator: Emulator) -> None:
    service.stub.BatchCreate(pb.BatchCreateRequest(memory_id=MEMORY_ID, records=creates(150)), timeout=30)
    tokens = {sent.json["clientToken"] for sent in emulator.received(CREATE)}
    assert len(tokens) == 2


def test_a_repeated_record_id_anywhere_in_the_batch_is_refused(
    service: RunningService, emulator: Emulator
) -> None:
    record_ids = created_ids(service, 200)
    request = updates([*record_ids, record_ids[3]])
    with pytest.raises(grpc.RpcError) as caught:
        service.stub.BatchUpdate(request, timeout=30)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "records[200].memory_record_id" in (caught.value.details() or "")
    assert record_ids[3] not in (caught.value.details() or "")
    assert emulator.received(UPDATE) == []


def upstream_calls(service: RunningService, operation: str) -> float:
    """The boto3 calls the facade began, whatever their outcome (one refused before sending included)."""
    return sum(
        sample(service, "agentcore_upstream_request_duration_seconds_count", operation=operation, outcome=o)
        for o in (
            "success",
            "client_error",
            "throttled",
            "server_error",
            "network_error",
            "cancelled",
            "other_error",
        )
    )


def concurrency_probe(emulator: Emulator, seconds: float) -> Callable[[], int]:
    """Each call takes `seconds`; returns a function telling the most calls seen at once."""
    lock = threading.Lock()
    state = {"now": 0, "most": 0}

    def hook(operation: str, request: ReceivedRequest) -> None:
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(seconds)
        with lock:
            state["now"] -= 1

    emulator.set_before_operation_hook(hook)
    return lambda: state["most"]


def test_batch_concurrency_bounds_the_calls_in_flight(emulator: Emulator) -> None:
    for service in service_for(emulator, batch_concurrency=3):
        most = concurrency_probe(emulator, 0.2)
        started = time.monotonic()
        reply = service.stub.BatchCreate(
            pb.BatchCreateRequest(memory_id=MEMORY_ID, records=creates(900)), timeout=30
        )
        elapsed = time.monotonic() - started
        assert len(reply.successful_records) == 900
        assert most() == 3
        assert 0.55 < elapsed < 3 * 0.2 * 3  # three waves of three, not nine calls in a row


def test_the_deadline_bounds_every_chunk(emulator: Emulator) -> None:
    for service in service_for(emulator, batch_concurrency=1):
        concurrency_probe(emulator, 0.4)
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            service.stub.BatchCreate(
                pb.BatchCreateRequest(memory_id=MEMORY_ID, records=creates(1000)), timeout=1
            )
        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 1.5
        time.sleep(0.6)
        assert len(emulator.received(CREATE)) <= 3, "no call starts after the deadline"
        assert upstream_calls(service, CREATE) <= 3


def test_the_default_deadline_between_chunks_is_deadline_exceeded_not_cancelled(emulator: Emulator) -> None:
    # The caller sets no deadline; DEFAULT_DEADLINE_SECONDS passes while chunks wait their turn.
    for service in service_for(emulator, batch_concurrency=1, default_deadline_seconds=1.0):
        concurrency_probe(emulator, 0.3)
        with pytest.raises(grpc.RpcError) as caught:
            service.stub.BatchCreate(pb.BatchCreateRequest(memory_id=MEMORY_ID, records=creates(1000)))
        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED, caught.value.details()
        time.sleep(0.4)
        assert len(emulator.received(CREATE)) <= 5, "no call starts after the deadline"


def test_a_cancelled_rpc_starts_no_further_chunk(emulator: Emulator) -> None:
    for service in service_for(emulator, batch_concurrency=1):
        concurrency_probe(emulator, 0.3)
        future = service.stub.BatchCreate.future(
            pb.BatchCreateRequest(memory_id=MEMORY_ID, records=creates(1000)), timeout=30
        )
        deadline = time.monotonic() + 5
        while not emulator.received(CREATE) and time.monotonic() < deadline:
            time.sleep(0.01)
        future.cancel()
        time.sleep(1.0)
        assert len(emulator.received(CREATE)) <= 2
        assert upstream_calls(service, CREATE) <= 2
