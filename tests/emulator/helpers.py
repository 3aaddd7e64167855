"""What only the emulator's tests use: a second timestamp, a Get of an unknown record, and raw HTTP
exchanges with the emulator's REST-JSON wire (a path, the auth header, a valid body, AWS's headers)."""

from __future__ import annotations

import http.client
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from emulator import DEFAULT_MEMORY_ID
from tests.helpers import UNKNOWN_RECORD_ID

LATER = datetime(2025, 6, 7, 8, 9, 10, 654321, tzinfo=UTC)
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
