"""Timestamps survive the whole wire path exactly: proto -> datetime (validate.py) -> botocore's rest-json
serializer -> JSON text -> botocore's response parser -> proto, for any microsecond in 1902-2100."""

from __future__ import annotations

import json

import botocore.parsers
import botocore.serialize
import botocore.session
from agentcore.memory.v1 import memory_records_pb2 as pb
from google.protobuf import timestamp_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from service.api import operations, translate, validate
from tests.helpers import RECORD_ID

MODEL = botocore.session.get_session().get_service_model("bedrock-agentcore")
SERIALIZER = botocore.serialize.create_serializer("rest-json")
PARSER = botocore.parsers.create_parser("rest-json")

timestamps = st.builds(
    timestamp_pb2.Timestamp,
    seconds=st.integers(min_value=-(2**31), max_value=4_102_444_800),
    nanos=st.integers(min_value=0, max_value=999_999).map(lambda micros: micros * 1000),
)


def over_the_wire(timestamp: timestamp_pb2.Timestamp) -> timestamp_pb2.Timestamp:
    request = pb.BatchUpdateRequest(
        memory_id="demo_memory-0123456789",
        records=[pb.MemoryRecordUpdate(memory_record_id=RECORD_ID, timestamp=timestamp)],
    )
    serialized = SERIALIZER.serialize_to_request(
        validate.validated_params(operations.BATCH_UPDATE, request),
        MODEL.operation_model("BatchUpdateMemoryRecords"),
    )
    wire_number = json.loads(serialized["body"])["records"][0]["timestamp"]
    reply_body = json.dumps(
        {
            "memoryRecord": {
                "memoryRecordId": RECORD_ID,
                "content": {"text": "x"},
                "namespaces": [],
                "createdAt": wire_number,
            }
        }
    ).encode()
    parsed = PARSER.parse(
        {"status_code": 200, "headers": {}, "body": reply_body},
        MODEL.operation_model("GetMemoryRecord").output_shape,
    )
    return translate.from_boto_get(parsed).memory_record.created_at


@settings(max_examples=300, deadline=None)
@given(timestamps)
def test_timestamps_are_exact_to_the_microsecond_over_the_wire(timestamp: timestamp_pb2.Timestamp) -> None:
    assert over_the_wire(timestamp) == timestamp


@settings(max_examples=100, deadline=None)
@given(timestamps, st.integers(min_value=1, max_value=999))
def test_nanoseconds_below_a_microsecond_are_truncated(
    timestamp: timestamp_pb2.Timestamp, nanos: int
) -> None:
    with_nanos = timestamp_pb2.Timestamp(seconds=timestamp.seconds, nanos=timestamp.nanos + nanos)
    assert over_the_wire(with_nanos) == timestamp
