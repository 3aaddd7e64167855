"""reply_sizes.py: the largest reply AWS may send to each operation, derived from the model, checked against
the largest reply the model allows, built member by member and written as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import botocore.model
import pytest

from service.api import operations, replies, reply_sizes

MODEL = operations.service_model()
# Characters outside the Basic Multilingual Plane: each written as a 12-byte surrogate pair in JSON.
WIDE = [chr(0x1F300 + index) for index in range(64)]
# The longest JSON text of a double and of an integer.
LONGEST_DOUBLE = -2.2250738585072014e-308
LONGEST_INTEGER = -2_147_483_648


def largest(shape: Any, distinct: int = 0) -> Any:
    """The largest value of `shape` that the reply checks accept (every member present, unions too);
    `distinct` makes strings of the same shape differ (map keys)."""
    kind = shape.type_name
    if kind == "structure":
        return {name: largest(member) for name, member in shape.members.items()}
    if kind == "list":
        return [largest(shape.member, index) for index in range(int(shape.metadata["max"]))]
    if kind == "map":
        entries = int(shape.metadata["max"])
        return {largest(shape.key, index): largest(shape.value) for index in range(entries)}
    if kind == "string":
        if shape.enum:
            return max(shape.enum, key=len)
        characters = int(shape.metadata.get("max", reply_sizes.UNBOUNDED_STRING_CHARACTERS))
        return WIDE[distinct % len(WIDE)] + WIDE[0] * (characters - 1)
    if kind in {"double", "float", "timestamp"}:
        return LONGEST_DOUBLE if kind != "timestamp" else -62_135_596_799.99999
    if kind in {"integer", "long"}:
        return LONGEST_INTEGER
    raise AssertionError(f"no largest value for a {kind}")


def as_aws_writes(reply: Any) -> bytes:
    """Compact JSON, every character outside ASCII escaped, as AWS and boto3 write it."""
    return json.dumps(reply, separators=(",", ":")).encode()


def output(aws_operation: str) -> Any:
    return MODEL.operation_model(aws_operation).output_shape


def largest_reply(aws_operation: str, items: int) -> bytes:
    """The largest reply to `aws_operation` with `items` entries across its top-level lists, all in the
    first of them; checked to be one the reply checks accept."""
    shape = output(aws_operation)
    reply: dict[str, Any] = {}
    for name, member in shape.members.items():
        if member.type_name == "list" and "max" not in member.metadata:
            reply[name] = [largest(member.member, index) for index in range(items)] if not reply else []
        else:
            reply[name] = largest(member)
    raw = as_aws_writes(reply)
    replies.check_reply(shape.name, raw)  # a reply the facade would otherwise serve
    return raw


def test_the_largest_get_reply_the_model_allows_fits_and_the_cap_is_not_far_above_it() -> None:
    raw = largest_reply("GetMemoryRecord", 0)
    bound = reply_sizes.largest_reply_bytes("GetMemoryRecord", {"memoryId": "m", "memoryRecordId": "r"})
    assert len(raw) <= bound
    assert bound < len(raw) * 1.05


def test_a_reply_smaller_than_an_error_reply_is_capped_at_the_room_an_error_reply_needs() -> None:
    raw = largest_reply("DeleteMemoryRecord", 0)
    assert len(raw) < reply_sizes.MIN_REPLY_BYTES
    assert reply_sizes.largest_reply_bytes("DeleteMemoryRecord", {}) == reply_sizes.MIN_REPLY_BYTES


@pytest.mark.parametrize(
    "aws_operation", ["BatchCreateMemoryRecords", "BatchUpdateMemoryRecords", "BatchDeleteMemoryRecords"]
)
@pytest.mark.parametrize("records", [2, 100, 250])
def test_a_batch_reply_is_capped_by_one_largest_result_per_record_sent(
    aws_operation: str, records: int
) -> None:
    raw = largest_reply(aws_operation, records)
    bound = reply_sizes.largest_reply_bytes(aws_operation, {"records": [{}] * records})
    assert len(raw) <= bound < len(raw) * 1.05
    # One more result than records sent does not fit (results beside the records are refused).
    assert len(largest_reply(aws_operation, records + 1)) > bound


@pytest.mark.parametrize("aws_operation", ["ListMemoryRecords", "RetrieveMemoryRecords"])
def test_a_page_is_capped_by_the_summaries_the_request_asks_for(aws_operation: str) -> None:
    for max_results in (1, 3):
        raw = largest_reply(aws_operation, max_results)
        bound = reply_sizes.largest_reply_bytes(aws_operation, {"maxResults": max_results})
        assert len(raw) <= bound < len(raw) * 1.05


@pytest.mark.parametrize("aws_operation", ["ListMemoryRecords", "RetrieveMemoryRecords"])
def test_a_page_the_request_leaves_to_aws_is_capped_at_the_models_largest_page(aws_operation: str) -> None:
    model_max = int(MODEL.operation_model(aws_operation).input_shape.members["maxResults"].metadata["max"])
    assert model_max == 100
    assert reply_sizes.largest_reply_bytes(aws_operation, {}) == reply_sizes.largest_reply_bytes(
        aws_operation, {"maxResults": model_max}
    )


@pytest.mark.parametrize("aws_operation", [operation.aws_operation for operation in operations.OPERATIONS])
def test_no_reply_is_capped_below_the_room_an_error_reply_needs(aws_operation: str) -> None:
    count_member = reply_sizes.reply_bound(aws_operation).count_member
    params: dict[str, Any] = (
        {} if count_member is None else {count_member: [] if count_member == "records" else 0}
    )
    assert reply_sizes.largest_reply_bytes(aws_operation, params) >= reply_sizes.MIN_REPLY_BYTES


def test_a_one_record_batch_is_capped_at_the_floor_and_a_larger_one_above_it() -> None:
    one = reply_sizes.largest_reply_bytes("BatchUpdateMemoryRecords", {"records": [{}]})
    two = reply_sizes.largest_reply_bytes("BatchUpdateMemoryRecords", {"records": [{}, {}]})
    assert one == reply_sizes.MIN_REPLY_BYTES
    assert two > reply_sizes.MIN_REPLY_BYTES
    bound = reply_sizes.reply_bound("BatchUpdateMemoryRecords")
    assert two == bound.fixed_bytes + 2 * bound.item_bytes


def test_a_count_of_a_type_boto3_would_refuse_is_treated_as_left_to_aws() -> None:
    bound = reply_sizes.reply_bound("ListMemoryRecords")
    assert bound.for_params({"maxResults": "3"}) == bound.for_params({})


def test_an_operation_whose_reply_has_no_unbounded_list_ignores_the_request() -> None:
    bound = reply_sizes.reply_bound("GetMemoryRecord")
    assert bound.count_member is None and bound.item_bytes == 0
    assert bound.for_params({"records": [{}] * 1000}) == bound.for_params({})


# --- a model that leaves a reply unbounded -------------------------------------------------------


def fake_model(output: dict[str, Any], inputs: dict[str, Any] | None = None, **shapes: Any) -> Any:
    """A one-operation model, Fake: its output and input members, and the shapes they name."""
    return botocore.model.ServiceModel(
        {
            "metadata": {"protocol": "rest-json", "apiVersion": "2024-01-01", "serviceId": "Fake"},
            "operations": {
                "Fake": {"name": "Fake", "input": {"shape": "FakeInput"}, "output": {"shape": "FakeOutput"}}
            },
            "shapes": {
                "FakeInput": {"type": "structure", "members": inputs or {}},
                "FakeOutput": {"type": "structure", "members": output},
                "Text": {"type": "string", "max": 10},
                **shapes,
            },
        }
    )


@pytest.fixture
def model_of(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Sets the model reply_bound reads, for the test alone (its results are cached per operation)."""

    def use(model: Any) -> None:
        monkeypatch.setattr(operations, "service_model", lambda: model)
        reply_sizes.reply_bound.cache_clear()

    yield use
    reply_sizes.reply_bound.cache_clear()


