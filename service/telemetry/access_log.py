"""The access log: one JSON line per finished RPC, on the `service.rpc` logger, by its own reporter, as
go-grpc-middleware's `interceptors/logging` writes it: method, code, duration, the RPC's id, the
caller's identity, AWS's request id and error code, and the record counts of batches.

Its level follows the code (go-grpc-middleware's DefaultServerCodeToLevel), and a decider may lower it
by a rule: the server's demotes successful health checks to DEBUG (`quieter`), so that Kubernetes
probes do not fill the log, without this module naming any service."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Collection
from typing import Any

import grpc

from service import calls
from service.telemetry import json_logs

ACCESS_LOGGER = "service.rpc"

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


def level_of(code: grpc.StatusCode) -> int:
    """The level of an RPC's line that ended with `code`."""
    if code in _ERROR_CODES:
        return logging.ERROR
    if code in _WARN_CODES:
        return logging.WARNING
    return logging.INFO


# A decider: the level of a finished RPC's line, given its level by code.
Decider = Callable[[calls.Call, int], int]


def by_code(call: calls.Call, level: int) -> int:
    """The default decider: the level by code, for every RPC."""
    return level


def quieter(service: str, codes: Collection[grpc.StatusCode], level: int = logging.DEBUG) -> Decider:
    """A decider that writes the INFO lines of `service`'s RPCs ending in one of `codes` at `level`."""
    quiet = frozenset(codes)

    def decide(call: calls.Call, by_code: int) -> int:
        if by_code == logging.INFO and call.code in quiet and call.service == service:
            return level
        return by_code

    return decide


_NAME_AND_LEVEL = {code: (calls.GO_CODE_NAMES[code], level_of(code)) for code in grpc.StatusCode}


class AccessLog(calls.Reporter):
    """Writes each finished RPC's line, at the level its `decider` gives.

    While json_logs.configure()'s handler is the only one, a line is written to it directly, as
    JsonFormatter would write its record: a LogRecord, its handler chain and its formatting cost about
    three times the line itself (`python -m bench.pieces --only log`). Anything else (a test's capture,
    another handler, a filter) gets a LogRecord as before.
    """

    def __init__(self, decider: Decider = by_code) -> None:
        self._log = logging.getLogger(ACCESS_LOGGER)
        self._decider = decider

    def finished(self, call: calls.Call) -> None:
        code = call.code or grpc.StatusCode.UNKNOWN
        go_name, level = _NAME_AND_LEVEL[code]  # a StatusCode's hash is a Python call: look it up once
        level = self._decider(call, level)
        if not self._log.isEnabledFor(level):
            return
        fields = _fields(call, go_name)
        handler = json_logs.sole_handler(self._log, level)
        if handler is None:
            self._log.log(level, "finished call", extra=fields)
            return
        formatter = handler.formatter
        assert isinstance(formatter, json_logs.JsonFormatter)  # sole_handler checked it
        entry = formatter.entry(time.time(), logging.getLevelName(level), ACCESS_LOGGER, "finished call")
        entry.update(fields)
        line = json_logs.ENCODER.encode(entry) + handler.terminator
        with handler.lock or contextlib.nullcontext():
            try:
                handler.stream.write(line)
                handler.stream.flush()
            except (OSError, ValueError):
                # As logging's own path does (JsonHandler.handleError): a log that cannot be written
                # (a closed pipe, a full disk) loses the line, never the RPC.
                pass


def _fields(call: calls.Call, go_name: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "method": call.full_method,
        "rpcId": call.rpc_id,
        "grpcCode": go_name,
        "durationSeconds": round(call.seconds(), 6),
    }
    if call.span is not None:
        fields.update(json_logs.trace_fields(call.span))
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
    return fields
