"""The HTTP surface with a raw client, the Emulator lifecycle, and ``python -m emulator``."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator import DEFAULT_MEMORY_ID, Emulator
from tests.helpers import emulator_client

REPO_ROOT = Path(__file__).resolve().parent.parent
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


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def connection(emulator: Emulator) -> Iterator[http.client.HTTPConnection]:
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
    yield conn
    conn.close()


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


def test_success_responses_carry_request_id_and_exact_length(connection: http.client.HTTPConnection) -> None:
    status, headers, body = exchange(connection, "POST", BATCH_CREATE_PATH, VALID_BODY)
    assert status == 201
    assert_aws_headers(headers, body)
    assert "x-amzn-errortype" not in headers


def test_request_ids_are_unique(connection: http.client.HTTPConnection) -> None:
    ids = {exchange(connection, "GET", "/nowhere")[1]["x-amzn-requestid"] for _ in range(3)}
    assert len(ids) == 3


def test_keep_alive_serves_several_requests_on_one_connection(connection: http.client.HTTPConnection) -> None:
    exchange(connection, "POST", BATCH_CREATE_PATH, VALID_BODY)
    first_socket = connection.sock
    assert first_socket is not None
    status, _, _ = exchange(connection, "POST", BATCH_CREATE_PATH, VALID_BODY)
    assert status == 201
    assert connection.sock is first_socket


def test_timestamps_round_half_even_to_microseconds(connection: http.client.HTTPConnection) -> None:
    _, _, body = exchange(connection, "POST", BATCH_CREATE_PATH, VALID_BODY)
    record_id = json.loads(body)["successfulRecords"][0]["memoryRecordId"]
    _, _, body = exchange(connection, "GET", f"/memories/{DEFAULT_MEMORY_ID}/memoryRecord/{record_id}")
    assert json.loads(body)["memoryRecord"]["timestamp"] == 1.0  # 1.0000005 s is a tie: to even


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'["a list"]', b'"text"', b'{"records": NaN}', b"\xff\xfe", b"[" * 100_000],
    ids=["syntax", "array", "string", "nan", "not-utf8", "deep"],
)
def test_malformed_body_cannot_parse(connection: http.client.HTTPConnection, body: bytes) -> None:
    status, headers, payload = exchange(connection, "POST", BATCH_CREATE_PATH, body)
    assert status == 400
    assert_aws_headers(headers, payload)
    assert headers["x-amzn-errortype"] == "ValidationException"
    error = json.loads(payload)
    assert error["reason"] == "CannotParse"
    assert isinstance(error["message"], str)


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


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("POST", "/memories/x/unknown"),
        ("GET", BATCH_CREATE_PATH),  # known path, wrong method
        ("POST", BATCH_CREATE_PATH + "/"),
        ("DELETE", f"/memories/{DEFAULT_MEMORY_ID}/memoryRecord/mem-1"),
    ],
)
def test_unknown_route(
    emulator: Emulator, connection: http.client.HTTPConnection, method: str, path: str
) -> None:
    emulator.clear_received()
    status, headers, payload = exchange(connection, method, path)
    assert status == 404
    assert_aws_headers(headers, payload)
    assert headers["x-amzn-errortype"] == "UnknownOperationException"
    [request] = emulator.received()
    assert request.operation is None
    assert request.method == method


def test_query_string_is_journaled_and_applied(
    emulator: Emulator, connection: http.client.HTTPConnection
) -> None:
    emulator.clear_received()
    record_id = f"mem-{uuid.uuid4()}"
    status, _, _ = exchange(
        connection, "GET", f"/memories/{DEFAULT_MEMORY_ID}/memoryRecord/{record_id}?namespace=a%2Fb"
    )
    assert status == 404
    [request] = emulator.received("GetMemoryRecord")
    assert request.query == {"namespace": ["a/b"]}
    assert request.json is None


def test_chunked_request_body(connection: http.client.HTTPConnection) -> None:
    chunks = iter([VALID_BODY[:10], VALID_BODY[10:]])
    connection.request(
        "POST",
        BATCH_CREATE_PATH,
        body=chunks,
        headers={**AUTH, "Transfer-Encoding": "chunked"},
        encode_chunked=True,
    )
    response = connection.getresponse()
    assert response.status == 201
    assert json.loads(response.read())["failedRecords"] == []


def test_oversized_body_is_refused_and_the_connection_closed(emulator: Emulator) -> None:
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as sock:
        sock.sendall(
            f"POST {BATCH_CREATE_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: x\r\n"
            f"Content-Length: {64 * 1024 * 1024}\r\n\r\n".encode()
        )
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head = received.split(b"\r\n", 1)[0]
    assert head == b"HTTP/1.1 413 Request Entity Too Large"
    assert b"x-amzn-RequestId: " in received


@pytest.mark.parametrize(
    "framing",
    [b"Content-Length: -1\r\n", b"Content-Length: 1_0\r\n", b"Transfer-Encoding: chunked\r\n"],
    ids=["negative-length", "underscore-length", "signed-chunk-size"],
)
def test_malformed_framing_is_a_bad_request(emulator: Emulator, framing: bytes) -> None:
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as sock:
        sock.sendall(
            b"POST "
            + BATCH_CREATE_PATH.encode()
            + b" HTTP/1.1\r\nHost: x\r\nAuthorization: x\r\n"
            + framing
            + b"\r\n-1\r\n"
        )
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 400 ")
    assert b"x-amzn-ErrorType: BadRequestException" in received
    assert b"Connection: close" in received


def test_lifecycle() -> None:
    emu = Emulator()
    with pytest.raises(RuntimeError):
        _ = emu.endpoint_url
    emu.start()
    try:
        with pytest.raises(RuntimeError):
            emu.start()
        assert emu.endpoint_url == f"http://127.0.0.1:{emu.port}"
        assert emu.port > 0
    finally:
        emu.stop()
    emu.stop()  # idempotent
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", emu.port), timeout=1):
        pass


def test_stop_disconnects_idle_keep_alive_clients() -> None:
    with Emulator() as emu:
        conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
        assert exchange(conn, "GET", "/")[0] == 404
    # The server closed the kept-alive connection, so reuse fails instead of hanging.
    with pytest.raises((http.client.HTTPException, OSError)):
        exchange(conn, "GET", "/")
    conn.close()


def test_invalid_configuration_is_rejected() -> None:
    with pytest.raises(ValueError, match="memory id"):
        Emulator(memory_ids=["not valid"])
    with pytest.raises(ValueError, match="at least one"):
        Emulator(memory_ids=[])
    with pytest.raises(ValueError, match="journal"):
        Emulator(journal_size=-1)


def test_ipv6_endpoint_url() -> None:
    try:
        emu = Emulator(host="::1").start()
    except OSError:
        pytest.skip("IPv6 loopback is not available")
    try:
        assert emu.endpoint_url == f"http://[::1]:{emu.port}"
        conn = http.client.HTTPConnection("::1", emu.port, timeout=5)
        try:
            assert exchange(conn, "GET", "/")[0] == 404
        finally:
            conn.close()
    finally:
        emu.stop()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_module_runs_as_a_process(tmp_path: Path, stop_signal: signal.Signals) -> None:
    db_path = tmp_path / "emulator.sqlite3"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator",
            "--port",
            "0",
            "--db",
            str(db_path),
            "--memory-ids",
            DEFAULT_MEMORY_ID,
        ],
        cwd=REPO_ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"listening on (http://\S+)", line)
        assert match, line
        client = emulator_client(match.group(1), timeout_seconds=5)
        created = client.batch_create_memory_records(
            memoryId=DEFAULT_MEMORY_ID,
            records=[
                {"requestIdentifier": "r", "namespaces": ["n"], "content": {"text": "t"}, "timestamp": 1}
            ],
        )
        assert created["failedRecords"] == []

        process.send_signal(stop_signal)
        assert process.wait(timeout=5) == 0
        assert db_path.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()


def test_module_reports_bad_arguments() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "--port", "0", "--memory-ids", "bad id"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert result.returncode == 2
    assert "memory id" in result.stderr


def test_a_chunk_without_its_crlf_is_refused(emulator: Emulator) -> None:
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as raw:
        raw.sendall(
            f"POST /memories/{DEFAULT_MEMORY_ID}/memoryRecords/batchUpdate HTTP/1.1\r\n"
            "Host: x\r\nAuthorization: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            "2\r\n{}XXXXXXXX0\r\n\r\n".encode()
        )
        answer = raw.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 400")
    assert "Invalid chunked encoding" in answer


def test_http_layer_errors_are_in_aws_format(emulator: Emulator) -> None:
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as raw:
        raw.sendall(b"GARBAGE\r\n\r\n")
        answer = raw.recv(65536).decode()
    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 400")
    assert "x-amzn-RequestId:" in head
    assert "x-amzn-ErrorType: BadRequestException" in head
    assert json.loads(body)["message"]
