"""Whether AWS may have applied a call that failed: the `outcome` (RecordOutcome) of its records.

AWS applies nothing it answers with a 4xx, nor a request it never received (a connection never made,
an attempt the deadline hooks refused); any other end of an attempt (a 5xx, a timeout, a lost
connection, a 2xx whose reply could not be read) may come after AWS applied it. botocore retries
within one call, so a call whose last attempt AWS refused may have been applied by an earlier one: a
botocore hook notes every attempt of the calls made while `watching` an `Attempts`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import botocore.exceptions
from agentcore.memory.v1 import memory_records_pb2 as pb

from service import calls

if TYPE_CHECKING:
    from mypy_boto3_bedrock_agentcore import BedrockAgentCoreClient

# Attempts that ended before AWS could receive them.
_NEVER_SENT = (
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.EndpointConnectionError,
    calls.CallerGoneError,
)


class Attempts:
    """What the attempts of one AWS call (with its retries) tell of its effect."""

    def __init__(self) -> None:
        self.may_have_applied = False

    def record_outcome(self) -> pb.RecordOutcome.ValueType:
        """The outcome of each record of the call, had it failed."""
        return pb.RECORD_OUTCOME_UNKNOWN if self.may_have_applied else pb.RECORD_OUTCOME_NOT_APPLIED


_current: contextvars.ContextVar[Attempts | None] = contextvars.ContextVar("agentcore_attempts", default=None)


@contextlib.contextmanager
def watching(attempts: Attempts) -> Iterator[None]:
    """Note in `attempts` every attempt of the AWS calls this thread makes within the block."""
    token = _current.set(attempts)
    try:
        yield
    finally:
        _current.reset(token)


def may_have_applied(http_status: int | None, exception: BaseException | None) -> bool:
    """Whether one attempt, answered `http_status` or ended by `exception`, may have been applied."""
    if exception is not None:
        return not isinstance(exception, _NEVER_SENT)
    return http_status is None or not 400 <= http_status < 500


def _on_attempt(response_dict: Any = None, exception: Any = None, **_: Any) -> None:
    attempts = _current.get()
    if attempts is None or attempts.may_have_applied:
        return
    status = int(response_dict["status_code"]) if response_dict else None
    attempts.may_have_applied = may_have_applied(status, exception)


def register(client: BedrockAgentCoreClient) -> None:
    """Install the hook on `client` (once, at start)."""
    service_id = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"response-received.{service_id}", _on_attempt)
