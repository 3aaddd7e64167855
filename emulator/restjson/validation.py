"""Input validation compiled from the botocore service model.

Each operation's input shape is compiled once into a tree of checkers (regexes precompiled), so a
request is validated without walking the model. Every violation is collected, in model member
order, and reported with Coral-style paths:

* structure members are joined with ``.``: ``recordExpirySpecification.recordExpiryDurationDays``;
* list elements are ``<list>.<1-based index>.member``: ``records.4.member.content.text``;
* map values are ``<map>.<key>``: ``records.1.member.metadata.topic.stringValue``. The key is a
  name the caller chose, not submitted content, and it only appears once it passed its own
  constraints; a key that fails them is reported on the map itself and its value is not checked.

Semantics follow AWS: ``pattern`` must match the whole string (Java ``matches``), string length is
counted in code points, JSON ``null`` is the same as an absent member and unknown members are
ignored. No message ever contains a submitted value.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sized
from decimal import Decimal
from typing import Any

from emulator.restjson.exceptions import FieldViolation
from emulator.restjson.wire import MAX_EPOCH_SECONDS, MIN_EPOCH_SECONDS

_INT_BOUNDS = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _as_number(value: object) -> int | Decimal | None:
    """JSON numbers arrive as int or Decimal; bool is an int subclass but not a number."""
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return value
    return None


class _Checker(ABC):
    @abstractmethod
    def check(self, value: object, path: str, out: list[FieldViolation]) -> None:
        """Append a violation to ``out`` for each constraint ``value`` fails; ``value`` is not None."""


class _StringChecker(_Checker):
    def __init__(self, metadata: Mapping[str, Any], enum: list[str] | None) -> None:
        self.min_length: int | None = metadata.get("min")
        self.max_length: int | None = metadata.get("max")
        pattern: str | None = metadata.get("pattern")
        self.pattern_text = pattern
        # re.ASCII gives \s, \w and \d Java's ASCII-only meaning.
        self.pattern = re.compile(pattern, re.ASCII) if pattern is not None else None
        self.enum = frozenset(enum) if enum else None
        self.enum_text = "[" + ", ".join(enum) + "]" if enum else ""

    def check(self, value: object, path: str, out: list[FieldViolation]) -> None:
        if not isinstance(value, str):
            out.append(FieldViolation(path, "Member must be of type string"))
            return
        if not value.isascii() and not _is_valid_unicode(value):
            out.append(FieldViolation(path, "Member must be valid Unicode text"))
            return
        length = len(value)
        too_long = self.max_length is not None and length > self.max_length
        if self.min_length is not None and length < self.min_length:
            out.append(
                FieldViolation(path, f"Member must have length greater than or equal to {self.min_length}")
            )
        if too_long:
            out.append(
                FieldViolation(path, f"Member must have length less than or equal to {self.max_length}")
            )
        # Skipping the regex on oversized input bounds its cost: some model patterns backtrack.
        if self.pattern is not None and not too_long and self.pattern.fullmatch(value) is None:
            out.append(
                FieldViolation(path, f"Member must satisfy regular expression pattern: {self.pattern_text}")
            )
        if self.enum is not None and value not in self.enum:
            out.append(FieldViolation(path, f"Member must satisfy enum value set: {self.enum_text}"))


def _is_valid_unicode(value: str) -> bool:
    # json accepts lone surrogate escapes such as "\ud800", which cannot be stored as UTF-8.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _NumberChecker(_Checker):
    def __init__(self, type_name: str, metadata: Mapping[str, Any]) -> None:
        self.type_name = type_name
        self.integral_bounds = _INT_BOUNDS.get(type_name)
        self.minimum: int | float | None = metadata.get("min")
        self.maximum: int | float | None = metadata.get("max")

    def check(self, value: object, path: str, out: list[FieldViolation]) -> None:
        parsed = _as_number(value)
        if parsed is None:
            out.append(FieldViolation(path, f"Member must be of type {self.type_name}"))
            return
        number: int | float
        if self.integral_bounds is not None:
            low, high = self.integral_bounds
            if not isinstance(parsed, int) or not low <= parsed <= high:
                out.append(FieldViolation(path, f"Member must be of type {self.type_name}"))
                return
            number = parsed
        else:
            try:
                number = float(parsed)
            except OverflowError:  # an integer beyond the double range
                number = math.inf
            if not math.isfinite(number):
                out.append(FieldViolation(path, f"Member must be of type {self.type_name}"))
                return
        if self.minimum is not None and number < self.minimum:
            out.append(
                FieldViolation(path, f"Member must have value greater than or equal to {self.minimum}")
            )
        if self.maximum is not None and number > self.maximum:
            out.append(FieldViolation(path, f"Member must have value less than or equal to {self.maximum}"))


class _BooleanChecker(_Checker):
    def check(self, value: object, path: str, out: list[FieldViolation]) -> None:
        if not isinstance(value, bool):
            out.append(FieldViolation(path, "Member must be of type boolean"))


class _TimestampChecker(_Checker):
    """rest-json timestamps in bodies are epoch seconds as JSON numbers."""

    def check(self, value: object, path: str, out: list[FieldViolation]) -> None:
        seconds = _as_number(value)
        if seconds is None:
            out.append(FieldViolation(path, "Member must be a timestamp in epoch seconds"))
            return
        if not MIN_EPOCH_SECONDS <= seconds <= MAX_EPOCH_SECONDS:
            out.append(FieldViolation(path, "Member must be a timestamp between years 1 and 9999"))


class _CollectionChecker(_Checker):
    """A list or a map: its JSON type, then its size, then each element."""

    json_type: type[Sized]
    type_name: str

    def __init__(self, metadata: Mapping[str, Any]) -> None:
        self.min_length: int | None = metadata.get("min")
        self.max_length: int | None = metadata.get("max")

    def check(self, value: object, path: str, out: list[FieldViolation]) -> None:
        if not isinstance(value, self.json_type):
            out.append(FieldViolation(path, f"Member must be of type {self.type_name}"))
            return
        # Coral words collection sizes as "length" too.
        size = len(value)
        if self.min_length is not None and size < self.min_length:
            out.append(
                FieldViolation(path, f"Member must have length greater than or equal to {self.min_length}")
            )
        if self.max_length is not None and size > self.max_length:
            out.append(
                FieldViolation(path, f"Member must have length less than or equal to {self.max_length}")
            )
        self.check_elements(value, path, out)

    @abstractmethod
    def check_elements(self, value: Any, path: str, out: list[FieldViolation]) -> None:
        """Check each element of ``value``, which has the collection's JSON type."""

    @staticmethod
    def check_element(checker: _Checker, item: object, path: str, out: list[FieldViolation]) -> None:
        # Unlike an optional structure member, a list element or map value must not be null.
        if item is None:
            out.append(FieldViolation(path, "Member must not be null", value_is_null=True))
        else:
            checker.check(item, path, out)


