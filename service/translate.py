"""Proto messages <-> boto3 parameters and replies. Pure functions, no I/O.

Presence rule: a proto field the caller did not set is left out of the boto3 parameters, and a
member AWS did not return is left unset in the proto reply. Timestamps are timezone-aware UTC
datetimes on the boto3 side and keep microseconds (AWS's wire format, epoch seconds with six
decimals, holds no more): nanoseconds below a microsecond are truncated.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from agentcore.memory.v1 import memory_records_pb2 as pb
from google.protobuf import timestamp_pb2

BotoParams = dict[str, Any]
BotoReply = Mapping[str, Any]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

_STATUS_FROM_BOTO = {
    "SUCCEEDED": pb.MEMORY_RECORD_STATUS_SUCCEEDED,
    "FAILED": pb.MEMORY_RECORD_STATUS_FAILED,
}
_EXPIRY_ACTION_TO_BOTO = {pb.RECORD_EXPIRY_ACTION_REMOVE: "REMOVE"}
_OPERATOR_PREFIX = "METADATA_FILTER_OPERATOR_"
# AWS members whose proto field follows AIP-158 rather than the AWS name.
_PROTO_NAMES = {"maxResults": "page_size", "nextToken": "page_token"}


# --- names ------------------------------------------------------------------------------------


def snake(name: str) -> str:
    """An AWS member name as its proto field name: `memoryRecordId` -> `memory_record_id`, and the
    paging members as AIP-158 names them (`maxResults` -> `page_size`, `nextToken` -> `page_token`)."""
    return _PROTO_NAMES.get(name) or _CAMEL.sub("_", name).lower()


# --- timestamps -------------------------------------------------------------------------------


def to_datetime(timestamp: timestamp_pb2.Timestamp) -> dt.datetime:
    """A proto Timestamp as an aware UTC datetime, truncated to the microsecond."""
    return _EPOCH + dt.timedelta(seconds=timestamp.seconds, microseconds=timestamp.nanos // 1000)


def to_timestamp(moment: dt.datetime) -> timestamp_pb2.Timestamp:
    """An aware datetime (any zone; botocore answers in the local zone) as a proto Timestamp."""
    if moment.tzinfo is None:
        # botocore never returns naive datetimes; treat one as UTC rather than as local time.
        moment = moment.replace(tzinfo=dt.UTC)
    seconds = calendar.timegm(moment.utctimetuple())
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=moment.microsecond * 1000)


# --- requests ---------------------------------------------------------------------------------


def to_boto_batch_create(request: pb.BatchCreateRequest) -> BotoParams:
    """Parameters of `batch_create_memory_records` for a BatchCreate request."""
    params: BotoParams = {
        "memoryId": request.memory_id,
        "records": [_to_boto_record_create(record) for record in request.records],
    }
    if request.HasField("client_token"):
        params["clientToken"] = request.client_token
    if request.HasField("record_expiry_specification"):
        params["recordExpirySpecification"] = _to_boto_expiry(request.record_expiry_specification)
    return params


def to_boto_batch_update(request: pb.BatchUpdateRequest) -> BotoParams:
    """Parameters of `batch_update_memory_records` for a BatchUpdate request."""
    params: BotoParams = {
        "memoryId": request.memory_id,
        "records": [_to_boto_record_update(record) for record in request.records],
    }
    if request.HasField("record_expiry_specification"):
        params["recordExpirySpecification"] = _to_boto_expiry(request.record_expiry_specification)
    return params


def to_boto_get(request: pb.GetRequest) -> BotoParams:
    """Parameters of `get_memory_record` for a Get request."""
    params: BotoParams = {"memoryId": request.memory_id, "memoryRecordId": request.memory_record_id}
    if request.HasField("namespace"):
        params["namespace"] = request.namespace
    return params


def to_boto_delete(request: pb.DeleteRequest) -> BotoParams:
    """Parameters of `delete_memory_record` for a Delete request."""
    params: BotoParams = {"memoryId": request.memory_id, "memoryRecordId": request.memory_record_id}
    if request.HasField("namespace"):
        params["namespace"] = request.namespace
    return params


def to_boto_batch_delete(request: pb.BatchDeleteRequest) -> BotoParams:
    """Parameters of `batch_delete_memory_records` for a BatchDelete request."""
    records: list[BotoParams] = []
    for record in request.records:
        boto_record: BotoParams = {"memoryRecordId": record.memory_record_id}
        if record.HasField("namespace"):
            boto_record["namespace"] = record.namespace
        records.append(boto_record)
    return {"memoryId": request.memory_id, "records": records}


def to_boto_list(request: pb.ListRequest) -> BotoParams:
    """Parameters of `list_memory_records` for a List request."""
    params: BotoParams = {"memoryId": request.memory_id}
    if request.HasField("namespace"):
        params["namespace"] = request.namespace
    if request.HasField("namespace_path"):
        params["namespacePath"] = request.namespace_path
    if request.HasField("memory_strategy_id"):
        params["memoryStrategyId"] = request.memory_strategy_id
    if request.metadata_filters:
        params["metadataFilters"] = _to_boto_filters(request.metadata_filters)
    return _with_page(params, request)


def to_boto_retrieve(request: pb.RetrieveRequest) -> BotoParams:
    """Parameters of `retrieve_memory_records` for a Retrieve request."""
    params: BotoParams = {"memoryId": request.memory_id}
    if request.HasField("namespace"):
        params["namespace"] = request.namespace
    if request.HasField("namespace_path"):
        params["namespacePath"] = request.namespace_path
    if request.HasField("search_criteria"):
        criteria = request.search_criteria
        # searchQuery is required: always sent, so that an empty one is named.
        boto_criteria: BotoParams = {"searchQuery": criteria.search_query}
        if criteria.HasField("memory_strategy_id"):
            boto_criteria["memoryStrategyId"] = criteria.memory_strategy_id
        if criteria.HasField("top_k"):
            boto_criteria["topK"] = criteria.top_k
        if criteria.metadata_filters:
            boto_criteria["metadataFilters"] = _to_boto_filters(criteria.metadata_filters)
        params["searchCriteria"] = boto_criteria
    return _with_page(params, request)


def _with_page(params: BotoParams, request: pb.ListRequest | pb.RetrieveRequest) -> BotoParams:
    # AIP-158: 0 and "" mean "not set".
    if request.page_size:
        params["maxResults"] = request.page_size
    if request.page_token:
        params["nextToken"] = request.page_token
    return params


def _to_boto_filters(filters: Sequence[pb.MetadataFilter]) -> list[BotoParams]:
    boto_filters: list[BotoParams] = []
    for metadata_filter in filters:
        boto_filter: BotoParams = {}
        if metadata_filter.HasField("left"):
            left = metadata_filter.left
            boto_filter["left"] = {"metadataKey": left.metadata_key} if left.HasField("metadata_key") else {}
        if metadata_filter.operator:
            # Unset is not sent (AWS requires it: validation names it); unknown numbers are refused earlier.
            name = pb.MetadataFilterOperator.Name(metadata_filter.operator)
            boto_filter["operator"] = name.removeprefix(_OPERATOR_PREFIX)
        if metadata_filter.HasField("right"):
            right = metadata_filter.right
            boto_filter["right"] = (
                {"metadataValue": _to_boto_metadata_value(right.metadata_value)}
                if right.HasField("metadata_value")
                else {}
            )
        boto_filters.append(boto_filter)
    return boto_filters


def _to_boto_record_create(record: pb.MemoryRecordCreate) -> BotoParams:
    # Required members are always sent, even empty, so that AWS (or validation) names what is missing.
    boto_record: BotoParams = {
        "requestIdentifier": record.request_identifier,
        "namespaces": list(record.namespaces),
    }
    return _with_shared_members(boto_record, record)


def _to_boto_record_update(record: pb.MemoryRecordUpdate) -> BotoParams:
    boto_record: BotoParams = {"memoryRecordId": record.memory_record_id}
    if record.HasField("namespaces"):
        boto_record["namespaces"] = list(record.namespaces.values)
    if record.HasField("source_namespaces"):
        boto_record["sourceNamespaces"] = list(record.source_namespaces.values)
    return _with_shared_members(boto_record, record)


def _with_shared_members(
    boto_record: BotoParams, record: pb.MemoryRecordCreate | pb.MemoryRecordUpdate
) -> BotoParams:
    """`boto_record` with the members both kinds of record have, each only when set."""
    if record.HasField("content"):
        boto_record["content"] = _to_boto_content(record.content)
    if record.HasField("timestamp"):
        boto_record["timestamp"] = to_datetime(record.timestamp)
    if record.HasField("memory_strategy_id"):
        boto_record["memoryStrategyId"] = record.memory_strategy_id
    if record.metadata:
        boto_record["metadata"] = _to_boto_metadata(record.metadata)
    return boto_record


def _to_boto_content(content: pb.MemoryContent) -> BotoParams:
    # An empty oneof is sent as an empty union so that botocore/AWS reject it, naming the field.
    return {"text": content.text} if content.HasField("text") else {}


def _to_boto_metadata(metadata: Mapping[str, pb.MetadataValue]) -> BotoParams:
    return {key: _to_boto_metadata_value(value) for key, value in metadata.items()}


def _to_boto_metadata_value(value: pb.MetadataValue) -> BotoParams:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return {"stringValue": value.string_value}
    if kind == "string_list_value":
        return {"stringListValue": list(value.string_list_value.values)}
    if kind == "number_value":
        return {"numberValue": value.number_value}
    if kind == "date_time_value":
        return {"dateTimeValue": to_datetime(value.date_time_value)}
    return {}


def _to_boto_expiry(expiry: pb.RecordExpirySpecification) -> BotoParams:
    kind = expiry.WhichOneof("specification")
    if kind == "record_expiry_duration_days":
        return {"recordExpiryDurationDays": expiry.record_expiry_duration_days}
    if kind == "action":
        # An action this version cannot name is sent as its enum name so that AWS rejects it by name.
        name = _EXPIRY_ACTION_TO_BOTO.get(expiry.action, pb.RecordExpiryAction.Name(expiry.action))
        return {"action": name}
    return {}


# --- replies ----------------------------------------------------------------------------------


class MalformedReplyError(ValueError):
    """AWS answered 2xx without a member its model requires: a truncated or garbled body (botocore
    turns a body that is not JSON into `{"message": ...}`), never a valid empty answer."""


def _require(reply: BotoReply, *members: str) -> None:
    missing = [member for member in members if member not in reply]
    if missing:
        raise MalformedReplyError(f"the AWS reply lacks {', '.join(missing)}")


def from_boto_batch_create(reply: BotoReply) -> pb.BatchCreateResponse:
    """A BatchCreate response from a `batch_create_memory_records` reply."""
    _require(reply, "successfulRecords", "failedRecords")
    return pb.BatchCreateResponse(
        successful_records=_from_boto_results(reply.get("successfulRecords", ())),
        failed_records=_from_boto_results(reply.get("failedRecords", ())),
    )


def from_boto_batch_update(reply: BotoReply) -> pb.BatchUpdateResponse:
    """A BatchUpdate response from a `batch_update_memory_records` reply."""
    _require(reply, "successfulRecords", "failedRecords")
    return pb.BatchUpdateResponse(
        successful_records=_from_boto_results(reply.get("successfulRecords", ())),
        failed_records=_from_boto_results(reply.get("failedRecords", ())),
    )


def from_boto_get(reply: BotoReply) -> pb.GetResponse:
    """A Get response from a `get_memory_record` reply."""
    _require(reply, "memoryRecord")
    return pb.GetResponse(memory_record=from_boto_record(reply["memoryRecord"]))


def from_boto_delete(reply: BotoReply) -> pb.DeleteResponse:
    """A Delete response from a `delete_memory_record` reply."""
    _require(reply, "memoryRecordId")
    return pb.DeleteResponse(memory_record_id=reply["memoryRecordId"])


def from_boto_batch_delete(reply: BotoReply) -> pb.BatchDeleteResponse:
    """A BatchDelete response from a `batch_delete_memory_records` reply."""
    _require(reply, "successfulRecords", "failedRecords")
    return pb.BatchDeleteResponse(
        successful_records=_from_boto_results(reply.get("successfulRecords", ())),
        failed_records=_from_boto_results(reply.get("failedRecords", ())),
    )


def from_boto_list(reply: BotoReply) -> pb.ListResponse:
    """A List response from a `list_memory_records` reply; the last page has no next_page_token."""
    _require(reply, "memoryRecordSummaries")
    return pb.ListResponse(
        memory_record_summaries=[_from_boto_summary(summary) for summary in reply["memoryRecordSummaries"]],
        next_page_token=reply.get("nextToken", ""),
    )


def from_boto_retrieve(reply: BotoReply) -> pb.RetrieveResponse:
    """A Retrieve response from a `retrieve_memory_records` reply."""
    _require(reply, "memoryRecordSummaries")
    return pb.RetrieveResponse(
        memory_record_summaries=[_from_boto_summary(summary) for summary in reply["memoryRecordSummaries"]],
        next_page_token=reply.get("nextToken", ""),
    )


def from_boto_record(boto_record: BotoReply) -> pb.MemoryRecord:
    """A MemoryRecord from AWS's MemoryRecord shape."""
    record = _from_boto_stored(pb.MemoryRecord(), boto_record)
    if "expiresAt" in boto_record:
        record.expires_at.CopyFrom(to_timestamp(boto_record["expiresAt"]))
    return record


