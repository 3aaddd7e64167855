"""File descriptor 2 as JSON lines: grpc core's own messages, and whatever else writes there.

capture() turns fd 2 into a pipe, before grpc loads; a daemon thread reads it and re-emits each line
through logging, whose handler (service/telemetry/json_logs.py) writes to a copy of the original stderr,
stream():

- grpc core's lines (`E1126 04:27:31.772590 15782 file.cc:123] text`) on the `grpc` logger, at their
  level: E error, W warning, F critical, I debug (so that LOG_LEVEL, not GRPC_VERBOSITY, decides). grpc
  reports a failed TLS handshake (a plaintext client on a TLS port, a client without a certificate under
  mutual TLS) only at its INFO verbosity, hence the default GRPC_VERBOSITY=INFO: such a line becomes a
  warning, "TLS handshake failed", with grpc's reason;
- anything else (a library's print, a C extension's message) on `service.telemetry.stderr` as an error;
- a line that already is a JSON object is passed on as it is.

A line longer than MAX_LINE_BYTES is cut into pieces of that size, so that the reader's memory is
bounded. An uncaught exception is one JSON line ("uncaught exception", with its traceback). At exit fd 2
is given back to the original stderr and the pipe is drained, so that nothing written last is lost. A
Python faulthandler that is on writes to the original stderr: a fatal signal leaves no thread to read
the pipe. Workers (service/runtime/workers.py) are given the original stderr: their lines do not pass through
the supervisor's pipe.
"""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import json
import logging
import os
import re
import sys
import threading
from types import TracebackType
from typing import TextIO

GRPC_LOGGER = "grpc"
OTHER_LOGGER = "service.telemetry.stderr"
# grpc core prints nothing at ERROR for a failed handshake; see the module's text.
DEFAULT_GRPC_VERBOSITY = "INFO"
MAX_LINE_BYTES = 16 * 1024
HANDSHAKE_FAILED = "TLS handshake failed"
# How long the exit waits for the pipe's last lines.
DRAIN_SECONDS = 2.0

# absl's prefix, as grpc core writes it: severity, MMDD hh:mm:ss.micros, thread id, file:line.
_GRPC_LINE = re.compile(r"([IWEF])\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ ([^\]\s]+)\] ?(.*)", re.DOTALL)
_GRPC_LEVELS = {"I": logging.DEBUG, "W": logging.WARNING, "E": logging.ERROR, "F": logging.CRITICAL}
# grpc's words for a failed handshake (ssl_transport_security.cc), and its warning about the INFO
# verbosity this module chose (log.cc): a debug line, not news at every start.
_HANDSHAKE_WORDS = "Handshake failed"
_VERBOSITY_ADVICE = "is not suitable for production"


class _Capture:
    """The pipe behind fd 2, its reader thread, and the original stderr."""

    def __init__(self) -> None:
        self.original_fd = os.dup(2)  # not inherited by children, unless given to them
        self.stream: TextIO = open(  # noqa: SIM115 (open while the process lives)
            self.original_fd, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False
        )
        self._read_fd, write_fd = os.pipe()
        sys.stderr.flush()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._pending = b""
        self._reader = threading.Thread(target=self._read, name="stderr-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while chunk := os.read(self._read_fd, 65536):
            self._pending += chunk
            *lines, self._pending = self._pending.split(b"\n")
            for line in lines:
                self._pieces(line)
            if len(self._pending) > MAX_LINE_BYTES:
                self._pieces(self._pending)
                self._pending = b""
        if self._pending:
            self._pieces(self._pending)
        os.close(self._read_fd)

    def _pieces(self, line: bytes) -> None:
        for start in range(0, max(len(line), 1), MAX_LINE_BYTES):
            piece = line[start : start + MAX_LINE_BYTES].decode("utf-8", "replace").rstrip("\r")
            if piece.strip():
                self._emit(piece)

    def _emit(self, text: str) -> None:
        if text.startswith("{"):
            try:
                is_json = isinstance(json.loads(text), dict)
            except ValueError:
                is_json = False
            if is_json:
                with contextlib.suppress(OSError):  # the reader must go on: fd 2 is its pipe
                    os.write(self.original_fd, text.encode() + b"\n")
                return
        grpc_line = _GRPC_LINE.fullmatch(text)
        if grpc_line is None:
            logging.getLogger(OTHER_LOGGER).error(text)
            return
        severity, source, message = grpc_line.groups()
        level = _GRPC_LEVELS[severity]
        fields = {"source": source}
        if _HANDSHAKE_WORDS in message:
            level, fields["reason"], message = logging.WARNING, message, HANDSHAKE_FAILED
        elif _VERBOSITY_ADVICE in message:
            level = logging.DEBUG
        logging.getLogger(GRPC_LOGGER).log(level, message, extra=fields)

    def finish(self) -> None:
        """At exit: fd 2 back to the original stderr, then what the pipe still holds is logged."""
        sys.stderr.flush()
        os.dup2(self.original_fd, 2)  # the pipe's last write end in this process is closed
        self._reader.join(DRAIN_SECONDS)


_capture: _Capture | None = None


def capture() -> None:
    """Routes fd 2 through the reader (once per process); call it before grpc loads."""
    global _capture  # noqa: PLW0603 (one capture per process)
    if _capture is not None:
        return
    _capture = _Capture()
    atexit.register(_capture.finish)
    # Before logging is set up, a record goes to logging.lastResort, on sys.stderr: the pipe itself.
    logging.lastResort = logging.StreamHandler(_capture.stream)
    logging.lastResort.setLevel(logging.WARNING)
    if faulthandler.is_enabled():
        faulthandler.enable(file=_capture.original_fd, all_threads=True)
    sys.excepthook = _log_uncaught


def finish() -> None:
    """What the exit does (fd 2 given back, the pipe drained), now: for an exit that skips the
    interpreter's finalization (service/__main__.py)."""
    if _capture is not None:
        _capture.finish()


def _log_uncaught(kind: type[BaseException], value: BaseException, trace: TracebackType | None) -> None:
    logging.getLogger("service").critical("uncaught exception", exc_info=(kind, value, trace))


def stream() -> TextIO:
    """Where the log is written: the original stderr once captured, else sys.stderr."""
    return sys.stderr if _capture is None else _capture.stream


def original_fd() -> int | None:
    """The original stderr's file descriptor for a child process, or None (the child inherits fd 2)."""
    return None if _capture is None else _capture.original_fd
