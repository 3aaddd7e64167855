"""Every failure -> one gRPC status with rich details (AIP-193): ErrorInfo always, and BadRequest,
ResourceInfo, QuotaFailure, RetryInfo or RequestInfo where they apply.

Which row a failure answers to is decided once, in outcomes.py; the table is docs/errors.md.
Messages are safe: AWS's text loses the values it quotes and is withheld when it is a raw body,
credentials and the service's IAM identity are never shown, and details stay small enough for gRPC's
trailers.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import botocore.exceptions
import grpc
from google.protobuf import any_pb2, duration_pb2, message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from service import admission, caller_limits, calls, rate_counters
from service.api import operations, translate
from service.api.operations import Resource
from service.api.request_errors import (
    FieldViolation,
    InvalidRequestError,
    MalformedRequestError,
    RequestReadTimeoutError,
    RequestTooLargeError,
)
from service.security import authz, tls
from service.upstream import outcomes, rate_limits

AWS_DOMAIN = "bedrock-agentcore.amazonaws.com"
FACADE_DOMAIN = "agentcore-memory-grpc"
# Bounds that keep an error's trailers far below gRPC's 8 KiB default limit on metadata.
MAX_VIOLATIONS_IN_DETAILS = 25
MAX_VIOLATIONS_IN_MESSAGE = 5
MAX_MESSAGE_CHARACTERS = 500
MAX_FIELD_CHARACTERS = 200

log = logging.getLogger(__name__)


def to_status(exc: BaseException, *, resource: Resource | None = None) -> grpc.Status:
    """The gRPC status (code, message, google.rpc details) that `exc` answers to the caller.

    `resource` is what the failed call addressed, named in ResourceInfo and QuotaFailure.
    """
    if isinstance(exc, InvalidRequestError):
        return _invalid(exc.violations)
    if isinstance(exc, MalformedRequestError):
        return _facade(code_pb2.INVALID_ARGUMENT, "MALFORMED_REQUEST", str(exc))
    if isinstance(exc, RequestReadTimeoutError):
        return _facade(code_pb2.DEADLINE_EXCEEDED, "REQUEST_READ_TIMEOUT", str(exc))
    if isinstance(exc, RequestTooLargeError):
        return _facade(code_pb2.RESOURCE_EXHAUSTED, "REQUEST_TOO_LARGE", str(exc))
    if isinstance(exc, authz.CallerNotAllowedError):
        metadata = {"method": exc.method, "ruleSetVersion": exc.rule_set_version}
        return _facade(code_pb2.PERMISSION_DENIED, authz.REASON, str(exc), metadata=metadata)
    if isinstance(exc, tls.CallerIdentityError):
        metadata = {"certificateSha256": exc.refusal.sha256}
        return _facade(code_pb2.PERMISSION_DENIED, tls.IDENTITY_INVALID, str(exc), metadata=metadata)
    refusal = _refusal(exc)
    if refusal is not None:
        return refusal
    if isinstance(exc, botocore.exceptions.ParamValidationError):
        return _invalid(parse_param_validation_report(str(exc.kwargs.get("report", ""))))
    failure = outcomes.classify(exc)
    if isinstance(exc, botocore.exceptions.ClientError):
        return _from_client_error(exc, failure.row, resource)
    if outcomes.is_unexpected(failure):
        log.error("unexpected failure while serving an RPC", exc_info=exc)
    elif isinstance(exc, translate.MalformedReplyError):
        log.warning("malformed AWS reply", extra={"problem": str(exc)})
    row = failure.row
    message = (row.message or "{}").format(exc)
    details = [] if row.retry_delay_seconds is None else [_retry_info(row.retry_delay_seconds)]
    return _facade(_CODE_VALUES[row.code], row.reason, message, *details)


def _refusal(exc: BaseException) -> grpc.Status | None:
    """The status of an RPC the facade refused before AWS for its load or its caller's limits."""
    if isinstance(exc, caller_limits.CallerLimitedError):
        violation = error_details_pb2.QuotaFailure.Violation(
            subject=f"limits entry {exc.entry}", description=exc.limit
        )
        quota = error_details_pb2.QuotaFailure(violations=[violation])
        retry = _retry_info(exc.retry_after)
        metadata = {"limit": exc.limit, "entry": exc.entry}
        return _facade(code_pb2.RESOURCE_EXHAUSTED, exc.reason, str(exc), quota, retry, metadata=metadata)
    if isinstance(exc, rate_counters.StorageUnavailableError):
        retry = _retry_info(rate_counters.STORAGE_RETRY_SECONDS)
        reason = rate_counters.STORAGE_UNAVAILABLE
        return _facade(code_pb2.UNAVAILABLE, reason, f"{exc}; retry later", retry)
    if isinstance(exc, rate_limits.UpstreamRateLimitedError):
        metadata = {"operation": exc.operation}
        retry = _retry_info(exc.retry_after)
        return _facade(code_pb2.RESOURCE_EXHAUSTED, rate_limits.REASON, str(exc), retry, metadata=metadata)
    if isinstance(exc, admission.OverloadedError):
        retry = _retry_info(admission.RETRY_DELAY_SECONDS)
        return _facade(code_pb2.RESOURCE_EXHAUSTED, "SERVER_OVERLOADED", f"{exc}; retry later", retry)
    return None