def _from_boto_summary(boto_summary: BotoReply) -> pb.MemoryRecordSummary:
    """A MemoryRecordSummary from AWS's MemoryRecordSummary shape."""
    summary = _from_boto_stored(pb.MemoryRecordSummary(), boto_summary)
    if "score" in boto_summary:
        summary.score = boto_summary["score"]
    return summary


_Stored = TypeVar("_Stored", pb.MemoryRecord, pb.MemoryRecordSummary)


def _from_boto_stored(record: _Stored, boto_record: BotoReply) -> _Stored:
    """`record` with the members a MemoryRecord and a MemoryRecordSummary share, each when returned."""
    _require(boto_record, "memoryRecordId")
    record.memory_record_id = boto_record["memoryRecordId"]
    record.namespaces.extend(boto_record.get("namespaces", ()))
    if "content" in boto_record:
        record.content.CopyFrom(_from_boto_content(boto_record["content"]))
    if "memoryStrategyId" in boto_record:
        record.memory_strategy_id = boto_record["memoryStrategyId"]
    if "createdAt" in boto_record:
        record.created_at.CopyFrom(to_timestamp(boto_record["createdAt"]))
    if "timestamp" in boto_record:
        record.timestamp.CopyFrom(to_timestamp(boto_record["timestamp"]))
    for key, value in boto_record.get("metadata", {}).items():
        record.metadata[key].CopyFrom(_from_boto_metadata_value(value))
    return record


