"""Validation before AWS: every constraint of the botocore service model, checked on the boto3
parameters of a request, with violations named by their proto field path.

The constraints come from the botocore model itself (required members, lengths, patterns, enums,
list and map sizes, numeric ranges, unions), so a botocore upgrade that changes a limit changes this
validation with no code change. Each operation's checker is compiled once, at import: patterns are
precompiled and no model is walked per request.

Patterns are full matches, as AWS applies them (the model's patterns carry no anchors).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf import descriptor, message, timestamp_pb2

from service import operations, translate
from service.errors import FieldViolation, InvalidRequestError, MalformedRequestError
from service.operations import Request

Violations = list[FieldViolation]
Check = Callable[[Any, str, Violations], None]

# Timestamps a proto can carry but a datetime (and AWS) cannot: years 1 to 9999 only.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799


def _describe_length(minimum: int | None, maximum: int | None, unit: str) -> str:
    if minimum is not None and maximum is not None:
        return f"must have {minimum} to {maximum} {unit}"
    if minimum is not None:
        return f"must have at least {minimum} {unit}"
    return f"must have at most {maximum} {unit}"


def _compile(shape: Any, proto: descriptor.Descriptor | None, *, wrapped: bool = False) -> Check:
    """A checker for values of `shape`. `proto` is the message (or map entry, or list element) that
    carries them when there is one; `wrapped` marks a list held in a wrapper message's `values`."""
    kind = shape.type_name
    if kind == "structure":
        return _compile_structure(shape, proto)
    if kind == "list":
        return _compile_list(shape, proto, wrapped=wrapped)
    if kind == "map":
        return _compile_map(shape, proto)
    if kind == "string":
        return _compile_string(shape)
    if kind in {"integer", "long"}:
        return _compile_integer(shape)
    if kind in {"double", "float"}:
        return _check_finite
    return _check_nothing


def _check_nothing(value: Any, path: str, out: Violations) -> None:
    return None


def _check_finite(value: Any, path: str, out: Violations) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        out.append(FieldViolation(path, "must be a finite number"))


def _compile_string(shape: Any) -> Check:
    minimum = shape.metadata.get("min")
    maximum = shape.metadata.get("max")
    # ASCII: AWS matches with Java regexes, whose \s and \w are ASCII-only (Python's are Unicode).
    pattern = re.compile(shape.metadata["pattern"], re.ASCII) if "pattern" in shape.metadata else None
    enum = frozenset(shape.enum) if shape.enum else None
    length_message = _describe_length(minimum, maximum, "characters")
    enum_message = f"must be one of {', '.join(sorted(enum))}" if enum else ""
    pattern_message = f"must match the pattern {pattern.pattern}" if pattern else ""

    def check(value: Any, path: str, out: Violations) -> None:
        if not isinstance(value, str):
            out.append(FieldViolation(path, "must be a string"))
            return
        if (minimum is not None and len(value) < minimum) or (maximum is not None and len(value) > maximum):
            out.append(FieldViolation(path, length_message))
        elif enum is not None and value not in enum:
            out.append(FieldViolation(path, enum_message))
        elif pattern is not None and not pattern.fullmatch(value):
            out.append(FieldViolation(path, pattern_message))

    return check


def _compile_integer(shape: Any) -> Check:
    minimum = shape.metadata.get("min")
    maximum = shape.metadata.get("max")

    def check(value: Any, path: str, out: Violations) -> None:
        if minimum is not None and value < minimum:
            out.append(FieldViolation(path, f"must be at least {minimum}"))
        elif maximum is not None and value > maximum:
            out.append(FieldViolation(path, f"must be at most {maximum}"))

    return check


def _compile_list(shape: Any, element: descriptor.Descriptor | None, *, wrapped: bool) -> Check:
    minimum = shape.metadata.get("min")
    maximum = shape.metadata.get("max")
    message = _describe_length(minimum, maximum, "entries")
    check_member = _compile(shape.member, element)
    # A proto wrapper message (NamespaceList, StringList) holds the list in its `values` field.
    member_prefix = ".values" if wrapped else ""

    def check(value: Any, path: str, out: Violations) -> None:
        if (minimum is not None and len(value) < minimum) or (maximum is not None and len(value) > maximum):
            out.append(FieldViolation(path, message))
        for index, member in enumerate(value):
            check_member(member, f"{path}{member_prefix}[{index}]", out)

    return check


def _compile_map(shape: Any, proto: descriptor.Descriptor | None) -> Check:
    minimum = shape.metadata.get("min")
    maximum = shape.metadata.get("max")
    message = _describe_length(minimum, maximum, "entries")
    check_key = _compile(shape.key, None)
    value_proto = proto.fields_by_name["value"].message_type if proto is not None else None
    check_value = _compile(shape.value, value_proto)

    def check(value: Any, path: str, out: Violations) -> None:
        if (minimum is not None and len(value) < minimum) or (maximum is not None and len(value) > maximum):
            out.append(FieldViolation(path, message))
        for key, member in value.items():
            entry_path = f"{path}[{key!r}]".replace("'", '"')
            check_key(key, f"{entry_path} (key)", out)
            check_value(member, entry_path, out)

    return check