def _invalid(violations: Sequence[FieldViolation]) -> grpc.Status:
    shown = violations[:MAX_VIOLATIONS_IN_MESSAGE]
    # A path holds map keys the caller chose, of any length: shortened, so that the trailers fit.
    message = "invalid request: " + "; ".join(
        f"{_shortened(v.field, MAX_FIELD_CHARACTERS)}: {v.description}" for v in shown
    )
    if len(violations) > len(shown):
        message += f"; and {len(violations) - len(shown)} more (see BadRequest)"
    message = _shortened(message, MAX_MESSAGE_CHARACTERS)
    return _facade(code_pb2.INVALID_ARGUMENT, "INVALID_ARGUMENT", message, _bad_request(violations))


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _facade(
    code: int, reason: str, message: str, *details: Any, metadata: dict[str, str] | None = None
) -> grpc.Status:
    """A status for a failure the facade itself detected."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=FACADE_DOMAIN, metadata=metadata)
    return _build(code, message, info, details)


def _from_client_error(
    exc: botocore.exceptions.ClientError, row: outcomes.Row, resource: Resource | None
) -> grpc.Status:
    answer = outcomes.Answer.read(exc.response)
    aws_code = answer.code or "Unknown"
    request_id = answer.request_id
    metadata = {"awsErrorCode": aws_code, "operation": exc.operation_name}
    if answer.http_status:
        metadata["httpStatus"] = str(answer.http_status)
    if request_id:
        metadata["awsRequestId"] = request_id
    raw_message = answer.message
    withheld = row.message is not None or names_an_identity(raw_message)
    if withheld:
        # AWS's text names the service's own role, account or key: that is for operators, not callers.
        log.warning(
            "AWS message withheld from the caller",
            extra={
                "awsRequestId": request_id,
                "awsErrorCode": aws_code,
                "awsMessage": _for_operators(raw_message),
            },
        )
    if row.message is not None:
        message = row.message.format(operation=exc.operation_name)
    elif withheld:
        message = f"{aws_code}: {exc.operation_name} failed; AWS's message names an AWS identity"
    else:
        message = f"{aws_code}: {safe_aws_text(raw_message) or 'no message'}"
    details: list[Any] = []
    if row.code is grpc.StatusCode.INVALID_ARGUMENT:
        details.append(_bad_request(aws_field_violations(answer)))
    if row.code is grpc.StatusCode.NOT_FOUND and resource is not None:
        details.append(
            error_details_pb2.ResourceInfo(
                resource_type=resource.type, resource_name=resource.name, description=message
            )
        )
    if row.quota_failure:
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
# What names an AWS identity: an ARN, a role (by ARN, path or the word itself), an account id (12 digits,
# dashed or not), an access key or IAM unique id. A 12-digit number that is not an account is withheld too:
# the safe side.
_IDENTITY = re.compile(
    r"arn:aws|assumed-role|\brole\b|\b(?:role|user)/"
    r"|(?<![0-9A-Za-z-])(?:[0-9]{12}|[0-9]{4}-[0-9]{4}-[0-9]{4})(?![0-9A-Za-z-])"
    r"|\b(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|AIPA|ANVA|ABIA|ACCA)[A-Z0-9]{12,}\b",
    re.IGNORECASE,
)


def names_an_identity(aws_text: str) -> bool:
    """Whether `aws_text` names an ARN, an account, an access key or a role."""
    return _IDENTITY.search(aws_text) is not None


# Per RPC, the pattern of its request's strings, with the request it was built from (the calls of a
# large batch may each fail and be redacted): built once, freed with the Call.
_REDACTIONS: weakref.WeakKeyDictionary[calls.Call, tuple[Any, re.Pattern[str] | None]] = (
    weakref.WeakKeyDictionary()
)


def _without_values(aws_text: str) -> str:
    """AWS's text without the values it quotes, nor any string of the request being served (memory and
    record ids, namespaces, text: AWS echoes them, as in "Memory record <id> not found")."""
    text = _QUOTED_VALUE.sub("Value at '", aws_text)
    call = calls.current()
    if call is not None and call.request is not None:
        cached = _REDACTIONS.get(call)
        if cached is None or cached[0] is not call.request:
            cached = _REDACTIONS[call] = (call.request, _request_values_pattern(call.request))
        pattern = cached[1]
        if pattern is not None:
            text = pattern.sub("[redacted]", text)
    return text[:MAX_MESSAGE_CHARACTERS]


def redact_request_values(text: str, request: message.Message) -> str:
    """`text` with every whole occurrence of a string of `request` (at any depth) replaced by `[redacted]`."""
    pattern = _request_values_pattern(request)
    return text if pattern is None else pattern.sub("[redacted]", text)


def _request_values_pattern(request: message.Message) -> re.Pattern[str] | None:
    """What matches a string of `request` whole: built once per RPC (a batch of 1,000 records has
    thousands), however many of AWS's messages and field errors pass through it."""
    values = sorted({value for value in _strings(request) if value}, key=len, reverse=True)
    if not values:
        return None
    # Whole occurrences only: a namespace `a` must not eat the letter a of every word.
    return re.compile(rf"(?<![\w-])(?:{'|'.join(re.escape(value) for value in values)})(?![\w-])")


