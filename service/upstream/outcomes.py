"""One classification of how an upstream (AWS) call ended, decided here and nowhere else.

For any failure it says what the caller sees (the gRPC row: code, reason, retry delay), what the
metrics count (outcome and a bounded error-code label), whether AWS throttled, and whether the caller
went away. errors.py builds the status from the row, telemetry/aws_hooks.py counts the outcome and
deadlines.py asks about throttles; none of them decides again. What AWS answered is read here too, once
(`Answer`): the others read its fields, never botocore's dict. docs/errors.md is the table in prose.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Mapping
from typing import Any

import botocore.exceptions
import grpc

from service import calls
from service.api import operations, translate
from service.upstream import rate_limits

# AWS error codes that mean "slow down" (botocore treats them as throttles too).
THROTTLE_CODES = frozenset(
    {"Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException"}
)
THROTTLE_RETRY_DELAY_SECONDS = 1.0
UNAVAILABLE_RETRY_DELAY_SECONDS = 1.0
# The reason of a reply that does not fit the model, or of a batch reply that leaves a record out.
MALFORMED_REASON = "AWS_MALFORMED_RESPONSE"
# The `aws_error_code` label of a code outside the known set, so that labels stay bounded.
OTHER_ERROR_CODE = "Other"
# Transient codes that map by HTTP status, but are worth their own label value.
_TRANSIENT_CODES = frozenset(
    {"RequestTimeout", "RequestTimeoutException", "InternalFailure", "ServiceUnavailable"}
)

CREDENTIALS_REJECTED_MESSAGE = "the service is misconfigured: its AWS credentials are missing or rejected"
CREDENTIALS_EXPIRED_MESSAGE = "the service's AWS credentials expired or could not be fetched; retry"


class Outcome(enum.StrEnum):
    """How an AWS call ended: the `outcome` label of the upstream metrics."""

    SUCCESS = "success"
    CLIENT_ERROR = "client_error"
    THROTTLED = "throttled"
    SERVER_ERROR = "server_error"
    NETWORK_ERROR = "network_error"
    CANCELLED = "cancelled"
    OTHER_ERROR = "other_error"


@dataclasses.dataclass(frozen=True)
class Row:
    """What the caller sees. `message`, when set, replaces AWS's text: `{}` takes the exception's text,
    `{operation}` the AWS operation's name. `quota_failure` adds a QuotaFailure detail."""

    code: grpc.StatusCode
    reason: str
    retry_delay_seconds: float | None = None
    message: str | None = None
    quota_failure: bool = False


@dataclasses.dataclass(frozen=True)
class Answer:
    """What AWS answered, read once from botocore's parsed reply (a ClientError's `response`, or the
    `parsed` its hooks get), which comes off the wire: a member of the wrong type reads as absent."""

    http_status: int  # 0 when none was recorded
    code: str  # AWS's error code; "" on success
    message: str
    request_id: str
    retry_quota_reached: bool  # botocore's standard retry mode refused a retry for want of quota
    field_list: tuple[Mapping[str, Any], ...]  # a ValidationException's fields

    @classmethod
    def read(cls, parsed: object, http_status: int | None = None) -> Answer:
        """The answer in `parsed`; `http_status`, when given, is the attempt's own status line."""
        reply = _mapping(parsed)
        error = _mapping(reply.get("Error"))
        metadata = _mapping(reply.get("ResponseMetadata"))
        if http_status is None:
            try:
                http_status = int(metadata.get("HTTPStatusCode") or 0)
            except (TypeError, ValueError):
                http_status = 0
        fields = reply.get("fieldList") or error.get("fieldList") or ()
        return cls(
            http_status=http_status,
            code=str(error.get("Code") or ""),
            message=str(error.get("Message") or error.get("message") or ""),
            request_id=str(metadata.get("RequestId") or ""),
            retry_quota_reached=bool(metadata.get("RetryQuotaReached")),
            field_list=tuple(f for f in fields if isinstance(f, Mapping)) if isinstance(fields, list) else (),
        )

    @property
    def throttled(self) -> bool:
        """Whether it means "slow down"."""
        return is_throttle(self.http_status, self.code)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclasses.dataclass(frozen=True)
