"""Which attempt of an AWS call may have been applied (service/upstream/applied.py): the table behind
each failed record's outcome."""

from __future__ import annotations

import botocore.exceptions
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb

from service import calls
from service.upstream import applied


@pytest.mark.parametrize(
    ("http_status", "exception", "may_have_applied"),
    [
        (201, None, True),  # answered, but the reply could not be read
        (400, None, False),
        (429, None, False),
        (500, None, True),
        (503, None, True),
        (None, botocore.exceptions.ReadTimeoutError(endpoint_url="http://x"), True),
        (None, botocore.exceptions.ConnectionClosedError(endpoint_url="http://x"), True),
        (None, botocore.exceptions.ConnectTimeoutError(endpoint_url="http://x"), False),
        (None, botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), False),
        (None, calls.DeadlineExceededError("refused before sending"), False),
    ],
)
def test_only_attempts_aws_refused_or_never_received_were_not_applied(
    http_status: int | None, exception: BaseException | None, may_have_applied: bool
) -> None:
    assert applied.may_have_applied(http_status, exception) is may_have_applied


def test_one_attempt_that_may_have_been_applied_makes_the_call_unknown() -> None:
    attempts = applied.Attempts()
    with applied.watching(attempts):
        applied._on_attempt(exception=botocore.exceptions.ReadTimeoutError(endpoint_url="x"))
        applied._on_attempt(response_dict={"status_code": 429}, exception=None)  # a later refusal
    assert attempts.record_outcome() == pb.RECORD_OUTCOME_UNKNOWN
    refused = applied.Attempts()
    with applied.watching(refused):
        applied._on_attempt(response_dict={"status_code": 429}, exception=None)
    assert refused.record_outcome() == pb.RECORD_OUTCOME_NOT_APPLIED
    applied._on_attempt(response_dict={"status_code": 500}, exception=None)  # outside: noted nowhere
    assert refused.record_outcome() == pb.RECORD_OUTCOME_NOT_APPLIED
