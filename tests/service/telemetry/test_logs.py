"""Structured logs: one JSON object per line, every `extra` field kept, record text never written."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import types
import unittest.mock
from collections.abc import Iterator

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb

from service import calls
from service.api import operations
from service.telemetry import logs, stderr
from tests.certs import Authority
from tests.helpers import ROOT, record_create, service_env

RECORD_TEXT = "RECORD-TEXT-must-never-leave-31c9"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def a_request() -> pb.BatchCreateRequest:
    return pb.BatchCreateRequest(
        memory_id="demo_memory-0123456789",
        records=[record_create(RECORD_TEXT)],
    )


def test_one_json_object_per_line_with_every_extra_field(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.warning(
        "finished call", extra={"grpcCode": "Unavailable", "durationSeconds": 0.25, "recordCount": 3}
    )
    logger.info("second %s", "line")
    first, second = lines(stream)
    assert first["level"] == "WARNING"
    assert first["logger"] == "tests.logs"
    assert first["message"] == "finished call"
    assert (first["grpcCode"], first["durationSeconds"], first["recordCount"]) == ("Unavailable", 0.25, 3)
    assert str(first["time"]).endswith("+00:00")
    assert second["message"] == "second line"
    assert "grpcCode" not in second


def test_exceptions_are_kept_in_the_same_line(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed")
    [entry] = lines(stream)
    assert "RuntimeError: boom" in str(entry["exception"])


def test_a_protobuf_message_is_logged_by_its_type_name_only(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info("as a field", extra={"request": a_request()})
    logger.info("as an argument: %s", a_request())
    logger.info(a_request())
    written = stream.getvalue()
    assert RECORD_TEXT not in written
    as_field, as_argument, as_message = lines(stream)
    assert as_field["request"] == "<agentcore.memory.v1.BatchCreateRequest>"
    assert as_argument["message"] == "as an argument: <agentcore.memory.v1.BatchCreateRequest>"
    assert as_message["message"] == "<agentcore.memory.v1.BatchCreateRequest>"


def test_values_json_cannot_hold_are_written_as_text(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("odd values", extra={"codes": frozenset({"OK"}), "port": 9464})
    [entry] = lines(stream)
    assert entry["codes"] == "frozenset({'OK'})"
    assert entry["port"] == 9464


@pytest.mark.parametrize(("level", "botocore_level"), [("DEBUG", logging.INFO), ("WARNING", logging.WARNING)])
def test_configure_sets_the_level_and_keeps_botocore_bodies_out(level: str, botocore_level: int) -> None:
    root = logging.getLogger()
    saved = (
        root.handlers[:],
        root.level,
        logging.getLogger("botocore").level,
        logging.getLogger("urllib3").level,
        (logging._srcfile, logging.logProcesses, logging.logMultiprocessing),
    )
    try:
        logs.configure(level)
        [handler] = root.handlers
        assert isinstance(handler.formatter, logs.JsonFormatter)
        assert root.level == logging.getLevelName(level)
        # botocore logs request bodies (record text) at DEBUG.
        assert logging.getLogger("botocore").level == botocore_level
        assert logging.getLogger("urllib3").level == botocore_level
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.getLogger("botocore").setLevel(saved[2])
        logging.getLogger("urllib3").setLevel(saved[3])
        logging._srcfile, logging.logProcesses, logging.logMultiprocessing = saved[4]


def test_the_access_log_writes_the_same_line_with_or_without_a_log_record() -> None:
    """While configure()'s handler is alone, AccessLog writes its line directly (no LogRecord); the line
    is the one JsonFormatter writes for the record, every field kept."""
    root = logging.getLogger()
    saved = (
        root.handlers[:],
        root.level,
        (logging._srcfile, logging.logProcesses, logging.logMultiprocessing),
    )
    # The caller as mutual TLS verified it (tls.identity_of reads the certificate in the auth context).
    certificate = Authority().issue(spiffe_id="spiffe://cluster.local/ns/chat/sa/bot").cert_pem
    context = types.SimpleNamespace(auth_context=lambda: {"x509_pem_cert": [certificate]})
    call = calls.Call(context=context, full_method=operations.BATCH_CREATE.full_method)  # type: ignore[arg-type]
    call.request, call.code = a_request(), grpc.StatusCode.UNAVAILABLE
    call.response = pb.BatchCreateResponse(failed_records=[pb.MemoryRecordResult()])
    call.aws_request_id, call.aws_error_code = "req-1", "ThrottlingException"
    try:
        logs.configure("INFO")
        direct = io.StringIO()
        [handler] = root.handlers
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(direct)
        with unittest.mock.patch.object(logging.Logger, "makeRecord", side_effect=AssertionError):
            logs.AccessLog().finished(call)  # no LogRecord is made
        through_record = io.StringIO()
        extra = logging.StreamHandler(through_record)  # a second handler: the record path
        extra.setFormatter(logs.JsonFormatter())
        root.addHandler(extra)
        logs.AccessLog().finished(call)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging._srcfile, logging.logProcesses, logging.logMultiprocessing = saved[2]
    first, second = (json.loads(line) for line in direct.getvalue().splitlines())
    [third] = lines(through_record)
    assert list(first) == list(third)  # same fields in the same order
    for entry in (first, second, third):
        assert str(entry.pop("time")).endswith("+00:00")
        assert float(entry.pop("durationSeconds")) > 0  # type: ignore[arg-type]
    assert first == second == third
    assert first == {
        "level": "WARNING",
        "logger": "service.rpc",
        "message": "finished call",
        "method": operations.BATCH_CREATE.full_method,
        "grpcCode": "Unavailable",
        "caller": "spiffe://cluster.local/ns/chat/sa/bot",
        "awsRequestId": "req-1",
        "awsErrorCode": "ThrottlingException",
        "recordCount": 1,
        "succeededRecords": 0,
        "failedRecords": 1,
    }
    assert RECORD_TEXT not in direct.getvalue()


# A process that captures fd 2 as `python -m service` does, writes there in every way a process can,
# and dies of an uncaught exception.
_CAPTURING_SCRIPT = """
import os, sys
from service.telemetry import stderr
stderr.capture()
from service.telemetry import logs
logs.configure("DEBUG")
if sys.argv[1] == "python-hook":
    sys.excepthook = sys.__excepthook__  # Python's own traceback, on fd 2, at exit
