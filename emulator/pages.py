"""Pages of a sorted result and their ``nextToken``.

A token holds the sort key of the last item served and a fingerprint of the request, so a page
continues strictly after the previous one (an item that stays put is served exactly once, whatever
is added or deleted meanwhile) and a token cannot continue a different request. It is opaque to
callers (base64url of JSON); anything that does not decode to a token of this request is invalid.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from emulator.restjson.wire import canonical_json

# The model's documented default for maxResults (its maximum, 100, is a model constraint).
DEFAULT_PAGE_SIZE = 20

# Sort keys are (number, record id): newest first for List, best score first for Retrieve.
SortKey = tuple[float, str]
Item = TypeVar("Item")

# Members that do not change which items a request selects, nor their order.
_PAGING_MEMBERS = frozenset({"nextToken", "maxResults"})


class InvalidToken(ValueError):
    """The nextToken was not issued for this request."""


@dataclass(frozen=True)
class Page(Generic[Item]):
    items: list[Item]
    next_token: str | None


def fingerprint(operation: str, memory_id: str, params: Mapping[str, Any]) -> str:
    selecting = {name: value for name, value in params.items() if name not in _PAGING_MEMBERS}
    selecting["memoryId"] = memory_id  # canonical, so a memory named by ARN continues the same list
    text = canonical_json({"operation": operation, "params": selecting})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def page_of(
    ordered: Sequence[tuple[SortKey, Item]], request_fingerprint: str, token: str | None, size: int
) -> Page[Item]:
    """The page of ``ordered`` (sorted by key, keys unique) that ``token`` continues, or the first."""
    start = 0
    if token is not None:
        start = bisect.bisect_right([key for key, _ in ordered], _decode(token, request_fingerprint))
    chosen = ordered[start : start + size]
    next_token = None
    if chosen and start + size < len(ordered):
        next_token = _encode(chosen[-1][0], request_fingerprint)
    return Page([item for _, item in chosen], next_token)


def _encode(after: SortKey, request_fingerprint: str) -> str:
    document = json.dumps({"f": request_fingerprint, "k": list(after)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(document.encode("utf-8")).decode("ascii")


def _decode(token: str, request_fingerprint: str) -> SortKey:
    try:
        document = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, binascii.Error, RecursionError):  # Unicode and JSON errors are ValueErrors
        raise InvalidToken from None
    match document:
        case {"f": str() as issued_for, "k": [int() | float() as number, str() as record_id]} if (
            issued_for == request_fingerprint and not isinstance(number, bool)
        ):
            return (number, record_id)
    raise InvalidToken
