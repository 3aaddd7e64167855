"""ListMemoryRecords through an unmodified boto3 client: pages and their tokens, the namespace scope,
the strategy and every metadata filter operator."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import DEFAULT_MEMORY_ID
from emulator.backend import MODEL
from tests.emulator.pages import STRATEGY, all_pages, create_records, create_texts


def list_ids(client: Any, **params: Any) -> list[str]:
    reply = client.list_memory_records(memoryId=DEFAULT_MEMORY_ID, **params)
    assert "nextToken" not in reply
    return [summary["memoryRecordId"] for summary in reply["memoryRecordSummaries"]]


def validation_fields(raised: pytest.ExceptionInfo[ClientError]) -> list[str]:
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "ValidationException"
    return [field["name"] for field in error["fieldList"]]


def test_pages_hold_every_record_once_newest_first(checked_client: Any, namespace: str) -> None:
    older = create_texts(checked_client, namespace, *(f"older {n}" for n in range(12)))
    newer = create_texts(checked_client, namespace, *(f"newer {n}" for n in range(13)))

    pages = all_pages(checked_client.list_memory_records, namespace=namespace, maxResults=7)

    assert [len(page) for page in pages] == [7, 7, 7, 4]
    listed = [summary["memoryRecordId"] for page in pages for summary in page]
    assert sorted(listed) == sorted(older + newer)
    # Newest first: a later batch has a later createdAt; within one batch, by record id.
    assert listed == sorted(newer) + sorted(older)
    created = [summary["createdAt"] for page in pages for summary in page]
    assert created == sorted(created, reverse=True)


def test_the_default_page_holds_20_and_100_is_the_largest(
    checked_client: Any, raw_client: Any, namespace: str
) -> None:
    create_texts(checked_client, namespace, *(f"record {n}" for n in range(100)))
    create_texts(checked_client, namespace, "one more")
    assert [len(page) for page in all_pages(checked_client.list_memory_records, namespace=namespace)] == [
        20
    ] * 5 + [1]
    largest = all_pages(checked_client.list_memory_records, namespace=namespace, maxResults=100)
    assert [len(page) for page in largest] == [100, 1]
    for out_of_range in (0, 101):
        with pytest.raises(ClientError) as raised:
            raw_client.list_memory_records(
                memoryId=DEFAULT_MEMORY_ID, namespace=namespace, maxResults=out_of_range
            )
        assert validation_fields(raised) == ["maxResults"]


def test_records_deleted_between_pages_do_not_shift_the_rest(checked_client: Any, namespace: str) -> None:
    ids = create_texts(checked_client, namespace, *(f"record {n}" for n in range(10)))
    first = checked_client.list_memory_records(memoryId=DEFAULT_MEMORY_ID, namespace=namespace, maxResults=4)
    seen = [summary["memoryRecordId"] for summary in first["memoryRecordSummaries"]]
    # Delete two records already seen and one not yet seen.
    unseen = sorted(set(ids) - set(seen))
    for record_id in (*seen[:2], unseen[0]):
        checked_client.delete_memory_record(memoryId=DEFAULT_MEMORY_ID, memoryRecordId=record_id)

    token = first["nextToken"]
    rest = all_pages(
        lambda **params: checked_client.list_memory_records(
            **params, **({} if "nextToken" in params else {"nextToken": token})
        ),
        namespace=namespace,
        maxResults=4,
    )
    later = [summary["memoryRecordId"] for page in rest for summary in page]
    assert later == unseen[1:]


@pytest.mark.parametrize(
    "token",
    ["not-a-token", "", "eyJmIjoiMCIsImsiOlswLCJ4Il19", "bm90IGpzb24=", "é"],
)
def test_an_invalid_token_is_a_validation_error(raw_client: Any, namespace: str, token: str) -> None:
    with pytest.raises(ClientError) as raised:
        raw_client.list_memory_records(memoryId=DEFAULT_MEMORY_ID, namespace=namespace, nextToken=token)
    assert validation_fields(raised) == ["nextToken"]


def test_a_token_continues_only_the_request_it_came_from(client: Any, namespace: str) -> None:
    create_texts(client, namespace, "tea one", "tea two", "tea three")
    token = client.list_memory_records(memoryId=DEFAULT_MEMORY_ID, namespace=namespace, maxResults=1)[
        "nextToken"
    ]
    # The page size may change; the selection may not; nor may the operation.
    client.list_memory_records(memoryId=DEFAULT_MEMORY_ID, namespace=namespace, maxResults=2, nextToken=token)
    attempts = [
        lambda: client.list_memory_records(
            memoryId=DEFAULT_MEMORY_ID, namespacePath=namespace, nextToken=token
        ),
        lambda: client.list_memory_records(
            memoryId=DEFAULT_MEMORY_ID, namespace=namespace, memoryStrategyId=STRATEGY, nextToken=token
        ),
        lambda: client.retrieve_memory_records(
            memoryId=DEFAULT_MEMORY_ID,
            namespace=namespace,
            searchCriteria={"searchQuery": "tea"},
            nextToken=token,
        ),
    ]
    for attempt in attempts:
        with pytest.raises(ClientError) as raised:
            attempt()
        assert validation_fields(raised) == ["nextToken"]


def test_namespace_is_exact_and_namespace_path_is_a_hierarchy(checked_client: Any, namespace: str) -> None:
    exact, child, grandchild, sibling = (
        create_records(checked_client, ns, {})[0]
        for ns in (namespace, f"{namespace}/facts", f"{namespace}/facts/food", f"{namespace}x")
    )
    assert list_ids(checked_client, namespace=namespace) == [exact]
    assert list_ids(checked_client, namespace=f"{namespace}/facts") == [child]
    for path in (namespace, f"{namespace}/"):
        assert sorted(list_ids(checked_client, namespacePath=path)) == sorted([exact, child, grandchild])
    assert sorted(list_ids(checked_client, namespacePath=f"{namespace}/facts")) == sorted([child, grandchild])
    assert list_ids(checked_client, namespacePath=f"{namespace}x") == [sibling]
    assert list_ids(checked_client, namespacePath=f"{namespace}/fact") == []


def test_namespace_or_namespace_path_exactly_one(raw_client: Any, namespace: str) -> None:
    with pytest.raises(ClientError) as raised:
        raw_client.list_memory_records(memoryId=DEFAULT_MEMORY_ID)
    assert validation_fields(raised) == ["namespace"]
    with pytest.raises(ClientError) as raised:
        raw_client.list_memory_records(
            memoryId=DEFAULT_MEMORY_ID, namespace=namespace, namespacePath=namespace
        )
    assert validation_fields(raised) == ["namespacePath"]


def test_memory_strategy_id_selects_records_of_that_strategy(checked_client: Any, namespace: str) -> None:
    [mine] = create_records(checked_client, namespace, {"memoryStrategyId": "mine"})
    create_records(checked_client, namespace, {"memoryStrategyId": "other"}, {})
    assert list_ids(checked_client, namespace=namespace, memoryStrategyId="mine") == [mine]
    assert list_ids(checked_client, namespace=namespace, memoryStrategyId="none-such") == []


JUNE = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
MAY = datetime(2024, 5, 1, tzinfo=UTC)
JULY = datetime(2024, 7, 1, tzinfo=UTC)
# Records by name, each with a value of one type under the key "k".
METADATA = {
    "string": {"k": {"stringValue": "apple pie"}},
    "list": {"k": {"stringListValue": ["apple", "pear"]}},
    "number": {"k": {"numberValue": 5}},
    "date": {"k": {"dateTimeValue": JUNE}},
    "absent": {"other": {"stringValue": "apple pie"}},
}
STRING, LIST, NUMBER, DATE = "stringValue", "stringListValue", "numberValue", "dateTimeValue"
# (operator, filter value or None, records it selects)
FILTER_CASES: list[tuple[str, dict[str, Any] | None, set[str]]] = [
    ("EXISTS", None, {"string", "list", "number", "date"}),
    ("NOT_EXISTS", None, {"absent"}),
    ("EQUALS_TO", {STRING: "apple pie"}, {"string"}),
    ("EQUALS_TO", {STRING: "apple"}, set()),  # a list holding it is not equal to it
    ("EQUALS_TO", {LIST: ["apple", "pear"]}, {"list"}),
    ("EQUALS_TO", {LIST: ["pear", "apple"]}, set()),  # lists are equal in order
    ("EQUALS_TO", {NUMBER: 5.0}, {"number"}),
    ("EQUALS_TO", {DATE: JUNE}, {"date"}),
    ("CONTAINS", {STRING: "pie"}, {"string"}),  # a substring of a string
    ("CONTAINS", {STRING: "apple"}, {"string", "list"}),  # or an element of a list
    ("CONTAINS", {STRING: "pea"}, set()),  # an element, not a substring of one
    ("CONTAINS", {LIST: ["pear"]}, {"list"}),  # a subset of a list
    ("CONTAINS", {LIST: ["pear", "plum"]}, set()),
    ("BEFORE", {DATE: JULY}, {"date"}),
    ("BEFORE", {DATE: JUNE}, set()),
    ("AFTER", {DATE: MAY}, {"date"}),
    ("AFTER", {DATE: JUNE}, set()),
    ("GREATER_THAN", {NUMBER: 4.5}, {"number"}),
    ("GREATER_THAN", {NUMBER: 5}, set()),
    ("GREATER_THAN", {DATE: MAY}, {"date"}),
    ("GREATER_THAN_OR_EQUALS", {NUMBER: 5}, {"number"}),
    ("GREATER_THAN_OR_EQUALS", {DATE: JULY}, set()),
    ("LESS_THAN", {NUMBER: 5}, set()),
    ("LESS_THAN", {NUMBER: 6}, {"number"}),
    ("LESS_THAN_OR_EQUALS", {NUMBER: 5}, {"number"}),
    ("LESS_THAN_OR_EQUALS", {DATE: JUNE}, {"date"}),
]


@pytest.fixture(scope="module")
def metadata_namespace(client: Any) -> tuple[str, dict[str, str]]:
    """One namespace holding a record per entry of METADATA: (namespace, {record id: name})."""
    namespace = "tests/metadata-filters"
    ids = create_records(client, namespace, *({"metadata": metadata} for metadata in METADATA.values()))
    return namespace, dict(zip(ids, METADATA, strict=True))


def metadata_filter(operator: str, value: dict[str, Any] | None, key: str = "k") -> dict[str, Any]:
    expression: dict[str, Any] = {"left": {"metadataKey": key}, "operator": operator}
    if value is not None:
        expression["right"] = {"metadataValue": value}
    return expression


def test_every_operator_of_the_model_is_covered() -> None:
    operators = MODEL.shape_for("MemoryRecordOperatorType").enum
    assert {case[0] for case in FILTER_CASES} == set(operators)


@pytest.mark.parametrize(("operator", "value", "selected"), FILTER_CASES)
def test_metadata_filter(
    checked_client: Any,
    metadata_namespace: tuple[str, dict[str, str]],
    operator: str,
    value: dict[str, Any] | None,
    selected: set[str],
) -> None:
    namespace, names = metadata_namespace
    found = list_ids(checked_client, namespace=namespace, metadataFilters=[metadata_filter(operator, value)])
    assert {names[record_id] for record_id in found} == selected


def test_metadata_filters_all_apply(
    checked_client: Any, metadata_namespace: tuple[str, dict[str, str]]
) -> None:
    namespace, names = metadata_namespace
    both = [metadata_filter("CONTAINS", {STRING: "apple"}), metadata_filter("CONTAINS", {STRING: "pie"})]
    assert [
        names[record_id] for record_id in list_ids(checked_client, namespace=namespace, metadataFilters=both)
    ] == ["string"]


@pytest.mark.parametrize(
    ("expression", "field"),
    [
        (metadata_filter("CONTAINS", {NUMBER: 1}), "metadataFilters.1.member.right.metadataValue"),
        (metadata_filter("BEFORE", {STRING: "x"}), "metadataFilters.1.member.right.metadataValue"),
        (metadata_filter("GREATER_THAN", {LIST: ["x"]}), "metadataFilters.1.member.right.metadataValue"),
        (metadata_filter("EXISTS", {STRING: "x"}), "metadataFilters.1.member.right"),
        (metadata_filter("EQUALS_TO", None), "metadataFilters.1.member.right"),
        (metadata_filter("LIKE", {STRING: "x"}), "metadataFilters.1.member.operator"),
        (metadata_filter("EXISTS", None, key=""), "metadataFilters.1.member.left.metadataKey"),
        ({"left": {}, "operator": "EXISTS"}, "metadataFilters.1.member.left"),
    ],
)
def test_a_filter_that_cannot_apply_is_a_validation_error(
    raw_client: Any, namespace: str, expression: dict[str, Any], field: str
) -> None:
    with pytest.raises(ClientError) as raised:
        raw_client.list_memory_records(
            memoryId=DEFAULT_MEMORY_ID, namespace=namespace, metadataFilters=[expression]
        )
    assert validation_fields(raised) == [field]


def test_at_most_five_metadata_filters(raw_client: Any, namespace: str) -> None:
    with pytest.raises(ClientError) as raised:
        raw_client.list_memory_records(
            memoryId=DEFAULT_MEMORY_ID,
            namespace=namespace,
            metadataFilters=[metadata_filter("EXISTS", None)] * 6,
        )
    assert validation_fields(raised) == ["metadataFilters"]


def test_deleted_records_leave_the_list(checked_client: Any, namespace: str) -> None:
    deleted, kept, batch_deleted = create_texts(checked_client, namespace, "a", "b", "c")
    checked_client.delete_memory_record(
        memoryId=DEFAULT_MEMORY_ID, memoryRecordId=deleted, namespace=namespace
    )
    checked_client.batch_delete_memory_records(
        memoryId=DEFAULT_MEMORY_ID, records=[{"memoryRecordId": batch_deleted, "namespace": namespace}]
    )
    assert list_ids(checked_client, namespace=namespace) == [kept]
