"""SQLite persistence for memory records and client-token idempotency.

One connection is shared by all request threads and guarded by a lock; each operation runs inside
one transaction so a batch is applied entirely or not at all.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from emulator.records import MemoryRecord, MetadataKind, MetadataValue

_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS memory_records (
    memory_id          TEXT    NOT NULL,
    record_id          TEXT    NOT NULL,
    request_identifier TEXT,
    namespaces         TEXT    NOT NULL,  -- JSON array of strings
    content_text       TEXT    NOT NULL,
    memory_strategy_id TEXT,
    metadata           TEXT,              -- JSON object {key: [kind, value]}, NULL when none
    timestamp_us       INTEGER NOT NULL,
    created_at_us      INTEGER NOT NULL,
    expiry_days        INTEGER,
    expires_at_us      INTEGER,
    PRIMARY KEY (memory_id, record_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS client_tokens (
    memory_id      TEXT    NOT NULL,
    operation      TEXT    NOT NULL,
    client_token   TEXT    NOT NULL,
    request_sha256 TEXT    NOT NULL,
    response_body  TEXT    NOT NULL,
    created_at_us  INTEGER NOT NULL,
    PRIMARY KEY (memory_id, operation, client_token)
) WITHOUT ROWID;
"""

# Column order matches _row_from_record and _record_from_row.
_SELECT_RECORDS = """
SELECT memory_id, record_id, request_identifier, namespaces, content_text, memory_strategy_id,
       metadata, timestamp_us, created_at_us, expiry_days, expires_at_us
FROM memory_records WHERE memory_id = ?
"""
_SELECT_RECORD = _SELECT_RECORDS + "AND record_id = ?"
_INSERT_RECORD = """
INSERT INTO memory_records (memory_id, record_id, request_identifier, namespaces, content_text,
    memory_strategy_id, metadata, timestamp_us, created_at_us, expiry_days, expires_at_us)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_UPDATE_RECORD = """
UPDATE memory_records SET request_identifier = ?, namespaces = ?, content_text = ?,
    memory_strategy_id = ?, metadata = ?, timestamp_us = ?, created_at_us = ?, expiry_days = ?,
    expires_at_us = ?
WHERE memory_id = ? AND record_id = ?
"""
_DELETE_RECORD = "DELETE FROM memory_records WHERE memory_id = ? AND record_id = ?"


class StoreClosedError(RuntimeError):
    """The store was closed (the emulator is stopping) while a request still used it."""


@dataclass(frozen=True)
class StoredResponse:
    """The first response answered for a client token, replayed on retries."""

    request_sha256: str
    body: str


class Store:
    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        # isolation_level=None: transactions are opened explicitly in transaction().
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None
        )
        if path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._migrate(self._conn)

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > _SCHEMA_VERSION:
            raise RuntimeError(f"database schema version {version} is newer than this emulator supports")
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Transaction]:
        """Serialise access and run the body in one transaction, rolled back if it raises."""
        with self._lock:
            if self._conn is None:
                raise StoreClosedError("store is closed")
            # IMMEDIATE takes the write lock up front, so another process sharing the file
            # cannot interleave between our reads and writes.
            self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            with self._conn:  # commits on success, rolls back on error
                yield Transaction(self._conn)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class Transaction:
    """Typed statements over the connection; only valid inside ``Store.transaction()``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def get_record(self, memory_id: str, record_id: str) -> MemoryRecord | None:
        row = self._conn.execute(_SELECT_RECORD, (memory_id, record_id)).fetchone()
        return _record_from_row(row) if row is not None else None

    def records_of(self, memory_id: str) -> list[MemoryRecord]:
        """Every record of a memory, in no particular order."""
        return [_record_from_row(row) for row in self._conn.execute(_SELECT_RECORDS, (memory_id,))]

    def insert_record(self, record: MemoryRecord) -> None:
        self._conn.execute(_INSERT_RECORD, _row_from_record(record))

    def update_record(self, record: MemoryRecord) -> None:
        row = _row_from_record(record)
        key, values = row[:2], row[2:]
        self._conn.execute(_UPDATE_RECORD, (*values, *key))

    def delete_record(self, memory_id: str, record_id: str) -> bool:
        """Delete a record; False when it did not exist."""
        cursor = self._conn.execute(_DELETE_RECORD, (memory_id, record_id))
        return cursor.rowcount > 0

    def get_stored_response(self, memory_id: str, operation: str, client_token: str) -> StoredResponse | None:
        row = self._conn.execute(
            "SELECT request_sha256, response_body FROM client_tokens "
            "WHERE memory_id = ? AND operation = ? AND client_token = ?",
            (memory_id, operation, client_token),
        ).fetchone()
        return StoredResponse(request_sha256=row[0], body=row[1]) if row is not None else None

    def store_response(
        self,
        memory_id: str,
        operation: str,
        client_token: str,
        response: StoredResponse,
        created_at_us: int,
    ) -> None:
        self._conn.execute(
            "INSERT INTO client_tokens (memory_id, operation, client_token, request_sha256, "
            "response_body, created_at_us) VALUES (?, ?, ?, ?, ?, ?)",
            (memory_id, operation, client_token, response.request_sha256, response.body, created_at_us),
        )


def _row_from_record(record: MemoryRecord) -> tuple[Any, ...]:
    metadata = None
    if record.metadata is not None:
        metadata = json.dumps(
            {key: [value.kind.value, value.value] for key, value in record.metadata.items()},
            separators=(",", ":"),
        )
    return (
        record.memory_id,
        record.record_id,
        record.request_identifier,
        json.dumps(list(record.namespaces)),
        record.content_text,
        record.memory_strategy_id,
        metadata,
        record.timestamp_us,
        record.created_at_us,
        record.expiry_days,
        record.expires_at_us,
    )


def _record_from_row(row: tuple[Any, ...]) -> MemoryRecord:
    metadata: dict[str, MetadataValue] | None = None
    if row[6] is not None:
        metadata = {key: _metadata_value(kind, value) for key, (kind, value) in json.loads(row[6]).items()}
    return MemoryRecord(
        memory_id=row[0],
        record_id=row[1],
        request_identifier=row[2],
        namespaces=tuple(json.loads(row[3])),
        content_text=row[4],
        memory_strategy_id=row[5],
        metadata=metadata,
        timestamp_us=row[7],
        created_at_us=row[8],
        expiry_days=row[9],
        expires_at_us=row[10],
    )


def _metadata_value(kind: str, value: Any) -> MetadataValue:
    metadata_kind = MetadataKind(kind)
    if metadata_kind is MetadataKind.STRING_LIST:
        value = tuple(value)
    return MetadataValue(metadata_kind, value)
