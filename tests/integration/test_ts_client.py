"""The TypeScript client package proven: generated/ts (protoc-gen-es) built as its package.json says
(`tsc -p generated/ts`, into dist/), installed as a service installs it (the root package.json's
`file:generated/ts`), tests/ts/memory_records.test.ts compiled against it by `tsc --strict`
(tests/ts/tsconfig.json; TypeScript pinned in package-lock.json), then run by `node --test` against
`python -m service` on the embedded emulator, through @connectrpc/connect-node's gRPC transport."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.helpers import ROOT, service_process
from tests.integration.test_node_client import node_or_skip, run_node_tests

TS_PACKAGE = ROOT / "generated" / "ts"
TS_TESTS = ROOT / "tests" / "ts"
COMPILED = ROOT / "var" / "ts"


def tsc(project: Path) -> None:
    """`tsc -p project`, which must compile without an error."""
    compiled = subprocess.run(
        [str(ROOT / "node_modules" / ".bin" / "tsc"), "-p", str(project)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert compiled.returncode == 0, f"tsc -p {project} failed:\n{compiled.stdout}{compiled.stderr}"


def test_a_typescript_client_compiled_strictly_calls_the_service() -> None:
    node = node_or_skip()
    assert (ROOT / "node_modules" / "@agentcore-memory" / "memory-records-client").is_symlink()
    shutil.rmtree(TS_PACKAGE / "dist", ignore_errors=True)  # what this build makes, nothing older
    tsc(TS_PACKAGE)
    tsc(TS_TESTS)
    test_files = sorted(str(path) for path in COMPILED.glob("*.test.js"))
    assert test_files, f"tsc wrote no *.test.js under {COMPILED}"
    with service_process(AGENTCORE_BACKEND="local") as (_, start):
        run_node_tests(node, test_files, MEMORY_RECORDS_ADDRESS=f"127.0.0.1:{start['grpcPort']}")