def _strings(value: message.Message) -> Iterator[str]:
    for field, content in value.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            items: Iterable[Any] = [*content.keys(), *content.values()]
        elif isinstance(content, (str, message.Message)):
            items = (content,)
        else:
            items = content if isinstance(content, Iterable) else ()  # repeated, or a number
        for item in items:
            if isinstance(item, str):
                yield item
            elif isinstance(item, message.Message):
                yield from _strings(item)


def _for_operators(aws_text: str) -> str:
    """AWS's text for the service's own log: identities kept, but never a body that may echo a request."""
    text = _without_values(aws_text)
    return "(not plain text: withheld)" if _STRUCTURED_TEXT.search(text) else text


def safe_aws_text(aws_text: str) -> str:
    """AWS's text, safe to pass to a caller: quoted values dropped, structured bodies and any text that
    names an AWS identity withheld, bounded.

    AWS redacts sensitive members itself, but no value of a request should travel back through a
    caller's logs, a raw body (HTML from a proxy, echoed JSON) is not a message at all, and the
    service's own role, account and keys are not the caller's business.
    """
    text = _without_values(aws_text)
    if _STRUCTURED_TEXT.search(text):
        return "(the upstream message is withheld: it is not plain text)"
    if names_an_identity(text):
        return "(the upstream message is withheld: it names an AWS identity)"
    return text


# --- field paths ------------------------------------------------------------------------------

# Wire members whose values are maps: the segment after them is a key, kept verbatim.
_MAP_MEMBERS = frozenset({"metadata"})
# Model members whose proto field is not their snake case, as the operation table declares them.
_PROTO_NAMES = {model: proto for op in operations.OPERATIONS for proto, model in op.renamed.items()}


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
            segments.append((_PROTO_NAMES.get(head) or translate.snake(head)) + bracket + rest)
        index += 1
    return ".".join(segments)


def aws_field_violations(answer: outcomes.Answer) -> list[FieldViolation]:
    """BadRequest violations from a ValidationException's `fieldList` (empty when there is none)."""
    violations = []
    for entry in answer.field_list:
        if entry.get("name"):
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
            error_details_pb2.BadRequest.FieldViolation(
                field=_shortened(v.field, MAX_FIELD_CHARACTERS),
                description=_shortened(
                    f"{v.description} ({v.detail})" if v.detail else v.description, MAX_FIELD_CHARACTERS
                ),
            )
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
