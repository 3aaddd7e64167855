"""The facade in aws mode against an independent stand-in for AWS at the wire (tests/wire_stub.py).

The client is configured only through the standard AWS variables (see the aws_service fixture), so
these tests also prove that boto3's own chain, AWS_REGION and AWS_ENDPOINT_URL_BEDROCK_AGENTCORE work.
"""

from __future__ import annotations

import re

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.helpers import MEMORY_ID, RunningService, timestamp
from tests.wire_stub import WireStub, aws_error, aws_reply

RECORD_A = "mem-aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"
RECORD_B = "mem-bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb-extra"


def test_batch_update_sends_exactly_what_was_set(aws_service: RunningService, wire_stub: WireStub) -> None:
    wire_stub.queue(
        aws_reply(
            200,
            {
                "successfulRecords": [{"memoryRecordId": RECORD_A, "status": "SUCCEEDED"}],
                "failedRecords": [
                    {"memoryRecordId": RECORD_B, "status": "FAILED", "errorCode": 404, "errorMessage": "gone"}
                ],
            },
        )
    )
    request = pb.BatchUpdateRequest(
        memory_id=MEMORY_ID,
        record_expiry_specification=pb.RecordExpirySpecification(record_expiry_duration_days=31),
        records=[
            pb.MemoryRecordUpdate(
                memory_record_id=RECORD_A,
                timestamp=timestamp(1_732_560_000, 500_000_000),
                namespaces=pb.NamespaceList(values=[]),
                source_namespaces=pb.NamespaceList(values=["users/alice"]),
                memory_strategy_id="s-1",
                metadata={"k": pb.MetadataValue(string_list_value=pb.StringList(values=["x"]))},
            ),
            pb.MemoryRecordUpdate(memory_record_id=RECORD_B, timestamp=timestamp(0)),
        ],
    )
    response = aws_service.stub.BatchUpdate(request, timeout=10)

    [sent] = wire_stub.requests
    assert (sent.method, sent.path) == ("POST", f"/memories/{MEMORY_ID}/memoryRecords/batchUpdate")
    assert sent.json == {
        "recordExpirySpecification": {"recordExpiryDurationDays": 31},
        "records": [
            {
                "memoryRecordId": RECORD_A,
                "timestamp": 1732560000.5,
                "namespaces": [],
                "sourceNamespaces": ["users/alice"],
                "memoryStrategyId": "s-1",
                "metadata": {"k": {"stringListValue": ["x"]}},
            },
            {"memoryRecordId": RECORD_B, "timestamp": 0},
        ],
    }
    # Signed with the credentials and the AWS_REGION of the environment, for the right service.
    authorization = sent.headers["authorization"]
    assert "Credential=AKIDEXAMPLE/" in authorization
    assert "/eu-west-3/bedrock-agentcore/aws4_request" in authorization

    assert response == pb.BatchUpdateResponse(
        successful_records=[
            pb.MemoryRecordResult(memory_record_id=RECORD_A, status=pb.MEMORY_RECORD_STATUS_SUCCEEDED)
        ],
        failed_records=[
            pb.MemoryRecordResult(
                memory_record_id=RECORD_B,
                status=pb.MEMORY_RECORD_STATUS_FAILED,
                error_code=404,
                error_message="gone",
                outcome=pb.RECORD_OUTCOME_NOT_APPLIED,  # AWS failed it in its reply
            )
        ],
    )


def test_batch_create_reply_maps_back_exactly(aws_service: RunningService, wire_stub: WireStub) -> None:
    wire_stub.queue(
        aws_reply(
            201,
            {
                "successfulRecords": [
                    {"memoryRecordId": RECORD_A, "status": "SUCCEEDED", "requestIdentifier": "r1"}
                ],
                "failedRecords": [
                    {
                        "memoryRecordId": RECORD_B,
                        "status": "FAILED",
                        "requestIdentifier": "r2",
                        "errorCode": 500,
                        "errorMessage": "try again",
                    }
                ],
            },
        )
    )
    request = pb.BatchCreateRequest(
        memory_id=MEMORY_ID,
        client_token="tok",
        records=[
            pb.MemoryRecordCreate(
                request_identifier=f"r{i}",
                content=pb.MemoryContent(text=f"t{i}"),
                timestamp=timestamp(1_700_000_000),
            )
            for i in (1, 2)
        ],
    )
    response = aws_service.stub.BatchCreate(request, timeout=10)
    body = dict(wire_stub.requests[0].json)
    assert re.fullmatch(r"[0-9a-f]{64}", body.pop("clientToken"))
    assert body == {
        "records": [
            {
                "requestIdentifier": f"r{i}",
                "namespaces": [],
                "content": {"text": f"t{i}"},
                "timestamp": 1700000000,
            }
            for i in (1, 2)
        ],
    }
    assert response.successful_records[0] == pb.MemoryRecordResult(
        memory_record_id=RECORD_A, status=pb.MEMORY_RECORD_STATUS_SUCCEEDED, request_identifier="r1"
    )
    assert response.failed_records[0] == pb.MemoryRecordResult(
        memory_record_id=RECORD_B,
        status=pb.MEMORY_RECORD_STATUS_FAILED,
        request_identifier="r2",
        error_code=500,
        error_message="try again",
        outcome=pb.RECORD_OUTCOME_NOT_APPLIED,
    )


