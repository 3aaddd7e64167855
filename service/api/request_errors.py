"""The ways a caller's request is refused before AWS sees it, raised where the request is read or
checked; errors.py turns each into its status (INVALID_ARGUMENT with the fields named, and the rest).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class FieldViolation:
    """One invalid field, named by its proto path (`records[3].content.text`). `detail` is for the
    BadRequest details only (a pattern, say), not for the status message a person reads first."""

    field: str
    description: str
    detail: str = ""


class InvalidRequestError(Exception):
    """The facade refused a request before calling AWS."""

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        super().__init__(f"{len(violations)} invalid field(s)")
        self.violations = tuple(violations)


class MalformedRequestError(Exception):
    """The request's bytes are not the message the method takes."""


class RequestReadTimeoutError(Exception):
    """The caller opened the RPC and did not send its request message in time."""


class RequestTooLargeError(Exception):
    """A compressed request inflates past the server's receive limit."""
