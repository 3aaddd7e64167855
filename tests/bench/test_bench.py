"""The bench harness in a smoke run (a few calls of every phase), so that `make bench` cannot rot: every
scenario measured on both sides, instructions counted, every target evaluated."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report, run
from tests.helpers import ROOT, require


def test_a_smoke_run_measures_every_phase(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)]
    if shutil.which("valgrind") is None:
        if os.environ.get("CI"):
            pytest.fail("valgrind is not installed: make test installs it")
        args.append("--no-instructions")
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| target | measured | limit | holds |" in done.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    expected = {(run.name(op, records), callers) for op, records in run.SCENARIOS for callers in run.CALLERS}
    for latency in run.UPSTREAM_LATENCIES:
        measured = {
            (s["name"], s["callers"]) for s in results["scenarios"] if s["upstream_latency"] == latency
        }
        assert measured == expected
    for scenario in results["scenarios"]:
        for side in ("direct", "facade"):
            assert scenario[side]["errors"] == 0, scenario
            assert len(scenario[side]["latencies"]) == scenario[side]["calls"] > 0
    for scenario in results["workers"]:
        assert set(scenario["sides"]) == {"direct", *(run.workers_side(n) for n in run.WORKER_COUNTS)}
        for side in scenario["sides"].values():
            assert side["errors"] == 0, scenario
            assert len(side["latencies"]) == side["calls"] > 0
    assert "| 16 callers, a connection each |" in done.stdout
    assert len(results["large_batch"]["facade"]) == len(results["large_batch"]["loop"]) == 1
    assert set(results["echo"]["models"]) == {"sync", "aio", "aio-thread", "facade"}
    assert all(results["echo"]["models"].values())
    tracing = results["tracing"]
    assert [scenario["name"] for scenario in tracing["latency"]] == [
        run.name(op, records) for op, records in run.TRACING_SCENARIOS
    ]
    for scenario in tracing["latency"]:
        assert set(scenario["sides"]) == {"direct", *run.TRACING_MODES}
        assert all(side["errors"] == 0 and side["calls"] > 0 for side in scenario["sides"].values()), scenario
    assert tracing["spans_exported"] > 0  # the 100% facade's spans reached the sink
    assert "| tracing, 1 caller, 0 ms upstream |" in done.stdout
    if "--no-instructions" not in args:
        assert all(item["facade"] > 1e6 and item["direct"] > 1e6 for item in results["instructions"])
        assert all(item[mode] > 1e6 for item in tracing["instructions"] for mode in run.TRACING_MODES)
    assert len(results["targets"]) == len(report.targets(results)) >= 15
    assert results["rss"]["samples"]


@pytest.mark.parametrize(
    ("tool", "expected"),
    [
        # Each piece alone (bench.pieces broke once, unseen, when the access log began to read the caller).
        (["bench.pieces", "--calls", "1", "update1"], ["our pass (validate + translate)", "access log line"]),
        (["bench.instructions", "--calls", "2", "get"], ["Get"]),
    ],
    ids=["pieces", "instructions"],
)
def test_the_instruction_tools_run(tool: list[str], expected: list[str]) -> None:
    require(shutil.which("valgrind") is not None, "valgrind is not installed: make test installs it")
    done = subprocess.run(
        [sys.executable, "-m", *tool], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name in expected:
        assert re.search(rf"^\s*{re.escape(name)}\s+\d+\.\d+M$", done.stdout, re.MULTILINE), done.stdout
