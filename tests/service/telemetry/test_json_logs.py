"""JSON logs: one object per line, every `extra` field kept, the RPC a line belongs to named, record text
never written."""

from __future__ import annotations

import contextvars
import io
import json
import logging
from collections.abc import Iterator

import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb

from service import calls
from service.api import operations
from service.telemetry import json_logs
from tests.helpers import record_create

RECORD_TEXT = "RECORD-TEXT-must-never-leave-31c9"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_logs.JsonFormatter())
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def a_request() -> pb.BatchCreateRequest:
    return pb.BatchCreateRequest(memory_id="demo_memory-0123456789", records=[record_create(RECORD_TEXT)])


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


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
        json_logs.configure(level)
        [handler] = root.handlers
        assert isinstance(handler.formatter, json_logs.JsonFormatter)
        assert root.level == logging.getLevelName(level)
        # botocore logs request bodies (record text) at DEBUG.
        assert logging.getLogger("botocore").level == botocore_level
        assert logging.getLogger("urllib3").level == botocore_level
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.getLogger("botocore").setLevel(saved[2])
        logging.getLogger("urllib3").setLevel(saved[3])
        logging._srcfile, logging.logProcesses, logging.logMultiprocessing = saved[4]


def test_a_line_written_while_an_rpc_is_served_names_it(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.warning("outside any RPC")
    call = calls.Call(context=None, full_method=operations.GET.full_method)
    context = contextvars.copy_context()
    context.run(calls.make_current, call)
    context.run(logger.warning, "while serving it")  # as a handler's thread runs, in a copied context
    outside, inside = lines(stream)
    assert "rpcId" not in outside and "method" not in outside
    assert (inside["method"], inside["rpcId"]) == (operations.GET.full_method, call.rpc_id)