def _compile_structure(shape: Any, proto: descriptor.Descriptor | None) -> Check:
    required = tuple(shape.required_members)
    is_union = bool(shape.metadata.get("union"))
    members: dict[str, tuple[str, Check]] = {}
    for name, member_shape in shape.members.items():
        proto_name = translate.snake(name)
        field = proto.fields_by_name.get(proto_name) if proto is not None else None
        nested = field.message_type if field is not None else None
        # A list in a singular message field is a wrapper (NamespaceList, StringList), not a repeated field.
        wrapped = field is not None and member_shape.type_name == "list" and not field.is_repeated
        members[name] = (proto_name, _compile(member_shape, None if wrapped else nested, wrapped=wrapped))
    union_message = f"must have exactly one of {', '.join(translate.snake(m) for m in shape.members)} set"

    def check(value: Any, path: str, out: Violations) -> None:
        prefix = f"{path}." if path else ""
        for name in required:
            if name not in value:
                out.append(FieldViolation(prefix + members[name][0], "is required"))
        if is_union and len(value) != 1:
            out.append(FieldViolation(path, union_message))
        for name, member in value.items():
            if name in members:
                proto_name, check_member = members[name]
                check_member(member, prefix + proto_name, out)

    return check


def compile_checkers(model: Any) -> dict[type[Any], Check]:
    """One checker per request message of the operation table, compiled from a botocore ServiceModel."""
    return {
        operation.request_type: _compile(
            model.operation_model(operation.aws_operation).input_shape, operation.request_type.DESCRIPTOR
        )
        for operation in operations.OPERATIONS
    }


_CHECKERS = compile_checkers(operations.service_model())


def parse(operation: operations.Operation[Request, Any], raw: bytes) -> Request:
    """The request message in `raw`, or MalformedRequestError."""
    try:
        return operation.request_type.FromString(raw)
    except message.DecodeError:
        raise MalformedRequestError(
            f"the request is not a valid {operation.request_type.DESCRIPTOR.full_name} message"
        ) from None


def check_values(request: message.Message) -> None:
    """Refuse what a proto can carry but AWS cannot, wherever the request sets it: timestamps outside
    years 1 to 9999 (or nanos out of range), and enum numbers the proto does not define."""
    violations: Violations = []
    _check_fields(request, "", violations)  # paths grow as `records[0].` + the field name
    if violations:
        raise InvalidRequestError(violations)


def _check_fields(value: message.Message, path: str, out: Violations) -> None:
    for field in _checked_fields(value.DESCRIPTOR):
        if field.is_repeated:
            members = getattr(value, field.name)
            value_field = _map_value(field)
            if value_field is not None:
                for key, member in members.items():
                    _check_value(value_field, member, f'{path}{field.name}["{key}"]', out)
            else:
                for index, member in enumerate(members):
                    _check_value(field, member, f"{path}{field.name}[{index}]", out)
        elif field.message_type is None or value.HasField(field.name):
            _check_value(field, getattr(value, field.name), path + field.name, out)


@functools.cache
def _checked_fields(message_type: descriptor.Descriptor) -> tuple[descriptor.FieldDescriptor, ...]:
    """The fields of `message_type` that can hold an enum or a timestamp, found once per message type:
    every request passes here, and most of its fields (text, ids) need nothing."""
    return tuple(field for field in message_type.fields if _can_hold_checked_value(field))


def _can_hold_checked_value(field: descriptor.FieldDescriptor) -> bool:
    if field.enum_type is not None:
        return True
    if field.message_type is None:
        return False
    value_field = _map_value(field)
    if value_field is not None:
        return _can_hold_checked_value(value_field)
    return field.message_type is timestamp_pb2.Timestamp.DESCRIPTOR or bool(
        _checked_fields(field.message_type)
    )


@functools.cache
def _map_value(field: descriptor.FieldDescriptor) -> descriptor.FieldDescriptor | None:
    """The value field of a map field's entries; None for any other field."""
    entry = field.message_type
    if entry is None or not entry.GetOptions().map_entry:
        return None
    value_field: descriptor.FieldDescriptor = entry.fields_by_name["value"]
    return value_field


def _check_value(field: descriptor.FieldDescriptor, value: Any, path: str, out: Violations) -> None:
    if field.enum_type is not None:
        if value not in field.enum_type.values_by_number:
            names = ", ".join(v.name for v in field.enum_type.values if v.number)
            out.append(FieldViolation(path, f"must be one of {names}"))
    elif isinstance(value, timestamp_pb2.Timestamp):
        if not (_MIN_SECONDS <= value.seconds <= _MAX_SECONDS and 0 <= value.nanos <= 999_999_999):
            out.append(FieldViolation(path, "must be a valid timestamp between years 1 and 9999"))
    elif isinstance(value, message.Message):
        _check_fields(value, path + ".", out)


def check_params(
    request: Any, params: Mapping[str, Any], checkers: Mapping[type[Any], Check] = _CHECKERS
) -> None:
    """Refuse `params` (the boto3 parameters of `request`) when they break the service model."""
    violations: Violations = []
    checkers[type(request)](params, "", violations)
    if violations:
        raise InvalidRequestError(violations)


def validated_params(operation: operations.Operation[Any, Any], request: Any) -> dict[str, Any]:
    """The boto3 parameters of `request`, or InvalidRequestError naming every invalid field."""
    check_values(request)
    params = operation.to_params(request)
    check_params(request, params)
    return params
