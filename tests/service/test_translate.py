"""translate.py: every field both ways, presence and absence, exact timestamps."""

from __future__ import annotations

import datetime as dt

import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from dateutil import tz

from service import operations, translate
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


class TestBatchCreateRequest:
    def test_every_field(self) -> None:
        request = pb.BatchCreateRequest(
            memory_id=MEMORY_ID,
            client_token="token-1",
            record_expiry_specification=pb.RecordExpirySpecification(record_expiry_duration_days=45),
            records=[
                pb.MemoryRecordCreate(
                    request_identifier="r1",
                    namespaces=["users/alice"],
                    content=pb.MemoryContent(text="likes tea"),
                    timestamp=timestamp(1_700_000_000, 250_000_000),
                    memory_strategy_id="manual",
                    metadata={
                        "s": pb.MetadataValue(string_value="v"),
                        "l": pb.MetadataValue(string_list_value=pb.StringList(values=["a", "b"])),
                        "n": pb.MetadataValue(number_value=2.5),
                        "d": pb.MetadataValue(date_time_value=timestamp(1_600_000_000, 1_000)),
                    },
                )
            ],
        )
        assert translate.to_boto_batch_create(request) == {
            "memoryId": MEMORY_ID,
            "clientToken": "token-1",
            "recordExpirySpecification": {"recordExpiryDurationDays": 45},
            "records": [
                {
                    "requestIdentifier": "r1",
                    "namespaces": ["users/alice"],
                    "content": {"text": "likes tea"},
                    "timestamp": dt.datetime(2023, 11, 14, 22, 13, 20, 250_000, tzinfo=UTC),
                    "memoryStrategyId": "manual",
                    "metadata": {
                        "s": {"stringValue": "v"},
                        "l": {"stringListValue": ["a", "b"]},
                        "n": {"numberValue": 2.5},
                        "d": {"dateTimeValue": dt.datetime(2020, 9, 13, 12, 26, 40, 1, tzinfo=UTC)},
                    },
                }
            ],
        }

    def test_unset_optional_fields_are_not_sent(self) -> None:
        request = pb.BatchCreateRequest(
            memory_id=MEMORY_ID,
            records=[
                pb.MemoryRecordCreate(
                    request_identifier="r1", content=pb.MemoryContent(text="x"), timestamp=timestamp(1)
                )
            ],
        )
        assert translate.to_boto_batch_create(request) == {
            "memoryId": MEMORY_ID,
            "records": [
                {
                    "requestIdentifier": "r1",
                    "namespaces": [],
                    "content": {"text": "x"},
                    "timestamp": dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
                }
            ],
        }

    def test_set_but_empty_optional_scalars_are_sent(self) -> None:
        request = pb.BatchCreateRequest(memory_id=MEMORY_ID, client_token="")
        request.records.add(memory_strategy_id="")
        params = translate.to_boto_batch_create(request)
        assert params["clientToken"] == ""
        assert params["records"][0]["memoryStrategyId"] == ""
        assert "content" not in params["records"][0]
        assert "timestamp" not in params["records"][0]

    def test_expiry_action(self) -> None:
        request = pb.BatchCreateRequest(
            record_expiry_specification=pb.RecordExpirySpecification(action=pb.RECORD_EXPIRY_ACTION_REMOVE)
        )
        assert translate.to_boto_batch_create(request)["recordExpirySpecification"] == {"action": "REMOVE"}


class TestBatchUpdateRequest:
    def test_every_field(self) -> None:
        request = pb.BatchUpdateRequest(
            memory_id=MEMORY_ID,
            record_expiry_specification=pb.RecordExpirySpecification(action=pb.RECORD_EXPIRY_ACTION_REMOVE),
            records=[
                pb.MemoryRecordUpdate(
                    memory_record_id=RECORD_ID,
                    timestamp=timestamp(1_700_000_000, 999_999_999),
                    content=pb.MemoryContent(text="prefers coffee"),
                    namespaces=pb.NamespaceList(values=["users/bob"]),
                    source_namespaces=pb.NamespaceList(values=["users/alice"]),
                    memory_strategy_id="s-1",
                    metadata={"n": pb.MetadataValue(number_value=-0.5)},
                )
            ],
        )
        assert translate.to_boto_batch_update(request) == {
            "memoryId": MEMORY_ID,
            "recordExpirySpecification": {"action": "REMOVE"},
            "records": [
                {
                    "memoryRecordId": RECORD_ID,
                    "timestamp": dt.datetime(2023, 11, 14, 22, 13, 20, 999_999, tzinfo=UTC),
                    "content": {"text": "prefers coffee"},
                    "namespaces": ["users/bob"],
                    "sourceNamespaces": ["users/alice"],
                    "memoryStrategyId": "s-1",
                    "metadata": {"n": {"numberValue": -0.5}},
                }
            ],
        }

    def test_only_what_is_set_is_sent(self) -> None:
        request = pb.BatchUpdateRequest(
            memory_id=MEMORY_ID, records=[pb.MemoryRecordUpdate(memory_record_id=RECORD_ID)]
        )
        assert translate.to_boto_batch_update(request) == {
            "memoryId": MEMORY_ID,
            "records": [{"memoryRecordId": RECORD_ID}],
        }

    def test_empty_namespace_list_is_sent_as_empty(self) -> None:
        record = pb.MemoryRecordUpdate(memory_record_id=RECORD_ID, namespaces=pb.NamespaceList())
        params = translate.to_boto_batch_update(pb.BatchUpdateRequest(records=[record]))
        assert params["records"][0]["namespaces"] == []
        assert "sourceNamespaces" not in params["records"][0]


