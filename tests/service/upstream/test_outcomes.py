"""outcomes.py: how a call ended, decided once (the row, the metric outcome and label, throttling, and
whether the caller went away)."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import grpc
import pytest

from service import calls
from service.api import translate
from service.upstream import outcomes
from service.upstream.outcomes import Outcome


def client_error(status: int, code: str) -> botocore.exceptions.ClientError:
    response: Any = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return botocore.exceptions.ClientError(response, "GetMemoryRecord")


def test_exception_classes_map_to_bounded_codes() -> None:
    cases = {
        calls.DeadlineExceededError("x"): ("cancelled", "DeadlineExceeded"),
        calls.CancelledError("x"): ("cancelled", "Cancelled"),
        botocore.exceptions.ConnectTimeoutError(endpoint_url="http://x"): ("network_error", "ConnectTimeout"),
        botocore.exceptions.ReadTimeoutError(endpoint_url="http://x"): ("network_error", "ReadTimeout"),
        botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"): (
            "network_error",
            "ConnectionError",
        ),
        botocore.exceptions.NoCredentialsError(): ("client_error", "CredentialsError"),
        RuntimeError("free text that must not become a label"): ("other_error", "Other"),
    }
    for exception, expected in cases.items():
        failure = outcomes.classify(exception)
        assert (failure.outcome, failure.error_code) == expected


@pytest.mark.parametrize(
    ("status", "code", "outcome", "label", "grpc_code"),
    [
        (
            404,
            "ResourceNotFoundException",
            Outcome.CLIENT_ERROR,
            "ResourceNotFoundException",
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            429,
            "ThrottledException",
            Outcome.THROTTLED,
            "ThrottledException",
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        ),
        (
            400,
            "ThrottlingException",
            Outcome.THROTTLED,
            "ThrottlingException",
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        ),
        (429, "SlowDownPlease", Outcome.THROTTLED, "Other", grpc.StatusCode.RESOURCE_EXHAUSTED),
        (500, "ServiceException", Outcome.SERVER_ERROR, "ServiceException", grpc.StatusCode.UNAVAILABLE),
        (503, "ServiceUnavailable", Outcome.SERVER_ERROR, "ServiceUnavailable", grpc.StatusCode.UNAVAILABLE),
        (
            403,
            "UnrecognizedClientException",
            Outcome.CLIENT_ERROR,
            "UnrecognizedClientException",
            grpc.StatusCode.INTERNAL,
        ),
        (409, "SomethingNewException", Outcome.CLIENT_ERROR, "Other", grpc.StatusCode.ABORTED),
    ],
)
def test_an_answer_is_classified_once_for_caller_and_metrics(
    status: int, code: str, outcome: Outcome, label: str, grpc_code: grpc.StatusCode
) -> None:
    failure = outcomes.classify_answer(status, code)
    assert (failure.outcome, failure.error_code, failure.row.code) == (outcome, label, grpc_code)
    assert outcomes.classify(client_error(status, code)) == failure


def test_unknown_codes_get_a_reason_from_their_name() -> None:
    assert outcomes.classify_answer(409, "SomethingNewException").row.reason == "AWS_SOMETHING_NEW"
    assert outcomes.classify_answer(400, "").row.reason == "AWS_UNKNOWN"


def test_every_model_error_keeps_its_name_as_a_label() -> None:
    for shape in outcomes.operations.service_model().error_shapes:
        status = int(shape.metadata.get("error", {}).get("httpStatusCode", 400))
        assert outcomes.classify_answer(status, shape.name).error_code == shape.name


def test_throttles_are_one_rule() -> None:
    assert outcomes.is_throttle(429, "")
    assert all(outcomes.is_throttle(400, code) for code in outcomes.THROTTLE_CODES)
    assert not outcomes.is_throttle(400, "ValidationException")


def test_facade_failures_carry_their_own_message() -> None:
    malformed = outcomes.classify(translate.MalformedReplyError("the AWS reply lacks memoryRecord"))
    assert malformed.row.code is grpc.StatusCode.UNAVAILABLE
    assert malformed.row.message is not None and "{}" in malformed.row.message
    assert outcomes.is_unexpected(outcomes.classify(KeyError("x")))
    assert not outcomes.is_unexpected(malformed)


def test_the_answer_is_read_once_from_botocores_reply() -> None:
    parsed = {
        "Error": {"Code": "ValidationException", "Message": "bad", "fieldList": [{"name": "memoryId"}]},
        "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "req-1", "RetryQuotaReached": True},
    }
    answer = outcomes.Answer.read(parsed)
    assert answer == outcomes.Answer(
        http_status=400,
        code="ValidationException",
        message="bad",
        request_id="req-1",
        retry_quota_reached=True,
        field_list=({"name": "memoryId"},),
    )
    assert not answer.throttled
    assert outcomes.Answer.read(parsed, 429).throttled  # the attempt's own status line wins
    assert outcomes.Answer.read({"message": "x", "Error": {"message": "lower"}}).message == "lower"


@pytest.mark.parametrize(
    "parsed",
    [
        None,
        "not a reply",
        {"Error": "a string", "ResponseMetadata": ["a list"]},
        {"Error": {"Code": None, "fieldList": "not a list"}, "ResponseMetadata": {"HTTPStatusCode": "abc"}},
        {"fieldList": [1, "x", None]},
    ],
)
def test_an_answer_of_the_wrong_shape_reads_as_absent_members(parsed: Any) -> None:
    answer = outcomes.Answer.read(parsed)
    assert (answer.http_status, answer.code, answer.request_id, answer.field_list) == (0, "", "", ())
