"""The built wheel, installed into a fresh venv as `make` and the Dockerfile install it (offline, from the
wheels of requirements.txt), serves through its console script with no PYTHONPATH and no source tree."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.served import assert_json_lines, assert_updates_a_record, wait_until_serving
from tests.helpers import ROOT, require

# The wheels of requirements.txt that `make` downloads (Makefile: WHEELS).
REQUIREMENT_WHEELS = ROOT / "var" / "wheels"


# What the wheel is built from (the Dockerfile's wheels stage copies the same).
SOURCES = ("pyproject.toml", "requirements.txt", "generated/agentcore", "service", "emulator")


def _clean_env(**variables: str) -> dict[str, str]:
    """The environment without PYTHONPATH (make sets it), AWS or gRPC variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON", "GRPC_"))}
    return {**env, **variables}


def _run(*command: str | Path) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=300, env=_clean_env())


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require(
        (REQUIREMENT_WHEELS / ".requirements").exists(),
        f"no wheels of requirements.txt in {REQUIREMENT_WHEELS}: `make test` makes them",
    )
    work = tmp_path_factory.mktemp("wheel")
    # From a copy, so that the build's egg-info never lands in the tree.
    (work / "src").mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, work / "src" / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, work / "src" / name)
    # The project's wheel, with the pinned setuptools of requirements-dev.txt (offline).
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", work / "dist", work / "src")
    _run(sys.executable, "-m", "venv", work / "venv")
    offline = [
        "--no-cache-dir",
        "--no-index",
        "--find-links",
        REQUIREMENT_WHEELS,
        "--find-links",
        work / "dist",
    ]
    python = work / "venv" / "bin" / "python"
    _run(python, "-m", "pip", "install", *offline, "-r", ROOT / "requirements.txt", "agentcore-memory-grpc")
    return work / "venv"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_console_script_serves_from_the_installed_wheel(venv: Path, tmp_path: Path, workers: str) -> None:
    """WORKERS=2: the supervisor starts its workers as `python -m service` of the venv's interpreter,
    which the installed package answers (no source tree in the working directory)."""
    env = _clean_env(
        AGENTCORE_BACKEND="local",
        GRPC_HOST="127.0.0.1",
        GRPC_PORT="0",
        METRICS_PORT="0",
        WORKERS=workers,
        TMPDIR=str(tmp_path),
    )
    command = [venv / "bin" / "agentcore-memory-grpc"]
    with subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stderr is not None
            # Workers say `worker serving` first; the process says it serves once all do.
            while (start := assert_json_lines(process.stderr.readline())[0])["message"] == "worker serving":
                pass
            assert start["message"] == "serving agentcore.memory.v1.MemoryRecordsService", start
            if workers != "1":
                assert len(start["workerPids"]) == int(workers)  # type: ignore[arg-type]
            port = int(str(start["grpcPort"]))
            wait_until_serving(port)
            assert_updates_a_record(port)
        finally:
            process.send_signal(signal.SIGTERM)
            _, rest = process.communicate(timeout=60)
    assert process.returncode == 0
    assert_json_lines(rest)
    assert list(tmp_path.iterdir()) == []  # the metrics directory is gone


def test_a_refusal_to_start_is_one_json_line(venv: Path, tmp_path: Path) -> None:
    env = _clean_env(AGENTCORE_BACKEND="aws", AWS_CONFIG_FILE="/nonexistent")
    refused = subprocess.run(
        [venv / "bin" / "agentcore-memory-grpc"],
        cwd=tmp_path,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    [line] = assert_json_lines(refused.stderr)
    assert "AWS_REGION" in str(line["message"])


def test_emulator_console_script_serves(venv: Path, tmp_path: Path) -> None:
    command = [venv / "bin" / "agentcore-memory-emulator", "--port", "0"]
    with subprocess.Popen(
        command, cwd=tmp_path, env=_clean_env(), stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stderr is not None
            assert re.search(r"listening on http://127\.0\.0\.1:\d+", process.stderr.readline())
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)
    assert process.returncode == 0
