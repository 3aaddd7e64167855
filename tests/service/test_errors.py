"""errors.py as pure functions: field paths, botocore reports, and the shape of every status."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from google.rpc import error_details_pb2, status_pb2

from service import errors
from service.api.request_errors import FieldViolation, InvalidRequestError
from tests.helpers import status_details


def unpack(status: grpc.Status) -> tuple[status_pb2.Status, dict[type[Any], Any]]:
    """The google.rpc.Status a client would decode from `status`'s trailers, and its details."""
    [(key, value)] = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    proto = status_pb2.Status.FromString(value)
    return proto, status_details(proto)


@pytest.mark.parametrize(
    ("aws_name", "proto_path"),
    [
        ("memoryId", "memory_id"),
        ("records.4.member.content.text", "records[3].content.text"),
        ("records.1.member.memoryRecordId", "records[0].memory_record_id"),
        ("/records/3/content/text", "records[3].content.text"),
        ("records[2].sourceNamespaces[0]", "records[2].source_namespaces[0]"),
        (
            "recordExpirySpecification.recordExpiryDurationDays",
            "record_expiry_specification.record_expiry_duration_days",
        ),
        ("records.2.member.metadata.topic.stringValue", 'records[1].metadata["topic"].string_value'),
        ("records.0.content.text", "records[0].content.text"),
        ("records.1.member.metadata.2024.numberValue", 'records[0].metadata["2024"].number_value'),
        ("/records/0/metadata/userId/stringValue", 'records[0].metadata["userId"].string_value'),
        ("records.1.member.namespaces.1.member", "records[0].namespaces[0]"),
        # The operation table's renames (AIP-158 paging).
        ("maxResults", "page_size"),
        ("nextToken", "page_token"),
        ("searchCriteria.metadataFilters.0.left", "search_criteria.metadata_filters[0].left"),
    ],
)
def test_proto_field_path(aws_name: str, proto_path: str) -> None:
    assert errors.proto_field_path(aws_name) == proto_path


def test_param_validation_report_drops_values() -> None:
    report = (
        'Missing required parameter in records[0]: "timestamp"\n'
        "Invalid length for parameter records[1].content.text, value: 0, valid min length: 1\n"
        "Invalid type for parameter records[2].content.text, value: SECRET-TEXT, type: <class 'int'>"
    )
    exc = botocore.exceptions.ParamValidationError(report=report)
    proto, details = unpack(errors.to_status(exc))
    assert proto.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "SECRET-TEXT" not in proto.message
    assert set(details) == {error_details_pb2.ErrorInfo, error_details_pb2.BadRequest}
    assert details[error_details_pb2.ErrorInfo].reason == "INVALID_ARGUMENT"
    bad_request = details[error_details_pb2.BadRequest]
    assert [v.field for v in bad_request.field_violations] == [
        "records[0].timestamp",
        "records[1].content.text",
        "records[2].content.text",
    ]


def test_unexpected_exception_is_internal_with_a_generic_message(caplog: pytest.LogCaptureFixture) -> None:
    proto, details = unpack(errors.to_status(RuntimeError("boom with secret text")))
    assert proto.code == grpc.StatusCode.INTERNAL.value[0]
    assert proto.message == "internal error"
    assert set(details) == {error_details_pb2.ErrorInfo}
    assert details[error_details_pb2.ErrorInfo].domain == errors.FACADE_DOMAIN
    assert len([r for r in caplog.records if r.exc_info]) == 1


def test_missing_credentials_is_internal_and_says_misconfigured() -> None:
    proto, details = unpack(errors.to_status(botocore.exceptions.NoCredentialsError()))
    assert proto.code == grpc.StatusCode.INTERNAL.value[0]
    assert "misconfigured" in proto.message
    assert details[error_details_pb2.ErrorInfo].reason == "AWS_CREDENTIALS_MISSING"


def test_connection_failure_is_unavailable_with_retry_info() -> None:
    exc = botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    proto, details = unpack(errors.to_status(exc))
    assert proto.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert error_details_pb2.RetryInfo in details


def test_request_values_are_redacted_whole_and_at_any_depth() -> None:
    request = pb.BatchUpdateRequest(
        memory_id="mem-1", records=[pb.MemoryRecordUpdate(memory_record_id="rec-abc")]
    )
    request.records[0].metadata["colour"].string_value = "a"
    text = "Memory record rec-abc not found in mem-1 (rec-abcd, colour, a, area)"
    assert errors.redact_request_values(text, request) == (
        "Memory record [redacted] not found in [redacted] (rec-abcd, [redacted], [redacted], area)"
    )


def test_a_violations_detail_is_in_bad_request_only() -> None:
    violation = FieldViolation("memory_id", "must look like support_bot-a1B2c3D4e5", "the pattern [a-z]+")
    status = errors.to_status(InvalidRequestError([violation]))
    assert status.details == "invalid request: memory_id: must look like support_bot-a1B2c3D4e5"
    _, details = unpack(status)
    [field] = details[error_details_pb2.BadRequest].field_violations
    assert field.description == "must look like support_bot-a1B2c3D4e5 (the pattern [a-z]+)"
