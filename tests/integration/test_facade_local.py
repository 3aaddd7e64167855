"""The facade end to end in local mode: real gRPC channel -> server -> boto3 -> emulator over HTTP.

Each test checks the gRPC reply and what the emulator received on the wire.
"""

from __future__ import annotations

import re

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from grpc_status import rpc_status

from emulator import Emulator
from tests.helpers import MEMORY_ID, UNKNOWN_RECORD_ID, RunningService, record_create, timestamp
from tests.integration.helpers import full_record_create, metadata_of_every_kind, sample


def create_one(service: RunningService, text: str = "likes green tea", **fields: object) -> str:
    record = record_create(text, timestamp=timestamp(1_732_560_000, 123_456_000), **fields)
    response = service.stub.BatchCreate(
        pb.BatchCreateRequest(memory_id=MEMORY_ID, records=[record]), timeout=10
    )
    assert len(response.successful_records) == 1, response
    return response.successful_records[0].memory_record_id


def test_create_update_get_round_trip(local_service: RunningService, emulator: Emulator) -> None:
    metadata = metadata_of_every_kind()
    create = pb.BatchCreateRequest(
        memory_id=MEMORY_ID, client_token="create-token-0001", records=[full_record_create()]
    )
    created = local_service.stub.BatchCreate(create, timeout=10)
    assert list(created.failed_records) == []
    [result] = created.successful_records
    assert result.status == pb.MEMORY_RECORD_STATUS_SUCCEEDED
    assert result.request_identifier == "r1"
    assert result.memory_record_id.startswith("mem-")
    assert 40 <= len(result.memory_record_id) <= 50
    record_id = result.memory_record_id

    [sent] = emulator.received("BatchCreateMemoryRecords")
    assert sent.method == "POST"
    assert sent.path == f"/memories/{MEMORY_ID}/memoryRecords/batchCreate"
    # Derived from the caller's token and the call's records (tests/integration/test_batches.py).
    body = dict(sent.json)
    assert re.fullmatch(r"[0-9a-f]{64}", body.pop("clientToken"))
    assert body == {
        "records": [
            {
                "requestIdentifier": "r1",
                "namespaces": ["users/alice"],
                "content": {"text": "likes green tea"},
                "timestamp": 1732560000.123456,
                "memoryStrategyId": "manual",
                "metadata": {
                    "topic": {"stringValue": "drinks"},
                    "tags": {"stringListValue": ["tea", "green"]},
                    "weight": {"numberValue": 0.75},
                    "seen": {"dateTimeValue": 1700000000.000005},
                },
            }
        ],
    }
    # Signed, with the dummy local credentials, whatever AWS_* variables the environment holds.
    assert sent.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=local/")

    update = pb.BatchUpdateRequest(
        memory_id=MEMORY_ID,
        records=[
            pb.MemoryRecordUpdate(
                memory_record_id=record_id,
                timestamp=timestamp(1_732_600_000, 999_999_000),
                content=pb.MemoryContent(text="prefers oolong now"),
            ),
            pb.MemoryRecordUpdate(memory_record_id=UNKNOWN_RECORD_ID, timestamp=timestamp(1_732_600_000)),
        ],
    )
    updated = local_service.stub.BatchUpdate(update, timeout=10)
    assert [(r.memory_record_id, r.status) for r in updated.successful_records] == [
        (record_id, pb.MEMORY_RECORD_STATUS_SUCCEEDED)
    ]
    [failed] = updated.failed_records
    assert failed.memory_record_id == UNKNOWN_RECORD_ID
    assert failed.status == pb.MEMORY_RECORD_STATUS_FAILED
    assert failed.HasField("error_code")
    assert failed.error_message

    [sent_update] = emulator.received("BatchUpdateMemoryRecords")
    assert sent_update.path == f"/memories/{MEMORY_ID}/memoryRecords/batchUpdate"
    # Only the fields that were set travel: no namespaces, metadata or strategy on either record.
    assert sent_update.json == {
        "records": [
            {
                "memoryRecordId": record_id,
                "timestamp": 1732600000.999999,
                "content": {"text": "prefers oolong now"},
            },
            {"memoryRecordId": UNKNOWN_RECORD_ID, "timestamp": 1732600000},
        ]
    }

    got = local_service.stub.Get(pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=record_id), timeout=10)
    record = got.memory_record
    assert record.memory_record_id == record_id
    assert record.content.text == "prefers oolong now"
    assert record.memory_strategy_id == "manual"
    assert list(record.namespaces) == ["users/alice"]
    assert record.timestamp == timestamp(1_732_600_000, 999_999_000)
    assert record.HasField("created_at")
    assert not record.HasField("expires_at")
    assert dict(record.metadata) == metadata
    [sent_get] = emulator.received("GetMemoryRecord")
    assert (sent_get.method, sent_get.path, sent_get.body) == (
        "GET",
        f"/memories/{MEMORY_ID}/memoryRecord/{record_id}",
        b"",
    )