class Failure:
    """One failed call, classified once."""

    row: Row
    outcome: Outcome
    error_code: str  # the `aws_error_code` label: from a fixed set


def _rejected(reason: str) -> Row:
    # AWS rejected the facade's own credentials: the deployment is wrong, a retry cannot help.
    return Row(grpc.StatusCode.INTERNAL, reason, message=CREDENTIALS_REJECTED_MESSAGE)


def _expired(reason: str) -> Row:
    # Expired credentials are refreshed by botocore's providers (IRSA, Pod Identity): retry.
    return Row(
        grpc.StatusCode.UNAVAILABLE, reason, UNAVAILABLE_RETRY_DELAY_SECONDS, CREDENTIALS_EXPIRED_MESSAGE
    )


# AWS error code -> what the caller sees. Codes not listed map by HTTP status (_row_for_http_status).
AWS_ROWS: dict[str, Row] = {
    "ValidationException": Row(grpc.StatusCode.INVALID_ARGUMENT, "AWS_VALIDATION_FAILED"),
    "InvalidInputException": Row(grpc.StatusCode.INVALID_ARGUMENT, "AWS_INVALID_INPUT"),
    "ResourceNotFoundException": Row(grpc.StatusCode.NOT_FOUND, "AWS_RESOURCE_NOT_FOUND"),
    # AWS's text names the service's own IAM role and account: that is for operators, not callers.
    "AccessDeniedException": Row(
        grpc.StatusCode.PERMISSION_DENIED,
        "AWS_ACCESS_DENIED",
        message="AccessDeniedException: the service is not allowed to call {operation}",
    ),
    **{
        code: Row(grpc.StatusCode.RESOURCE_EXHAUSTED, "AWS_THROTTLED", THROTTLE_RETRY_DELAY_SECONDS)
        for code in THROTTLE_CODES
    },
    "ServiceQuotaExceededException": Row(
        grpc.StatusCode.RESOURCE_EXHAUSTED, "AWS_SERVICE_QUOTA_EXCEEDED", quota_failure=True
    ),
    "ServiceException": Row(
        grpc.StatusCode.UNAVAILABLE, "AWS_SERVICE_ERROR", UNAVAILABLE_RETRY_DELAY_SECONDS
    ),
    **{
        code: _rejected("AWS_CREDENTIALS_REJECTED")
        for code in (
            "UnrecognizedClientException",
            "InvalidSignatureException",
            "InvalidClientTokenId",
            "MissingAuthenticationTokenException",
            "IncompleteSignature",
        )
    },
    **{
        code: _expired("AWS_CREDENTIALS_EXPIRED")
        for code in ("ExpiredTokenException", "ExpiredToken", "RequestExpired")
    },
}

_UNEXPECTED = Failure(
    Row(grpc.StatusCode.INTERNAL, "INTERNAL", message="internal error"), Outcome.OTHER_ERROR, OTHER_ERROR_CODE
)


def is_throttle(http_status: int, aws_code: str) -> bool:
    """Whether an answer means "slow down"."""
    return http_status == 429 or aws_code in THROTTLE_CODES


def is_unexpected(failure: Failure) -> bool:
    """A failure no row explains: a bug, logged with its traceback."""
    return failure is _UNEXPECTED


@functools.cache
def _known_codes() -> frozenset[str]:
    model_errors = {shape.name for shape in operations.service_model().error_shapes}
    return frozenset(model_errors | AWS_ROWS.keys() | _TRANSIENT_CODES)


def classify_answer(http_status: int, aws_code: str) -> Failure:
    """AWS answered `http_status` (4xx or 5xx) with the error code `aws_code`."""
    row = AWS_ROWS.get(aws_code) or _row_for_http_status(http_status, aws_code or "Unknown")
    if is_throttle(http_status, aws_code):
        outcome = Outcome.THROTTLED
    elif http_status >= 500:
        outcome = Outcome.SERVER_ERROR
    else:
        outcome = Outcome.CLIENT_ERROR
    return Failure(row, outcome, aws_code if aws_code in _known_codes() else OTHER_ERROR_CODE)


