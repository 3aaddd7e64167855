"""Every failure -> one gRPC status with rich details (AIP-193). The one table lives here.

| upstream failure                                     | gRPC code          | why                          |
|------------------------------------------------------|--------------------|------------------------------|
| ValidationException, InvalidInputException,          | INVALID_ARGUMENT   | the caller must fix input    |
|   botocore ParamValidationError, facade validation   |                    |                              |
| ResourceNotFoundException                            | NOT_FOUND          |                              |
| AccessDeniedException                                | PERMISSION_DENIED  |                              |
| ThrottledException and the other THROTTLE_CODES      | RESOURCE_EXHAUSTED | retry after RetryInfo delay  |
| ServiceQuotaExceededException                        | RESOURCE_EXHAUSTED | QuotaFailure; not retryable  |
| ServiceException, any 5xx (after botocore retries)   | UNAVAILABLE        | retry with back-off          |
| credentials missing or rejected by AWS               | INTERNAL           | misconfigured; a retry fails |
| credentials expired, or fetching them failed         | UNAVAILABLE        | refreshed credentials fix it |
| connection refused/reset, DNS, connect/read timeout  | UNAVAILABLE        | retry with back-off          |
| a 2xx reply lacking members the model requires       | UNAVAILABLE        | a body cut short; retry      |
| caller's deadline passed / caller cancelled          | DEADLINE_EXCEEDED / CANCELLED               |
| any other AWS code: by HTTP status (400 INVALID_ARGUMENT, 401 INTERNAL, 403 PERMISSION_DENIED,      |
|   404 NOT_FOUND, 409 ABORTED, 429 RESOURCE_EXHAUSTED, other 4xx FAILED_PRECONDITION, 5xx UNAVAILABLE) |
| anything else                                        | INTERNAL           | logged once with traceback   |

Messages are safe: AWS's text is passed on without the values it may quote and withheld when it is
a raw body (`safe_aws_text`), credentials and the service's IAM identity are never shown, botocore's
parameter report (which quotes values) is rewritten without them, and the details stay small enough
for gRPC's trailers.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

import botocore.exceptions
import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from service import deadlines, translate

AWS_DOMAIN = "bedrock-agentcore.amazonaws.com"
FACADE_DOMAIN = "agentcore-memory-grpc"
MEMORY_RESOURCE_TYPE = "bedrock-agentcore.amazonaws.com/Memory"
MEMORY_RECORD_RESOURCE_TYPE = "bedrock-agentcore.amazonaws.com/MemoryRecord"
THROTTLE_RETRY_DELAY_SECONDS = 1.0
# Bounds that keep an error's trailers far below gRPC's 8 KiB default limit on metadata.
MAX_VIOLATIONS_IN_DETAILS = 25
MAX_VIOLATIONS_IN_MESSAGE = 5
MAX_MESSAGE_CHARACTERS = 500
UNAVAILABLE_RETRY_DELAY_SECONDS = 1.0

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FieldViolation:
    """One invalid field, named by its proto path (`records[3].content.text`)."""

    field: str
    description: str


class InvalidRequestError(Exception):
    """The facade refused a request before calling AWS."""

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        super().__init__(f"{len(violations)} invalid field(s)")
        self.violations = tuple(violations)


@dataclasses.dataclass(frozen=True)
class _Row:
    code: grpc.StatusCode
    reason: str
    retry_delay_seconds: float | None = None


# AWS error code -> what the caller sees. Codes not listed fall back on the HTTP status.
_AWS_ERRORS: dict[str, _Row] = {
    "ValidationException": _Row(grpc.StatusCode.INVALID_ARGUMENT, "AWS_VALIDATION_FAILED"),
    "InvalidInputException": _Row(grpc.StatusCode.INVALID_ARGUMENT, "AWS_INVALID_INPUT"),
    "ResourceNotFoundException": _Row(grpc.StatusCode.NOT_FOUND, "AWS_RESOURCE_NOT_FOUND"),
    "AccessDeniedException": _Row(grpc.StatusCode.PERMISSION_DENIED, "AWS_ACCESS_DENIED"),
    **{
        code: _Row(grpc.StatusCode.RESOURCE_EXHAUSTED, "AWS_THROTTLED", THROTTLE_RETRY_DELAY_SECONDS)
        for code in deadlines.THROTTLE_CODES
    },
    "ServiceQuotaExceededException": _Row(grpc.StatusCode.RESOURCE_EXHAUSTED, "AWS_SERVICE_QUOTA_EXCEEDED"),
    "ServiceException": _Row(
        grpc.StatusCode.UNAVAILABLE, "AWS_SERVICE_ERROR", UNAVAILABLE_RETRY_DELAY_SECONDS
    ),
    # AWS rejected the facade's own credentials: the deployment is wrong, a retry cannot help.
    "UnrecognizedClientException": _Row(grpc.StatusCode.INTERNAL, "AWS_CREDENTIALS_REJECTED"),
    "InvalidSignatureException": _Row(grpc.StatusCode.INTERNAL, "AWS_CREDENTIALS_REJECTED"),
    "InvalidClientTokenId": _Row(grpc.StatusCode.INTERNAL, "AWS_CREDENTIALS_REJECTED"),
    "MissingAuthenticationTokenException": _Row(grpc.StatusCode.INTERNAL, "AWS_CREDENTIALS_REJECTED"),
    "IncompleteSignature": _Row(grpc.StatusCode.INTERNAL, "AWS_CREDENTIALS_REJECTED"),
    # Expired credentials are refreshed by botocore's providers (IRSA, Pod Identity): retry.
    "ExpiredTokenException": _Row(
        grpc.StatusCode.UNAVAILABLE, "AWS_CREDENTIALS_EXPIRED", UNAVAILABLE_RETRY_DELAY_SECONDS
    ),
    "ExpiredToken": _Row(
        grpc.StatusCode.UNAVAILABLE, "AWS_CREDENTIALS_EXPIRED", UNAVAILABLE_RETRY_DELAY_SECONDS
    ),
    "RequestExpired": _Row(
        grpc.StatusCode.UNAVAILABLE, "AWS_CREDENTIALS_EXPIRED", UNAVAILABLE_RETRY_DELAY_SECONDS
    ),
}
_CREDENTIAL_MESSAGE = "the service is misconfigured: its AWS credentials are missing or rejected"
_EXPIRED_MESSAGE = "the service's AWS credentials expired or could not be fetched; retry"


@dataclasses.dataclass(frozen=True)
class Resource:
    """The AWS resource a call addressed, named in ResourceInfo and QuotaFailure (AIP-122 style)."""

    type: str
    name: str

    @classmethod
    def memory(cls, memory_id: str) -> Resource:
        return cls(MEMORY_RESOURCE_TYPE, f"memories/{memory_id}")

    @classmethod
    def memory_record(cls, memory_id: str, memory_record_id: str) -> Resource:
        return cls(MEMORY_RECORD_RESOURCE_TYPE, f"memories/{memory_id}/memoryRecords/{memory_record_id}")


def to_status(exc: BaseException, *, resource: Resource | None = None) -> grpc.Status:
    """The gRPC status (code, message, google.rpc details) that `exc` answers to the caller.

    `resource` is what the failed call addressed, named in ResourceInfo and QuotaFailure.
    """
    retry = _retry_info(UNAVAILABLE_RETRY_DELAY_SECONDS)
    if isinstance(exc, InvalidRequestError):
        return _invalid(exc.violations)
    if isinstance(exc, botocore.exceptions.ParamValidationError):
        return _invalid(parse_param_validation_report(str(exc.kwargs.get("report", ""))))
    if isinstance(exc, deadlines.DeadlineExceededError):
        return _facade(code_pb2.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", str(exc))
    if isinstance(exc, deadlines.CancelledError):
        return _facade(code_pb2.CANCELLED, "CANCELLED", str(exc))
    if isinstance(exc, botocore.exceptions.ClientError):
        return _from_client_error(exc, resource)
    if isinstance(exc, translate.MalformedReplyError):
        # Most often a body cut short in transit; a retry (with the same client_token) is safe.
        log.warning("malformed AWS reply", extra={"problem": str(exc)})
        message = f"AWS sent a malformed reply ({exc}); retry"
        return _facade(code_pb2.UNAVAILABLE, "AWS_MALFORMED_RESPONSE", message, retry)
    if isinstance(exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        return _facade(code_pb2.INTERNAL, "AWS_CREDENTIALS_MISSING", _CREDENTIAL_MESSAGE)
    if isinstance(
        exc, botocore.exceptions.CredentialRetrievalError | botocore.exceptions.TokenRetrievalError
    ):
        return _facade(code_pb2.UNAVAILABLE, "AWS_CREDENTIALS_UNAVAILABLE", _EXPIRED_MESSAGE, retry)
    if isinstance(exc, botocore.exceptions.ConnectTimeoutError | botocore.exceptions.ReadTimeoutError):
        return _facade(code_pb2.UNAVAILABLE, "AWS_TIMEOUT", "AWS did not answer in time", retry)
    if isinstance(exc, botocore.exceptions.HTTPClientError | botocore.exceptions.ConnectionError):
        return _facade(
            code_pb2.UNAVAILABLE, "AWS_UNREACHABLE", "cannot reach AWS: the connection failed", retry
        )
    log.error("unexpected failure while serving an RPC", exc_info=exc)
    return _facade(code_pb2.INTERNAL, "INTERNAL", "internal error")


def _invalid(violations: Sequence[FieldViolation]) -> grpc.Status:
    shown = violations[:MAX_VIOLATIONS_IN_MESSAGE]
    message = "invalid request: " + "; ".join(f"{v.field}: {v.description}" for v in shown)
    if len(violations) > len(shown):
        message += f"; and {len(violations) - len(shown)} more (see BadRequest)"
    return _facade(code_pb2.INVALID_ARGUMENT, "INVALID_ARGUMENT", message, _bad_request(violations))


def _facade(code: int, reason: str, message: str, *details: Any) -> grpc.Status:
    """A status for a failure the facade itself detected."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=FACADE_DOMAIN)
    return _build(code, message, info, details)


