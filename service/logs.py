"""Structured logs: one JSON object per line on stderr, and the access log (one line per RPC, by its own
interceptor, as go-grpc-middleware's `interceptors/logging`). Record text never reaches a log line."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

import grpc
from google.protobuf import message

from service import calls

ACCESS_LOGGER = "service.rpc"
HEALTH_SERVICE = "grpc.health.v1.Health"

# The level of an RPC's line, by code: go-grpc-middleware's DefaultServerCodeToLevel.
_WARN_CODES = frozenset(
    {
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
    }
)
_ERROR_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.DATA_LOSS,
    }
)

# LogRecord attributes that are not user fields passed with `extra=`.
_STANDARD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, logger, message, and every `extra` field.

    A protobuf message, as a field, a message argument or the message itself, is logged by its type
    name only: requests and records carry record text.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=_json_default)


def _json_default(value: object) -> str:
    return _redacted(value) if isinstance(value, message.Message) else str(value)


def _redacted(value: message.Message) -> str:
    return f"<{value.DESCRIPTOR.full_name}>"


def _message(record: logging.LogRecord) -> str:
    if isinstance(record.msg, message.Message):
        return _redacted(record.msg)
    if isinstance(record.args, tuple) and any(isinstance(arg, message.Message) for arg in record.args):
        safe = tuple(_redacted(arg) if isinstance(arg, message.Message) else arg for arg in record.args)
        return str(record.msg) % safe
    return record.getMessage()


def configure(level: str) -> None:
    """Route every logger to one JSON handler on stderr at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # botocore logs request bodies (record text) at DEBUG: keep it quiet whatever LOG_LEVEL says.
    logging.getLogger("botocore").setLevel(max(logging.INFO, logging.getLevelName(level)))
    logging.getLogger("urllib3").setLevel(max(logging.INFO, logging.getLevelName(level)))


class AccessLog(calls.Reporter):
    """One line per finished RPC: method, code, duration, the caller's identity, AWS's request id and
    error code, and record counts of batches."""

    def __init__(self) -> None:
        self._log = logging.getLogger(ACCESS_LOGGER)

    def interceptor(self) -> grpc.ServerInterceptor:
        """The server interceptor that writes the lines."""
        return calls.Interceptor(self)

    def finished(self, call: calls.Call) -> None:
        code = call.code or grpc.StatusCode.UNKNOWN
        fields: dict[str, Any] = {
            "method": call.full_method,
            "grpcCode": calls.GO_CODE_NAMES[code],
            "durationSeconds": round(call.seconds(), 6),
            "caller": call.caller,
        }
        if call.aws_request_id:
            fields["awsRequestId"] = call.aws_request_id
        if call.aws_error_code:
            fields["awsErrorCode"] = call.aws_error_code
        if call.refused:
            fields["refused"] = call.refused  # by admission: `rpcs` or `bytes`
        operation = call.operation
        if operation is not None and operation.batch and call.request is not None:
            fields["recordCount"] = len(call.request.records)
            if call.response is not None:
                fields["succeededRecords"] = len(call.response.successful_records)
                fields["failedRecords"] = len(call.response.failed_records)
        self._log.log(_level(call.service, code), "finished call", extra=fields)


def _level(service: str, code: grpc.StatusCode) -> int:
    if code in _ERROR_CODES:
        return logging.ERROR
    if code in _WARN_CODES:
        return logging.WARNING
    if service == HEALTH_SERVICE and code is grpc.StatusCode.OK:
        return logging.DEBUG  # Kubernetes probes every few seconds: not news
    return logging.INFO