def classify(exc: BaseException) -> Failure:
    """Any failure of the path from validated parameters to a translated reply."""
    unavailable = grpc.StatusCode.UNAVAILABLE
    retry = UNAVAILABLE_RETRY_DELAY_SECONDS
    if isinstance(exc, calls.CallerGoneError):
        return Failure(Row(exc.code, exc.reason, message="{}"), Outcome.CANCELLED, exc.error_code)
    if isinstance(exc, rate_limits.UpstreamRateLimitedError):
        # Never sent: the fleet's own rate (UPSTREAM_RATE_LIMITS), not AWS's throttle.
        row = Row(grpc.StatusCode.RESOURCE_EXHAUSTED, rate_limits.REASON, exc.retry_after, "{}")
        return Failure(row, Outcome.CANCELLED, "UpstreamRateLimited")
    if isinstance(exc, botocore.exceptions.ClientError):
        answer = Answer.read(exc.response)
        return classify_answer(answer.http_status, answer.code)
    if isinstance(exc, translate.MalformedReplyError):
        # Any reply that does not fit the model or cannot be parsed, at any status (replies.py). Most
        # often a body cut short in transit; a retry (with the same client_token) is safe. botocore
        # retries none (it raises a parse failure out of its attempt loop): RetryInfo asks the caller.
        row = Row(unavailable, MALFORMED_REASON, retry, "AWS sent a malformed reply ({}); retry")
        return Failure(row, Outcome.OTHER_ERROR, OTHER_ERROR_CODE)
    if isinstance(exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        row = Row(grpc.StatusCode.INTERNAL, "AWS_CREDENTIALS_MISSING", message=CREDENTIALS_REJECTED_MESSAGE)
        return Failure(row, Outcome.CLIENT_ERROR, "CredentialsError")
    if isinstance(
        exc, botocore.exceptions.CredentialRetrievalError | botocore.exceptions.TokenRetrievalError
    ):
        return Failure(_expired("AWS_CREDENTIALS_UNAVAILABLE"), Outcome.CLIENT_ERROR, "CredentialsError")
    timeout = Row(unavailable, "AWS_TIMEOUT", retry, "AWS did not answer in time")
    if isinstance(exc, botocore.exceptions.ConnectTimeoutError):
        return Failure(timeout, Outcome.NETWORK_ERROR, "ConnectTimeout")
    if isinstance(exc, botocore.exceptions.ReadTimeoutError):
        return Failure(timeout, Outcome.NETWORK_ERROR, "ReadTimeout")
    if isinstance(exc, botocore.exceptions.HTTPClientError | botocore.exceptions.ConnectionError):
        row = Row(unavailable, "AWS_UNREACHABLE", retry, "cannot reach AWS: the connection failed")
        return Failure(row, Outcome.NETWORK_ERROR, "ConnectionError")
    return _UNEXPECTED


def _row_for_http_status(http_status: int, aws_code: str) -> Row:
    # An AIP-193 reason from the AWS code: `SomethingNewException` -> `AWS_SOMETHING_NEW`.
    reason = "AWS_" + (translate.snake(aws_code.removesuffix("Exception")).upper() or "UNKNOWN")
    if http_status >= 500:
        return Row(grpc.StatusCode.UNAVAILABLE, reason, UNAVAILABLE_RETRY_DELAY_SECONDS)
    if http_status == 429:
        return Row(grpc.StatusCode.RESOURCE_EXHAUSTED, reason, THROTTLE_RETRY_DELAY_SECONDS)
    if http_status == 404:
        return Row(grpc.StatusCode.NOT_FOUND, reason)
    if http_status == 403:
        return Row(grpc.StatusCode.PERMISSION_DENIED, reason)
    if http_status == 409:
        return Row(grpc.StatusCode.ABORTED, reason)
    if http_status == 400:
        return Row(grpc.StatusCode.INVALID_ARGUMENT, reason)
    if http_status == 401:  # the facade's own credentials: the deployment is wrong
        return Row(grpc.StatusCode.INTERNAL, reason)
    if 400 <= http_status < 500:
        return Row(grpc.StatusCode.FAILED_PRECONDITION, reason)
    return Row(grpc.StatusCode.INTERNAL, reason)