def _from_client_error(exc: botocore.exceptions.ClientError, resource: Resource | None) -> grpc.Status:
    error = exc.response.get("Error", {})
    metadata_response = exc.response.get("ResponseMetadata", {})
    aws_code = str(error.get("Code", "")) or "Unknown"
    http_status = int(metadata_response.get("HTTPStatusCode", 0) or 0)
    request_id = str(metadata_response.get("RequestId", "") or "")
    row = _AWS_ERRORS.get(aws_code) or _row_for_http_status(http_status, aws_code)
    metadata = {"awsErrorCode": aws_code, "operation": exc.operation_name}
    if http_status:
        metadata["httpStatus"] = str(http_status)
    if request_id:
        metadata["awsRequestId"] = request_id
    aws_message = safe_aws_text(str(error.get("Message") or error.get("message") or ""))
    if row.reason == "AWS_CREDENTIALS_REJECTED":
        message = _CREDENTIAL_MESSAGE
    elif row.reason == "AWS_CREDENTIALS_EXPIRED":
        message = _EXPIRED_MESSAGE
    elif row.reason == "AWS_ACCESS_DENIED":
        # AWS names the service's own IAM role and account here: that is for operators, not callers.
        log.warning("AWS denied access", extra={"awsRequestId": request_id, "awsMessage": aws_message})
        message = f"AccessDeniedException: the service is not allowed to call {exc.operation_name}"
    else:
        message = f"{aws_code}: {aws_message or 'no message'}"
    details: list[Any] = []
    if row.code is grpc.StatusCode.INVALID_ARGUMENT:
        details.append(_bad_request(aws_field_violations(exc.response)))
    if row.code is grpc.StatusCode.NOT_FOUND and resource is not None:
        details.append(
            error_details_pb2.ResourceInfo(
                resource_type=resource.type, resource_name=resource.name, description=message
            )
        )
    if aws_code == "ServiceQuotaExceededException":
        subject = resource.name if resource is not None else ""
        details.append(
            error_details_pb2.QuotaFailure(
                violations=[error_details_pb2.QuotaFailure.Violation(subject=subject, description=message)]
            )
        )
    if row.retry_delay_seconds is not None:
        details.append(_retry_info(row.retry_delay_seconds))
    if request_id:
        details.append(error_details_pb2.RequestInfo(request_id=request_id))
    info = error_details_pb2.ErrorInfo(reason=row.reason, domain=AWS_DOMAIN, metadata=metadata)
    return _build(_CODE_VALUES[row.code], message, info, details)


