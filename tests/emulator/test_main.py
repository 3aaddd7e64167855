"""``python -m emulator`` as a process: it serves, takes faults from its flags, stops on a signal and
refuses bad arguments."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import botocore.config
import botocore.exceptions
import pytest

from emulator import DEFAULT_MEMORY_ID
from tests.emulator.helpers import get_unknown_record
from tests.helpers import emulator_client

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_faults_set_at_start_from_the_command_line() -> None:
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT}"}
    command = [sys.executable, "-m", "emulator", "--port", "0", "--fault-error", "AccessDeniedException=1"]
    with subprocess.Popen(command, cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stderr is not None
            line = process.stderr.readline()  # the start line names the endpoint; a dead child gives ""
            match = re.search(r"listening on (http://\S+)", line)
            assert match, line
            assert line.rstrip().endswith("faults: AccessDeniedException=1)"), line
            with pytest.raises(botocore.exceptions.ClientError) as caught:
                get_unknown_record(emulator_client(match.group(1)))
            assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_module_runs_as_a_process(tmp_path: Path, stop_signal: signal.Signals) -> None:
    db_path = tmp_path / "emulator.sqlite3"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator",
            "--port",
            "0",
            "--db",
            str(db_path),
            "--memory-ids",
            DEFAULT_MEMORY_ID,
        ],
        cwd=REPO_ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"listening on (http://\S+)", line)
        assert match, line
        assert line.rstrip().endswith("faults: none)"), line
        client = emulator_client(match.group(1), timeout_seconds=5)
        created = client.batch_create_memory_records(
            memoryId=DEFAULT_MEMORY_ID,
            records=[
                {"requestIdentifier": "r", "namespaces": ["n"], "content": {"text": "t"}, "timestamp": 1}
            ],
        )
        assert created["failedRecords"] == []

        process.send_signal(stop_signal)
        assert process.wait(timeout=5) == 0
        assert db_path.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()


def test_module_reports_bad_arguments() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "--port", "0", "--memory-ids", "bad id"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert result.returncode == 2
    assert "memory id" in result.stderr
