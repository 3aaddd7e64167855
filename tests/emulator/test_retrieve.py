"""RetrieveMemoryRecords through an unmodified boto3 client: BM25 ranking and its score, topK, the
selection it shares with List, pages, and validation."""

from __future__ import annotations

import math
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import DEFAULT_MEMORY_ID
from tests.emulator.pages import all_pages, create_records, create_texts
from tests.emulator.test_list import metadata_filter, validation_fields


def retrieve(client: Any, namespace: str, query: str, **criteria: Any) -> list[dict[str, Any]]:
    reply = client.retrieve_memory_records(
        memoryId=DEFAULT_MEMORY_ID, namespace=namespace, searchCriteria={"searchQuery": query, **criteria}
    )
    assert "nextToken" not in reply
    summaries: list[dict[str, Any]] = reply["memoryRecordSummaries"]
    return summaries


def test_the_score_is_bm25(checked_client: Any, namespace: str) -> None:
    tea, _ = create_texts(checked_client, namespace, "Tea", "coffee")
    [found] = retrieve(checked_client, namespace, "tea")
    # N = 2, df = 1: idf = ln(1 + 1.5 / 1.5) = ln 2; tf = 1 and length = average: tf part = 2.2 / 2.2.
    assert found["memoryRecordId"] == tea
    assert found["score"] == pytest.approx(math.log(2), rel=1e-12)


def test_the_score_normalises_by_length(checked_client: Any, namespace: str) -> None:
    short, long, _ = create_texts(checked_client, namespace, "tea", "tea with milk", "coffee")
    found = retrieve(checked_client, namespace, "tea")
    # N = 3, df = 2: idf = ln(1 + 1.5 / 2.5); lengths 1 and 3 against an average of 5/3.
    idf = math.log(1.6)
    assert [(s["memoryRecordId"], s["score"]) for s in found] == [
        (short, pytest.approx(idf * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 1 / (5 / 3))), rel=1e-12)),
        (long, pytest.approx(idf * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 3 / (5 / 3))), rel=1e-12)),
    ]


def test_records_rank_by_relevance_then_id(checked_client: Any, namespace: str) -> None:
    both, twice, once, twin, _unrelated = create_texts(
        checked_client,
        namespace,
        "green tea with lemon",
        "tea tea every morning, always tea",
        "a cup of tea in the garden today",
        "a cup of tea in the garden today",
        "black coffee",
    )
    found = retrieve(checked_client, namespace, "Green TEA?")
    ids = [summary["memoryRecordId"] for summary in found]
    # Both words beat one word; more occurrences beat fewer; equal texts tie and go by id; no
    # record without a query word is returned.
    assert ids == [both, twice, *sorted([once, twin])]
    scores = [summary["score"] for summary in found]
    assert scores[0] > scores[1] > scores[2] == scores[3] > 0


def test_top_k_caps_the_ranking_across_pages(checked_client: Any, namespace: str) -> None:
    create_texts(checked_client, namespace, *(f"tea {'tea ' * n}" for n in range(30)))
    everything = all_pages(
        checked_client.retrieve_memory_records,
        namespace=namespace,
        searchCriteria={"searchQuery": "tea"},
        maxResults=7,
    )
    assert [len(page) for page in everything] == [7, 7, 7, 7, 2]
    ranked = [summary for page in everything for summary in page]
    assert len({summary["memoryRecordId"] for summary in ranked}) == 30
    assert [s["score"] for s in ranked] == sorted((s["score"] for s in ranked), reverse=True)

    capped = all_pages(
        checked_client.retrieve_memory_records,
        namespace=namespace,
        searchCriteria={"searchQuery": "tea", "topK": 10},
        maxResults=4,
    )
    assert [len(page) for page in capped] == [4, 4, 2]
    assert [s["memoryRecordId"] for page in capped for s in page] == [
        s["memoryRecordId"] for s in ranked[:10]
    ]


def test_retrieve_honours_namespace_path_strategy_and_metadata(checked_client: Any, namespace: str) -> None:
    [kept] = create_records(
        checked_client,
        f"{namespace}/facts",
        {
            "content": {"text": "tea"},
            "memoryStrategyId": "facts",
            "metadata": {"topic": {"stringValue": "drinks"}},
        },
    )
    create_records(
        checked_client,
        f"{namespace}/facts",
        {
            "content": {"text": "tea"},
            "memoryStrategyId": "other",
            "metadata": {"topic": {"stringValue": "drinks"}},
        },
        {
            "content": {"text": "tea"},
            "memoryStrategyId": "facts",
            "metadata": {"topic": {"stringValue": "food"}},
        },
    )
    create_records(checked_client, f"{namespace}x", {"content": {"text": "tea"}, "memoryStrategyId": "facts"})
    reply = checked_client.retrieve_memory_records(
        memoryId=DEFAULT_MEMORY_ID,
        namespacePath=namespace,
        searchCriteria={
            "searchQuery": "tea",
            "memoryStrategyId": "facts",
            "metadataFilters": [metadata_filter("EQUALS_TO", {"stringValue": "drinks"}, key="topic")],
        },
    )
    assert [summary["memoryRecordId"] for summary in reply["memoryRecordSummaries"]] == [kept]
    assert retrieve(checked_client, f"{namespace}/facts", "tea", memoryStrategyId="facts")[0]["score"] > 0


def test_a_query_without_words_finds_nothing(checked_client: Any, namespace: str) -> None:
    create_texts(checked_client, namespace, "tea")
    assert retrieve(checked_client, namespace, "?!") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"searchCriteria": {"searchQuery": ""}}, "searchCriteria.searchQuery"),
        ({"searchCriteria": {"searchQuery": "x" * 10_001}}, "searchCriteria.searchQuery"),
        ({"searchCriteria": {"searchQuery": "x", "topK": 0}}, "searchCriteria.topK"),
        ({"searchCriteria": {"searchQuery": "x", "topK": 101}}, "searchCriteria.topK"),
        ({"searchCriteria": {"searchQuery": "x"}, "maxResults": 101}, "maxResults"),
        ({"searchCriteria": {"searchQuery": "x"}, "maxResults": 0}, "maxResults"),
        ({"searchCriteria": {"searchQuery": "x"}, "nextToken": "x"}, "nextToken"),
        ({}, "searchCriteria"),
        (
            {
                "searchCriteria": {
                    "searchQuery": "x",
                    "metadataFilters": [metadata_filter("AFTER", {"numberValue": 1})],
                }
            },
            "searchCriteria.metadataFilters.1.member.right.metadataValue",
        ),
    ],
)
def test_validation(raw_client: Any, namespace: str, params: dict[str, Any], field: str) -> None:
    with pytest.raises(ClientError) as raised:
        raw_client.retrieve_memory_records(memoryId=DEFAULT_MEMORY_ID, namespace=namespace, **params)
    assert validation_fields(raised) == [field]


def test_retrieve_needs_namespace_or_namespace_path(raw_client: Any) -> None:
    with pytest.raises(ClientError) as raised:
        raw_client.retrieve_memory_records(memoryId=DEFAULT_MEMORY_ID, searchCriteria={"searchQuery": "x"})
    assert validation_fields(raised) == ["namespace"]
