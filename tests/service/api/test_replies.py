"""replies.py: AWS's replies checked against the model's output shapes, each misfit named by its model path
and never by its value, and botocore's parser wrapped so that any reply it cannot read is malformed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.api import operations, replies, translate
from tests.helpers import RECORD_ID

SECRET = "MY SECRET DIARY"  # record text: never in an error message
MODEL = operations.service_model()


def output_shape(operation: operations.Operation[Any, Any]) -> Any:
    return MODEL.operation_model(operation.aws_operation).output_shape


def record(**changes: Any) -> dict[str, Any]:
    """A record as GetMemoryRecord returns it; a change to None leaves the member out."""
    fields = {
        "memoryRecordId": RECORD_ID,
        "content": {"text": SECRET},
        "memoryStrategyId": "strategy-1",
        "namespaces": ["users/alice"],
        "createdAt": 1_732_560_000,
        **changes,
    }
    return {name: value for name, value in fields.items() if value is not None}


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def problem_with(operation: operations.Operation[Any, Any], reply: Any) -> str:
    """The message of the MalformedReplyError check_reply raises for `reply` (JSON) to `operation`."""
    with pytest.raises(translate.MalformedReplyError) as raised:
        replies.check_reply(output_shape(operation).name, reply if isinstance(reply, bytes) else body(reply))
    message = str(raised.value)
    assert SECRET not in message
    return message


def result(**changes: Any) -> dict[str, Any]:
    return {"memoryRecordId": RECORD_ID, "status": "SUCCEEDED", **changes}


# --- replies that fit -------------------------------------------------------------------------------


def test_a_reply_that_fits_the_model_passes() -> None:
    shape = output_shape(operations.GET).name
    assert replies.check_reply(shape, body({"memoryRecord": record()})) is None


def test_a_reply_with_every_optional_member_passes() -> None:
    full = record(
        timestamp=1.5,
        expiresAt=1_800_000_000,
        metadata={
            "topic": {"stringValue": "tea"},
            "tags": {"stringListValue": ["a", "b"]},
            "weight": {"numberValue": 0.5},
            "at": {"dateTimeValue": 1_700_000_000},
        },
    )
    assert replies.check_reply(output_shape(operations.GET).name, body({"memoryRecord": full})) is None


def test_members_the_model_does_not_list_are_left_alone() -> None:
    reply = {"memoryRecord": record(addedByAwsLater={"any": [1, 2]}), "alsoNew": "x"}
    assert replies.check_reply(output_shape(operations.GET).name, body(reply)) is None


def test_a_record_without_a_strategy_is_readable_though_the_model_requires_one() -> None:
    get = {"memoryRecord": record(memoryStrategyId=None)}
    assert replies.check_reply(output_shape(operations.GET).name, body(get)) is None
    page = {"memoryRecordSummaries": [record(memoryStrategyId=None)]}
    assert replies.check_reply(output_shape(operations.LIST).name, body(page)) is None


def test_a_null_member_is_an_absent_one() -> None:
    reply = {"memoryRecord": {**record(), "timestamp": None, "metadata": None}}
    assert replies.check_reply(output_shape(operations.GET).name, body(reply)) is None


def test_a_double_may_be_written_as_nan_or_infinity() -> None:
    for value in ("NaN", "Infinity", "-Infinity", 3, 0.25):
        page = {"memoryRecordSummaries": [record(score=value)]}
        assert replies.check_reply(output_shape(operations.RETRIEVE).name, body(page)) is None


def test_an_empty_batch_reply_with_both_lists_passes() -> None:
    reply = {"successfulRecords": [], "failedRecords": []}
    assert replies.check_reply(output_shape(operations.BATCH_DELETE).name, body(reply)) is None


def test_a_shape_outside_the_operation_table_is_left_to_botocore() -> None:
    assert replies.check_reply("SomeOtherOutput", b"not even json") is None


def test_every_operation_of_the_table_has_its_reply_checked() -> None:
    checks = replies.compile_replies(MODEL)
    assert {shape: operation for shape, (operation, _) in checks.items()} == {
        output_shape(operation).name: operation.aws_operation for operation in operations.OPERATIONS
    }


# --- replies that do not fit: named by path, never by value ---------------------------------------


def test_a_member_of_the_wrong_type_is_named_by_its_model_path() -> None:
    message = problem_with(operations.GET, {"memoryRecord": record(content={"text": 42})})
    assert message == "GetMemoryRecord: memoryRecord.content.text must be a string"


def test_a_string_where_a_list_is_is_refused_not_split_into_letters() -> None:
    message = problem_with(operations.GET, {"memoryRecord": record(namespaces=SECRET)})
    assert message == "GetMemoryRecord: memoryRecord.namespaces must be a list"


def test_a_string_longer_than_the_model_allows_is_named_and_not_quoted() -> None:
    message = problem_with(operations.GET, {"memoryRecord": record(content={"text": SECRET * 2000})})
    assert message.startswith("GetMemoryRecord: memoryRecord.content.text must ")
    assert "16000" in message


def test_an_empty_string_below_the_model_minimum_is_refused() -> None:
    message = problem_with(operations.GET, {"memoryRecord": record(namespaces=[""])})
    assert message.startswith("GetMemoryRecord: memoryRecord.namespaces[0] must ")


def test_a_list_with_more_entries_than_the_model_allows_is_refused() -> None:
    message = problem_with(operations.GET, {"memoryRecord": record(namespaces=["a", "b"])})
    assert message.startswith("GetMemoryRecord: memoryRecord.namespaces must ")
    assert "entries" in message


def test_an_unknown_enum_value_is_refused_with_the_values_the_model_allows() -> None:
    reply = {"successfulRecords": [result(), result(status="MAYBE")], "failedRecords": []}
    message = problem_with(operations.BATCH_UPDATE, reply)
    assert message == "BatchUpdateMemoryRecords: successfulRecords[1].status must be one of FAILED, SUCCEEDED"
    assert "MAYBE" not in message


def test_a_missing_required_member_is_named() -> None:
    message = problem_with(operations.GET, {"memoryRecord": record(memoryRecordId=None)})
    assert message == "GetMemoryRecord: memoryRecord.memoryRecordId is required"


def test_a_missing_top_level_list_is_named() -> None:
    message = problem_with(operations.BATCH_CREATE, {"successfulRecords": []})
    assert message == "BatchCreateMemoryRecords: failedRecords is required"


@pytest.mark.parametrize("empty", [b"", b"  \n"], ids=["empty", "whitespace"])
def test_an_empty_body_is_a_reply_without_its_required_members(empty: bytes) -> None:
    assert problem_with(operations.GET, empty) == "GetMemoryRecord: memoryRecord is required"


def test_a_body_that_is_not_an_object_is_named_as_the_body() -> None:
    assert problem_with(operations.DELETE, [RECORD_ID]) == "DeleteMemoryRecord: the body must be an object"


@pytest.mark.parametrize("raw", [b'{"memoryRecord": {"memoryRecordId": "\xff\xfe"}}', b"{not json"])
def test_a_body_that_is_not_utf8_json_is_malformed(raw: bytes) -> None:
    assert problem_with(operations.GET, raw) == "GetMemoryRecord: the body is not UTF-8 JSON"


def test_a_boolean_is_not_an_integer() -> None:
    reply = {"successfulRecords": [], "failedRecords": [result(status="FAILED", errorCode=True)]}
    message = problem_with(operations.BATCH_DELETE, reply)
    assert message == "BatchDeleteMemoryRecords: failedRecords[0].errorCode must be an integer"


def test_a_fractional_error_code_is_not_an_integer() -> None:
    reply = {"successfulRecords": [], "failedRecords": [result(status="FAILED", errorCode=1.5)]}
    assert problem_with(operations.BATCH_DELETE, reply).endswith(
        "failedRecords[0].errorCode must be an integer"
    )


def test_a_number_written_as_a_string_is_not_a_number() -> None:
    page = {"memoryRecordSummaries": [record(score="0.5")]}
    message = problem_with(operations.RETRIEVE, page)
    assert message == "RetrieveMemoryRecords: memoryRecordSummaries[0].score must be a number"


@pytest.mark.parametrize("created_at", ["2024-11-25T00:00:00Z", 1e12, -1e12, True])
def test_a_timestamp_that_is_not_seconds_within_years_1_to_9999_is_refused(created_at: Any) -> None:
    message = problem_with(operations.GET, {"memoryRecord": record(createdAt=created_at)})
    assert message.startswith("GetMemoryRecord: memoryRecord.createdAt must be a timestamp")


def test_a_timestamp_within_the_last_second_of_year_9999_is_accepted() -> None:
    last = 253_402_300_799.5
    reply = body({"memoryRecord": record(createdAt=last)})
    assert replies.check_reply(output_shape(operations.GET).name, reply) is None


def test_a_metadata_key_too_long_is_named_as_a_key_never_by_its_text() -> None:
    key = "k" * 129
    message = problem_with(operations.GET, {"memoryRecord": record(metadata={key: {"stringValue": "v"}})})
    assert message.startswith("GetMemoryRecord: memoryRecord.metadata (a key) must ")
    assert key not in message


def test_a_metadata_value_that_does_not_fit_is_named_without_its_key() -> None:
    metadata = {SECRET: {"stringListValue": "not a list"}}
    message = problem_with(operations.GET, {"memoryRecord": record(metadata=metadata)})
    assert message == "GetMemoryRecord: memoryRecord.metadata[<key>].stringListValue must be a list"


def test_a_summary_deep_in_a_page_is_named_by_its_index() -> None:
    page = {"memoryRecordSummaries": [record(), record(), record(content=[SECRET])], "nextToken": "t"}
    message = problem_with(operations.LIST, page)
    assert message == "ListMemoryRecords: memoryRecordSummaries[2].content must be an object"


def test_the_first_misfit_is_the_one_named() -> None:
    reply = {"memoryRecord": record(memoryRecordId=5, namespaces="x")}
    assert (
        problem_with(operations.GET, reply) == "GetMemoryRecord: memoryRecord.memoryRecordId must be a string"
    )


# --- the parser botocore is given --------------------------------------------------------------------


def parse(
    status: int, raw: bytes, operation: operations.Operation[Any, Any] = operations.GET, **headers: str
) -> Any:
    parser = replies.CheckedParserFactory().create_parser("rest-json")
    response = {"status_code": status, "headers": {k.lower(): v for k, v in headers.items()}, "body": raw}
    return parser.parse(response, output_shape(operation))


def test_the_parser_reads_a_reply_that_fits_as_botocore_does() -> None:
    parsed = parse(200, body({"memoryRecord": record()}))
    assert parsed["memoryRecord"]["content"]["text"] == SECRET
    assert parsed["memoryRecord"]["createdAt"].year == 2024


def test_the_parser_refuses_a_reply_that_does_not_fit_before_botocore_reads_it() -> None:
    with pytest.raises(translate.MalformedReplyError, match=r"memoryRecord\.namespaces must be a list$"):
        parse(200, body({"memoryRecord": record(namespaces="abc")}))


def test_the_parser_leaves_an_error_reply_to_botocore() -> None:
    raw = body({"message": "no such record"})
    parsed = parse(404, raw, **{"x-amzn-ErrorType": "ResourceNotFoundException"})
    assert parsed["Error"]["Code"] == "ResourceNotFoundException"
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_an_error_reply_botocore_cannot_read_is_malformed_without_quoting_it() -> None:
    raw = b'{"message": "\xff\xfe ' + SECRET.encode() + b'"}'
    with pytest.raises(translate.MalformedReplyError) as raised:
        parse(500, raw, **{"x-amzn-ErrorType": "ServiceException"})
    message = str(raised.value)
    assert message == "GetMemoryRecord: botocore could not parse an HTTP 500 reply (UnicodeDecodeError)"
    assert SECRET not in message


def test_a_parser_without_an_output_shape_is_botocore_alone() -> None:
    parser = replies.CheckedParserFactory().create_parser("rest-json")
    parsed = parser.parse({"status_code": 200, "headers": {}, "body": b"{}"}, None)
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_the_factory_and_its_parsers_keep_botocores_other_attributes() -> None:
    factory = replies.CheckedParserFactory()
    factory.set_parser_defaults(timestamp_parser=lambda value: ("parsed", value))
    parsed = factory.create_parser("rest-json").parse(
        {"status_code": 200, "headers": {}, "body": body({"memoryRecord": record()})},
        output_shape(operations.GET),
    )
    assert parsed["memoryRecord"]["createdAt"] == ("parsed", 1_732_560_000)
    assert factory.create_parser("rest-json").DEFAULT_ENCODING == "utf-8"
