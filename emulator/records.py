"""The stored memory record and its metadata, and their conversion to and from validated wire values.

Stored instants are integer epoch microseconds, so a record reads back exactly as it was written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from emulator.restjson.wire import epoch_from_micros, micros_from_epoch


class MetadataKind(StrEnum):
    """Members of the ``MemoryRecordMetadataValue`` union."""

    STRING = "stringValue"
    STRING_LIST = "stringListValue"
    NUMBER = "numberValue"
    DATE_TIME = "dateTimeValue"


MetadataPayload = str | tuple[str, ...] | float | int


@dataclass(frozen=True)
class MetadataValue:
    """One metadata value; ``DATE_TIME`` payloads are epoch microseconds."""

    kind: MetadataKind
    value: MetadataPayload


@dataclass(frozen=True)
class MemoryRecord:
    """A memory record as stored; every instant is integer epoch microseconds."""

    memory_id: str
    record_id: str
    content_text: str
    namespaces: tuple[str, ...]
    timestamp_us: int
    created_at_us: int
    request_identifier: str | None = None
    memory_strategy_id: str | None = None
    metadata: dict[str, MetadataValue] | None = None
    # The last recordExpiryDurationDays applied; updates without an expiry re-apply it.
    expiry_days: int | None = None
    expires_at_us: int | None = None


def metadata_from_wire(wire: Mapping[str, Mapping[str, Any]]) -> dict[str, MetadataValue]:
    """Validated ``MemoryRecordMetadataMap`` to stored values."""
    return {key: metadata_value_from_wire(union) for key, union in wire.items()}


def metadata_value_from_wire(union: Mapping[str, Any]) -> MetadataValue:
    """A validated ``MemoryRecordMetadataValue`` (exactly one union member set) to a stored value."""
    kind_name, raw = next((name, value) for name, value in union.items() if value is not None)
    kind = MetadataKind(kind_name)
    if kind is MetadataKind.STRING_LIST:
        return MetadataValue(kind, tuple(raw))
    if kind is MetadataKind.NUMBER:
        return MetadataValue(kind, float(raw))
    if kind is MetadataKind.DATE_TIME:
        return MetadataValue(kind, micros_from_epoch(raw))
    return MetadataValue(kind, raw)


def metadata_to_wire(metadata: Mapping[str, MetadataValue]) -> dict[str, dict[str, Any]]:
    wire: dict[str, dict[str, Any]] = {}
    for key, value in metadata.items():
        payload: Any
        match value.kind, value.value:
            case MetadataKind.STRING_LIST, tuple() as items:
                payload = list(items)
            case MetadataKind.DATE_TIME, int() as micros:
                payload = epoch_from_micros(micros)
            case _, other:
                payload = other
        wire[key] = {value.kind.value: payload}
    return wire


def timestamp_from_wire(seconds: int | Decimal) -> int:
    return micros_from_epoch(seconds)


def record_to_wire(record: MemoryRecord) -> dict[str, Any]:
    """A stored record as the ``MemoryRecord`` output shape; unset optional members are omitted."""
    wire: dict[str, Any] = {
        "memoryRecordId": record.record_id,
        "content": {"text": record.content_text},
        "namespaces": list(record.namespaces),
        "createdAt": epoch_from_micros(record.created_at_us),
        "timestamp": epoch_from_micros(record.timestamp_us),
    }
    if record.memory_strategy_id is not None:
        wire["memoryStrategyId"] = record.memory_strategy_id
    if record.metadata:
        wire["metadata"] = metadata_to_wire(record.metadata)
    if record.expires_at_us is not None:
        wire["expiresAt"] = epoch_from_micros(record.expires_at_us)
    return wire


def summary_to_wire(record: MemoryRecord, score: float | None = None) -> dict[str, Any]:
    """A stored record as the ``MemoryRecordSummary`` output shape: the record's members but
    ``expiresAt``, and the relevance ``score`` when the record is a search result."""
    wire = record_to_wire(record)
    wire.pop("expiresAt", None)
    if score is not None:
        wire["score"] = score
    return wire
