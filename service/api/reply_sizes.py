"""The largest reply body AWS may send for a request, derived from the botocore model's output shapes.

Each output shape is bounded member by member: a string by its model maximum (or, without one, by
UNBOUNDED_STRING_CHARACTERS), a list or map by its maximum count, numbers and timestamps by the
longest JSON text they take. The model leaves the top-level lists of a reply unbounded; what bounds
them is the request: a batch reply holds one result per record sent (its successful and failed lists
together), a List or Retrieve page at most `maxResults` summaries (the model's maximum, 100, when the
request leaves it to AWS). So a reply's bound is `fixed + items x largest item`, compiled once per
operation. No reply of any operation is capped below MIN_REPLY_BYTES, the room an error reply needs
(its message and field list are unbounded in the model). attempts.py refuses a larger body.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from service.api import operations

# The longest JSON text of one character (a model length counts code points): one outside the Basic
# Multilingual Plane escaped as a surrogate pair, `\ud83c\udf75`, as boto3 and the emulator write it.
JSON_BYTES_PER_CHARACTER = 12
# A number or a timestamp as JSON text: a double's 17 significant digits, sign, exponent and point.
NUMBER_BYTES = 32
# A string the model sets no maximum for (an error message, a pagination token).
UNBOUNDED_STRING_CHARACTERS = 4096
# Error replies, whose members the model leaves unbounded; also every reply's floor.
MIN_REPLY_BYTES = 64 * 1024
# The request members that say how many items the reply's unbounded lists hold, together.
_ITEM_COUNTS = ("records", "maxResults")


@dataclasses.dataclass(frozen=True)
class ReplyBound:
    """The bound of one operation's reply: `fixed_bytes + items x item_bytes`."""

    fixed_bytes: int
    item_bytes: int
    count_member: str | None  # the request member that gives `items`
    default_items: int  # when the request leaves the count to AWS

    def for_params(self, params: Mapping[str, Any]) -> int:
        if self.count_member is None:
            items = 0
        else:
            given = params.get(self.count_member)
            if isinstance(given, list):
                items = len(given)
            elif isinstance(given, int):
                items = given
            else:
                items = self.default_items
        return max(MIN_REPLY_BYTES, self.fixed_bytes + items * self.item_bytes)


def largest_reply_bytes(aws_operation: str, params: Mapping[str, Any]) -> int:
    """The most body bytes AWS may answer to `aws_operation` called with `params` (boto3's)."""
    return reply_bound(aws_operation).for_params(params)


@functools.cache
def reply_bound(aws_operation: str) -> ReplyBound:
    """`aws_operation`'s bound, from the model (ValueError if the model leaves a member unbounded)."""
    model = operations.service_model().operation_model(aws_operation)
    output = model.output_shape
    fixed = 2  # braces
    item_bytes = 0
    for name, member in output.members.items():
        if member.type_name == "list" and "max" not in member.metadata:
            # The unbounded top-level lists share the request's count; each also costs its key and brackets.
            item_bytes = max(item_bytes, _bound(member.member) + 1)
            fixed += _key_bytes(name) + 2
        else:
            fixed += _key_bytes(name) + _bound(member)
    count_member = next((name for name in _ITEM_COUNTS if name in model.input_shape.members), None)
    if item_bytes and count_member is None:
        raise ValueError(f"{aws_operation}: an unbounded list in the reply, and no count in the request")
    default_items = 0
    if count_member is not None:
        default_items = int(model.input_shape.members[count_member].metadata.get("max", 0))
    return ReplyBound(fixed, item_bytes, count_member if item_bytes else None, default_items)


def _key_bytes(name: str) -> int:
    return len(name) + 4  # quotes, colon, comma


def _bound(shape: Any) -> int:
    """The longest JSON text of a value of `shape`."""
    kind = shape.type_name
    if kind == "structure":
        return 2 + sum(_key_bytes(name) + _bound(member) for name, member in shape.members.items())
    if kind in {"list", "map"}:
        if "max" not in shape.metadata:
            raise ValueError(f"{shape.name}: the model sets no maximum count")
        count = int(shape.metadata["max"])
        if kind == "list":
            return 2 + count * (_bound(shape.member) + 1)
        return 2 + count * (_bound(shape.key) + 1 + _bound(shape.value) + 1)
    if kind == "string":
        if shape.enum:
            return 2 + max(len(value) for value in shape.enum)
        characters = int(shape.metadata.get("max", UNBOUNDED_STRING_CHARACTERS))
        return 2 + characters * JSON_BYTES_PER_CHARACTER
    if kind in {"integer", "long", "double", "float", "timestamp", "boolean"}:
        return NUMBER_BYTES
    raise ValueError(f"{shape.name}: no bound for a {kind}")
