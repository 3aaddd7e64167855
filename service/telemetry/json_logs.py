"""JSON logs: one object per line on stderr, for every logger of the process. A line written while an
RPC is served carries that RPC's `method` and `rpcId`, so that an error line joins its access-log line
(access_log.py). Record text never reaches a log line: a protobuf message is logged by its type name."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from typing import Any

from google.protobuf import message

from service import calls
from service.telemetry import stderr

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
        call = calls.current()
        if call is not None:  # a line of an RPC (its access-log line sets these itself)
            entry["method"] = call.full_method
            entry["rpcId"] = call.rpc_id
            if call.span is not None:
                entry.update(trace_fields(call.span))
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return ENCODER.encode(entry)

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
ENCODER = json.JSONEncoder(default=_json_default)


def _message(record: logging.LogRecord) -> str:
    if isinstance(record.msg, message.Message):
        return _redacted(record.msg)
    if isinstance(record.args, tuple) and any(isinstance(arg, message.Message) for arg in record.args):
        safe = tuple(_redacted(arg) if isinstance(arg, message.Message) else arg for arg in record.args)
        return str(record.msg) % safe
    return record.getMessage()


class JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler configure() installs: the access log writes to it directly while it is the only one
    (`sole_handler`)."""

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
    handler = JsonHandler(stderr.stream())
    handler.setFormatter(JsonFormatter(with_pid=with_pid))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # botocore logs request bodies (record text) at DEBUG: keep it quiet whatever LOG_LEVEL says.
    logging.getLogger("botocore").setLevel(max(logging.INFO, logging.getLevelName(level)))
    logging.getLogger("urllib3").setLevel(max(logging.INFO, logging.getLevelName(level)))


def sole_handler(logger: logging.Logger, level: int) -> JsonHandler | None:
    """The handler configure() installed when a record of `logger` at `level` would reach it alone,
    unfiltered and formatted by JsonFormatter; None otherwise (a test's capture, another handler)."""
    root = logging.root
    if len(root.handlers) != 1 or root.filters:
        return None
    [handler] = root.handlers
    if type(handler) is not JsonHandler or handler.filters:
        return None
    if level < handler.level or type(handler.formatter) is not JsonFormatter:
        return None
    node: logging.Logger | None = logger
    while node is not None and node is not root:
        if node.handlers or node.filters or not node.propagate:
            return None
        node = node.parent
    return handler


def trace_fields(span: Any) -> dict[str, str]:
    """`traceId` and `spanId` of an RPC's span, as W3C trace context writes them (32 and 16 hex digits),
    so that a line joins its trace."""
    context = span.get_span_context()
    return {"traceId": f"{context.trace_id:032x}", "spanId": f"{context.span_id:016x}"}
