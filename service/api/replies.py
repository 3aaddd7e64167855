"""AWS's replies checked against the botocore model's output shapes, inside botocore's own parse.

One check per operation's output shape is compiled from the botocore model, once, at import (as
validate.py compiles the request checks): JSON types, required members, lengths of strings, entries of
lists and maps, enum values, numeric ranges. A reply that does not fit, or that botocore's parser cannot
read (not UTF-8, not JSON, a member of a type the parser chokes on), at any HTTP status, raises
translate.MalformedReplyError naming the member by its model path (`memoryRecord.namespaces`), never a
value: values are record text.

The raw JSON body is checked, not botocore's parse of it, which turns `"namespaces": "abc"` into
`['a', 'b', 'c']` and passes a number where a string is. Not checked: patterns (they say what AWS
accepts; a value AWS itself produced outside one is still a usable record), unions (a member AWS adds
later would make every reply malformed), and members the model does not list (AWS may add some). The
one departure from the model is `_NOT_REQUIRED`.

Installed as the client's response parser factory (aws.py), so that a malformed reply fails within
botocore's call and its metrics hooks (after-call-error) count it as what it is. botocore raises a
parse failure out of its attempt loop without asking its retry handler, so it retries none; the caller
gets UNAVAILABLE with RetryInfo (docs/errors.md) and retries.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import botocore.parsers

from service.api import operations, translate, validate

# (path below the checked value, what is wrong there); built only for a reply that does not fit.
Problem = tuple[str, str]
Check = Callable[[Any], Problem | None]

# Required by the model, but a record created without a strategy has none to return
# (docs/emulator.md): refusing every such record would make it unreadable.
_NOT_REQUIRED = frozenset({("MemoryRecord", "memoryStrategyId"), ("MemoryRecordSummary", "memoryStrategyId")})
# How rest-json writes a double that is not finite.
_NON_FINITE = frozenset({"NaN", "Infinity", "-Infinity"})
# botocore's own line between a reply and an error (ResponseParser.parse).
_FIRST_ERROR_STATUS = 301


class _Compiler:
    def __init__(self) -> None:
        self._compiled: dict[str, Check] = {}

    def shape(self, shape: Any) -> Check:
        """The check of a value of `shape`; each named shape is compiled once, recursive ones too."""
        name = shape.name
        if name not in self._compiled:

            def compiled_later(value: Any) -> Problem | None:  # a member of its own shape, recursively
                return self._compiled[name](value)

            self._compiled[name] = compiled_later
            self._compiled[name] = self._compile(shape)
        return self._compiled[name]

    def _compile(self, shape: Any) -> Check:
        kind = shape.type_name
        if kind == "structure":
            return self._structure(shape)
        if kind == "list":
            return self._list(shape)
        if kind == "map":
            return self._map(shape)
        if kind == "string":
            return _string(shape)
        if kind in {"integer", "long"}:
            return _integer(shape)
        if kind in {"float", "double"}:
            return _number
        if kind == "boolean":
            return _typed(bool, "must be a boolean")
        if kind == "timestamp":
            return _timestamp(shape)
        if kind == "blob":
            return _typed(str, "must be a base64 string")
        return lambda value: None  # a document: any JSON

    def _structure(self, shape: Any) -> Check:
        members = tuple(
            (
                member.serialization.get("name", name),
                name,
                self.shape(member),
                name in shape.required_members and (shape.name, name) not in _NOT_REQUIRED,
            )
            for name, member in shape.members.items()
            if "location" not in member.serialization  # a header or the status code: not in the body
        )

        def check(value: Any) -> Problem | None:
            if type(value) is not dict:
                return "", "must be an object"
            for json_name, name, check_member, required in members:
                member = value.get(json_name)
                if member is None:  # botocore reads a null member as an absent one
                    if required:
                        return f".{name}", "is required"
                    continue
                problem = check_member(member)
                if problem is not None:
                    return f".{name}{problem[0]}", problem[1]
            return None

        return check

    def _list(self, shape: Any) -> Check:
        check_size = _sized(shape, list, "must be a list")
        check_member = self.shape(shape.member)

        def check(value: Any) -> Problem | None:
            problem = check_size(value)
            if problem is not None:
                return problem
            for index, member in enumerate(value):
                problem = None if member is None else check_member(member)
                if problem is not None:
                    return f"[{index}]{problem[0]}", problem[1]
            return None

        return check

    def _map(self, shape: Any) -> Check:
        check_size = _sized(shape, dict, "must be an object")
        check_key = self.shape(shape.key)
        check_value = self.shape(shape.value)

        def check(value: Any) -> Problem | None:
            problem = check_size(value)
            if problem is not None:
                return problem
            for key, member in value.items():
                # Keys are record data (metadata keys): a path names an entry, never which one.
                problem = check_key(key)
                if problem is not None:
                    return " (a key)", problem[1]
                problem = None if member is None else check_value(member)
                if problem is not None:
                    return f"[<key>]{problem[0]}", problem[1]
            return None

        return check


def _sized(shape: Any, json_type: type[list[Any]] | type[dict[str, Any]], type_message: str) -> Check:
    """The checks a list and a map share: their JSON type, and the model's bounds on their entries."""
    minimum, maximum, length_message = validate.length_limits(shape, "entries")

    def check(value: Any) -> Problem | None:
        if type(value) is not json_type:
            return "", type_message
        size: int = len(value)
        if not minimum <= size <= maximum:
            return "", length_message
        return None

    return check


