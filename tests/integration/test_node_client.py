"""The contract proven from another language: the Node.js client tests (tests/node/, `node --test`)
against `python -m service` with the embedded emulator, so that one runner reports them. Node and the
client's packages come from `make test` (npm ci, pinned in package-lock.json); without them the test
skips on a developer's machine and fails in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb

from tests.helpers import ROOT, service_process
from tests.test_readme import readme_block

NODE_TESTS = ROOT / "tests" / "node"
NODE_TEST_TIMEOUT_SECONDS = 300


def node_or_skip() -> str:
    """The path of `node`, with the client's packages installed next to package.json."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "@grpc" / "grpc-js").is_dir():
        reason = "node or the npm packages are missing: `make test` installs them (npm ci)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return node


def test_a_node_client_calls_every_rpc_and_decodes_the_errors() -> None:
    node = node_or_skip()
    # Node 20 takes directories, Node 22 globs: the files themselves suit both.
    test_files = sorted(str(path) for path in NODE_TESTS.glob("*.test.mjs"))
    assert test_files, f"no *.test.mjs under {NODE_TESTS}"
    with service_process(AGENTCORE_BACKEND="local") as (_, start):
        result = subprocess.run(
            [node, "--test", "--test-reporter=spec", *test_files],
            cwd=ROOT,
            env={**os.environ, "MEMORY_RECORDS_ADDRESS": f"127.0.0.1:{start['grpcPort']}"},
            capture_output=True,
            text=True,
            check=False,
            timeout=NODE_TEST_TIMEOUT_SECONDS,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"node --test failed:\n{output}"
    # A skipped test proves nothing: none may be.
    assert "\u2139 fail 0" in output and "\u2139 skipped 0" in output, output


def test_the_readme_command_types_every_rpc_for_typescript(tmp_path: Path) -> None:
    node_or_skip()
    # The command of the README's "Call it from your language", as written but for its output directory.
    block = readme_block("proto-loader-gen-types")
    command = ["bash", "-c", block.replace("--outDir=gen/ts", f"--outDir={tmp_path}")]
    assert command[2] != block
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    typed = (tmp_path / "agentcore" / "memory" / "v1" / "MemoryRecordsService.ts").read_text()
    methods = pb.DESCRIPTOR.services_by_name["MemoryRecordsService"].methods
    assert methods
    for method in methods:
        assert f"  {method.name}(argument: _agentcore_memory_v1_{method.input_type.name}," in typed