def test_client_token_is_generated_when_unset(local_service: RunningService, emulator: Emulator) -> None:
    create_one(local_service)
    [sent] = emulator.received("BatchCreateMemoryRecords")
    # botocore fills the model's idempotency token; it is the only member the caller did not set.
    assert set(sent.json) == {"records", "clientToken"}
    assert len(sent.json["clientToken"]) >= 32


def test_get_with_namespace(local_service: RunningService, emulator: Emulator) -> None:
    record_id = create_one(local_service)
    request = pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=record_id, namespace="users/alice")
    assert local_service.stub.Get(request, timeout=10).memory_record.memory_record_id == record_id
    assert emulator.received("GetMemoryRecord")[-1].query == {"namespace": ["users/alice"]}
    wrong = pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=record_id, namespace="users/bob")
    with pytest.raises(grpc.RpcError) as caught:
        local_service.stub.Get(wrong, timeout=10)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_expiry_round_trip(local_service: RunningService) -> None:
    record_id = create_one(local_service)
    expire = pb.BatchUpdateRequest(
        memory_id=MEMORY_ID,
        record_expiry_specification=pb.RecordExpirySpecification(record_expiry_duration_days=40),
        records=[pb.MemoryRecordUpdate(memory_record_id=record_id, timestamp=timestamp(1_732_600_000))],
    )
    local_service.stub.BatchUpdate(expire, timeout=10)
    get = pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=record_id)
    record = local_service.stub.Get(get, timeout=10).memory_record
    assert record.HasField("expires_at")
    assert record.expires_at.seconds - record.created_at.seconds >= 39 * 86400

    keep = pb.BatchUpdateRequest(
        memory_id=MEMORY_ID,
        record_expiry_specification=pb.RecordExpirySpecification(action=pb.RECORD_EXPIRY_ACTION_REMOVE),
        records=[pb.MemoryRecordUpdate(memory_record_id=record_id, timestamp=timestamp(1_732_600_001))],
    )
    local_service.stub.BatchUpdate(keep, timeout=10)
    assert not local_service.stub.Get(get, timeout=10).memory_record.HasField("expires_at")


def test_unknown_memory_is_not_found(local_service: RunningService) -> None:
    request = pb.GetRequest(memory_id="nosuch_memory-0000000000", memory_record_id=UNKNOWN_RECORD_ID)
    with pytest.raises(grpc.RpcError) as caught:
        local_service.stub.Get(request, timeout=10)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    status = rpc_status.from_call(caught.value)
    assert status is not None and status.details


def test_unknown_record_is_not_found(local_service: RunningService) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        local_service.stub.Get(
            pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=UNKNOWN_RECORD_ID), timeout=10
        )
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_invalid_input_is_invalid_argument_and_never_echoes_text(local_service: RunningService) -> None:
    secret = "my card number is 4111 1111 1111 1111"
    request = pb.BatchCreateRequest(
        memory_id=MEMORY_ID,
        records=[pb.MemoryRecordCreate(request_identifier="bad id!", content=pb.MemoryContent(text=secret))],
    )
    with pytest.raises(grpc.RpcError) as caught:
        local_service.stub.BatchCreate(request, timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert secret not in (caught.value.details() or "")
    status = rpc_status.from_call(caught.value)
    assert status is not None
    assert all(secret.encode() not in detail.value for detail in status.details)


def test_the_largest_batch_aws_accepts_fits(local_service: RunningService, emulator: Emulator) -> None:
    text = "記" * 16_000  # 3 bytes in UTF-8: 100 such records are 4.8 MB, over gRPC's 4 MiB default
    records = [
        pb.MemoryRecordCreate(
            request_identifier=f"r{i}",
            content=pb.MemoryContent(text=text),
            timestamp=timestamp(1_732_560_000),
        )
        for i in range(100)
    ]
    response = local_service.stub.BatchCreate(
        pb.BatchCreateRequest(memory_id=MEMORY_ID, records=records), timeout=60
    )
    assert len(response.successful_records) == 100
    record_id = response.successful_records[0].memory_record_id
    got = local_service.stub.Get(pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=record_id), timeout=10)
    assert got.memory_record.content.text == text


def test_exactly_one_throttle_is_retried_once_and_the_call_succeeds(
    local_service: RunningService, emulator: Emulator
) -> None:
    """The emulator's throttle_first (as LOCAL_FAULTS=throttle_first=1 sets it): the one throttled attempt is
    retried by botocore, the RPC succeeds, and the metrics count one throttle and one retry."""
    operation = "BatchCreateMemoryRecords"
    before = {
        name: sample(local_service, name, operation=operation)
        for name in ("agentcore_upstream_throttles_total", "agentcore_upstream_retries_total")
    }
    emulator.faults.configure(throttle_first=1)
    reply = local_service.stub.BatchCreate(
        pb.BatchCreateRequest(memory_id=MEMORY_ID, records=[record_create()]), timeout=10
    )
    assert len(reply.successful_records) == 1 and not reply.failed_records
    assert sample(local_service, "agentcore_upstream_throttles_total", operation=operation) == (
        before["agentcore_upstream_throttles_total"] + 1
    )
    assert sample(local_service, "agentcore_upstream_retries_total", operation=operation) == (
        before["agentcore_upstream_retries_total"] + 1
    )
