"""The HTTP/1.1 transport with a raw client: framing, keep-alive, body limits and its own errors."""

from __future__ import annotations

import http.client
import json
import socket

import pytest

from emulator import DEFAULT_MEMORY_ID, Emulator
from tests.emulator.helpers import AUTH, BATCH_CREATE_PATH, VALID_BODY, assert_aws_headers, exchange


def test_success_responses_carry_request_id_and_exact_length(connection: http.client.HTTPConnection) -> None:
    status, headers, body = exchange(connection, "POST", BATCH_CREATE_PATH, VALID_BODY)
    assert status == 201
    assert_aws_headers(headers, body)
    assert "x-amzn-errortype" not in headers


def test_keep_alive_serves_several_requests_on_one_connection(connection: http.client.HTTPConnection) -> None:
    exchange(connection, "POST", BATCH_CREATE_PATH, VALID_BODY)
    first_socket = connection.sock
    assert first_socket is not None
    status, _, _ = exchange(connection, "POST", BATCH_CREATE_PATH, VALID_BODY)
    assert status == 201
    assert connection.sock is first_socket


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
