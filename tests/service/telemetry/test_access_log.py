"""The access log: one line per RPC, the same with or without a LogRecord, its level by code and by the
decider's rule, and a log that cannot be written never fails the RPC."""

from __future__ import annotations

import io
import json
import logging
import types
import unittest.mock

import grpc
from agentcore.memory.v1 import memory_records_pb2 as pb

from service import calls
from service.api import operations
from service.telemetry import access_log, json_logs
from tests.certs import Authority
from tests.helpers import record_create

RECORD_TEXT = "RECORD-TEXT-must-never-leave-31c9"


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def a_request() -> pb.BatchCreateRequest:
    return pb.BatchCreateRequest(
        memory_id="demo_memory-0123456789",
        records=[record_create(RECORD_TEXT)],
    )


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
        json_logs.configure("INFO")
        direct = io.StringIO()
        [handler] = root.handlers
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(direct)
        with unittest.mock.patch.object(logging.Logger, "makeRecord", side_effect=AssertionError):
            access_log.AccessLog().finished(call)  # no LogRecord is made
        through_record = io.StringIO()
        extra = logging.StreamHandler(through_record)  # a second handler: the record path
        extra.setFormatter(json_logs.JsonFormatter())
        root.addHandler(extra)
        access_log.AccessLog().finished(call)
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
        "rpcId": call.rpc_id,
        "grpcCode": "Unavailable",
        "caller": "spiffe://cluster.local/ns/chat/sa/bot",
        "awsRequestId": "req-1",
        "awsErrorCode": "ThrottlingException",
        "recordCount": 1,
        "succeededRecords": 0,
        "failedRecords": 1,
    }
    assert RECORD_TEXT not in direct.getvalue()


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
        json_logs.configure("INFO")
        [handler] = root.handlers
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(BrokenPipe())
        access_log.AccessLog().finished(call)  # the direct path: raises nothing
        root.addHandler(logging.NullHandler())
        access_log.AccessLog().finished(call)  # the record path: raises nothing
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging._srcfile, logging.logProcesses, logging.logMultiprocessing = saved[2]


def test_the_decider_lowers_only_what_its_rule_names() -> None:
    quiet = access_log.quieter("grpc.health.v1.Health", (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED))

    def level(full_method: str, code: grpc.StatusCode) -> int:
        call = calls.Call(context=None, full_method=full_method)
        call.code = code
        return quiet(call, access_log.level_of(code))

    assert level("/grpc.health.v1.Health/Check", grpc.StatusCode.OK) == logging.DEBUG
    assert level("/grpc.health.v1.Health/Watch", grpc.StatusCode.CANCELLED) == logging.DEBUG
    assert level("/grpc.health.v1.Health/Check", grpc.StatusCode.UNAVAILABLE) == logging.WARNING
    assert level(operations.GET.full_method, grpc.StatusCode.OK) == logging.INFO
    assert access_log.by_code(calls.Call(context=None), logging.INFO) == logging.INFO
