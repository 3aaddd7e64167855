"""Structured logs: one JSON object per line on stderr, and the access log (one line per RPC, by its own
interceptor, as go-grpc-middleware's `interceptors/logging`). Record text never reaches a log line."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import sys
import time
from typing import Any

import grpc
from google.protobuf import message

from service import calls
from service.telemetry import stderr

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


def _level(code: grpc.StatusCode) -> int:
    if code in _ERROR_CODES:
        return logging.ERROR
    if code in _WARN_CODES:
        return logging.WARNING
    return logging.INFO


_QUIET_HEALTH_CODES = frozenset({grpc.StatusCode.OK, grpc.StatusCode.CANCELLED})
_NAME_AND_LEVEL = {code: (calls.GO_CODE_NAMES[code], _level(code)) for code in grpc.StatusCode}

# LogRecord attributes that are not user fields passed with `extra=`.
_STANDARD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, logger, message, and every `extra` field.

    A protobuf message, as a field, a message argument or the message itself, is logged by its type
    name only: requests and records carry record text. `with_pid` adds the process id, which tells the
    lines of several worker processes apart.
    """

    def __init__(self, *, with_pid: bool = False) -> None:
        super().__init__()
        self._pid = os.getpid() if with_pid else None

    def format(self, record: logging.LogRecord) -> str:
        entry = self.entry(record.created, record.levelname, record.name, _message(record))
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)

    def entry(self, created: float, level: str, logger: str, text: str) -> dict[str, Any]:
        """The fields every line starts with."""
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": level,
            "logger": logger,
            "message": text,
        }
        if self._pid is not None:
            entry["pid"] = self._pid
        return entry


def _json_default(value: object) -> str:
    return _redacted(value) if isinstance(value, message.Message) else str(value)


def _redacted(value: message.Message) -> str:
    return f"<{value.DESCRIPTOR.full_name}>"


# json.dumps(entry, default=...) builds a new encoder on every call; one is enough (it keeps no state).
_ENCODER = json.JSONEncoder(default=_json_default)


def _message(record: logging.LogRecord) -> str:
    if isinstance(record.msg, message.Message):
        return _redacted(record.msg)
    if isinstance(record.args, tuple) and any(isinstance(arg, message.Message) for arg in record.args):
        safe = tuple(_redacted(arg) if isinstance(arg, message.Message) else arg for arg in record.args)
        return str(record.msg) % safe
    return record.getMessage()


class _JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler configure() installs: the access log writes to it directly while it is the only one."""

    def handleError(self, record: logging.LogRecord) -> None:
        # A stream that cannot be written is not told so on sys.stderr: that is the pipe whose lines
        # come back here (service/telemetry/stderr.py), and would fail again, without end.
        if not isinstance(sys.exc_info()[1], OSError | ValueError):
            super().handleError(record)


def configure(level: str, *, with_pid: bool = False) -> None:
    """Route every logger to one JSON handler on stderr (the original one, when fd 2 is captured) at
    `level`."""
    # What JsonFormatter never writes, logging need not find for every record (the logging HOWTO's
    # "Optimization"): the caller's file and line (a stack walk), the process id and its name.
    logging._srcfile = None
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = _JsonHandler(stderr.stream())
    handler.setFormatter(JsonFormatter(with_pid=with_pid))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # botocore logs request bodies (record text) at DEBUG: keep it quiet whatever LOG_LEVEL says.
    logging.getLogger("botocore").setLevel(max(logging.INFO, logging.getLevelName(level)))
    logging.getLogger("urllib3").setLevel(max(logging.INFO, logging.getLevelName(level)))


def _sole_handler(logger: logging.Logger, level: int) -> _JsonHandler | None:
    """The handler configure() installed when a record of `logger` at `level` would reach it alone,
    unfiltered and formatted by JsonFormatter; None otherwise (a test's capture, another handler)."""
    root = logging.root
    if len(root.handlers) != 1 or root.filters:
        return None
    [handler] = root.handlers
    if type(handler) is not _JsonHandler or handler.filters:
        return None
    if level < handler.level or type(handler.formatter) is not JsonFormatter:
        return None
    node: logging.Logger | None = logger
    while node is not None and node is not root:
        if node.handlers or node.filters or not node.propagate:
            return None
        node = node.parent
    return handler


class AccessLog(calls.Reporter):
    """One line per finished RPC: method, code, duration, the caller's identity, AWS's request id and
    error code, and record counts of batches.

    While configure()'s handler is the only one, a line is written to it directly, as JsonFormatter
    would write its record: a LogRecord, its handler chain and its formatting cost about three times
    the line itself (`python -m bench.pieces --only log`). Anything else (a test's capture, another
    handler, a filter) gets a LogRecord as before.
    """

    def __init__(self) -> None:
        self._log = logging.getLogger(ACCESS_LOGGER)

    def finished(self, call: calls.Call) -> None:
        code = call.code or grpc.StatusCode.UNKNOWN
        go_name, level = _NAME_AND_LEVEL[code]  # a StatusCode's hash is a Python call: look it up once
        fields: dict[str, Any] = {
            "method": call.full_method,
            "grpcCode": go_name,
            "durationSeconds": round(call.seconds(), 6),
        }
        identity = call.identity
        if isinstance(identity, str):
            fields["caller"] = identity
        else:
            fields["callerIdentityRefused"] = identity.reason  # its names are never logged
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
        if level == logging.INFO and code in _QUIET_HEALTH_CODES and call.service == HEALTH_SERVICE:
            # Kubernetes probes every few seconds, and a probe that gave up (or a flood of reset
            # streams) is no news either: a line each would be a log flood anyone can cause.
            level = logging.DEBUG
        handler = _sole_handler(self._log, level) if self._log.isEnabledFor(level) else None
        if handler is None:
            self._log.log(level, "finished call", extra=fields)
            return
        formatter = handler.formatter
        assert isinstance(formatter, JsonFormatter)  # _sole_handler checked it
        entry = formatter.entry(time.time(), logging.getLevelName(level), ACCESS_LOGGER, "finished call")
        entry.update(fields)
        line = _ENCODER.encode(entry) + handler.terminator
        with handler.lock or contextlib.nullcontext():
            try:
                handler.stream.write(line)
                handler.stream.flush()
            except (OSError, ValueError):
                # As logging's own path does (_JsonHandler.handleError): a log that cannot be written
                # (a closed pipe, a full disk) loses the line, never the RPC.
                pass
