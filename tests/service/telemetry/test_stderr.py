"""fd 2 as JSON lines: grpc core's lines, prints, oversized lines and a crash at exit."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from service.telemetry import stderr
from tests.helpers import ROOT, service_env

RECORD_TEXT = "RECORD-TEXT-must-never-leave-31c9"


# A process that captures fd 2 as `python -m service` does, writes there in every way a process can,
# and dies of an uncaught exception.
_CAPTURING_SCRIPT = """
import os, sys
from service.telemetry import stderr
stderr.capture()
from service.telemetry import json_logs
json_logs.configure("DEBUG")
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
