"""Handlers for the memory-record operations.

Handlers receive input that already passed model validation and a memory id that exists, so they
only enforce the rules the model cannot express. Per-record problems in batch operations are data
(``failedRecords``), not HTTP errors.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from emulator.codec import metadata_from_wire, record_to_wire, timestamp_from_wire
from emulator.context import OperationContext
from emulator.records import MemoryRecord
from emulator.restjson.exceptions import (
    FieldViolation,
    idempotent_parameter_mismatch,
    resource_not_found,
    validation_failed,
)
from emulator.restjson.wire import MAX_EPOCH_SECONDS, MICROS_PER_DAY, MICROS_PER_SECOND, canonical_json
from emulator.store import StoredResponse

SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"


def new_record_id() -> str:
    # 40 characters: the minimum length of MemoryRecordId.
    return f"mem-{uuid.uuid4()}"


def _checked_expiry_days(ctx: OperationContext, expiry: Mapping[str, Any] | None) -> int | None:
    """The requested expiry in days, refused when it would fall past the year 9999: the model sets no
    maximum, but no SDK can read such a date back."""
    days: int | None = expiry.get("recordExpiryDurationDays") if expiry is not None else None
    if days is not None and ctx.now_us + days * MICROS_PER_DAY > MAX_EPOCH_SECONDS * MICROS_PER_SECOND:
        raise validation_failed(
            [
                FieldViolation(
                    "recordExpirySpecification.recordExpiryDurationDays",
                    "Member must not expire records after the year 9999",
                )
            ]
        )
    return days


def batch_create_memory_records(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    expiry = params.get("recordExpirySpecification")
    if expiry is not None and expiry.get("action") is not None:
        raise validation_failed(
            [
                FieldViolation(
                    "recordExpirySpecification.action",
                    "Member must not be set when creating memory records",
                )
            ]
        )
    expiry_days = _checked_expiry_days(ctx, expiry)
    client_token: str | None = params.get("clientToken")
    # The body's modeled members; the memory is part of the token's key instead, so a retry that
    # names the memory by ARN still matches.
    body = {name: value for name, value in params.items() if name != "memoryId"}
    fingerprint = hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()

    with ctx.store.transaction() as txn:
        if client_token is not None:
            previous = txn.get_stored_response(ctx.memory_id, ctx.operation, client_token)
            if previous is not None:
                if previous.request_sha256 != fingerprint:
                    raise idempotent_parameter_mismatch()
                replayed: dict[str, Any] = json.loads(previous.body)
                return replayed

        successful: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        seen_identifiers: set[str] = set()
        for item in params["records"]:
            request_identifier: str = item["requestIdentifier"]
            if request_identifier in seen_identifiers:
                # The output shape requires an id even for a failure; this one is never stored.
                failed.append(
                    _failure(new_record_id(), 400, "Duplicate requestIdentifier in batch", request_identifier)
                )
                continue
            seen_identifiers.add(request_identifier)
            record = _new_record(ctx, item, expiry_days)
            txn.insert_record(record)
            successful.append(
                {
                    "memoryRecordId": record.record_id,
                    "status": SUCCEEDED,
                    "requestIdentifier": request_identifier,
                }
            )

        output = {"successfulRecords": successful, "failedRecords": failed}
        if client_token is not None:
            stored = StoredResponse(request_sha256=fingerprint, body=json.dumps(output))
            txn.store_response(ctx.memory_id, ctx.operation, client_token, stored, ctx.now_us)
    return output


def _new_record(ctx: OperationContext, item: Mapping[str, Any], expiry_days: int | None) -> MemoryRecord:
    metadata = item.get("metadata")
    return MemoryRecord(
        memory_id=ctx.memory_id,
        record_id=new_record_id(),
        request_identifier=item["requestIdentifier"],
        content_text=item["content"]["text"],
        namespaces=tuple(item["namespaces"]),
        timestamp_us=timestamp_from_wire(item["timestamp"]),
        created_at_us=ctx.now_us,
        memory_strategy_id=item.get("memoryStrategyId"),
        metadata=metadata_from_wire(metadata) if metadata is not None else None,
        expiry_days=expiry_days,
        expires_at_us=ctx.now_us + expiry_days * MICROS_PER_DAY if expiry_days is not None else None,
    )


def batch_update_memory_records(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    expiry: Mapping[str, Any] | None = params.get("recordExpirySpecification")
    _checked_expiry_days(ctx, expiry)
    successful: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    with ctx.store.transaction() as txn:
        for item in params["records"]:
            record_id: str = item["memoryRecordId"]
            current = txn.get_record(ctx.memory_id, record_id)
            if current is None:
                failed.append(_failure(record_id, 404, "Memory record not found"))
                continue
            source_namespaces = item.get("sourceNamespaces")
            if source_namespaces is not None and tuple(source_namespaces) != current.namespaces:
                failed.append(
                    _failure(record_id, 403, "sourceNamespaces do not match the memory record's namespaces")
                )
                continue
            txn.update_record(_updated_record(current, item, expiry, ctx.now_us))
            successful.append({"memoryRecordId": record_id, "status": SUCCEEDED})
    return {"successfulRecords": successful, "failedRecords": failed}


def _updated_record(
    current: MemoryRecord, item: Mapping[str, Any], expiry: Mapping[str, Any] | None, now_us: int
) -> MemoryRecord:
    changes: dict[str, Any] = {"timestamp_us": timestamp_from_wire(item["timestamp"])}
    if item.get("content") is not None:
        changes["content_text"] = item["content"]["text"]
    if item.get("namespaces") is not None:
        changes["namespaces"] = tuple(item["namespaces"])
    if item.get("memoryStrategyId") is not None:
        changes["memory_strategy_id"] = item["memoryStrategyId"]
    if item.get("metadata") is not None:
        changes["metadata"] = metadata_from_wire(item["metadata"])

    # Without an explicit expiry, a record that has one gets it re-applied from now (API docs).
    expiry_days = current.expiry_days
    if expiry is not None:
        expiry_days = expiry.get("recordExpiryDurationDays")  # None when the action is REMOVE
    changes["expiry_days"] = expiry_days
    changes["expires_at_us"] = now_us + expiry_days * MICROS_PER_DAY if expiry_days is not None else None
    return replace(current, **changes)


def get_memory_record(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    record_id: str = params["memoryRecordId"]
    with ctx.store.transaction(write=False) as txn:
        record = _visible_record(txn.get_record(ctx.memory_id, record_id), record_id, params.get("namespace"))
    return {"memoryRecord": record_to_wire(record)}


def delete_memory_record(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    record_id: str = params["memoryRecordId"]
    with ctx.store.transaction() as txn:
        _visible_record(txn.get_record(ctx.memory_id, record_id), record_id, params.get("namespace"))
        txn.delete_record(ctx.memory_id, record_id)
    return {"memoryRecordId": record_id}


def _visible_record(record: MemoryRecord | None, record_id: str, namespace: str | None) -> MemoryRecord:
    """The record a single-record call may see. A namespace mismatch answers like a missing
    record, so the record's existence does not leak."""
    if record is None or (namespace is not None and namespace not in record.namespaces):
        raise resource_not_found(f"Memory record {record_id} not found")
    return record


def batch_delete_memory_records(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    successful: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    with ctx.store.transaction() as txn:
        for item in params["records"]:
            record_id: str = item["memoryRecordId"]
            current = txn.get_record(ctx.memory_id, record_id)
            namespace: str | None = item.get("namespace")
            if current is None:
                failed.append(_failure(record_id, 404, "Memory record not found"))
            elif namespace is not None and namespace not in current.namespaces:
                # Like sourceNamespaces on update: the namespace authorises, so a mismatch is a 403.
                failed.append(
                    _failure(record_id, 403, "namespace does not match the memory record's namespaces")
                )
            else:
                txn.delete_record(ctx.memory_id, record_id)
                successful.append({"memoryRecordId": record_id, "status": SUCCEEDED})
    return {"successfulRecords": successful, "failedRecords": failed}


def _failure(
    record_id: str, error_code: int, message: str, request_identifier: str | None = None
) -> dict[str, Any]:
    failure: dict[str, Any] = {"memoryRecordId": record_id, "status": FAILED}
    if request_identifier is not None:
        failure["requestIdentifier"] = request_identifier
    failure["errorCode"] = error_code
    failure["errorMessage"] = message
    return failure