def test_a_nested_list_without_a_maximum_is_refused_when_the_bound_is_compiled(model_of: Any) -> None:
    model_of(
        fake_model(
            {"item": {"shape": "Item"}},
            Item={"type": "structure", "members": {"tags": {"shape": "Tags"}}},
            Tags={"type": "list", "member": {"shape": "Text"}},
        )
    )
    with pytest.raises(ValueError, match="Tags: the model sets no maximum count"):
        reply_sizes.reply_bound("Fake")


def test_an_unbounded_top_level_list_without_a_count_in_the_request_is_refused(model_of: Any) -> None:
    model_of(fake_model({"items": {"shape": "Items"}}, Items={"type": "list", "member": {"shape": "Text"}}))
    with pytest.raises(ValueError, match="Fake: an unbounded list in the reply, and no count in the request"):
        reply_sizes.reply_bound("Fake")


def test_a_bound_from_a_small_model_is_the_longest_json_text_of_its_reply(model_of: Any) -> None:
    """{"items":[...],"n":...} with each item a string of at most 10 characters: the arithmetic by hand."""
    model_of(
        fake_model(
            {"items": {"shape": "Items"}, "n": {"shape": "Number"}},
            {"maxResults": {"shape": "Max"}},
            Items={"type": "list", "member": {"shape": "Text"}},
            Number={"type": "integer"},
            Max={"type": "integer", "max": 7},
        )
    )
    item = 2 + 10 * reply_sizes.JSON_BYTES_PER_CHARACTER + 1  # quotes, characters, comma
    fixed = 2 + (len("items") + 4 + 2) + (len("n") + 4 + reply_sizes.NUMBER_BYTES)
    bound = reply_sizes.reply_bound("Fake")
    assert bound == reply_sizes.ReplyBound(fixed, item, "maxResults", 7)
    assert reply_sizes.largest_reply_bytes("Fake", {"maxResults": 5000}) == fixed + 5000 * item
