"""The memory-records backend: the seven record operations of the bedrock-agentcore data plane.

It binds the service model once and hands the generic rest-json layer a handler per operation.
Handlers receive input that already passed model validation, so they only enforce the rules the
model cannot express: that the memory is configured, client tokens, expiry bounds, namespaces.
Per-record problems in batch operations are data (``failedRecords``), not HTTP errors.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, TypeVar

from emulator.pages import DEFAULT_PAGE_SIZE, InvalidToken, Page, SortKey, fingerprint, page_of
from emulator.ranking import bm25_scores
from emulator.records import (
    MemoryRecord,
    metadata_from_wire,
    record_to_wire,
    summary_to_wire,
    timestamp_from_wire,
)
from emulator.restjson.exceptions import ApiError, FieldViolation, validation_failed
from emulator.restjson.model import load_service_model
from emulator.restjson.routing import Handler
from emulator.restjson.validation import ShapeValidator
from emulator.restjson.wire import MAX_EPOCH_SECONDS, MICROS_PER_SECOND, canonical_json, now_micros
from emulator.selection import InvalidSelection, Selection, selection_from_wire
from emulator.store import Store, StoreClosedError, StoredResponse, Transaction

logger = logging.getLogger(__name__)

AWS_SERVICE = "bedrock-agentcore"
API_VERSION = "2024-02-28"
MODEL = load_service_model(AWS_SERVICE, API_VERSION)

DEFAULT_MEMORY_ID = "demo_memory-0123456789"

SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"

_MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND


def service_failure() -> ApiError:
    return ApiError.modeled(MODEL, "ServiceException", "An internal error occurred. Try your request again.")


def resource_not_found(message: str) -> ApiError:
    return ApiError.modeled(MODEL, "ResourceNotFoundException", message)


def idempotent_parameter_mismatch() -> ApiError:
    return ApiError.modeled(
        MODEL,
        "ValidationException",
        "The request uses the same client token as a previous, but non-identical request. "
        "Do not reuse a client token with different requests, unless the requests are identical.",
        reason="IdempotentParameterMismatchException",
    )


def _invalid(path: str, constraint: str) -> ApiError:
    return validation_failed(MODEL, [FieldViolation(path, constraint)])


_MEMORY_ARN_PREFIX = re.compile(
    r"arn:(?:aws|aws-cn|aws-us-gov):bedrock-agentcore:[a-z0-9-]+:[0-9]{12}:memory/"
)
_MEMORY_ID = ShapeValidator(MODEL.shape_for("MemoryId"))


def canonical_memory_id(memory_id: str) -> str:
    """The bare id for a memory id or memory ARN (the API accepts both)."""
    prefix = _MEMORY_ARN_PREFIX.match(memory_id)
    return memory_id[prefix.end() :] if prefix else memory_id


def check_memory_id(memory_id: str) -> str:
    """Return the canonical form of a configured memory id, or raise ValueError."""
    if _MEMORY_ID.validate_value(memory_id):
        raise ValueError(f"not a valid AgentCore memory id: {memory_id!r}")
    return canonical_memory_id(memory_id)


@dataclass(frozen=True)
class OperationContext:
    """What an operation receives besides its validated input."""

    operation: str
    memory_id: str  # canonical id, already checked to be a configured memory
    store: Store
    now_us: int


# An operation takes its context and validated input (keyed by member name) and returns the JSON output.
Operation = Callable[[OperationContext, dict[str, Any]], dict[str, Any]]


class MemoryRecordsBackend:
    """The operations over one store, for a fixed set of memories."""

    def __init__(
        self, *, store: Store, memory_ids: Iterable[str], clock: Callable[[], int] = now_micros
    ) -> None:
        self._store = store
        self._memory_ids = frozenset(check_memory_id(memory_id) for memory_id in memory_ids)
        self._clock = clock

    @property
    def handlers(self) -> Mapping[str, Handler]:
        """{AWS operation name: handler}, for the route table."""
        return {name: functools.partial(self._run, name, operation) for name, operation in OPERATIONS.items()}

    def _run(self, name: str, operation: Operation, params: dict[str, Any]) -> dict[str, Any]:
        context = OperationContext(
            operation=name,
            memory_id=self._configured_memory(params["memoryId"]),
            store=self._store,
            now_us=self._clock(),
        )
        try:
            return operation(context, params)
        except StoreClosedError:
            logger.debug("%s arrived while the emulator was stopping", name)
            raise service_failure() from None

    def _configured_memory(self, memory_id: str) -> str:
        canonical = canonical_memory_id(memory_id)
        if canonical not in self._memory_ids:
            raise resource_not_found(f"Memory {memory_id} not found")
        return canonical


def new_record_id() -> str:
    # 40 characters: the minimum length of MemoryRecordId.
    return f"mem-{uuid.uuid4()}"


def _checked_expiry_days(ctx: OperationContext, expiry: Mapping[str, Any] | None) -> int | None:
    """The requested expiry in days, refused when it would fall past the year 9999: the model sets no
    maximum, but no SDK can read such a date back."""
    days: int | None = expiry.get("recordExpiryDurationDays") if expiry is not None else None
    if days is not None and ctx.now_us + days * _MICROS_PER_DAY > MAX_EPOCH_SECONDS * MICROS_PER_SECOND:
        raise _invalid(
            "recordExpirySpecification.recordExpiryDurationDays",
            "Member must not expire records after the year 9999",
        )
    return days


def batch_create_memory_records(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    expiry = params.get("recordExpirySpecification")
    if expiry is not None and expiry.get("action") is not None:
        raise _invalid(
            "recordExpirySpecification.action", "Member must not be set when creating memory records"
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
        expires_at_us=ctx.now_us + expiry_days * _MICROS_PER_DAY if expiry_days is not None else None,
    )


def batch_update_memory_records(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    expiry: Mapping[str, Any] | None = params.get("recordExpirySpecification")
    _checked_expiry_days(ctx, expiry)
    successful: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    with ctx.store.transaction() as txn:
        for item, current in _stored_records(txn, ctx.memory_id, params["records"], failed):
            record_id = current.record_id
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
    changes["expires_at_us"] = now_us + expiry_days * _MICROS_PER_DAY if expiry_days is not None else None
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
        for item, current in _stored_records(txn, ctx.memory_id, params["records"], failed):
            record_id = current.record_id
            namespace: str | None = item.get("namespace")
            if namespace is not None and namespace not in current.namespaces:
                # Like sourceNamespaces on update: the namespace authorises, so a mismatch is a 403.
                failed.append(
                    _failure(record_id, 403, "namespace does not match the memory record's namespaces")
                )
            else:
                txn.delete_record(ctx.memory_id, record_id)
                successful.append({"memoryRecordId": record_id, "status": SUCCEEDED})
    return {"successfulRecords": successful, "failedRecords": failed}


def list_memory_records(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    selection = _selection(params, params, "metadataFilters")
    with ctx.store.transaction(write=False) as txn:
        records = [record for record in txn.records_of(ctx.memory_id) if selection.matches(record)]
    # Newest first; the record id orders records created in the same microsecond.
    ordered = sorted((((-record.created_at_us, record.record_id), record) for record in records), key=_by_key)
    page = _page(ctx, params, ordered)
    return _summaries([(record, None) for record in page.items], page.next_token)


def retrieve_memory_records(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    criteria: Mapping[str, Any] = params["searchCriteria"]
    selection = _selection(params, criteria, "searchCriteria.metadataFilters")
    with ctx.store.transaction(write=False) as txn:
        records = {
            record.record_id: record for record in txn.records_of(ctx.memory_id) if selection.matches(record)
        }
    scores = bm25_scores(
        criteria["searchQuery"], {record_id: record.content_text for record_id, record in records.items()}
    )
    # Best score first; equal scores in record id order. topK cuts the ranking before it is paged.
    ranked = sorted(
        (((-score, record_id), (records[record_id], score)) for record_id, score in scores.items()),
        key=_by_key,
    )
    top_k: int | None = criteria.get("topK")
    page = _page(ctx, params, ranked[:top_k] if top_k is not None else ranked)
    return _summaries(page.items, page.next_token)


def _by_key(entry: tuple[SortKey, object]) -> SortKey:
    return entry[0]


def _selection(params: Mapping[str, Any], criteria: Mapping[str, Any], filters_path: str) -> Selection:
    """The selection of a List (criteria = params) or a Retrieve (criteria = searchCriteria)."""
    try:
        return selection_from_wire(
            params.get("namespace"),
            params.get("namespacePath"),
            criteria.get("memoryStrategyId"),
            criteria.get("metadataFilters"),
            filters_path,
        )
    except InvalidSelection as error:
        raise validation_failed(MODEL, error.violations) from None


Item = TypeVar("Item")


def _page(
    ctx: OperationContext, params: Mapping[str, Any], ordered: Sequence[tuple[SortKey, Item]]
) -> Page[Item]:
    try:
        return page_of(
            ordered,
            fingerprint(ctx.operation, ctx.memory_id, params),
            params.get("nextToken"),
            params.get("maxResults", DEFAULT_PAGE_SIZE),
        )
    except InvalidToken:
        raise _invalid("nextToken", "Member must be a nextToken returned for the same request") from None


def _summaries(found: Iterable[tuple[MemoryRecord, float | None]], next_token: str | None) -> dict[str, Any]:
    output: dict[str, Any] = {
        "memoryRecordSummaries": [summary_to_wire(record, score) for record, score in found]
    }
    if next_token is not None:
        output["nextToken"] = next_token
    return output


def _stored_records(
    txn: Transaction, memory_id: str, items: Iterable[Mapping[str, Any]], failed: list[dict[str, Any]]
) -> Iterator[tuple[Mapping[str, Any], MemoryRecord]]:
    """Each batch item with the record it names; an item naming no record is failed as a 404."""
    for item in items:
        record_id: str = item["memoryRecordId"]
        record = txn.get_record(memory_id, record_id)
        if record is None:
            failed.append(_failure(record_id, 404, "Memory record not found"))
        else:
            yield item, record


def _failure(
    record_id: str, error_code: int, message: str, request_identifier: str | None = None
) -> dict[str, Any]:
    failure: dict[str, Any] = {"memoryRecordId": record_id, "status": FAILED}
    if request_identifier is not None:
        failure["requestIdentifier"] = request_identifier
    failure["errorCode"] = error_code
    failure["errorMessage"] = message
    return failure


OPERATIONS: Mapping[str, Operation] = MappingProxyType(
    {
        "BatchCreateMemoryRecords": batch_create_memory_records,
        "BatchUpdateMemoryRecords": batch_update_memory_records,
        "GetMemoryRecord": get_memory_record,
        "DeleteMemoryRecord": delete_memory_record,
        "BatchDeleteMemoryRecords": batch_delete_memory_records,
        "ListMemoryRecords": list_memory_records,
        "RetrieveMemoryRecords": retrieve_memory_records,
    }
)
