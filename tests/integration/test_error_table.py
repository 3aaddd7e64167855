"""Every row of the error table (docs/errors.md, service/errors.py), through real HTTP and real botocore
parsing, against the independent wire stub in aws mode."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from service import errors
from tests.helpers import MEMORY_ID, RECORD_ID, AwsServiceFactory, RunningService, record_create
from tests.integration.helpers import details_of
from tests.wire_stub import CannedResponse, WireStub, aws_error, aws_reply

GET = pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID)


def call_get(service: RunningService, timeout: float = 10) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        service.stub.Get(GET, timeout=timeout)
    return caught.value


@pytest.mark.parametrize(
    ("canned", "code", "reason", "extra_detail"),
    [
        (
            aws_error(404, "ResourceNotFoundException", "Memory not found"),
            grpc.StatusCode.NOT_FOUND,
            "AWS_RESOURCE_NOT_FOUND",
            error_details_pb2.ResourceInfo,
        ),
        (
            aws_error(403, "AccessDeniedException", "not allowed"),
            grpc.StatusCode.PERMISSION_DENIED,
            "AWS_ACCESS_DENIED",
            None,
        ),
        (
            aws_error(402, "ServiceQuotaExceededException", "quota"),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "AWS_SERVICE_QUOTA_EXCEEDED",
            error_details_pb2.QuotaFailure,
        ),
        (
            aws_error(400, "InvalidInputException", "bad input"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "AWS_INVALID_INPUT",
            error_details_pb2.BadRequest,
        ),
    ],
)
def test_non_retryable_aws_errors(
    aws_service_factory: AwsServiceFactory,
    wire_stub: WireStub,
    canned: CannedResponse,
    code: grpc.StatusCode,
    reason: str,
    extra_detail: type[Any] | None,
) -> None:
    service = aws_service_factory(aws_max_attempts=3)
    wire_stub.queue(canned, canned, canned)
    error = call_get(service)
    assert error.code() is code
    found = details_of(error)
    info = found[error_details_pb2.ErrorInfo]
    assert (info.reason, info.domain) == (reason, errors.AWS_DOMAIN)
    aws_code = canned.headers["x-amzn-ErrorType"]
    assert dict(info.metadata) == {
        "awsErrorCode": aws_code,
        "awsRequestId": f"req-{aws_code}",
        "httpStatus": str(canned.status),
        "operation": "GetMemoryRecord",
    }
    assert found[error_details_pb2.RequestInfo].request_id == f"req-{aws_code}"
    if extra_detail is not None:
        assert extra_detail in found
    if extra_detail is error_details_pb2.ResourceInfo:
        # Get addresses a record: its name includes the memory, which may be what is missing.
        assert found[extra_detail].resource_type == "bedrock-agentcore.amazonaws.com/MemoryRecord"
        assert found[extra_detail].resource_name == f"memories/{MEMORY_ID}/memoryRecords/{RECORD_ID}"
    assert len(wire_stub.requests) == 1, "4xx errors are not retried"


def test_validation_exception_names_proto_fields(aws_service: RunningService, wire_stub: WireStub) -> None:
    wire_stub.queue(
        aws_error(
            400,
            "ValidationException",
            "2 validation errors detected",
            reason="FieldValidationFailed",
            fieldList=[
                {"name": "records.4.member.content.text", "message": "too long"},
                {"name": "memoryId", "message": "bad pattern"},
            ],
        )
    )
    error = call_get(aws_service)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    found = details_of(error)
    violations = found[error_details_pb2.BadRequest].field_violations
    assert [(v.field, v.description) for v in violations] == [
        ("records[3].content.text", "too long"),
        ("memory_id", "bad pattern"),
    ]
    assert found[error_details_pb2.ErrorInfo].reason == "AWS_VALIDATION_FAILED"


@pytest.mark.parametrize("code", ["ThrottledException", "ThrottlingException", "TooManyRequestsException"])
def test_throttles_are_retried_then_resource_exhausted(
    aws_service_factory: AwsServiceFactory, wire_stub: WireStub, code: str
) -> None:
    service = aws_service_factory(aws_max_attempts=2)
    wire_stub.queue(*[aws_error(429, code, "slow down")] * 2)
    error = call_get(service)
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    found = details_of(error)
    assert found[error_details_pb2.RetryInfo].retry_delay.ToNanoseconds() > 0
    assert found[error_details_pb2.ErrorInfo].reason == "AWS_THROTTLED"
    assert len(wire_stub.requests) == 2, "throttles are retried up to AWS_MAX_ATTEMPTS"


def test_a_retried_throttle_that_then_succeeds_is_ok(
    aws_service_factory: AwsServiceFactory, wire_stub: WireStub
) -> None:
    service = aws_service_factory(aws_max_attempts=3)
    record = {"memoryRecordId": RECORD_ID, "content": {"text": "x"}, "namespaces": [], "createdAt": 1}
    wire_stub.queue(
        aws_error(429, "ThrottledException", "slow down"), aws_reply(200, {"memoryRecord": record})
    )
    assert service.stub.Get(GET, timeout=10).memory_record.memory_record_id == RECORD_ID
    assert len(wire_stub.requests) == 2


@pytest.mark.parametrize(
    ("status", "code"), [(500, "ServiceException"), (503, "ServiceUnavailable"), (502, "")]
)
def test_server_errors_after_retries_are_unavailable(
    aws_service_factory: AwsServiceFactory, wire_stub: WireStub, status: int, code: str
) -> None:
    service = aws_service_factory(aws_max_attempts=2)
    wire_stub.queue(*[aws_error(status, code, "upstream broke")] * 2)
    error = call_get(service)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    found = details_of(error)
    assert error_details_pb2.RetryInfo in found
    assert found[error_details_pb2.ErrorInfo].metadata["httpStatus"] == str(status)
    assert len(wire_stub.requests) == 2


@pytest.mark.parametrize(
    ("status", "code", "grpc_code", "reason"),
    [
        (403, "UnrecognizedClientException", grpc.StatusCode.INTERNAL, "AWS_CREDENTIALS_REJECTED"),
        (403, "InvalidSignatureException", grpc.StatusCode.INTERNAL, "AWS_CREDENTIALS_REJECTED"),
        (403, "ExpiredTokenException", grpc.StatusCode.UNAVAILABLE, "AWS_CREDENTIALS_EXPIRED"),
    ],
)
def test_rejected_credentials(
    aws_service: RunningService,
    wire_stub: WireStub,
    status: int,
    code: str,
    grpc_code: grpc.StatusCode,
    reason: str,
) -> None:
    wire_stub.queue(aws_error(status, code, "The security token AKIDEXAMPLE is invalid"))
    error = call_get(aws_service)
    assert error.code() is grpc_code
    assert "AKIDEXAMPLE" not in (error.details() or "")
    assert "secret-example" not in (error.details() or "")
    assert "misconfigured" in (error.details() or "") or "expired" in (error.details() or "")
    assert details_of(error)[error_details_pb2.ErrorInfo].reason == reason


def test_missing_credentials_is_internal_without_any_request(
    aws_service_factory: AwsServiceFactory, wire_stub: WireStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    for name in (
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    error = call_get(aws_service_factory())
    assert error.code() is grpc.StatusCode.INTERNAL
    assert "misconfigured" in (error.details() or "")
    assert details_of(error)[error_details_pb2.ErrorInfo].reason == "AWS_CREDENTIALS_MISSING"
    assert wire_stub.requests == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connection_refused_is_unavailable(
    aws_service_factory: AwsServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_AGENTCORE", f"http://127.0.0.1:{_closed_port()}")
    error = call_get(aws_service_factory())
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert details_of(error)[error_details_pb2.ErrorInfo].reason == "AWS_UNREACHABLE"


def test_dns_failure_is_unavailable(
    aws_service_factory: AwsServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # .invalid never resolves (RFC 6761); the lookup fails without leaving the machine.
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_AGENTCORE", "http://agentcore.invalid:1")
    error = call_get(aws_service_factory(), timeout=30)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert details_of(error)[error_details_pb2.ErrorInfo].reason == "AWS_UNREACHABLE"


def test_connection_reset_is_unavailable(aws_service_factory: AwsServiceFactory, wire_stub: WireStub) -> None:
    service = aws_service_factory(aws_max_attempts=2)
    dropped = CannedResponse(200, b"", {}, drop_connection=True)
    wire_stub.queue(dropped, dropped)
    error = call_get(service)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert len(wire_stub.requests) == 2, "connection errors are retried"


def test_read_timeout_is_unavailable(aws_service_factory: AwsServiceFactory, wire_stub: WireStub) -> None:
    service = aws_service_factory(aws_read_timeout_seconds=0.3)
    wire_stub.queue(aws_reply(200, {}, delay_seconds=1.5))
    error = call_get(service)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert details_of(error)[error_details_pb2.ErrorInfo].reason == "AWS_TIMEOUT"


def test_a_garbled_reply_is_malformed_and_logged_without_its_values(
    aws_service: RunningService, wire_stub: WireStub, caplog: pytest.LogCaptureFixture
) -> None:
    garbled = {"memoryRecord": {"memoryRecordId": RECORD_ID, "createdAt": "not a time"}}
    wire_stub.queue(aws_reply(200, garbled))
    error = call_get(aws_service)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert details_of(error)[error_details_pb2.ErrorInfo].reason == "AWS_MALFORMED_RESPONSE"
    assert not [r for r in caplog.records if r.exc_info], "AWS's mistake, not a bug: no traceback"
    logged = " ".join(str(record.__dict__) for record in caplog.records)
    assert "not a time" not in logged and "not a time" not in (error.details() or "")


def test_deadline_bounds_the_upstream_call(
    aws_service_factory: AwsServiceFactory, wire_stub: WireStub
) -> None:
    """Upstream answers in 5 s, the caller allows 1 s: DEADLINE_EXCEEDED in about 1 s, and no retry,
    although the read timeout (1.5 s) and AWS_MAX_ATTEMPTS (3) would allow one."""
    service = aws_service_factory(aws_max_attempts=3, aws_read_timeout_seconds=1.5)
    wire_stub.default = aws_reply(200, {}, delay_seconds=5)
    started = time.monotonic()
    error = call_get(service, timeout=1)
    elapsed = time.monotonic() - started
    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 2.5
    time.sleep(3)  # past the 1.5 s read timeout and botocore's back-off: a retry would have arrived
    assert len(wire_stub.requests) == 1


def test_cancellation_stops_retries(aws_service_factory: AwsServiceFactory, wire_stub: WireStub) -> None:
    service = aws_service_factory(aws_max_attempts=3)
    body = json.dumps({"message": "broken"}).encode()
    wire_stub.default = CannedResponse(500, body, {"x-amzn-ErrorType": "ServiceException"}, delay_seconds=0.8)
    future = service.stub.Get.future(GET, timeout=30)
    deadline = time.monotonic() + 5
    while not wire_stub.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(wire_stub.requests) == 1, "the first attempt reached AWS"
    assert future.cancel()
    assert future.code() is grpc.StatusCode.CANCELLED
    time.sleep(2.5)  # botocore would have made attempts 2 and 3 by now
    assert len(wire_stub.requests) == 1


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        # Coral's header form: the shape name, then a namespace after a colon.
        (
            {
                "x-amzn-ErrorType": "ThrottledException:http://internal.amazon.com/coral/com.amazonaws.agentcore/"
            },
            {"message": "slow down"},
        ),
        # No header; the type in the body, with a Smithy namespace (what Smithy servers and moto send).
        ({}, {"__type": "com.amazonaws.bedrockagentcore#ThrottledException", "Message": "slow down"}),
        # No header; `code` in the body.
        ({}, {"code": "ThrottledException", "message": "slow down"}),
    ],
)
def test_error_shapes_of_other_aws_implementations(
    aws_service: RunningService, wire_stub: WireStub, headers: dict[str, str], body: dict[str, str]
) -> None:
    wire_stub.queue(CannedResponse(429, json.dumps(body).encode(), {"x-amzn-RequestId": "req-1", **headers}))
    error = call_get(aws_service)
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "slow down" in (error.details() or "")
    found = details_of(error)
    assert found[error_details_pb2.ErrorInfo].metadata["awsErrorCode"] == "ThrottledException"
    assert error_details_pb2.RetryInfo in found


def test_error_without_a_body_falls_back_on_the_http_status(
    aws_service: RunningService, wire_stub: WireStub
) -> None:
    wire_stub.queue(CannedResponse(404, b"", {}))
    error = call_get(aws_service)
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert details_of(error)[error_details_pb2.ErrorInfo].metadata["httpStatus"] == "404"


def test_values_quoted_in_aws_messages_are_dropped(aws_service: RunningService, wire_stub: WireStub) -> None:
    message = "1 validation error detected: Value 'my secret text' at 'records.1.member.content.text' failed"
    wire_stub.queue(aws_error(400, "ValidationException", message))
    error = call_get(aws_service)
    assert "my secret text" not in (error.details() or "")
    assert "Value at 'records.1.member.content.text' failed" in (error.details() or "")


ROLE_ARN = "arn:aws:sts::123456789012:assumed-role/agentcore-memory-grpc/i-0abc"


@pytest.mark.parametrize(
    ("status", "code", "text"),
    [
        (401, "UnknownAuthFailure", f"User: {ROLE_ARN} is not authorized"),
        (403, "UnauthorizedOperation", f"User: {ROLE_ARN} is not authorized to perform this operation"),
        (
            400,
            "ValidationException",
            "Memory arn:aws:bedrock-agentcore:us-east-1:123456789012:memory/m-1 is bad",
        ),
        (400, "InvalidInputException", "account 123456789012 has no access"),
        (403, "SignatureDoesNotMatch", "The key AKIAIOSFODNN7EXAMPLE does not match"),
        (500, "InternalFailure", "role assumed-role/x failed"),
        (403, "UnauthorizedOperation", "Role ServiceRole-Prod is not authorized"),
        (403, "AccessDenied", "principal AIPAJQABLZS4A3QDU576Q may not call this"),
        (400, "InvalidInputException", "account 1234-5678-9012 is suspended"),
    ],
)
def test_the_services_identity_never_reaches_the_caller(
    aws_service: RunningService,
    wire_stub: WireStub,
    caplog: pytest.LogCaptureFixture,
    status: int,
    code: str,
    text: str,
) -> None:
    wire_stub.queue(*[aws_error(status, code, text, fieldList=[{"name": "memoryId", "message": text}])] * 3)
    error = call_get(aws_service)
    shown = (error.details() or "") + repr(details_of(error))
    secrets = (
        "123456789012",
        "1234-5678-9012",
        "assumed-role",
        "AKIAIOSFODNN7EXAMPLE",
        "AIPAJQABLZS4A3QDU576Q",
    )
    for secret in (*secrets, "arn:aws", "ServiceRole-Prod"):
        assert secret not in shown
    assert code in (error.details() or "") and "GetMemoryRecord" in (error.details() or "")
    withheld = [r for r in caplog.records if r.getMessage() == "AWS message withheld from the caller"]
    assert [getattr(r, "awsErrorCode", None) for r in withheld] == [code]  # for operators


def test_a_withheld_body_that_echoes_the_request_is_not_logged_either(
    aws_service: RunningService, wire_stub: WireStub, caplog: pytest.LogCaptureFixture
) -> None:
    body = b'{"records": [{"content": {"text": "MY SECRET DIARY"}}], "account": "123456789012"}'
    wire_stub.queue(CannedResponse(403, body, {"x-amzn-ErrorType": "AccessDeniedException"}))
    error = call_get(aws_service)
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    logged = " ".join(str(record.__dict__) for record in caplog.records)
    assert "MY SECRET DIARY" not in logged and "MY SECRET DIARY" not in (error.details() or "")


@pytest.mark.parametrize(
    ("status", "grpc_code"),
    [
        (400, grpc.StatusCode.INVALID_ARGUMENT),
        (401, grpc.StatusCode.INTERNAL),
        (409, grpc.StatusCode.ABORTED),
        (418, grpc.StatusCode.FAILED_PRECONDITION),
        (501, grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_unknown_aws_codes_fall_back_on_the_http_status(
    aws_service: RunningService, wire_stub: WireStub, status: int, grpc_code: grpc.StatusCode
) -> None:
    wire_stub.queue(aws_error(status, "SomethingNewException", "new"))
    error = call_get(aws_service)
    assert error.code() is grpc_code
    assert details_of(error)[error_details_pb2.ErrorInfo].reason == "AWS_SOMETHING_NEW"


def test_a_batch_on_an_unknown_memory_names_the_memory(
    aws_service: RunningService, wire_stub: WireStub
) -> None:
    wire_stub.queue(aws_error(404, "ResourceNotFoundException", "Memory not found"))
    request = pb.BatchUpdateRequest(
        memory_id=MEMORY_ID, records=[pb.MemoryRecordUpdate(memory_record_id=RECORD_ID)]
    )
    request.records[0].timestamp.seconds = 1
    with pytest.raises(grpc.RpcError) as caught:
        aws_service.stub.BatchUpdate(request, timeout=10)
    resource = details_of(caught.value)[error_details_pb2.ResourceInfo]
    assert (resource.resource_type, resource.resource_name) == (
        "bedrock-agentcore.amazonaws.com/Memory",
        f"memories/{MEMORY_ID}",
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"memoryRecord": {"memoryRecordId": "',  # cut short
        b"<html><body>502 Bad Gateway</body></html>",  # a proxy's page with a 200
        b"{}",  # valid JSON without the required member
    ],
)
def test_a_malformed_success_reply_is_unavailable_not_an_empty_answer(
    aws_service: RunningService, wire_stub: WireStub, body: bytes
) -> None:
    wire_stub.queue(CannedResponse(200, body, {"x-amzn-RequestId": "req-1"}))
    error = call_get(aws_service)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert details_of(error)[error_details_pb2.ErrorInfo].reason == "AWS_MALFORMED_RESPONSE"


def test_a_malformed_batch_reply_is_unavailable(aws_service: RunningService, wire_stub: WireStub) -> None:
    wire_stub.queue(CannedResponse(201, b'{"successfulRecords": [', {}))
    request = pb.BatchCreateRequest(
        memory_id=MEMORY_ID,
        records=[pb.MemoryRecordCreate(request_identifier="r1", content=pb.MemoryContent(text="t"))],
    )
    request.records[0].timestamp.seconds = 1
    with pytest.raises(grpc.RpcError) as caught:
        aws_service.stub.BatchCreate(request, timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


def test_a_batch_reply_with_a_broken_record_fails_and_counts_no_record(
    aws_service: RunningService, wire_stub: WireStub
) -> None:
    """AWS answered 2xx, but a record lacks its status: the RPC is UNAVAILABLE, so no record counts."""
    reply = {"successfulRecords": [{"memoryRecordId": RECORD_ID}], "failedRecords": []}
    wire_stub.queue(aws_reply(201, reply))
    request = pb.BatchCreateRequest(memory_id=MEMORY_ID, records=[record_create()])
    with pytest.raises(grpc.RpcError) as caught:
        aws_service.stub.BatchCreate(request, timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    records = aws_service.metrics.registry.get_sample_value(
        "agentcore_records_total",
        {"operation": "BatchCreateMemoryRecords", "outcome": "succeeded", "error_code": "none"},
    )
    assert records == 0


def test_only_the_quota_error_carries_a_quota_failure(
    aws_service: RunningService, wire_stub: WireStub
) -> None:
    """A code that merely resembles ServiceQuotaExceededException maps by its HTTP status, no QuotaFailure."""
    wire_stub.queue(aws_error(402, "ServiceQuotaExceeded", "over quota"))
    details = details_of(call_get(aws_service))
    assert set(details) == {error_details_pb2.ErrorInfo, error_details_pb2.RequestInfo}
    wire_stub.queue(aws_error(402, "ServiceQuotaExceededException", "over quota"))
    assert error_details_pb2.QuotaFailure in details_of(call_get(aws_service))


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, b'bad request: {"content": {"text": "MY SECRET DIARY"}}'),
        (
            400,
            json.dumps(
                {
                    "message": "invalid",
                    "fieldList": [
                        {"name": "records.1.member.content.text", "message": "Value 'MY SECRET DIARY' at 'x'"}
                    ],
                }
            ).encode(),
        ),
        (500, b"<html>MY SECRET DIARY</html>"),
    ],
)
def test_upstream_text_never_carries_request_values(
    aws_service: RunningService, wire_stub: WireStub, status: int, body: bytes
) -> None:
    wire_stub.queue(CannedResponse(status, body, {"x-amzn-ErrorType": "ValidationException"}))
    error = call_get(aws_service)
    status_proto = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status_proto is not None
    assert "MY SECRET DIARY" not in (error.details() or "")
    assert all(b"MY SECRET DIARY" not in detail.value for detail in status_proto.details)


def test_a_hundred_invalid_records_stay_invalid_argument(local_service: RunningService) -> None:
    """Every violation would not fit in gRPC's trailers: the status must not turn into another code."""
    bad = pb.MemoryRecordCreate(
        request_identifier="bad id", namespaces=["a", "b"], content=pb.MemoryContent()
    )
    for key in ("bad key!", "other bad!", "third bad!"):
        bad.metadata[key].string_value = "x"
    request = pb.BatchCreateRequest(memory_id=MEMORY_ID, records=[bad] * 100)
    with pytest.raises(grpc.RpcError) as caught:
        local_service.stub.BatchCreate(request, timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = details_of(caught.value)[error_details_pb2.BadRequest].field_violations
    assert len(violations) == errors.MAX_VIOLATIONS_IN_DETAILS + 1
    assert violations[-1].description.startswith("and ")


def test_no_back_off_past_the_deadline(aws_service_factory: AwsServiceFactory, wire_stub: WireStub) -> None:
    """Throttled on every attempt, with 6 attempts allowed and 1.5 s to spend: after the first retry
    (whose back-off is at most 1 s), the next back-off (up to 2 s) cannot fit, so the throttle reaches
    the caller at once, before its deadline, instead of a DEADLINE_EXCEEDED after a useless sleep."""
    service = aws_service_factory(aws_max_attempts=6)
    wire_stub.default = aws_error(429, "ThrottledException", "slow down")
    started = time.monotonic()
    error = call_get(service, timeout=1.5)
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert time.monotonic() - started < 1.5
    assert len(wire_stub.requests) == 2