def _typed(json_type: type, message: str) -> Check:
    def check(value: Any) -> Problem | None:
        return None if type(value) is json_type else ("", message)

    return check


def _string(shape: Any) -> Check:
    minimum, maximum, length_message = validate.length_limits(shape, "characters")
    enum = frozenset(shape.enum) if shape.enum else None
    enum_message = f"must be one of {', '.join(sorted(enum))}" if enum else ""

    def check(value: Any) -> Problem | None:
        if type(value) is not str:
            return "", "must be a string"
        if not minimum <= len(value) <= maximum:
            return "", length_message
        if enum is not None and value not in enum:
            return "", enum_message
        return None

    return check


def _integer(shape: Any) -> Check:
    minimum = shape.metadata.get("min", -math.inf)
    maximum = shape.metadata.get("max", math.inf)

    def check(value: Any) -> Problem | None:
        if type(value) is not int:  # a bool is not an int here, nor is 1.5
            return "", "must be an integer"
        if not minimum <= value <= maximum:
            return "", f"must be between {minimum} and {maximum}"
        return None

    return check


def _number(value: Any) -> Problem | None:
    if type(value) is int or type(value) is float or (type(value) is str and value in _NON_FINITE):
        return None
    return "", "must be a number"


def _timestamp(shape: Any) -> Check:
    if shape.serialization.get("timestampFormat", "unixTimestamp") != "unixTimestamp":
        return _typed(str, "must be a timestamp string")  # botocore's parser checks the string itself

    def check(value: Any) -> Problem | None:
        if (type(value) is int or type(value) is float) and (
            validate.MIN_SECONDS <= value < validate.MAX_SECONDS + 1  # its fraction of a second too
        ):
            return None
        return "", "must be a timestamp: seconds since the epoch, years 1 to 9999"

    return check


def compile_replies(model: Any) -> dict[str, tuple[str, Check]]:
    """Output shape name -> (its AWS operation, the check of its replies), for the operation table."""
    compiler = _Compiler()
    checks = {}
    for operation in operations.OPERATIONS:
        output = model.operation_model(operation.aws_operation).output_shape
        checks[output.name] = (operation.aws_operation, compiler.shape(output))
    return checks


_CHECKS = compile_replies(operations.service_model())


def check_reply(shape_name: str, body: bytes, checks: Mapping[str, tuple[str, Check]] = _CHECKS) -> None:
    """MalformedReplyError unless `body`, a 2xx reply of the output shape `shape_name`, fits it."""
    found = checks.get(shape_name)
    if found is None:
        return  # an operation outside the table: botocore's parse alone
    operation, check = found
    try:
        reply = json.loads(body.decode("utf-8")) if body.strip() else {}
    except ValueError:  # UnicodeDecodeError included
        raise translate.MalformedReplyError(f"{operation}: the body is not UTF-8 JSON") from None
    problem = check(reply)
    if problem is not None:
        path, message = problem
        raise translate.MalformedReplyError(f"{operation}: {path.removeprefix('.') or 'the body'} {message}")


class _CheckedParser:
    """botocore's parser for a protocol, with each reply checked first and any parse failure malformed."""

    def __init__(self, parser: Any) -> None:
        self._parser = parser

    def parse(self, response: dict[str, Any], shape: Any) -> Any:
        status = response["status_code"]
        try:
            if shape is not None and status < _FIRST_ERROR_STATUS:
                check_reply(shape.name, response["body"] or b"")
            return self._parser.parse(response, shape)
        except translate.MalformedReplyError:
            raise
        except Exception as exc:  # the parser's own (ResponseParserError, UnicodeDecodeError, ...)
            # Its text may quote the body; the exception's type and the status say enough.
            operation = _CHECKS[shape.name][0] if shape is not None and shape.name in _CHECKS else "AWS"
            raise translate.MalformedReplyError(
                f"{operation}: botocore could not parse an HTTP {status} reply ({type(exc).__name__})"
            ) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)


class CheckedParserFactory:
    """The `response_parser_factory` component of the service's botocore session (aws.py): botocore's
    own factory, whose parsers check each reply first."""

    def __init__(self) -> None:
        self._factory = botocore.parsers.ResponseParserFactory()

    def create_parser(self, protocol_name: str) -> Any:
        return _CheckedParser(self._factory.create_parser(protocol_name))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._factory, name)
