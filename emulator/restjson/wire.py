"""rest-json wire values: the request as received, the response to write, JSON bodies and epoch-seconds
timestamps."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

JSON_CONTENT_TYPE = "application/json"
REQUEST_ID_HEADER = "x-amzn-RequestId"

MICROS_PER_SECOND = 1_000_000

# The datetime range (years 1-9999): anything outside cannot be rendered by SDKs.
MIN_EPOCH_SECONDS = -62_135_596_800
MAX_EPOCH_SECONDS = 253_402_300_799


@dataclass(frozen=True)
class ReceivedRequest:
    """One HTTP request as received; ``operation`` is None when no route matched."""

    operation: str | None
    method: str
    path: str  # as sent (percent-encoded), without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def json(self) -> Any:
        """The parsed JSON body, or None when the body is empty or not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass
class Response:
    """An HTTP response ready to be written by the transport."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": JSON_CONTENT_TYPE})


class MalformedJson(ValueError):
    """The request body is not a JSON document the emulator can accept."""


def json_response(status: int, payload: Any) -> Response:
    return Response(status=status, body=encode_json(payload))


def encode_json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def _reject_constant(name: str) -> Any:
    # JSON has no NaN/Infinity; Python's parser accepts them unless told otherwise.
    raise MalformedJson(f"invalid JSON literal {name}")


def decode_json(body: bytes) -> Any:
    """Parse a request body. Non-integral numbers become ``Decimal`` so timestamps stay exact."""
    try:
        text = body.decode("utf-8")
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise MalformedJson(str(exc)) from None


def canonical_json(value: Any) -> str:
    """Stable text for hashing: sorted keys, no whitespace, ``Decimal`` kept exact."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_decimal_text)


def _decimal_text(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value.normalize())
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def now_micros() -> int:
    return time.time_ns() // 1000


def micros_from_epoch(seconds: int | Decimal) -> int:
    """Epoch seconds from the wire to integer microseconds, rounding half-even."""
    if isinstance(seconds, int):
        return seconds * MICROS_PER_SECOND
    return int((seconds * MICROS_PER_SECOND).to_integral_value(rounding=ROUND_HALF_EVEN))


def epoch_from_micros(micros: int) -> float:
    # int / int is correctly rounded, so SDKs parse back the exact microsecond.
    return micros / MICROS_PER_SECOND