# Coral validation messages quote the submitted value ("Value 'x' at 'records.1.member...'").
_QUOTED_VALUE = re.compile(r"Value '.*?' at '", re.DOTALL)
# A body botocore could not parse as JSON becomes the message whole: it may echo the request.
_STRUCTURED_TEXT = re.compile(r"[{}<>]")


def safe_aws_text(aws_text: str) -> str:
    """AWS's text, safe to pass to a caller: quoted values dropped, structured bodies withheld, bounded.

    AWS redacts sensitive members itself, but no value of a request should travel back through a
    caller's logs, and a raw body (HTML from a proxy, echoed JSON) is not a message at all.
    """
    text = _QUOTED_VALUE.sub("Value at '", aws_text)
    if _STRUCTURED_TEXT.search(text):
        return "(the upstream message is withheld: it is not plain text)"
    return text[:MAX_MESSAGE_CHARACTERS]


def _row_for_http_status(http_status: int, aws_code: str) -> _Row:
    reason = "AWS_" + _upper_snake(aws_code.removesuffix("Exception"))
    if http_status >= 500:
        return _Row(grpc.StatusCode.UNAVAILABLE, reason, UNAVAILABLE_RETRY_DELAY_SECONDS)
    if http_status == 429:
        return _Row(grpc.StatusCode.RESOURCE_EXHAUSTED, reason, THROTTLE_RETRY_DELAY_SECONDS)
    if http_status == 404:
        return _Row(grpc.StatusCode.NOT_FOUND, reason)
    if http_status == 403:
        return _Row(grpc.StatusCode.PERMISSION_DENIED, reason)
    if http_status == 409:
        return _Row(grpc.StatusCode.ABORTED, reason)
    if http_status == 400:
        return _Row(grpc.StatusCode.INVALID_ARGUMENT, reason)
    if http_status == 401:  # the facade's own credentials: the deployment is wrong
        return _Row(grpc.StatusCode.INTERNAL, reason)
    if 400 <= http_status < 500:
        return _Row(grpc.StatusCode.FAILED_PRECONDITION, reason)
    return _Row(grpc.StatusCode.INTERNAL, reason)


