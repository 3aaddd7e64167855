"""Delete, BatchDelete, List and Retrieve end to end in local mode: real gRPC channel -> server -> boto3
-> emulator over HTTP. Each test checks the gRPC reply and, where it says something, the wire."""

from __future__ import annotations

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc

from emulator import Emulator
from tests.helpers import MEMORY_ID, UNKNOWN_RECORD_ID, RunningService, record_create

# The receive limit of docs/calling.md for List and Retrieve replies (a page of 100 summaries of 16,000
# four-byte characters is about 7.1 MiB).
CLIENT_RECEIVE_LIMIT = 8 * 1024 * 1024


def create(
    service: RunningService, *texts: str, namespace: str = "users/alice", **fields: object
) -> list[str]:
    records = [
        record_create(text, request_identifier=f"r{i}", namespaces=[namespace], **fields)
        for i, text in enumerate(texts)
    ]
    reply = service.stub.BatchCreate(pb.BatchCreateRequest(memory_id=MEMORY_ID, records=records), timeout=30)
    assert len(reply.successful_records) == len(texts), reply.failed_records[:1]
    return [result.memory_record_id for result in reply.successful_records]


def test_delete_then_get_is_not_found(local_service: RunningService, emulator: Emulator) -> None:
    [record_id] = create(local_service, "stale")
    reply = local_service.stub.Delete(
        pb.DeleteRequest(memory_id=MEMORY_ID, memory_record_id=record_id, namespace="users/alice"), timeout=10
    )
    assert reply.memory_record_id == record_id
    [sent] = emulator.received("DeleteMemoryRecord")
    assert (sent.method, sent.path, sent.query) == (
        "DELETE",
        f"/memories/{MEMORY_ID}/memoryRecords/{record_id}",
        {"namespace": ["users/alice"]},
    )
    with pytest.raises(grpc.RpcError) as caught:
        local_service.stub.Get(pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=record_id), timeout=10)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_delete_of_an_unknown_record_is_not_found(local_service: RunningService) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        local_service.stub.Delete(
            pb.DeleteRequest(memory_id=MEMORY_ID, memory_record_id=UNKNOWN_RECORD_ID), timeout=10
        )
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    # The emulator, as AWS, names the record in its message; the caller's logs must not get it back.
    assert "ResourceNotFoundException: Memory record [redacted] not found" in caught.value.details()
    assert UNKNOWN_RECORD_ID not in caught.value.details()


def test_aws_messages_never_carry_the_ids_of_the_request(local_service: RunningService) -> None:
    memory_id = "unknown_memory-0123456789"
    with pytest.raises(grpc.RpcError) as caught:
        local_service.stub.BatchDelete(
            pb.BatchDeleteRequest(
                memory_id=memory_id, records=[pb.MemoryRecordDelete(memory_record_id=UNKNOWN_RECORD_ID)]
            ),
            timeout=10,
        )
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    assert "[redacted]" in caught.value.details()
    assert memory_id not in caught.value.details()


def test_batch_delete_beyond_100_records_in_request_order(
    local_service: RunningService, emulator: Emulator
) -> None:
    record_ids = create(local_service, *(f"text {i}" for i in range(150)))
    records = [pb.MemoryRecordDelete(memory_record_id=r) for r in [*record_ids, UNKNOWN_RECORD_ID]]
    reply = local_service.stub.BatchDelete(
        pb.BatchDeleteRequest(memory_id=MEMORY_ID, records=records), timeout=30
    )
    assert [r.memory_record_id for r in reply.successful_records] == record_ids
    assert [r.memory_record_id for r in reply.failed_records] == [UNKNOWN_RECORD_ID]
    assert reply.failed_records[0].status == pb.MEMORY_RECORD_STATUS_FAILED
    assert sorted(len(sent.json["records"]) for sent in emulator.received("BatchDeleteMemoryRecords")) == [
        51,
        100,
    ]


