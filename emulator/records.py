"""The stored memory record and its metadata, independent of wire and storage formats."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
