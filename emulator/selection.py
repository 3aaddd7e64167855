"""Which records a ListMemoryRecords or RetrieveMemoryRecords call selects: a namespace scope, a memory
strategy and metadata filters, all of which a record must pass.

The model names the members and the operators; what each operator means for each metadata value
type is the emulator's choice, tabled in docs/emulator.md. An operator that
cannot apply to the filter's value type is the caller's mistake (a validation error); a record whose
value has another type than the filter's simply does not match.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from emulator.records import MemoryRecord, MetadataKind, MetadataValue, metadata_value_from_wire
from emulator.restjson.exceptions import FieldViolation

EXISTS = "EXISTS"
NOT_EXISTS = "NOT_EXISTS"
EQUALS_TO = "EQUALS_TO"
CONTAINS = "CONTAINS"

_ORDERED = frozenset({MetadataKind.NUMBER, MetadataKind.DATE_TIME})
_Compare = Callable[[Any, Any], bool]
# Comparing operators: the stored value is the left operand, the filter's value the right one.
_COMPARISONS: Mapping[str, tuple[frozenset[MetadataKind], _Compare]] = MappingProxyType(
    {
        EQUALS_TO: (frozenset(MetadataKind), operator.eq),
        "BEFORE": (frozenset({MetadataKind.DATE_TIME}), operator.lt),
        "AFTER": (frozenset({MetadataKind.DATE_TIME}), operator.gt),
        "GREATER_THAN": (_ORDERED, operator.gt),
        "GREATER_THAN_OR_EQUALS": (_ORDERED, operator.ge),
        "LESS_THAN": (_ORDERED, operator.lt),
        "LESS_THAN_OR_EQUALS": (_ORDERED, operator.le),
    }
)
_CONTAINS_KINDS = frozenset({MetadataKind.STRING, MetadataKind.STRING_LIST})

# Every operator of the model's MemoryRecordOperatorType, and the value types it accepts.
VALUE_KINDS: Mapping[str, frozenset[MetadataKind]] = MappingProxyType(
    {
        EXISTS: frozenset(),
        NOT_EXISTS: frozenset(),
        CONTAINS: _CONTAINS_KINDS,
        **{name: kinds for name, (kinds, _) in _COMPARISONS.items()},
    }
)


class InvalidSelection(ValueError):
    """The request's selection breaks a rule the model cannot express."""

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        super().__init__(f"{len(violations)} invalid selection members")
        self.violations = list(violations)


@dataclass(frozen=True)
class MetadataFilter:
    key: str
    operator: str
    value: MetadataValue | None  # None exactly for EXISTS and NOT_EXISTS

    def matches(self, metadata: Mapping[str, MetadataValue] | None) -> bool:
        stored = metadata.get(self.key) if metadata else None
        if self.operator == EXISTS:
            return stored is not None
        if self.operator == NOT_EXISTS:
            return stored is None
        if stored is None or self.value is None:
            return False
        if self.operator == CONTAINS:
            return _contains(stored, self.value)
        _, compare = _COMPARISONS[self.operator]
        return stored.kind is self.value.kind and compare(stored.value, self.value.value)


def _contains(stored: MetadataValue, wanted: MetadataValue) -> bool:
    """A string contains a substring; a string list contains a string as an element, or a string
    list as a subset."""
    match stored.value, wanted.kind, wanted.value:
        case str() as text, MetadataKind.STRING, str() as part:
            return part in text
        case tuple() as items, MetadataKind.STRING, str() as item:
            return item in items
        case tuple() as items, MetadataKind.STRING_LIST, tuple() as subset:
            return set(subset) <= set(items)
    return False


def under_path(namespace: str, path: str) -> bool:
    """Whether a namespace is the path itself or below it, "/" separating levels: the path
    ``users/alice`` (or ``users/alice/``) holds ``users/alice`` and ``users/alice/facts``, not
    ``users/alicia``; the path ``/`` holds every namespace that starts with ``/``."""
    parent = path.rstrip("/")
    return namespace.rstrip("/") == parent or namespace.startswith(parent + "/")


@dataclass(frozen=True)
class Selection:
    namespace: str | None
    namespace_path: str | None
    memory_strategy_id: str | None
    metadata_filters: tuple[MetadataFilter, ...]

    def matches(self, record: MemoryRecord) -> bool:
        if self.namespace is not None and self.namespace not in record.namespaces:
            return False
        if self.namespace_path is not None and not any(
            under_path(namespace, self.namespace_path) for namespace in record.namespaces
        ):
            return False
        if self.memory_strategy_id is not None and record.memory_strategy_id != self.memory_strategy_id:
            return False
        return all(metadata_filter.matches(record.metadata) for metadata_filter in self.metadata_filters)


def selection_from_wire(
    namespace: str | None,
    namespace_path: str | None,
    memory_strategy_id: str | None,
    filters: Sequence[Mapping[str, Any]] | None,
    filters_path: str,
) -> Selection:
    """The selection of validated input; raises InvalidSelection naming each member at fault, with
    ``filters_path`` the path of the metadata filter list."""
    violations: list[FieldViolation] = []
    if namespace is None and namespace_path is None:
        violations.append(
            FieldViolation("namespace", "Either namespace or namespacePath is required", value_is_null=True)
        )
    elif namespace is not None and namespace_path is not None:
        violations.append(FieldViolation("namespacePath", "Member must not be set together with namespace"))
    metadata_filters = tuple(
        _filter_from_wire(item, f"{filters_path}.{index}.member", violations)
        for index, item in enumerate(filters or (), start=1)
    )
    if violations:
        raise InvalidSelection(violations)
    return Selection(namespace, namespace_path, memory_strategy_id, metadata_filters)


def _filter_from_wire(item: Mapping[str, Any], path: str, violations: list[FieldViolation]) -> MetadataFilter:
    name: str = item["operator"]
    right: Mapping[str, Any] | None = item.get("right")
    kinds = VALUE_KINDS[name]
    value: MetadataValue | None = None
    if not kinds:
        if right is not None:
            violations.append(FieldViolation(f"{path}.right", f"Member must not be set for operator {name}"))
    elif right is None:
        violations.append(
            FieldViolation(f"{path}.right", f"Member must be set for operator {name}", value_is_null=True)
        )
    else:
        value = metadata_value_from_wire(right["metadataValue"])
        if value.kind not in kinds:
            allowed = ", ".join(kind.value for kind in MetadataKind if kind in kinds)
            violations.append(
                FieldViolation(
                    f"{path}.right.metadataValue", f"Member must be one of [{allowed}] for operator {name}"
                )
            )
    return MetadataFilter(item["left"]["metadataKey"], name, value)
