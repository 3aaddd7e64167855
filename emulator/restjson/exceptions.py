"""AWS rest-json error responses, and the errors of the protocol itself.

Messages are built from the model and from fixed text only: a submitted value (user content above
all) must never be echoed back, because errors end up in client logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from emulator.restjson.model import error_status
from emulator.restjson.wire import Response, encode_json

ERROR_TYPE_HEADER = "x-amzn-ErrorType"


class ApiError(Exception):
    """An error answered to the client as ``{"message": ...}`` plus modeled extra members."""

    def __init__(self, code: str, status: int, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.fields = fields

    @classmethod
    def modeled(cls, model: Any, code: str, message: str, **fields: Any) -> ApiError:
        """An error whose shape (and so HTTP status) comes from the given service model."""
        return cls(code, error_status(model, code), message, **fields)

    def to_response(self) -> Response:
        payload = {"message": self.message, **self.fields}
        response = Response(status=self.status, body=encode_json(payload))
        response.headers[ERROR_TYPE_HEADER] = self.code
        return response


@dataclass(frozen=True)
class FieldViolation:
    """One failed constraint, in Coral style: ``path`` like ``records.4.member.content.text``."""

    path: str
    constraint: str
    value_is_null: bool = field(default=False)

    @property
    def message(self) -> str:
        value = "Value null" if self.value_is_null else "Value"
        return f"{value} at '{self.path}' failed to satisfy constraint: {self.constraint}"


def validation_failed(model: Any, violations: Sequence[FieldViolation]) -> ApiError:
    count = len(violations)
    noun = "validation error" if count == 1 else "validation errors"
    message = f"{count} {noun} detected: " + "; ".join(v.message for v in violations)
    field_list = [{"name": v.path, "message": v.constraint} for v in violations]
    return ApiError.modeled(
        model, "ValidationException", message, reason="FieldValidationFailed", fieldList=field_list
    )


def cannot_parse(model: Any) -> ApiError:
    return ApiError.modeled(
        model, "ValidationException", "Request body is not a valid JSON object", reason="CannotParse"
    )


# Errors raised by the AWS front door rather than the service, so not in the model.
def missing_authentication_token() -> ApiError:
    return ApiError("MissingAuthenticationTokenException", 403, "Missing Authentication Token")


def unknown_operation() -> ApiError:
    return ApiError("UnknownOperationException", 404, "No operation matches the request method and path")


def request_too_large(limit: int) -> ApiError:
    return ApiError("RequestEntityTooLargeException", 413, f"Request body exceeds {limit} bytes")


def bad_request(message: str) -> ApiError:
    return ApiError("BadRequestException", 400, message)
