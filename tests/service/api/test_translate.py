"""translate.py: every reply field, presence and absence, exact timestamps (requests: test_validate.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from dateutil import tz

from service.api import translate
from tests.helpers import timestamp

MEMORY_ID = "demo_memory-0123456789"
RECORD_ID = "mem-" + "a" * 36


UTC = dt.UTC


class TestTimestamps:
    def test_to_datetime_is_utc_and_keeps_microseconds(self) -> None:
        moment = translate.to_datetime(timestamp(1_732_560_000, 123_456_789))
        assert moment == dt.datetime(2024, 11, 25, 18, 40, 0, 123_456, tzinfo=UTC)
        assert moment.utcoffset() == dt.timedelta(0)

    def test_before_epoch(self) -> None:
        assert translate.to_datetime(timestamp(-1, 500_000_000)) == dt.datetime(
            1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC
        )

    @pytest.mark.parametrize(
        "zone", [UTC, tz.gettz("Asia/Kolkata"), tz.gettz("America/St_Johns"), tz.tzlocal()]
    )
    def test_to_timestamp_from_any_zone(self, zone: dt.tzinfo) -> None:
        instant = dt.datetime(2024, 11, 25, 18, 40, 0, 123_456, tzinfo=UTC)
        assert translate.to_timestamp(instant.astimezone(zone)) == timestamp(1_732_560_000, 123_456_000)

    def test_naive_datetime_is_read_as_utc(self) -> None:
        assert translate.to_timestamp(dt.datetime(1970, 1, 1, 0, 0, 1)) == timestamp(1)

    def test_round_trip_at_microsecond_precision(self) -> None:
        for seconds, nanos in [(0, 0), (1, 1_000), (1_732_560_000, 999_999_000), (4_102_444_800, 1_000)]:
            assert translate.to_timestamp(translate.to_datetime(timestamp(seconds, nanos))) == timestamp(
                seconds, nanos
            )


class TestReplies:
    def test_batch_results_every_field_and_absence(self) -> None:
        reply = {
            "successfulRecords": [
                {"memoryRecordId": RECORD_ID, "status": "SUCCEEDED", "requestIdentifier": "r1"}
            ],
            "failedRecords": [
                {
                    "memoryRecordId": RECORD_ID,
                    "status": "FAILED",
                    "errorCode": 404,
                    "errorMessage": "not found",
                },
                {"memoryRecordId": RECORD_ID, "status": "SOMETHING_NEW"},
            ],
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }
        for convert in (translate.from_boto_batch_update, translate.from_boto_batch_create):
            response = convert(reply)
            ok = response.successful_records[0]
            assert (ok.memory_record_id, ok.status, ok.request_identifier) == (
                RECORD_ID,
                pb.MEMORY_RECORD_STATUS_SUCCEEDED,
                "r1",
            )
            assert not ok.HasField("error_code")
            assert not ok.HasField("error_message")
            failed = response.failed_records[0]
            assert failed.status == pb.MEMORY_RECORD_STATUS_FAILED
            assert (failed.error_code, failed.error_message) == (404, "not found")
            assert not failed.HasField("request_identifier")
            assert response.failed_records[1].status == pb.MEMORY_RECORD_STATUS_UNSPECIFIED

    def test_record_every_field(self) -> None:
        local = tz.gettz("Asia/Kolkata")
        reply = {
            "memoryRecord": {
                "memoryRecordId": RECORD_ID,
                "content": {"text": "likes tea"},
                "memoryStrategyId": "manual",
                "namespaces": ["users/alice"],
                "createdAt": dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC).astimezone(local),
                "timestamp": dt.datetime(2024, 1, 1, tzinfo=UTC),
                "metadata": {
                    "s": {"stringValue": "v"},
                    "l": {"stringListValue": ["a"]},
                    "e": {"stringListValue": []},
                    "n": {"numberValue": 1e300},
                    "d": {"dateTimeValue": dt.datetime(2000, 1, 1, 0, 0, 0, 1, tzinfo=UTC)},
                },
                "expiresAt": dt.datetime(2025, 1, 1, tzinfo=UTC),
            }
        }
        record = translate.from_boto_get(reply).memory_record
        assert record.memory_record_id == RECORD_ID
        assert record.content.text == "likes tea"
        assert record.memory_strategy_id == "manual"
        assert list(record.namespaces) == ["users/alice"]
        assert record.created_at == timestamp(1_704_164_645, 6_000)
        assert record.timestamp == timestamp(1_704_067_200)
        assert record.metadata["s"].string_value == "v"
        assert list(record.metadata["l"].string_list_value.values) == ["a"]
        assert record.metadata["e"].WhichOneof("value") == "string_list_value"
        assert record.metadata["n"].number_value == 1e300
        assert record.metadata["d"].date_time_value == timestamp(946_684_800, 1_000)
        assert record.expires_at == timestamp(1_735_689_600)

    def test_record_absent_fields_stay_unset(self) -> None:
        reply = {
            "memoryRecord": {
                "memoryRecordId": RECORD_ID,
                "content": {"text": "x"},
                "namespaces": [],
                "createdAt": dt.datetime(2024, 1, 1, tzinfo=UTC),
            }
        }
        record = translate.from_boto_get(reply).memory_record
        assert not record.HasField("memory_strategy_id")
        assert not record.HasField("timestamp")
        assert not record.HasField("expires_at")
        assert len(record.metadata) == 0


SUMMARY = {
    "memoryRecordId": RECORD_ID,
    "content": {"text": "likes tea"},
    "memoryStrategyId": "s",
    "namespaces": ["users/alice"],
    "createdAt": dt.datetime(2024, 11, 25, 18, 40, tzinfo=UTC),
    "score": 0.5,
    "metadata": {"k": {"stringValue": "v"}},
}


class TestDataPlaneReplies:
    def test_delete(self) -> None:
        assert translate.from_boto_delete({"memoryRecordId": RECORD_ID}) == pb.DeleteResponse(
            memory_record_id=RECORD_ID
        )
        with pytest.raises(translate.MalformedReplyError):
            translate.from_boto_delete({})

    def test_batch_delete(self) -> None:
        reply = {
            "successfulRecords": [{"memoryRecordId": RECORD_ID, "status": "SUCCEEDED"}],
            "failedRecords": [],
        }
        response = translate.from_boto_batch_delete(reply)
        assert response.successful_records[0].status == pb.MEMORY_RECORD_STATUS_SUCCEEDED
        with pytest.raises(translate.MalformedReplyError):
            translate.from_boto_batch_delete({"successfulRecords": []})

    def test_retrieve_keeps_the_score_and_the_token(self) -> None:
        response = translate.from_boto_retrieve({"memoryRecordSummaries": [SUMMARY], "nextToken": "n"})
        [summary] = response.memory_record_summaries
        assert summary.HasField("score") and summary.score == 0.5
        assert summary.memory_strategy_id == "s" and summary.created_at == timestamp(1_732_560_000)
        assert summary.metadata["k"].string_value == "v"
        assert not summary.HasField("timestamp")
        assert response.next_page_token == "n"

    def test_list_last_page_has_no_token_and_no_score(self) -> None:
        summary = {key: value for key, value in SUMMARY.items() if key != "score"}
        response = translate.from_boto_list({"memoryRecordSummaries": [summary]})
        assert response.next_page_token == ""
        assert not response.memory_record_summaries[0].HasField("score")
        with pytest.raises(translate.MalformedReplyError):
            translate.from_boto_list({"message": "<html>"})
