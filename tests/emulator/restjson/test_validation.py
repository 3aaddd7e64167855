"""Model-driven input validation: each constraint kind, paths in fieldList, and no echoed values."""

from __future__ import annotations

import http.client
import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import DEFAULT_MEMORY_ID, Emulator
from tests.emulator.helpers import BATCH_CREATE_PATH
from tests.helpers import TIMESTAMP

SECRET = "Secret-Diary-Entry-42"
RECORD_ID = "mem-" + "a" * 36


def record(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "requestIdentifier": "req-1",
        "namespaces": ["users/alice"],
        "content": {"text": "some text"},
        "timestamp": TIMESTAMP,
    }
    value.update(overrides)
    return {key: item for key, item in value.items() if item is not None}


def rejected(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call()
    error: dict[str, Any] = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "ValidationException"
    assert error["reason"] == "FieldValidationFailed"
    return error


def violations(error: dict[str, Any]) -> list[tuple[str, str]]:
    return [(entry["name"], entry["message"]) for entry in error["fieldList"]]


def create_rejected(raw_client: Any, records: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    return rejected(
        lambda: raw_client.batch_create_memory_records(memoryId=DEFAULT_MEMORY_ID, records=records, **kwargs)
    )


def test_missing_required_members(raw_client: Any) -> None:
    error = create_rejected(raw_client, [record(content=None, timestamp=None)])
    assert violations(error) == [
        ("records.1.member.content", "Member must not be null"),
        ("records.1.member.timestamp", "Member must not be null"),
    ]
    assert error["message"].startswith(
        "2 validation errors detected: Value null at 'records.1.member.content' failed to satisfy "
        "constraint: Member must not be null; Value null at 'records.1.member.timestamp'"
    )


def test_missing_records_list(raw_client: Any) -> None:
    error = rejected(lambda: raw_client.batch_update_memory_records(memoryId=DEFAULT_MEMORY_ID))
    assert violations(error) == [("records", "Member must not be null")]


def test_minimum_length_of_a_uri_member(raw_client: Any) -> None:
    error = rejected(lambda: raw_client.get_memory_record(memoryId=DEFAULT_MEMORY_ID, memoryRecordId="mem-1"))
    assert violations(error) == [("memoryRecordId", "Member must have length greater than or equal to 40")]


def test_maximum_length_of_record_text_without_echoing_it(raw_client: Any) -> None:
    text = SECRET + "x" * (16001 - len(SECRET))
    error = create_rejected(raw_client, [record(), record(requestIdentifier="req-2", content={"text": text})])
    assert violations(error) == [
        ("records.2.member.content.text", "Member must have length less than or equal to 16000")
    ]
    assert SECRET not in json.dumps(error, default=str)


def test_records_list_is_limited_to_100(raw_client: Any) -> None:
    many = [record(requestIdentifier=f"req-{index}") for index in range(101)]
    error = create_rejected(raw_client, many)
    assert violations(error) == [("records", "Member must have length less than or equal to 100")]

    accepted = raw_client.batch_create_memory_records(memoryId=DEFAULT_MEMORY_ID, records=many[:100])
    assert len(accepted["successfulRecords"]) == 100


def test_patterns_must_match_the_whole_value(raw_client: Any) -> None:
    # Each value starts with a matching prefix, so only full-match semantics reject them.
    error = create_rejected(
        raw_client,
        [record(requestIdentifier="req 1", namespaces=["users/alice!"], memoryStrategyId="strategy#1")],
    )
    assert violations(error) == [
        (
            "records.1.member.requestIdentifier",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+",
        ),
        (
            "records.1.member.namespaces.1.member",
            "Member must satisfy regular expression pattern: "
            "[a-zA-Z0-9/*][a-zA-Z0-9-_/*]*(?::[a-zA-Z0-9-_/*]+)*[a-zA-Z0-9-_/*]*",
        ),
        (
            "records.1.member.memoryStrategyId",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9][a-zA-Z0-9-_]*",
        ),
    ]


def test_pattern_of_a_uri_member(raw_client: Any) -> None:
    error = rejected(
        lambda: raw_client.get_memory_record(memoryId=DEFAULT_MEMORY_ID, memoryRecordId="x" + RECORD_ID)
    )
    assert [name for name, _ in violations(error)] == ["memoryRecordId"]
    error = rejected(
        lambda: raw_client.get_memory_record(memoryId="not a memory id!", memoryRecordId=RECORD_ID)
    )
    assert [name for name, _ in violations(error)] == ["memoryId"]


def test_query_members_are_validated(raw_client: Any) -> None:
    error = rejected(
        lambda: raw_client.get_memory_record(
            memoryId=DEFAULT_MEMORY_ID, memoryRecordId=RECORD_ID, namespace=""
        )
    )
    assert [name for name, _ in violations(error)] == ["namespace", "namespace"]
    assert violations(error)[0] == ("namespace", "Member must have length greater than or equal to 1")


def test_delete_operations_are_validated(raw_client: Any) -> None:
    error = rejected(
        lambda: raw_client.delete_memory_record(memoryId=DEFAULT_MEMORY_ID, memoryRecordId="mem-1")
    )
    assert violations(error) == [("memoryRecordId", "Member must have length greater than or equal to 40")]
    error = rejected(
        lambda: raw_client.batch_delete_memory_records(
            memoryId=DEFAULT_MEMORY_ID,
            records=[{"memoryRecordId": RECORD_ID}] * 100 + [{"memoryRecordId": RECORD_ID, "namespace": "!"}],
        )
    )
    assert [name for name, _ in violations(error)] == ["records", "records.101.member.namespace"]


def test_enum(raw_client: Any) -> None:
    error = rejected(
        lambda: raw_client.batch_update_memory_records(
            memoryId=DEFAULT_MEMORY_ID,
            records=[{"memoryRecordId": RECORD_ID, "timestamp": TIMESTAMP}],
            recordExpirySpecification={"action": "KEEP"},
        )
    )
    assert violations(error) == [
        ("recordExpirySpecification.action", "Member must satisfy enum value set: [REMOVE]")
    ]


def test_union_with_two_members(raw_client: Any) -> None:
    error = create_rejected(
        raw_client, [record(metadata={"topic": {"stringValue": "tea", "numberValue": 1.0}})]
    )
    assert violations(error) == [
        (
            "records.1.member.metadata.topic",
            "Member must have exactly one of [stringValue, stringListValue, numberValue, dateTimeValue] set",
        )
    ]


def test_union_with_no_member(raw_client: Any) -> None:
    error = create_rejected(raw_client, [record(content={})])
    assert violations(error) == [("records.1.member.content", "Member must have exactly one of [text] set")]


def test_numeric_minimum(raw_client: Any) -> None:
    error = create_rejected(
        raw_client, [record()], recordExpirySpecification={"recordExpiryDurationDays": 30}
    )
    assert violations(error) == [
        (
            "recordExpirySpecification.recordExpiryDurationDays",
            "Member must have value greater than or equal to 31",
        )
    ]


def test_map_size_and_nested_map_values(raw_client: Any) -> None:
    error = create_rejected(raw_client, [record(metadata={})])
    assert violations(error) == [
        ("records.1.member.metadata", "Member must have length greater than or equal to 1")
    ]

    too_many = {f"key{index}": {"stringValue": "v"} for index in range(21)}
    error = create_rejected(raw_client, [record(metadata=too_many)])
    assert violations(error) == [
        ("records.1.member.metadata", "Member must have length less than or equal to 20")
    ]

    error = create_rejected(raw_client, [record(metadata={"tags": {"stringListValue": ["ok", "not ok!"]}})])
    assert [name for name, _ in violations(error)] == [
        "records.1.member.metadata.tags.stringListValue.2.member"
    ]


def test_invalid_map_key_is_reported_on_the_map_without_echoing_it(raw_client: Any) -> None:
    error = create_rejected(raw_client, [record(metadata={SECRET + "!": {"stringValue": "v"}})])
    assert violations(error) == [
        (
            "records.1.member.metadata",
            "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: "
            "[a-zA-Z0-9\\s._:/=+@-]*]",
        )
    ]
    assert SECRET not in json.dumps(error, default=str)


def test_all_violations_are_reported_at_once(raw_client: Any) -> None:
    error = create_rejected(
        raw_client,
        [record(), record(requestIdentifier="", namespaces=["a", "b"], content={"text": ""})],
        recordExpirySpecification={"recordExpiryDurationDays": 1},
    )
    assert violations(error) == [
        ("records.2.member.requestIdentifier", "Member must have length greater than or equal to 1"),
        (
            "records.2.member.requestIdentifier",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+",
        ),
        ("records.2.member.namespaces", "Member must have length less than or equal to 1"),
        ("records.2.member.content.text", "Member must have length greater than or equal to 1"),
        (
            "recordExpirySpecification.recordExpiryDurationDays",
            "Member must have value greater than or equal to 31",
        ),
    ]
    assert error["message"].startswith("5 validation errors detected: ")
    assert error["message"].count("failed to satisfy constraint") == 5


def test_unknown_members_and_nulls_are_ignored(emulator: Emulator) -> None:
    body = {
        "records": [
            {
                "requestIdentifier": "req-1",
                "namespaces": ["users/alice"],
                "content": {"text": "hi", "futureMember": 1},
                "timestamp": 1735787045,
                "memoryStrategyId": None,
                "somethingNew": {"nested": True},
            }
        ],
        "notInTheModel": "ignored",
    }
    status, _, payload = post(emulator, BATCH_CREATE_PATH, json.dumps(body).encode())
    assert status == 201
    assert payload["failedRecords"] == []


def post(emulator: Emulator, path: str, body: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
    try:
        connection.request(
            "POST", path, body=body, headers={"Authorization": "test", "Content-Type": "application/json"}
        )
        response = connection.getresponse()
        payload = json.loads(response.read())
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("member", "value", "expected"),
    [
        ("timestamp", "2025-01-02T03:04:05Z", "Member must be a timestamp in epoch seconds"),
        ("timestamp", True, "Member must be a timestamp in epoch seconds"),
        ("timestamp", 1e20, "Member must be a timestamp between years 1 and 9999"),
        ("namespaces", "users/alice", "Member must be of type list"),
        ("content", "text", "Member must be of type structure"),
        ("metadata", [], "Member must be of type map"),
        ("requestIdentifier", 7, "Member must be of type string"),
    ],
)
def test_wrong_json_types(emulator: Emulator, member: str, value: Any, expected: str) -> None:
    item = {"requestIdentifier": "req-1", "namespaces": ["n"], "content": {"text": "t"}, "timestamp": 1}
    item[member] = value
    status, headers, payload = post(emulator, BATCH_CREATE_PATH, json.dumps({"records": [item]}).encode())
    assert status == 400
    assert headers["x-amzn-errortype"] == "ValidationException"
    assert payload["reason"] == "FieldValidationFailed"
    assert payload["fieldList"] == [{"name": f"records.1.member.{member}", "message": expected}]


def test_integers_must_be_integral(emulator: Emulator) -> None:
    item = {"requestIdentifier": "r", "namespaces": ["n"], "content": {"text": "t"}, "timestamp": 1}
    body = {"records": [item], "recordExpirySpecification": {"recordExpiryDurationDays": 31.5}}
    status, _, payload = post(emulator, BATCH_CREATE_PATH, json.dumps(body).encode())
    assert status == 400
    assert payload["fieldList"] == [
        {
            "name": "recordExpirySpecification.recordExpiryDurationDays",
            "message": "Member must be of type integer",
        }
    ]


def test_numbers_must_be_finite(emulator: Emulator) -> None:
    metadata = b'{"k": {"numberValue": 1e999}}'
    body = (
        b'{"records": [{"requestIdentifier": "r", "namespaces": ["n"], "content": {"text": "t"}, '
        b'"timestamp": 1, "metadata": ' + metadata + b"}]}"
    )
    status, _, payload = post(emulator, BATCH_CREATE_PATH, body)
    assert status == 400
    assert payload["fieldList"] == [
        {"name": "records.1.member.metadata.k.numberValue", "message": "Member must be of type double"}
    ]


def test_no_error_message_contains_record_text(raw_client: Any) -> None:
    """Every kind of failure involving the secret text: none may echo it."""
    calls = [
        lambda: raw_client.batch_create_memory_records(
            memoryId=DEFAULT_MEMORY_ID,
            records=[record(requestIdentifier=SECRET + "!", content={"text": SECRET * 1000})],
        ),
        lambda: raw_client.batch_create_memory_records(
            memoryId=DEFAULT_MEMORY_ID,
            records=[record(namespaces=[SECRET + " x"], memoryStrategyId=SECRET + "?")],
        ),
        lambda: raw_client.batch_update_memory_records(
            memoryId=DEFAULT_MEMORY_ID,
            records=[
                {"memoryRecordId": "mem-" + SECRET, "timestamp": TIMESTAMP, "content": {"text": SECRET}}
            ],
        ),
        lambda: raw_client.batch_create_memory_records(
            memoryId=DEFAULT_MEMORY_ID, records=[record(metadata={"k": {"stringValue": SECRET + "{}"}})]
        ),
        lambda: raw_client.get_memory_record(
            memoryId=DEFAULT_MEMORY_ID, memoryRecordId=RECORD_ID, namespace=SECRET + " !"
        ),
    ]
    for call in calls:
        error = rejected(call)
        assert SECRET not in json.dumps(error, default=str)


def test_valid_input_passes(raw_client: Any) -> None:
    response = raw_client.batch_create_memory_records(
        memoryId=DEFAULT_MEMORY_ID,
        records=[
            record(
                requestIdentifier=f"req-{uuid.uuid4().hex}",
                namespaces=["users/alice:facts/*"],
                memoryStrategyId="strategy_1-a",
                metadata={
                    "key with spaces/and=+@-:._": {"stringValue": "value with spaces"},
                    "list": {"stringListValue": ["a", "b", "c", "d", "e"]},
                    "n": {"numberValue": -1},
                },
            )
        ],
        recordExpirySpecification={"recordExpiryDurationDays": 31},
    )
    assert response["failedRecords"] == []
