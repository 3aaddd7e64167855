"""Hypothesis strategies for every request message, found from the proto descriptors: any field values,
unknown enum numbers, extreme strings and numbers, up to 101 records; and `build`, which turns the
generated values into a message."""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor, message
from hypothesis import strategies as st

from tests.helpers import MEMORY_ID, RECORD_ID, record_create

FD = descriptor.FieldDescriptor
INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", MEMORY_ID, RECORD_ID, "users/alice", " ", "\u00a0", "x" * 16_001]),
)
TIMESTAMPS = st.builds(
    lambda s, n: {"seconds": s, "nanos": n},
    st.integers(-62_135_596_800, 253_402_300_799),
    st.integers(0, 999_999_999),
)
RECORD_IDS = st.from_regex(r"mem-[a-zA-Z0-9_-]{36,46}", fullmatch=True)
METADATA_VALUES = st.one_of(
    st.builds(lambda v: {"string_value": v}, st.from_regex(r"[a-zA-Z0-9 ._:/=+@-]{1,40}", fullmatch=True)),
    st.builds(lambda v: {"string_list_value": {"values": v}}, st.lists(st.just("v"), min_size=1, max_size=5)),
    st.builds(lambda v: {"number_value": v}, st.floats(allow_nan=False, allow_infinity=False)),
    st.builds(lambda v: {"date_time_value": v}, TIMESTAMPS),
)
# Values that pass validation, so that generated requests also reach AWS (the emulator) and back.
VALID_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "memory_id": st.sampled_from([MEMORY_ID, "unknown_memory-0123456789"]),
    "memory_record_id": RECORD_IDS,
    "request_identifier": st.from_regex(r"[a-zA-Z0-9_-]{1,80}", fullmatch=True),
    "content": st.builds(lambda t: {"text": t}, st.text(min_size=1, max_size=300)),
    "timestamp": TIMESTAMPS,
    "memory_strategy_id": st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,30}", fullmatch=True),
    "metadata": st.dictionaries(
        st.from_regex(r"[a-zA-Z0-9_]{1,10}", fullmatch=True), METADATA_VALUES, min_size=1, max_size=3
    ),
    "namespace": st.just("users/alice"),
    # Qualified where one name has two types.
    "MemoryRecordCreate.namespaces": st.lists(st.just("users/alice"), max_size=1),
    "MemoryRecordUpdate.namespaces": st.builds(
        lambda v: {"values": v}, st.lists(st.just("users/bob"), max_size=1)
    ),
    "MemoryRecordUpdate.source_namespaces": st.builds(
        lambda v: {"values": v}, st.lists(st.just("users/alice"), max_size=1)
    ),
    "client_token": st.from_regex(r"[a-zA-Z0-9-]{33,60}", fullmatch=True),
    "namespace_path": st.sampled_from(["users", "users/alice"]),
    "page_size": st.integers(0, 100),
    "page_token": st.just(""),
    "search_query": st.text(min_size=1, max_size=100),
    "top_k": st.integers(1, 100),
    "search_criteria": st.fixed_dictionaries(
        {"search_query": st.text(min_size=1, max_size=100)}, optional={"top_k": st.integers(1, 100)}
    ),
    "metadata_filters": st.lists(
        st.fixed_dictionaries(
            {
                "left": st.builds(
                    lambda k: {"metadata_key": k}, st.from_regex(r"[a-zA-Z0-9_]{1,10}", fullmatch=True)
                ),
                "operator": st.integers(1, 10),
            },
            optional={"right": st.builds(lambda v: {"metadata_value": v}, METADATA_VALUES)},
        ),
        max_size=5,
    ),
    "record_expiry_specification": st.one_of(
        st.builds(lambda d: {"record_expiry_duration_days": d}, st.integers(1, 3650)), st.just({"action": 1})
    ),
}