os.write(2, b"E1126 04:27:31.772590   15782 chttp2_transport.cc:42] from grpc core\\n")
os.write(2, b"W1126 04:27:31.772591   15782 log.cc:102] Log level INFO is not suitable for production.\\n")
os.write(2, b"x" * 40000 + b"\\n")
os.write(2, b'{"already": "json"}\\n')
print("printed on sys.stderr", file=sys.stderr)
os.write(2, b"the last words, without a newline")
raise RuntimeError("the crash")
"""


@pytest.mark.parametrize("hook", ["service", "python-hook"])
def test_every_line_on_fd_2_leaves_as_json_and_a_crash_at_exit_is_not_lost(hook: str) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", _CAPTURING_SCRIPT, hook],
        cwd=ROOT,
        env=service_env(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert finished.returncode == 1
    entries = [json.loads(line) for line in finished.stderr.decode().splitlines()]
    by_message = {entry.get("message"): entry for entry in entries}
    core = by_message["from grpc core"]
    assert (core["logger"], core["level"], core["source"]) == ("grpc", "ERROR", "chttp2_transport.cc:42")
    assert by_message["Log level INFO is not suitable for production."]["level"] == "DEBUG"
    pieces = [entry["message"] for entry in entries if str(entry.get("message")).startswith("xxx")]
    assert [len(piece) for piece in pieces] == [
        stderr.MAX_LINE_BYTES,
        stderr.MAX_LINE_BYTES,
        40000 - 2 * stderr.MAX_LINE_BYTES,
    ]
    assert {"already": "json"} in entries
    # Python's traceback follows the last words on the same line.
    [last] = [entry for entry in entries if str(entry.get("message")).startswith("the last words")]
    for other in (by_message["printed on sys.stderr"], last):
        assert (other["logger"], other["level"]) == ("service.telemetry.stderr", "ERROR")
    if hook == "service":
        crash = by_message["uncaught exception"]
        assert crash["level"] == "CRITICAL" and "RuntimeError: the crash" in crash["exception"]
    else:
        assert "RuntimeError: the crash" in by_message


def test_a_log_that_cannot_be_written_loses_the_line_and_not_the_rpc() -> None:
    class BrokenPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    root = logging.getLogger()
    saved = (
        root.handlers[:],
        root.level,
        (logging._srcfile, logging.logProcesses, logging.logMultiprocessing),
    )
    context = types.SimpleNamespace(auth_context=dict)
    call = calls.Call(context=context, full_method=operations.GET.full_method)  # type: ignore[arg-type]
    call.code = grpc.StatusCode.OK
    try:
        logs.configure("INFO")
        [handler] = root.handlers
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(BrokenPipe())
        logs.AccessLog().finished(call)  # the direct path: raises nothing
        root.addHandler(logging.NullHandler())
        logs.AccessLog().finished(call)  # the record path: raises nothing
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging._srcfile, logging.logProcesses, logging.logMultiprocessing = saved[2]