def test_list_pages_with_tokens_and_filters(local_service: RunningService, emulator: Emulator) -> None:
    tagged = {"topic": pb.MetadataValue(string_value="drinks")}
    drinks = create(local_service, "green tea", "black coffee", "oolong", metadata=tagged)
    create(local_service, "somewhere else", namespace="users/bob")
    seen: list[pb.MemoryRecordSummary] = []
    request = pb.ListRequest(memory_id=MEMORY_ID, namespace="users/alice", page_size=2)
    for _ in range(5):
        page = local_service.stub.List(request, timeout=10)
        assert len(page.memory_record_summaries) <= 2
        seen.extend(page.memory_record_summaries)
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    assert sorted(s.memory_record_id for s in seen) == sorted(drinks)
    for summary in seen:
        assert summary.content.text and summary.namespaces == ["users/alice"]
        assert summary.created_at.seconds > 0 and not summary.HasField("score")
        assert summary.metadata["topic"].string_value == "drinks"
    assert emulator.received("ListMemoryRecords")[1].json["nextToken"]
    equals_tea = pb.MetadataFilter(
        left=pb.MetadataFilterLeft(metadata_key="topic"),
        operator=pb.METADATA_FILTER_OPERATOR_EQUALS_TO,
        right=pb.MetadataFilterRight(metadata_value=pb.MetadataValue(string_value="food")),
    )
    empty = local_service.stub.List(
        pb.ListRequest(memory_id=MEMORY_ID, namespace_path="users", metadata_filters=[equals_tea]), timeout=10
    )
    assert list(empty.memory_record_summaries) == [] and empty.next_page_token == ""
    assert emulator.received("ListMemoryRecords")[-1].json["metadataFilters"] == [
        {
            "left": {"metadataKey": "topic"},
            "operator": "EQUALS_TO",
            "right": {"metadataValue": {"stringValue": "food"}},
        }
    ]


def test_retrieve_ranks_with_scores_and_honours_top_k(
    local_service: RunningService, emulator: Emulator
) -> None:
    tea, _coffee, green_tea = create(local_service, "likes tea", "likes coffee", "green tea is tea")
    criteria = pb.SearchCriteria(search_query="tea", top_k=2)
    reply = local_service.stub.Retrieve(
        pb.RetrieveRequest(memory_id=MEMORY_ID, namespace="users/alice", search_criteria=criteria), timeout=10
    )
    assert {s.memory_record_id for s in reply.memory_record_summaries} == {tea, green_tea}
    scores = [s.score for s in reply.memory_record_summaries]
    assert all(summary.HasField("score") for summary in reply.memory_record_summaries)
    assert scores == sorted(scores, reverse=True) and scores[0] > 0
    [sent] = emulator.received("RetrieveMemoryRecords")
    assert sent.json == {"namespace": "users/alice", "searchCriteria": {"searchQuery": "tea", "topK": 2}}


def test_the_largest_page_needs_the_documented_receive_limit(local_service: RunningService) -> None:
    text = "\U0001f600" * 16_000  # 4 bytes in UTF-8: the worst case
    for _ in range(2):  # boto3 escapes each such character as 12 bytes of JSON: 50 records a call
        create(local_service, *([text] * 50))
    request = pb.ListRequest(memory_id=MEMORY_ID, namespace="users/alice", page_size=100)
    with pytest.raises(grpc.RpcError) as caught:
        local_service.stub.List(request, timeout=30)  # gRPC's default limit is 4 MiB
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    options = [("grpc.max_receive_message_length", CLIENT_RECEIVE_LIMIT)]
    with grpc.insecure_channel(f"127.0.0.1:{local_service.port}", options=options) as channel:
        page = pb_grpc.MemoryRecordsServiceStub(channel).List(request, timeout=30)
    assert len(page.memory_record_summaries) == 100
    assert page.ByteSize() <= CLIENT_RECEIVE_LIMIT