def test_get_reply_with_every_member(aws_service: RunningService, wire_stub: WireStub) -> None:
    wire_stub.queue(
        aws_reply(
            200,
            {
                "memoryRecord": {
                    "memoryRecordId": RECORD_A,
                    "content": {"text": "likes tea"},
                    "memoryStrategyId": "semantic-1",
                    "namespaces": ["users/alice"],
                    "createdAt": 1732560000.000001,
                    "timestamp": 1732559999.25,
                    "metadata": {
                        "n": {"numberValue": 3},
                        "d": {"dateTimeValue": 1600000000.5},
                        "s": {"stringValue": "x"},
                        "l": {"stringListValue": ["a", "b"]},
                    },
                    "expiresAt": 1800000000,
                }
            },
        )
    )
    response = aws_service.stub.Get(
        pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_A, namespace="users/alice"), timeout=10
    )
    [sent] = wire_stub.requests
    assert (sent.method, sent.path, sent.body) == (
        "GET",
        f"/memories/{MEMORY_ID}/memoryRecord/{RECORD_A}?namespace=users%2Falice",
        b"",
    )
    assert response.memory_record == pb.MemoryRecord(
        memory_record_id=RECORD_A,
        content=pb.MemoryContent(text="likes tea"),
        memory_strategy_id="semantic-1",
        namespaces=["users/alice"],
        created_at=timestamp(1_732_560_000, 1_000),
        timestamp=timestamp(1_732_559_999, 250_000_000),
        metadata={
            "n": pb.MetadataValue(number_value=3),
            "d": pb.MetadataValue(date_time_value=timestamp(1_600_000_000, 500_000_000)),
            "s": pb.MetadataValue(string_value="x"),
            "l": pb.MetadataValue(string_list_value=pb.StringList(values=["a", "b"])),
        },
        expires_at=timestamp(1_800_000_000),
    )


def test_get_reply_without_optional_members(aws_service: RunningService, wire_stub: WireStub) -> None:
    wire_stub.queue(
        aws_reply(
            200,
            {
                "memoryRecord": {
                    "memoryRecordId": RECORD_A,
                    "content": {"text": "x"},
                    "namespaces": [],
                    "createdAt": 1,
                }
            },
        )
    )
    record = aws_service.stub.Get(
        pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_A), timeout=10
    ).memory_record
    assert "namespace" not in wire_stub.requests[0].path
    for field in ("memory_strategy_id", "timestamp", "expires_at"):
        assert not record.HasField(field), field
    assert record.created_at == timestamp(1)


@pytest.mark.parametrize(
    ("status", "aws_code", "grpc_code", "shown"),
    [
        (404, "ResourceNotFoundException", grpc.StatusCode.NOT_FOUND, "upstream says no"),
        (400, "ValidationException", grpc.StatusCode.INVALID_ARGUMENT, "upstream says no"),
        # AWS names the service's own role and account in this message: callers get a fixed one.
        (
            403,
            "AccessDeniedException",
            grpc.StatusCode.PERMISSION_DENIED,
            "not allowed to call GetMemoryRecord",
        ),
    ],
)
def test_aws_errors_map_to_grpc_codes(
    aws_service: RunningService,
    wire_stub: WireStub,
    status: int,
    aws_code: str,
    grpc_code: grpc.StatusCode,
    shown: str,
) -> None:
    wire_stub.queue(aws_error(status, aws_code, "upstream says no"))
    with pytest.raises(grpc.RpcError) as caught:
        aws_service.stub.Get(pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_A), timeout=10)
    assert caught.value.code() is grpc_code
    assert shown in (caught.value.details() or "")
    status_proto = rpc_status.from_call(caught.value)
    assert status_proto is not None
    info = error_details_pb2.ErrorInfo()
    assert status_proto.details[0].Unpack(info)
    assert info.domain == "bedrock-agentcore.amazonaws.com"
    assert info.metadata["awsErrorCode"] == aws_code
    assert info.metadata["awsRequestId"] == f"req-{aws_code}"
    assert info.metadata["httpStatus"] == str(status)
