"""The README's shell blocks work as written: those that talk to a running service run, in order, against
one (on its ports, without PYTHONPATH); those that start the emulator start it, from a directory
without var/; `make` lines are the Makefile's targets (make test runs them); blocks that need what
cannot be installed here (a registry, a cluster) say `not run here` and are skipped; RUN_ELSEWHERE names
the tests that run the others."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT, service_process

NOT_HERE = "not run here"
BLOCKS = re.findall(r"^```sh\n(.*?)^```", (ROOT / "README.md").read_text(), re.MULTILINE | re.DOTALL)


# Blocks that another test runs as written, by a command they hold.
RUN_ELSEWHERE = {"proto-loader-gen-types": "tests/integration/test_node_client.py"}


def readme_block(command: str) -> str:
    """The one README shell block that holds `command`."""
    [block] = [b for b in BLOCKS if command in b]
    return block


def _runnable(block: str) -> str:
    # `make` lines, settings before them included (`WORKERS=2 make run`).
    return "\n".join(line for line in block.splitlines() if not re.match(r"([A-Z_]+=\S* )*make ", line))


SERVICE_BLOCKS = [b for b in BLOCKS if NOT_HERE not in b and re.search(r"localhost:(50051|9464)", b)]
EMULATOR_BLOCKS = [
    _runnable(b)
    for b in BLOCKS
    if NOT_HERE not in b and "agentcore-memory-emulator" in b and b not in SERVICE_BLOCKS
]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_"))}


def _expected(block: str) -> list[str]:
    """The outputs the block's trailing comments promise, up to any `...`."""
    lines = block.rstrip().splitlines()
    promised = []
    while lines and lines[-1].startswith("# "):
        promised.append(lines.pop()[2:].split("...")[0].rstrip(", "))
    return promised


def test_every_block_is_run_or_marked() -> None:
    for block in BLOCKS:
        commands = [
            line for line in _runnable(block).splitlines() if line.strip() and not line.startswith("#")
        ]
        assert (
            not commands
            or NOT_HERE in block
            or block in SERVICE_BLOCKS
            or _runnable(block) in EMULATOR_BLOCKS
            or any(command in block for command in RUN_ELSEWHERE)
        ), block


def test_blocks_against_a_running_service() -> None:
    assert SERVICE_BLOCKS
    with service_process(AGENTCORE_BACKEND="local") as (_, start):
        ports = {"50051": start["grpcPort"], "9464": start["metricsPort"]}
        for block in SERVICE_BLOCKS:
            script = re.sub(r"localhost:(50051|9464)", lambda m: f"127.0.0.1:{ports[m.group(1)]}", block)
            ran = subprocess.run(
                ["bash", "-c", script],
                cwd=ROOT,
                env=_env(),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            output = ran.stdout + ran.stderr
            assert "Traceback" not in output, output
            promised = _expected(block)
            if promised:
                for text in promised:  # as printed, or pretty-printed over several lines
                    assert re.sub(r"\s", "", text) in re.sub(r"\s", "", output), (text, output)
            else:
                assert ran.returncode == 0, (block, output)
                assert ran.stdout.strip(), block


@pytest.mark.parametrize("block", EMULATOR_BLOCKS)
def test_emulator_blocks_start_it_from_a_clean_directory(block: str, tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    script = "exec " + block.replace("--port 8000", "--port 0").replace("\\\n", " ").strip()
    with subprocess.Popen(
        ["bash", "-c", script], cwd=tmp_path, env=_env(), stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stderr is not None
            line = process.stderr.readline()
            assert "listening on http://" in line, line
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)
    assert process.returncode == 0
