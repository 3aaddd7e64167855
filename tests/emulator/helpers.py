"""Builders shared by the emulator's tests: record inputs, boto3 calls and raw HTTP exchanges."""

from __future__ import annotations

import http.client
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from emulator import DEFAULT_MEMORY_ID

OTHER_MEMORY_ID = "other_memory-ABCDEFGHIJ"
TIMESTAMP = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
LATER = datetime(2025, 6, 7, 8, 9, 10, 654321, tzinfo=UTC)
UNKNOWN_RECORD_ID = "mem-aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"
BATCH_CREATE_PATH = f"/memories/{DEFAULT_MEMORY_ID}/memoryRecords/batchCreate"
AUTH = {"Authorization": "AWS4-HMAC-SHA256 Credential=x/20250101/us-east-1/bedrock-agentcore/aws4_request"}
VALID_BODY = json.dumps(
    {
        "records": [
            {
                "requestIdentifier": "r1",
                "namespaces": ["n"],
                "content": {"text": "hello"},
                "timestamp": 1.0000005,
            }
        ]
    }
).encode()


def record_input(text: str = "likes green tea", **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "requestIdentifier": f"req-{uuid.uuid4().hex[:8]}",
        "namespaces": ["users/alice/preferences"],
        "content": {"text": text},
        "timestamp": TIMESTAMP,
    }
    record.update(overrides)
    return record


def create_one(client: Any, memory_id: str = DEFAULT_MEMORY_ID, **overrides: Any) -> str:
    response = client.batch_create_memory_records(memoryId=memory_id, records=[record_input(**overrides)])
    assert response["failedRecords"] == []
    record_id: str = response["successfulRecords"][0]["memoryRecordId"]
    return record_id


def get_record(client: Any, record_id: str, memory_id: str = DEFAULT_MEMORY_ID) -> dict[str, Any]:
    record: dict[str, Any] = client.get_memory_record(memoryId=memory_id, memoryRecordId=record_id)[
        "memoryRecord"
    ]
    return record


def get_unknown_record(client: Any) -> Any:
    return client.get_memory_record(memoryId=DEFAULT_MEMORY_ID, memoryRecordId=UNKNOWN_RECORD_ID)


def exchange(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn.request(method, path, body=body, headers=AUTH if headers is None else headers)
    response = conn.getresponse()
    payload = response.read()
    return response.status, {name.lower(): value for name, value in response.getheaders()}, payload


def assert_aws_headers(headers: dict[str, str], body: bytes) -> None:
    uuid.UUID(headers["x-amzn-requestid"])
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
