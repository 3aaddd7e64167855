"""The contract proven from another language: the Node.js client tests (tests/node/, `node --test`)
against `python -m service` with the embedded emulator, so that one runner reports them. Node and the
client's packages come from `make test` (npm ci, pinned in package-lock.json, which `make lint` needs
anyway for buf): without node the test skips on a developer's machine and fails in CI; node without the
packages is a broken install and fails everywhere."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb

from tests.helpers import ROOT, service_process
from tests.integration.helpers import admitting_one_caller
from tests.test_docs import docs_block

NODE_TESTS = ROOT / "tests" / "node"
NODE_TEST_TIMEOUT_SECONDS = 300
NODE_CLIENT_ID = "spiffe://cluster.local/ns/node/sa/client"
NODE_OTHER_ID = "spiffe://cluster.local/ns/node/sa/other"


def node_or_skip() -> str:
    """The path of `node`, with the client's packages installed next to package.json."""
    node = shutil.which("node")
    if node is None:
        reason = "node is not installed"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    if not (ROOT / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail("the npm packages are missing: `make test` installs them (npm ci)")
    return node


def run_node_tests(node: str, test_files: list[str], **variables: str) -> None:
    """`node --test` of `test_files`, which must all pass and none skip."""
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", *test_files],
        cwd=ROOT,
        env={**os.environ, **variables},
        capture_output=True,
        text=True,
        check=False,
        timeout=NODE_TEST_TIMEOUT_SECONDS,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"node --test failed:\n{output}"
    # A skipped test proves nothing: none may be.
    assert "\u2139 fail 0" in output and "\u2139 skipped 0" in output, output


def test_a_node_client_calls_every_rpc_and_decodes_the_errors() -> None:
    node = node_or_skip()
    # Node 20 takes directories, Node 22 globs: the files themselves suit both.
    test_files = sorted(str(path) for path in NODE_TESTS.glob("*.test.mjs"))
    assert test_files, f"no *.test.mjs under {NODE_TESTS}"
    with service_process(AGENTCORE_BACKEND="local") as (_, start):
        run_node_tests(node, test_files, MEMORY_RECORDS_ADDRESS=f"127.0.0.1:{start['grpcPort']}")


def test_a_node_client_connects_over_mutual_tls(tmp_path: Path) -> None:
    node = node_or_skip()
    # Only the client's SPIFFE ID may call: a served call shows that the server saw that identity.
    tls_settings = admitting_one_caller(tmp_path, NODE_CLIENT_ID, NODE_OTHER_ID)
    with service_process(AGENTCORE_BACKEND="local", **tls_settings) as (_, start):
        run_node_tests(
            node,
            [str(NODE_TESTS / "mutual_tls.mjs")],
            MEMORY_RECORDS_ADDRESS=f"127.0.0.1:{start['grpcPort']}",
            MEMORY_RECORDS_TLS_CA_FILE=str(tmp_path / "ca.crt"),
            MEMORY_RECORDS_TLS_CERT_FILE=str(tmp_path / "client.crt"),
            MEMORY_RECORDS_TLS_KEY_FILE=str(tmp_path / "client.key"),
        )


def test_the_docs_command_types_every_rpc_for_typescript(tmp_path: Path) -> None:
    node_or_skip()
    # The command of docs/calling.md, as written but for its output directory.
    block = docs_block("proto-loader-gen-types")
    command = ["bash", "-c", block.replace("--outDir=gen/ts", f"--outDir={tmp_path}")]
    assert command[2] != block
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    typed = (tmp_path / "agentcore" / "memory" / "v1" / "MemoryRecordsService.ts").read_text()
    methods = pb.DESCRIPTOR.services_by_name["MemoryRecordsService"].methods
    assert methods
    for method in methods:
        assert f"  {method.name}(argument: _agentcore_memory_v1_{method.input_type.name}," in typed