class TestGetRequest:
    def test_namespace_only_when_set(self) -> None:
        assert translate.to_boto_get(pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID)) == {
            "memoryId": MEMORY_ID,
            "memoryRecordId": RECORD_ID,
        }
        with_namespace = pb.GetRequest(
            memory_id=MEMORY_ID, memory_record_id=RECORD_ID, namespace="users/alice"
        )
        assert translate.to_boto_get(with_namespace)["namespace"] == "users/alice"


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


class TestDataPlaneRequests:
    def test_delete_and_batch_delete(self) -> None:
        assert translate.to_boto_delete(
            pb.DeleteRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID)
        ) == {
            "memoryId": MEMORY_ID,
            "memoryRecordId": RECORD_ID,
        }
        batch = pb.BatchDeleteRequest(
            memory_id=MEMORY_ID,
            records=[
                pb.MemoryRecordDelete(memory_record_id=RECORD_ID, namespace="n"),
                pb.MemoryRecordDelete(),
            ],
        )
        assert translate.to_boto_batch_delete(batch) == {
            "memoryId": MEMORY_ID,
            "records": [{"memoryRecordId": RECORD_ID, "namespace": "n"}, {"memoryRecordId": ""}],
        }

    def test_list_sends_what_is_set_and_paging_by_aip_158(self) -> None:
        assert translate.to_boto_list(pb.ListRequest(memory_id=MEMORY_ID)) == {"memoryId": MEMORY_ID}
        request = pb.ListRequest(
            memory_id=MEMORY_ID,
            namespace="",
            namespace_path="users",
            memory_strategy_id="s",
            page_size=5,
            page_token="t",
            metadata_filters=[
                pb.MetadataFilter(
                    left=pb.MetadataFilterLeft(metadata_key="k"), operator=pb.METADATA_FILTER_OPERATOR_EXISTS
                )
            ],
        )
        assert translate.to_boto_list(request) == {
            "memoryId": MEMORY_ID,
            "namespace": "",
            "namespacePath": "users",
            "memoryStrategyId": "s",
            "maxResults": 5,
            "nextToken": "t",
            "metadataFilters": [{"left": {"metadataKey": "k"}, "operator": "EXISTS"}],
        }

    def test_retrieve_with_every_operator_name(self) -> None:
        for number, name in enumerate(
            operations.service_model().shape_for("MemoryRecordOperatorType").enum, 1
        ):
            assert pb.MetadataFilterOperator.Name(number) == f"METADATA_FILTER_OPERATOR_{name}"
        criteria = pb.SearchCriteria(
            search_query="q",
            top_k=0,
            metadata_filters=[
                pb.MetadataFilter(
                    left=pb.MetadataFilterLeft(),
                    right=pb.MetadataFilterRight(metadata_value=pb.MetadataValue(number_value=2.5)),
                )
            ],
        )
        params = translate.to_boto_retrieve(pb.RetrieveRequest(memory_id=MEMORY_ID, search_criteria=criteria))
        # An unset operator and an empty left side are sent as such, so that validation names them.
        assert params == {
            "memoryId": MEMORY_ID,
            "searchCriteria": {
                "searchQuery": "q",
                "topK": 0,
                "metadataFilters": [{"left": {}, "right": {"metadataValue": {"numberValue": 2.5}}}],
            },
        }

    def test_paging_members_have_aip_158_names(self) -> None:
        assert translate.snake("maxResults") == "page_size"
        assert translate.snake("nextToken") == "page_token"
        assert translate.snake("namespacePath") == "namespace_path"


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
