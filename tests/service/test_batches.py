"""batches.py: the limits a batch lives by (record bytes, receive limit, the largest page), chunk client
tokens, repeated ids, and what a record of a chunk that failed as a whole says."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb

from service import batches, settings
from service.api import operations, translate, validate
from service.api.request_errors import InvalidRequestError
from service.settings import Settings
from tests.helpers import MEMORY_ID, RECORD_ID, record_create, timestamp

LATEST = timestamp(253_402_300_799, 999_999_999)
WORST_TEXT = "\U0001f600" * 16_000  # 16,000 characters of 4 bytes in UTF-8
WORST_METADATA = {
    f"k{i:02}" + "x" * 125: pb.MetadataValue(string_list_value=pb.StringList(values=["v" * 64] * 5))
    for i in range(20)
}


def worst_update() -> pb.MemoryRecordUpdate:
    return pb.MemoryRecordUpdate(
        memory_record_id="m" * 50,
        timestamp=LATEST,
        content=pb.MemoryContent(text=WORST_TEXT),
        namespaces=pb.NamespaceList(values=["n" * 1024]),
        source_namespaces=pb.NamespaceList(values=["n" * 1024]),
        memory_strategy_id="s" * 100,
        metadata=WORST_METADATA,
    )


def test_a_record_at_aws_limits_fits_max_record_bytes() -> None:
    create = record_create(
        WORST_TEXT,
        request_identifier="r" * 80,
        namespaces=["n" * 1024],
        timestamp=LATEST,
        memory_strategy_id="s" * 100,
        metadata=WORST_METADATA,
    )
    for record in (create, worst_update()):
        # As a member of `records`: its tag and length prefix included.
        in_batch = (
            pb.BatchUpdateRequest(records=[record]) if isinstance(record, pb.MemoryRecordUpdate) else None
        )
        size = in_batch.ByteSize() if in_batch else pb.BatchCreateRequest(records=[record]).ByteSize()
        assert size <= settings.MAX_RECORD_BYTES
        assert size > settings.MAX_RECORD_BYTES * 0.9  # the constant is tight, not a guess


def test_the_receive_limit_fits_max_batch_records_within_the_admission_budget() -> None:
    default = Settings()
    assert default.max_request_bytes == 1000 * settings.MAX_RECORD_BYTES + settings.ENVELOPE_BYTES
    assert default.inflight_bytes == 2 * default.max_request_bytes
    hundred = pb.BatchUpdateRequest(memory_id="m" * 2048, records=[worst_update()] * 100)
    assert hundred.ByteSize() <= Settings(max_batch_records=100).max_request_bytes
    assert Settings(max_inflight_bytes=4 * 1024 * 1024).max_request_bytes == 4 * 1024 * 1024
    assert Settings(max_batch_records=settings.MAX_BATCH_RECORDS_LIMIT).max_request_bytes < 2**31 - 1


def test_the_largest_list_page_is_what_the_readme_says() -> None:
    summary = pb.MemoryRecordSummary(
        memory_record_id="m" * 50,
        content=pb.MemoryContent(text=WORST_TEXT),
        memory_strategy_id="s" * 100,
        namespaces=["n" * 1024],
        created_at=LATEST,
        score=1.0,
        timestamp=LATEST,
        metadata=WORST_METADATA,
    )
    page = pb.ListResponse(memory_record_summaries=[summary] * 100)
    assert page.ByteSize() == 7_463_200  # docs/field-mapping.md: the largest page
    assert page.ByteSize() < 8 * 1024 * 1024 - 512 * 1024  # room for a page token under 8 MiB


def test_chunk_tokens_follow_token_and_content() -> None:
    records = [record_create(request_identifier=f"r{i}") for i in range(3)]
    params = validate.validated_params(
        operations.BATCH_CREATE, pb.BatchCreateRequest(memory_id=MEMORY_ID, records=records)
    )
    token = batches.chunk_client_token("t", params, records)
    assert token == batches.chunk_client_token("t", params, list(records))
    assert token != batches.chunk_client_token("u", params, records)
    assert token != batches.chunk_client_token("t", params, records[:2])
    assert token != batches.chunk_client_token("t", {**params, "memoryId": "other-0123456789"}, records)
    assert len(token) == 64


def test_repeated_ids_are_named_by_path_without_the_id() -> None:
    checker = batches.AwsCalls(None, None, max_records=1000, concurrency=1, executor=None)  # type: ignore[arg-type]
    update = pb.MemoryRecordUpdate(memory_record_id=RECORD_ID, timestamp=timestamp(1))
    request = pb.BatchUpdateRequest(memory_id=MEMORY_ID, records=[update] * 3)
    with pytest.raises(InvalidRequestError) as caught:
        checker.validated_params(operations.BATCH_UPDATE, request)
    assert [(v.field, v.description) for v in caught.value.violations] == [
        ("records[1].memory_record_id", "repeats records[0].memory_record_id"),
        ("records[2].memory_record_id", "repeats records[0].memory_record_id"),
    ]
    assert all(RECORD_ID not in v.description for v in caught.value.violations)


def test_beyond_100_only_the_per_call_limit_is_lifted() -> None:
    checker = batches.AwsCalls(None, None, max_records=150, concurrency=1, executor=None)  # type: ignore[arg-type]
    records = [pb.MemoryRecordDelete(memory_record_id=RECORD_ID[:-3] + f"{i:03}") for i in range(150)]
    params = checker.validated_params(
        operations.BATCH_DELETE, pb.BatchDeleteRequest(memory_id=MEMORY_ID, records=records)
    )
    assert len(params["records"]) == 150
    with pytest.raises(InvalidRequestError) as caught:
        checker.validated_params(
            operations.BATCH_DELETE,
            pb.BatchDeleteRequest(memory_id=MEMORY_ID, records=[*records, records[0]]),
        )
    assert [(v.field, v.description) for v in caught.value.violations] == [
        ("records[150].memory_record_id", "repeats records[0].memory_record_id"),
        ("records", "must have at most 150 entries"),
    ]
    # Nothing else is lifted: a record id the model refuses is named at any index.
    records[120] = pb.MemoryRecordDelete(memory_record_id="mem-1")
    with pytest.raises(InvalidRequestError) as caught:
        checker.validated_params(
            operations.BATCH_DELETE, pb.BatchDeleteRequest(memory_id=MEMORY_ID, records=records)
        )
    assert [v.field for v in caught.value.violations] == ["records[120].memory_record_id"]
    # The per-call converters keep the model's 100.
    with pytest.raises(InvalidRequestError) as caught:
        validate.validated_params(
            operations.BATCH_DELETE, pb.BatchDeleteRequest(memory_id=MEMORY_ID, records=records[:101])
        )
    assert [(v.field, v.description) for v in caught.value.violations] == [
        ("records", "must have at most 100 entries")
    ]


def test_only_a_list_member_takes_a_maximum_of_entries() -> None:
    shape = operations.service_model().operation_model("BatchDeleteMemoryRecords").input_shape
    with pytest.raises(validate.ModelMismatchError, match="no entries"):
        validate.compile_request(shape, pb.BatchDeleteRequest.DESCRIPTOR, max_entries={"memoryId": 3})
    with pytest.raises(validate.ModelMismatchError, match="no members recordz"):
        validate.compile_request(shape, pb.BatchDeleteRequest.DESCRIPTOR, max_entries={"recordz": 3})


def client_error(status: int, code: str) -> botocore.exceptions.ClientError:
    response: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return botocore.exceptions.ClientError(response, "BatchCreateMemoryRecords")


@pytest.mark.parametrize(
    ("failure", "error_code", "named"),
    [
        (client_error(429, "ThrottledException"), 429, "ThrottledException"),
        (client_error(503, "ServiceUnavailable"), 503, "ServiceUnavailable"),
        (botocore.exceptions.ReadTimeoutError(endpoint_url="http://x"), 504, "AWS_TIMEOUT"),
        (translate.MalformedReplyError("the AWS reply lacks failedRecords"), 502, "AWS_MALFORMED_RESPONSE"),
    ],
)
def test_a_record_of_a_failed_chunk_says_what_aws_answered(
    failure: BaseException, error_code: int, named: str
) -> None:
    boto_records = [{"requestIdentifier": "r1"}, {"requestIdentifier": "r2"}]
    outcome = pb.RECORD_OUTCOME_UNKNOWN
    results = batches._failed_as_a_whole(operations.BATCH_CREATE, boto_records, failure, outcome)
    assert [r.request_identifier for r in results] == ["r1", "r2"]
    for result in results:
        assert result.status == pb.MEMORY_RECORD_STATUS_FAILED
        assert result.outcome == outcome
        assert result.error_code == error_code
        assert result.error_message.startswith(named)


def test_every_operation_is_checked_by_the_one_set_compiled_at_start() -> None:
    aws_calls = batches.AwsCalls(None, None, max_records=150, concurrency=1, executor=None)  # type: ignore[arg-type]
    before = validate.model_converters.cache_info()
    params = aws_calls.validated_params(
        operations.GET, pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID)
    )
    assert params == {"memoryId": MEMORY_ID, "memoryRecordId": RECORD_ID}
    with pytest.raises(InvalidRequestError):
        aws_calls.validated_params(operations.GET, pb.GetRequest(memory_id=MEMORY_ID))
    after = validate.model_converters.cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)  # the model's own set: not used
