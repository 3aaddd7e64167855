"""Requests before AWS, in one pass: the proto request becomes boto3 parameters while every constraint
of the botocore service model is checked, with violations named by their proto field path.

One converter per operation is compiled from the botocore model (required members, lengths, patterns,
enums, list and map sizes, numeric ranges, unions) and the request's proto descriptors, once, at
start: patterns are precompiled and neither the model nor the descriptors are walked per request. A
botocore upgrade that changes a limit changes this validation with no code change. Patterns are full
matches, as AWS applies them (the model's patterns carry no anchors).

How a proto field meets a model member, with nothing declared per RPC:
- names: `memory_record_id` is `memoryRecordId` (the operation table's `renamed` declares the others);
- presence: a field the caller did not set is left out of the parameters (fields without presence,
  proto3's plain scalars, repeated fields and maps, are sent when the model requires them or they are
  not empty), and a required member left out is named as required;
- a oneof is the model's union; a list held in a wrapper message's `values` field (NamespaceList,
  StringList) is the model's list; an enum `RECORD_EXPIRY_ACTION_REMOVE` is the model's `REMOVE`; a
  google.protobuf.Timestamp is a timezone-aware datetime (see translate.to_datetime);
- what a proto can carry but AWS cannot is refused too: enum numbers the proto does not define, and
  timestamps outside years 1 to 9999.
Compiling fails when a proto field has no model member or a required member has no proto field, so a
new RPC whose messages do not fit the model fails at start, not at a caller.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf import descriptor, message, timestamp_pb2

from service.api import operations, translate
from service.api.operations import Request
from service.api.request_errors import FieldViolation, InvalidRequestError, MalformedRequestError

Violations = list[FieldViolation]
# A converter answers the boto3 value of a proto value and appends what is wrong with it to the
# violations. `path` is the proto path of the value, or None on the first pass, which only finds
# whether anything is wrong: a request with violations is converted again with paths, so that a
# valid request builds no path strings.
Convert = Callable[[Any, str | None, Violations], Any]

# The seconds a datetime (and AWS) can hold, years 1 to 9999; a proto Timestamp or a JSON number holds more.
MIN_SECONDS = -62_135_596_800
MAX_SECONDS = 253_402_300_799
_TIMESTAMP = timestamp_pb2.Timestamp.DESCRIPTOR

# How a member's proto field is read.
_ALWAYS = 0  # no presence and required by the model: sent even when empty, so that its check names it
_IF_SET = 1  # has presence (messages, oneof members, `optional`): sent when set
_IF_NOT_EMPTY = 2  # no presence, not required: sent when not empty (zero, "", no entries)


class ModelMismatchError(TypeError):
    """A request message does not fit its operation's input shape: a mistake in the proto or the
    operation table, found when compiling, at import."""


def _describe_length(minimum: int | None, maximum: int | None, unit: str) -> str:
    if minimum is not None and maximum is not None:
        return f"must have {minimum} to {maximum} {unit}"
    if minimum is not None:
        return f"must have at least {minimum} {unit}"
    return f"must have at most {maximum} {unit}"


def length_limits(shape: Any, unit: str, maximum: int | None = None) -> tuple[int, float, str]:
    """(minimum, maximum, message) of a sized shape; (0, inf) when it has no limits. `maximum` replaces
    the model's."""
    minimum = shape.metadata.get("min") or None  # a minimum of 0 limits nothing
    maximum = shape.metadata.get("max") if maximum is None else maximum
    if minimum is None and maximum is None:
        return 0, math.inf, ""
    return minimum or 0, math.inf if maximum is None else maximum, _describe_length(minimum, maximum, unit)


