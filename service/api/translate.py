"""boto3 replies -> proto messages, and the names and timestamps both directions share. Pure
functions, no I/O. (Requests become boto3 parameters in validate.py, compiled from the model.)

Presence rule: a member AWS did not return is left unset in the proto reply. Timestamps are
timezone-aware UTC datetimes on the boto3 side and keep microseconds (AWS's wire format, epoch seconds
with six decimals, holds no more): nanoseconds below a microsecond are truncated.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
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


# --- names ------------------------------------------------------------------------------------


def snake(name: str) -> str:
    """An AWS member name as its proto field name: `memoryRecordId` -> `memory_record_id`."""
    return _CAMEL.sub("_", name).lower()


# --- timestamps -------------------------------------------------------------------------------


def to_datetime(timestamp: timestamp_pb2.Timestamp) -> dt.datetime:
    """A proto Timestamp as an aware UTC datetime, truncated to the microsecond."""
    # Positional arguments: timedelta's keywords cost twice the time, on every record's timestamp.
    return _EPOCH + dt.timedelta(0, timestamp.seconds, timestamp.nanos // 1000)


def to_timestamp(moment: dt.datetime) -> timestamp_pb2.Timestamp:
    """An aware datetime (any zone; botocore answers in the local zone) as a proto Timestamp."""
    if moment.tzinfo is None:
        # botocore never returns naive datetimes; treat one as UTC rather than as local time.
        moment = moment.replace(tzinfo=dt.UTC)
    seconds = calendar.timegm(moment.utctimetuple())
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=moment.microsecond * 1000)


# --- replies ----------------------------------------------------------------------------------


class MalformedReplyError(ValueError):
    """AWS's reply does not fit the model's output shape or could not be parsed (replies.py checks every
    reply as botocore parses it), or a batch reply does not account for its records (batches.py): a
    truncated or garbled body, never a valid empty answer. The message names members, never values."""


def _require(reply: BotoReply, *members: str) -> None:
    missing = [member for member in members if member not in reply]
    if missing:
        raise MalformedReplyError(f"the AWS reply lacks {', '.join(missing)}")


BatchResponse = TypeVar(
    "BatchResponse", pb.BatchCreateResponse, pb.BatchUpdateResponse, pb.BatchDeleteResponse
)
PageResponse = TypeVar("PageResponse", pb.ListResponse, pb.RetrieveResponse)


def _batch_reply(response_type: type[BatchResponse]) -> Callable[[BotoReply], BatchResponse]:
    """How every batch operation's reply becomes its response: the records that succeeded and failed."""

    def convert(reply: BotoReply) -> BatchResponse:
        _require(reply, "successfulRecords", "failedRecords")
        return response_type(
            successful_records=_from_boto_results(reply["successfulRecords"]),
            # AWS answered for these records: it did not apply them.
            failed_records=_from_boto_results(reply["failedRecords"], pb.RECORD_OUTCOME_NOT_APPLIED),
        )

    return convert


def _page_reply(response_type: type[PageResponse]) -> Callable[[BotoReply], PageResponse]:
    """How a page of List or Retrieve becomes its response; the last page has no next_page_token."""

    def convert(reply: BotoReply) -> PageResponse:
        _require(reply, "memoryRecordSummaries")
        return response_type(
            memory_record_summaries=[
                _from_boto_summary(summary) for summary in reply["memoryRecordSummaries"]
            ],
            next_page_token=reply.get("nextToken", ""),
        )

    return convert


from_boto_batch_create = _batch_reply(pb.BatchCreateResponse)
from_boto_batch_update = _batch_reply(pb.BatchUpdateResponse)
from_boto_batch_delete = _batch_reply(pb.BatchDeleteResponse)
from_boto_list = _page_reply(pb.ListResponse)
from_boto_retrieve = _page_reply(pb.RetrieveResponse)


def from_boto_get(reply: BotoReply) -> pb.GetResponse:
    """A Get response from a `get_memory_record` reply."""
    _require(reply, "memoryRecord")
    return pb.GetResponse(memory_record=from_boto_record(reply["memoryRecord"]))


def from_boto_delete(reply: BotoReply) -> pb.DeleteResponse:
    """A Delete response from a `delete_memory_record` reply."""
    _require(reply, "memoryRecordId")
    return pb.DeleteResponse(memory_record_id=reply["memoryRecordId"])


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


def _from_boto_results(
    boto_results: Sequence[BotoReply],
    outcome: pb.RecordOutcome.ValueType = pb.RECORD_OUTCOME_UNSPECIFIED,
) -> list[pb.MemoryRecordResult]:
    return [_from_boto_result(boto_result, outcome) for boto_result in boto_results]


def _from_boto_result(boto_result: BotoReply, outcome: pb.RecordOutcome.ValueType) -> pb.MemoryRecordResult:
    _require(boto_result, "memoryRecordId", "status")
    result = pb.MemoryRecordResult(
        memory_record_id=boto_result["memoryRecordId"],
        status=_STATUS_FROM_BOTO.get(boto_result["status"], pb.MEMORY_RECORD_STATUS_UNSPECIFIED),
        outcome=outcome,
    )
    if "requestIdentifier" in boto_result:
        result.request_identifier = boto_result["requestIdentifier"]
    if "errorCode" in boto_result:
        result.error_code = boto_result["errorCode"]
    if "errorMessage" in boto_result:
        result.error_message = boto_result["errorMessage"]
    return result


def failed_record(
    error_code: int,
    message: str,
    outcome: pb.RecordOutcome.ValueType,
    *,
    memory_record_id: str = "",
    request_identifier: str = "",
) -> pb.MemoryRecordResult:
    """The facade's own failed result for a record that AWS gave no result for, or never saw (the
    policy refused it): the one place such a result is built."""
    return pb.MemoryRecordResult(
        memory_record_id=memory_record_id,
        request_identifier=request_identifier,
        status=pb.MEMORY_RECORD_STATUS_FAILED,
        error_code=error_code,
        error_message=message,
        outcome=outcome,
    )


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