def scalars(field: descriptor.FieldDescriptor) -> st.SearchStrategy[Any]:
    """Any value the field's wire type can carry, unknown enum numbers included."""
    kind = field.type
    if kind == FD.TYPE_ENUM:
        return INT32  # proto3 enums are open: any number arrives
    if kind in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
        return INT32
    if kind in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64):
        return INT64
    if kind in (FD.TYPE_UINT32, FD.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if kind in (FD.TYPE_UINT64, FD.TYPE_FIXED64):
        return st.integers(0, 2**64 - 1)
    if kind in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return st.floats(width=32 if kind == FD.TYPE_FLOAT else 64)
    if kind == FD.TYPE_BOOL:
        return st.booleans()
    if kind == FD.TYPE_BYTES:
        return st.binary(max_size=20)
    return TEXT


def messages(
    message_type: descriptor.Descriptor, depth: int = 0, *, valid: bool = False
) -> st.SearchStrategy[Any]:
    """Messages of `message_type` with any subset of fields set, found from the descriptor alone. With
    `valid`, the fields that have a valid strategy always take it, so that most messages pass."""
    if message_type.full_name == "google.protobuf.Timestamp":
        return st.builds(lambda s, n: {"seconds": s, "nanos": n}, INT64, INT32)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in message_type.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key = scalars(field.message_type.fields_by_name["key"])
            value_field = field.message_type.fields_by_name["value"]
            value = value_of(value_field, depth + 1, valid=valid)
            fields[field.name] = st.dictionaries(key, value, max_size=3)
        elif field.is_repeated:
            # `records` sometimes at AWS's limit and one past it; other lists short.
            if field.name == "records":
                fields[field.name] = st.one_of(
                    st.lists(value_of(field, depth + 1, valid=valid), max_size=3),
                    st.sampled_from([100, 101]).map(lambda n, f=field: [many_records(f)] * n),
                )
            else:
                fields[field.name] = st.lists(value_of(field, depth + 1, valid=valid), max_size=3)
        else:
            fields[field.name] = value_of(field, depth + 1, valid=valid)
        valid_values = VALID_FIELDS.get(f"{message_type.name}.{field.name}", VALID_FIELDS.get(field.name))
        if valid_values is not None:
            fields[field.name] = valid_values if valid else st.one_of(valid_values, fields[field.name])
    return st.fixed_dictionaries({}, optional=fields)


def value_of(field: descriptor.FieldDescriptor, depth: int, *, valid: bool = False) -> st.SearchStrategy[Any]:
    if field.message_type is None:
        return scalars(field)
    if depth > 4:
        return st.just({})
    return messages(field.message_type, depth, valid=valid)


def many_records(field: descriptor.FieldDescriptor) -> dict[str, Any]:
    """A valid record (as a dict), repeated to reach the 100-record boundary cheaply."""
    record = record_create()
    if field.message_type.name == "MemoryRecordUpdate":
        return {"memory_record_id": RECORD_ID, "timestamp": {"seconds": 1_732_560_000}}
    if field.message_type.name == "MemoryRecordDelete":
        return {"memory_record_id": RECORD_ID}
    return {
        "request_identifier": record.request_identifier,
        "namespaces": list(record.namespaces),
        "content": {"text": record.content.text},
        "timestamp": {"seconds": record.timestamp.seconds},
    }


def build(message_type: type[message.Message], values: dict[str, Any]) -> message.Message | None:
    """The message for `values`, or None when protobuf itself refuses them (e.g. a oneof set twice)."""
    built = message_type()
    try:
        _fill(built, values)
    except (ValueError, TypeError, OverflowError):
        return None
    return built


def _fill(target: message.Message, values: dict[str, Any]) -> None:
    for name, value in values.items():
        field = target.DESCRIPTOR.fields_by_name[name]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            mapped = getattr(target, name)
            for key, member in value.items():
                if field.message_type.fields_by_name["value"].message_type is None:
                    mapped[key] = member
                else:
                    _fill(mapped[key], member)
        elif field.is_repeated:
            repeated = getattr(target, name)
            for member in value:
                if field.message_type is None:
                    repeated.append(member)
                else:
                    _fill(repeated.add(), member)
        elif field.message_type is not None:
            sub = getattr(target, name)
            sub.SetInParent()
            _fill(sub, value)
        else:
            setattr(target, name, value)