class _Compiler:
    def __init__(self, renamed: Mapping[str, str]) -> None:
        self._renamed = renamed  # proto field name -> model member name

    def field(
        self, shape: Any, field: descriptor.FieldDescriptor, where: str, max_entries: int | None = None
    ) -> Convert | None:
        """The converter of one proto field's value (None: the value is sent as it is); `max_entries`
        replaces the model's maximum of a list."""
        kind = shape.type_name
        if max_entries is not None and (kind != "list" or not field.is_repeated):
            raise ModelMismatchError(f"{where} is not a repeated field of a list, so it has no entries")
        if field.is_repeated and field.message_type is not None and field.message_type.GetOptions().map_entry:
            if kind != "map":
                raise ModelMismatchError(f"{where} is a map; the model's {shape.name} is a {kind}")
            return self._map(shape, field.message_type)
        if field.is_repeated:
            if kind != "list":
                raise ModelMismatchError(f"{where} is repeated; the model's {shape.name} is a {kind}")
            return self._list(shape, field, where, wrapped=False, max_entries=max_entries)
        if kind == "list":  # a list in a singular field is a wrapper message holding it in `values`
            values = field.message_type.fields_by_name.get("values") if field.message_type else None
            if values is None or not values.is_repeated:
                raise ModelMismatchError(f"{where} is neither repeated nor a wrapper with `values`")
            return self._list(shape, values, where, wrapped=True)
        return self._single(shape, field, where)

    def _single(self, shape: Any, field: descriptor.FieldDescriptor, where: str) -> Convert | None:
        kind = shape.type_name
        if kind == "timestamp":
            if field.message_type is not _TIMESTAMP:
                raise ModelMismatchError(f"{where} must be a google.protobuf.Timestamp")
            return _convert_timestamp
        if kind == "structure":
            if field.message_type is None:
                raise ModelMismatchError(f"{where} must be a message for the model's {shape.name}")
            return self.structure(shape, field.message_type)
        if field.message_type is not None:
            raise ModelMismatchError(f"{where} is a message; the model's {shape.name} is a {kind}")
        if kind == "string":
            check = _compile_string(shape)
            return check if field.enum_type is None else _compile_enum(field.enum_type, check)
        if kind in {"integer", "long"}:
            return _compile_integer(shape)
        if kind in {"double", "float"}:
            return _check_finite
        return None

    def _list(
        self,
        shape: Any,
        field: descriptor.FieldDescriptor,
        where: str,
        *,
        wrapped: bool,
        max_entries: int | None = None,
    ) -> Convert:
        minimum, maximum, message = length_limits(shape, "entries", max_entries)
        convert_member = self._single(shape.member, field, f"{where}[]")
        member_prefix = ".values" if wrapped else ""

        def convert(value: Any, path: str | None, out: Violations) -> list[Any]:
            if wrapped:
                value = value.values
            if not minimum <= len(value) <= maximum:
                out.append(FieldViolation(path or "", message))
            if convert_member is None:
                return list(value)
            if path is None:
                return [convert_member(member, None, out) for member in value]
            return [
                convert_member(member, f"{path}{member_prefix}[{index}]", out)
                for index, member in enumerate(value)
            ]

        return convert

    def _map(self, shape: Any, entry: descriptor.Descriptor) -> Convert:
        minimum, maximum, message = length_limits(shape, "entries")
        where = entry.full_name
        check_key = self._single(shape.key, entry.fields_by_name["key"], f"{where}.key")
        convert_value = self._single(shape.value, entry.fields_by_name["value"], f"{where}.value")

        def convert(value: Any, path: str | None, out: Violations) -> dict[str, Any]:
            if not minimum <= len(value) <= maximum:
                out.append(FieldViolation(path or "", message))
            converted = {}
            for key, member in value.items():
                entry_path = None if path is None else f"{path}[{key!r}]".replace("'", '"')
                if check_key is not None:
                    check_key(key, None if entry_path is None else f"{entry_path} (key)", out)
                converted[key] = member if convert_value is None else convert_value(member, entry_path, out)
            return converted

        return convert

    def structure(
        self, shape: Any, proto: descriptor.Descriptor, max_entries: Mapping[str, int] | None = None
    ) -> Convert:
        """`max_entries`: model member -> the most entries of that list member, instead of the model's."""
        max_entries = max_entries or {}
        if unknown := set(max_entries) - set(shape.members):
            raise ModelMismatchError(f"{shape.name} has no members {', '.join(sorted(unknown))}")
        required = set(shape.required_members)
        proto_names = {self._renamed.get(field.name, field.name): field for field in proto.fields}
        members: list[tuple[str, str, int, Convert | None]] = []
        named = {}  # model member -> the proto name violations use
        for name, member_shape in shape.members.items():
            field = proto_names.pop(name, None) or proto_names.pop(translate.snake(name), None)
            if field is None:
                if name in required:
                    raise ModelMismatchError(
                        f"{proto.full_name} has no field for required {shape.name}.{name}"
                    )
                continue  # a member the proto does not offer
            named[name] = field.name
            convert_field = self.field(
                member_shape, field, f"{proto.full_name}.{field.name}", max_entries.get(name)
            )
            how = _IF_SET if field.has_presence else _ALWAYS if name in required else _IF_NOT_EMPTY
            members.append((field.name, name, how, convert_field))
        if proto_names:
            unmatched = ", ".join(field.name for field in proto_names.values())
            raise ModelMismatchError(f"{proto.full_name} fields {unmatched} have no member in {shape.name}")
        missing = tuple(
            (name, field_name) for field_name, name, how, _ in members if name in required and how == _IF_SET
        )
        is_union = bool(shape.metadata.get("union"))
        union_message = (
            "must have exactly one of "
            + ", ".join(named.get(m, translate.snake(m)) for m in shape.members)
            + " set"
        )

        # One loop per way of reading, so that the loops test nothing per member but what they must. They
        # are alike in shape on purpose: a helper shared by the three would cost a call per member of
        # every record, on the path each request takes.
        always = tuple((f, n, c) for f, n, how, c in members if how == _ALWAYS)
        if_set = tuple((f, n, c) for f, n, how, c in members if how == _IF_SET)
        if_not_empty = tuple((f, n, c) for f, n, how, c in members if how == _IF_NOT_EMPTY)

        def convert(value: Any, path: str | None, out: Violations) -> dict[str, Any]:
            params: dict[str, Any] = {}
            prefix = f"{path}." if path else ""
            for field_name, name, convert_member in always:
                member = getattr(value, field_name)
                params[name] = (
                    member
                    if convert_member is None
                    else convert_member(member, None if path is None else prefix + field_name, out)
                )
            for field_name, name, convert_member in if_set:
                if value.HasField(field_name):
                    member = getattr(value, field_name)
                    params[name] = (
                        member
                        if convert_member is None
                        else convert_member(member, None if path is None else prefix + field_name, out)
                    )
            for field_name, name, convert_member in if_not_empty:
                member = getattr(value, field_name)
                if member:
                    params[name] = (
                        member
                        if convert_member is None
                        else convert_member(member, None if path is None else prefix + field_name, out)
                    )
            for name, field_name in missing:
                if name not in params:
                    out.append(FieldViolation(prefix + field_name, "is required"))
            if is_union and len(params) != 1:
                out.append(FieldViolation(path or "", union_message))
            return params

        return convert