def _from_boto_results(boto_results: Sequence[BotoReply]) -> list[pb.MemoryRecordResult]:
    return [_from_boto_result(boto_result) for boto_result in boto_results]


def _from_boto_result(boto_result: BotoReply) -> pb.MemoryRecordResult:
    _require(boto_result, "memoryRecordId", "status")
    result = pb.MemoryRecordResult(
        memory_record_id=boto_result["memoryRecordId"],
        status=_STATUS_FROM_BOTO.get(boto_result["status"], pb.MEMORY_RECORD_STATUS_UNSPECIFIED),
    )
    if "requestIdentifier" in boto_result:
        result.request_identifier = boto_result["requestIdentifier"]
    if "errorCode" in boto_result:
        result.error_code = boto_result["errorCode"]
    if "errorMessage" in boto_result:
        result.error_message = boto_result["errorMessage"]
    return result


def _from_boto_content(boto_content: BotoReply) -> pb.MemoryContent:
    content = pb.MemoryContent()
    if "text" in boto_content:
        content.text = boto_content["text"]
    return content


def _from_boto_metadata_value(boto_value: BotoReply) -> pb.MetadataValue:
    value = pb.MetadataValue()
    if "stringValue" in boto_value:
        value.string_value = boto_value["stringValue"]
    elif "stringListValue" in boto_value:
        value.string_list_value.SetInParent()  # an empty list is still a list
        value.string_list_value.values.extend(boto_value["stringListValue"])
    elif "numberValue" in boto_value:
        value.number_value = boto_value["numberValue"]
    elif "dateTimeValue" in boto_value:
        value.date_time_value.CopyFrom(to_timestamp(boto_value["dateTimeValue"]))
    return value
