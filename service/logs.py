"""Structured logs: one JSON object per line on stderr. Record text never reaches a log line."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

from google.protobuf import message

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