def _check_finite(value: Any, path: str | None, out: Violations) -> Any:
    if not math.isfinite(value):
        out.append(FieldViolation(path or "", "must be a finite number"))
    return value


def _convert_timestamp(value: timestamp_pb2.Timestamp, path: str | None, out: Violations) -> Any:
    if not (MIN_SECONDS <= value.seconds <= MAX_SECONDS and 0 <= value.nanos <= 999_999_999):
        out.append(FieldViolation(path or "", "must be a valid timestamp between years 1 and 9999"))
        return None
    return translate.to_datetime(value)


# What an id of these model shapes looks like, for a caller who sent one that does not fit: a person
# reads an example faster than the model's pattern, which stays in the BadRequest details.
# tests/service/api/test_validate.py checks that each example passes its shape's own checks.
EXAMPLES = {
    "MemoryId": "support_bot-a1B2c3D4e5",
    "MemoryRecordId": "mem-7b0e8f2a-3c4d-4e5f-9a6b-1c2d3e4f5a6b",
}


def _compile_string(shape: Any) -> Convert | None:
    minimum, maximum, length_message = length_limits(shape, "characters")
    # ASCII: AWS matches with Java regexes, whose \s and \w are ASCII-only (Python's are Unicode).
    pattern = re.compile(shape.metadata["pattern"], re.ASCII) if "pattern" in shape.metadata else None
    enum = frozenset(shape.enum) if shape.enum else None
    if not length_message and pattern is None and enum is None:
        return None
    enum_message = f"must be one of {', '.join(sorted(enum))}" if enum else ""
    pattern_message = f"must match the pattern {pattern.pattern}" if pattern else ""
    pattern_detail = ""
    example = EXAMPLES.get(shape.name)
    if example is not None:
        length_message = f"{length_message}, like {example}" if length_message else ""
        pattern_message = f"must look like {example}"
        pattern_detail = f"the pattern {pattern.pattern}" if pattern else ""

    def check(value: str, path: str | None, out: Violations) -> str:
        if not minimum <= len(value) <= maximum:
            out.append(FieldViolation(path or "", length_message, pattern_detail))
        elif enum is not None and value not in enum:
            out.append(FieldViolation(path or "", enum_message))
        elif pattern is not None and not pattern.fullmatch(value):
            out.append(FieldViolation(path or "", pattern_message, pattern_detail))
        return value

    return check