class _ListChecker(_CollectionChecker):
    json_type = list
    type_name = "list"
    member: _Checker

    def check_elements(self, value: Any, path: str, out: list[FieldViolation]) -> None:
        for index, item in enumerate(value, start=1):
            self.check_element(self.member, item, f"{path}.{index}.member", out)


class _MapChecker(_CollectionChecker):
    json_type = dict
    type_name = "map"
    key: _Checker
    value: _Checker

    def check_elements(self, value: Any, path: str, out: list[FieldViolation]) -> None:
        for key, item in value.items():
            key_violations: list[FieldViolation] = []
            self.key.check(key, path, key_violations)
            if key_violations:
                constraints = ", ".join(v.constraint for v in key_violations)
                out.append(FieldViolation(path, f"Map keys must satisfy constraint: [{constraints}]"))
                continue
            self.check_element(self.value, item, f"{path}.{key}", out)


class _StructureChecker(_Checker):
    def __init__(self, union: bool) -> None:
        self.union = union
        # (member name used in paths, JSON key, checker, required)
        self.members: list[tuple[str, str, _Checker, bool]] = []

    def check(self, value: object, path: str, out: list[FieldViolation]) -> None:
        if not isinstance(value, dict):
            out.append(FieldViolation(path, "Member must be of type structure"))
            return
        present = 0
        for name, key, checker, required in self.members:
            item = value.get(key)
            member_path = _join(path, name)
            if item is None:
                if required:
                    out.append(FieldViolation(member_path, "Member must not be null", value_is_null=True))
                continue
            present += 1
            checker.check(item, member_path, out)
        if self.union and present != 1:
            names = ", ".join(name for name, _, _, _ in self.members)
            out.append(FieldViolation(path, f"Member must have exactly one of [{names}] set"))


class _AnyChecker(_Checker):
    def check(self, value: object, path: str, out: list[FieldViolation]) -> None:
        return


_ANY = _AnyChecker()


class ShapeValidator:
    """Validates values of one shape, typically an operation's bound input (URI, query and body
    members in one mapping)."""

    def __init__(self, shape: Any) -> None:
        self._root = _compile(shape, {}) if shape is not None else _ANY

    def validate(self, params: Mapping[str, Any]) -> list[FieldViolation]:
        return self.validate_value(dict(params))

    def validate_value(self, value: object, path: str = "") -> list[FieldViolation]:
        out: list[FieldViolation] = []
        self._root.check(value, path, out)
        return out


def _compile(shape: Any, compiled: dict[str, _Checker]) -> _Checker:
    name: str = shape.name
    if name in compiled:
        return compiled[name]
    type_name: str = shape.type_name
    metadata: Mapping[str, Any] = shape.metadata
    checker: _Checker
    if type_name == "structure":
        structure = _StructureChecker(union=bool(getattr(shape, "is_tagged_union", False)))
        compiled[name] = structure  # registered before members so recursive shapes terminate
        required = set(metadata.get("required", ()))
        for member_name, member_shape in shape.members.items():
            serialization: Mapping[str, Any] = member_shape.serialization
            # The request binder keys URI, query and header members by member name.
            key = member_name if "location" in serialization else serialization.get("name", member_name)
            member = _compile(member_shape, compiled)
            structure.members.append((member_name, key, member, member_name in required))
        return structure
    if type_name == "list":
        list_checker = _ListChecker(metadata)
        compiled[name] = list_checker
        list_checker.member = _compile(shape.member, compiled)
        return list_checker
    if type_name == "map":
        map_checker = _MapChecker(metadata)
        compiled[name] = map_checker
        map_checker.key = _compile(shape.key, compiled)
        map_checker.value = _compile(shape.value, compiled)
        return map_checker
    if type_name == "string":
        checker = _StringChecker(metadata, list(shape.enum) or None)
    elif type_name in {"integer", "long", "double", "float"}:
        checker = _NumberChecker(type_name, metadata)
    elif type_name == "boolean":
        checker = _BooleanChecker()
    elif type_name == "timestamp":
        checker = _TimestampChecker()
    else:  # blob and document shapes carry no constraints this API uses
        checker = _ANY
    compiled[name] = checker
    return checker
