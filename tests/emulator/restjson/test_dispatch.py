"""The request pipeline: authentication, the before-operation hook, request ids."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import Emulator, ReceivedRequest, Response
from tests.emulator.helpers import BATCH_CREATE_PATH, VALID_BODY, assert_aws_headers, exchange
from tests.helpers import create_one, get_record


def test_before_operation_hook_can_answer_instead_of_the_operation(emulator: Emulator, client: Any) -> None:
    seen: list[tuple[str, str]] = []
    throttled = Response(status=429, body=b'{"message":"Rate exceeded"}')
    throttled.headers["x-amzn-ErrorType"] = "ThrottledException"

    def throttle_gets(operation: str, request: ReceivedRequest) -> Response | None:
        seen.append((operation, request.method))
        return throttled if operation == "GetMemoryRecord" else None

    emulator.set_before_operation_hook(throttle_gets)
    try:
        record_id = create_one(client)
        errors = []
        for _ in range(2):
            with pytest.raises(ClientError) as raised:
                get_record(client, record_id)
            errors.append(raised.value.response)
    finally:
        emulator.set_before_operation_hook(None)
    assert [error["Error"]["Code"] for error in errors] == ["ThrottledException"] * 2
    assert [error["ResponseMetadata"]["HTTPStatusCode"] for error in errors] == [429] * 2
    # Each answer gets its own request id even though the hook returned one shared object.
    assert errors[0]["ResponseMetadata"]["RequestId"] != errors[1]["ResponseMetadata"]["RequestId"]
    assert seen == [
        ("BatchCreateMemoryRecords", "POST"),
        ("GetMemoryRecord", "GET"),
        ("GetMemoryRecord", "GET"),
    ]
    assert get_record(client, record_id)["memoryRecordId"] == record_id


def test_request_ids_are_unique(connection: http.client.HTTPConnection) -> None:
    ids = {exchange(connection, "GET", "/nowhere")[1]["x-amzn-requestid"] for _ in range(3)}
    assert len(ids) == 3


def test_missing_authorization_is_rejected_and_journaled(
    emulator: Emulator, connection: http.client.HTTPConnection
) -> None:
    emulator.clear_received()
    status, headers, payload = exchange(
        connection, "POST", BATCH_CREATE_PATH, VALID_BODY, headers={"Content-Type": "application/json"}
    )
    assert status == 403
    assert_aws_headers(headers, payload)
    assert headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert json.loads(payload) == {"message": "Missing Authentication Token"}
    [request] = emulator.received()
    assert request.operation == "BatchCreateMemoryRecords"
    assert request.body == VALID_BODY