def _compile_enum(enum_type: descriptor.EnumDescriptor, check: Convert | None) -> Convert:
    """Proto enum numbers as the model's strings: RECORD_EXPIRY_ACTION_REMOVE is REMOVE."""
    prefix = translate.snake(enum_type.name).upper() + "_"
    names = {value.number: value.name.removeprefix(prefix) for value in enum_type.values}
    unknown_message = f"must be one of {', '.join(v.name for v in enum_type.values if v.number)}"

    def convert(value: int, path: str | None, out: Violations) -> str | None:
        name = names.get(value)
        if name is not None and check is not None:
            refused: Violations = []
            name = check(name, path, refused)
            if refused:
                name = None  # the model's message would list its strings; the caller sends proto names
        if name is None:
            out.append(FieldViolation(path or "", unknown_message))
        return name

    return convert


def _compile_integer(shape: Any) -> Convert | None:
    minimum = shape.metadata.get("min")
    maximum = shape.metadata.get("max")
    if minimum is None and maximum is None:
        return None

    def check(value: int, path: str | None, out: Violations) -> int:
        if minimum is not None and value < minimum:
            out.append(FieldViolation(path or "", f"must be at least {minimum}"))
        elif maximum is not None and value > maximum:
            out.append(FieldViolation(path or "", f"must be at most {maximum}"))
        return value

    return check


def compile_request(
    input_shape: Any,
    request: descriptor.Descriptor,
    renamed: Mapping[str, str] | None = None,
    max_entries: Mapping[str, int] | None = None,
) -> Convert:
    """The converter of `request` messages into parameters of a botocore operation's `input_shape`;
    ModelMismatchError when they do not fit. `max_entries` replaces the model's maximum of top-level
    list members ({"records": 1000})."""
    return _Compiler(renamed or {}).structure(input_shape, request, max_entries)


def compile_requests(model: Any, *, batch_records: int | None = None) -> dict[type[Any], Convert]:
    """One converter per request message of the operation table, compiled from a botocore ServiceModel.
    With `batch_records`, the batch operations' `records` take up to that many instead of the model's
    per-call maximum (batches.py splits them into calls AWS takes). The service compiles one such set,
    at start (batches.AwsCalls)."""
    return {
        operation.request_type: compile_request(
            model.operation_model(operation.aws_operation).input_shape,
            operation.request_type.DESCRIPTOR,
            operation.renamed,
            None if batch_records is None or not operation.batch else {"records": batch_records},
        )
        for operation in operations.OPERATIONS
    }


@functools.cache
def model_converters() -> dict[type[Any], Convert]:
    """The converters with the model's own limits, compiled on first use: what `validated_params`
    checks against when given no set (the tests, the bench); the service passes its own."""
    return compile_requests(operations.service_model())


def string_violations(shape_name: str, value: str, field: str) -> list[FieldViolation]:
    """The model's checks of the string shape `shape_name` (`MemoryId`, say) on a value that is not in
    a request: a setting's, for one."""
    check = _compile_string(operations.service_model().shape_for(shape_name))
    out: Violations = []
    if check is not None:
        check(value, field, out)
    return out


def parse(operation: operations.Operation[Request, Any], raw: bytes | bytearray) -> Request:
    """The request message in `raw`, or MalformedRequestError."""
    try:
        return operation.request_type.FromString(raw)  # type: ignore[arg-type]  # upb takes any buffer
    except message.DecodeError:
        raise MalformedRequestError(
            f"the request is not a valid {operation.request_type.DESCRIPTOR.full_name} message"
        ) from None


def validated_params(
    operation: operations.Operation[Any, Any],
    request: Any,
    converters: Mapping[type[Any], Convert] | None = None,
) -> dict[str, Any]:
    """The boto3 parameters of `request`, or InvalidRequestError naming every invalid field."""
    convert = (converters or model_converters())[operation.request_type]
    violations: Violations = []
    params: dict[str, Any] = convert(request, None, violations)
    if violations:
        violations.clear()
        convert(request, "", violations)  # again, naming the fields
        raise InvalidRequestError(violations)
    return params