# --- field paths ------------------------------------------------------------------------------

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _upper_snake(name: str) -> str:
    return _CAMEL.sub("_", name).upper() or "UNKNOWN"


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


# Wire members whose values are maps: the segment after them is a key, kept verbatim.
_MAP_MEMBERS = frozenset({"metadata"})


def proto_field_path(aws_name: str) -> str:
    """AWS's name of a field as a proto path (`records[3].content.text`). Accepted forms: Coral
    (`records.4.member.content.text`, 1-based), dotted (`records.3.content.text`, 0-based), JSON pointer
    (`/records/3/content/text`, 0-based) and botocore's (`records[3].content.text`)."""
    name = aws_name.strip()
    parts = [p for p in name.split("/") if p] if name.startswith("/") else name.split(".")
    segments: list[str] = []
    index = 0
    while index < len(parts):
        part = parts[index]
        previous = segments[-1] if segments else ""
        if previous in _MAP_MEMBERS:
            segments[-1] += f'["{part}"]'
        elif part.isdigit() and segments:
            coral = index + 1 < len(parts) and parts[index + 1] == "member"
            segments[-1] += f"[{int(part) - 1 if coral else int(part)}]"
            index += 1 if coral else 0
        else:
            head, bracket, rest = part.partition("[")
            segments.append(_snake(head) + bracket + rest)
        index += 1
    return ".".join(segments)


def aws_field_violations(response: dict[str, Any]) -> list[FieldViolation]:
    """BadRequest violations from a ValidationException's `fieldList` (empty when there is none)."""
    field_list = response.get("fieldList") or response.get("Error", {}).get("fieldList") or []
    violations = []
    for entry in field_list:
        if isinstance(entry, dict) and entry.get("name"):
            description = safe_aws_text(str(entry.get("message") or "")) or "is invalid"
            violations.append(FieldViolation(proto_field_path(str(entry["name"])), description))
    return violations


_REPORT_PATTERNS = (
    (re.compile(r'^Missing required parameter in (?P<path>\S+): "(?P<member>\w+)"'), "is required"),
    (re.compile(r'^Unknown parameter in (?P<path>\S+): "(?P<member>\w+)"'), "is not a known field"),
    (re.compile(r"^Invalid length for parameter (?P<path>[^,\s]+)"), "has an invalid length"),
    (re.compile(r"^Invalid type for parameter (?P<path>[^,\s]+)"), "has an invalid type"),
    (re.compile(r"^Invalid range for parameter (?P<path>[^,\s]+)"), "is out of range"),
    (
        re.compile(r"^Invalid number of parameters set for tagged union structure (?P<path>\S+)\."),
        "must have exactly one member set",
    ),
)


def parse_param_validation_report(report: str) -> list[FieldViolation]:
    """botocore's ParamValidationError report as field violations, dropping the values it quotes."""
    violations = []
    for raw_line in report.splitlines():
        line = raw_line.strip()
        for pattern, description in _REPORT_PATTERNS:
            match = pattern.match(line)
            if match:
                path = match.group("path")
                member = match.groupdict().get("member")
                field = f"{path}.{member}" if member else path
                violations.append(FieldViolation(proto_field_path(field), description))
                break
    return violations or [FieldViolation("", "the request is invalid")]


# --- building statuses ------------------------------------------------------------------------

_CODE_VALUES = {code: code.value[0] for code in grpc.StatusCode}


def _bad_request(violations: Sequence[FieldViolation]) -> error_details_pb2.BadRequest:
    # Status details travel in one trailer, and gRPC peers refuse trailers over 8 KiB by default: past
    # the cap, the caller learns how many more there are rather than getting a different status code.
    kept = list(violations[:MAX_VIOLATIONS_IN_DETAILS])
    if len(violations) > len(kept):
        kept.append(FieldViolation("", f"and {len(violations) - len(kept)} more invalid fields"))
    return error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field[:200], description=v.description[:200])
            for v in kept
        ]
    )


def _retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(seconds * 1e9))
    return error_details_pb2.RetryInfo(retry_delay=delay)


def _build(code: int, message: str, info: error_details_pb2.ErrorInfo, details: Iterable[Any]) -> grpc.Status:
    status = status_pb2.Status(code=code, message=message)
    for detail in (info, *details):
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    result: grpc.Status = rpc_status.to_status(status)
    return result
