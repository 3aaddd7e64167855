"""Error rendering: every member of a modelled error reaches boto3."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import DEFAULT_MEMORY_ID


def test_error_members_parse_through_boto3(raw_client: Any) -> None:
    with pytest.raises(ClientError) as raised:
        raw_client.get_memory_record(memoryId=DEFAULT_MEMORY_ID, memoryRecordId="mem-short")
    error = raised.value.response
    assert error["Error"]["Code"] == "ValidationException"
    expected = (
        "1 validation error detected: Value at 'memoryRecordId' failed to satisfy constraint: "
        "Member must have length greater than or equal to 40"
    )
    assert error["Error"]["Message"] == expected
    assert error["message"] == expected
    assert error["reason"] == "FieldValidationFailed"
    assert error["fieldList"] == [
        {"name": "memoryRecordId", "message": "Member must have length greater than or equal to 40"}
    ]
    assert error["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ValidationException"
    uuid.UUID(error["ResponseMetadata"]["RequestId"])
