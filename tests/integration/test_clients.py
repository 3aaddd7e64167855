"""The contract proven from the languages most callers write: the Go suite (tests/integration/go_client.py,
`go test` of tests/go) and the Java suite (tests/integration/java_client.py, `mvn test` of tests/java),
each against facade processes of its own. They run at the same time: each spends 35 s of real time on
its keepalive check with the CPU idle, so side by side they cost about 40 s, not 80."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import pytest

from tests.integration.go_client import go_client_suite
from tests.integration.java_client import java_client_suite


def test_go_and_java_clients_call_every_rpc_balance_retry_and_keep_their_connections(tmp_path: Path) -> None:
    suites = {"Go": go_client_suite, "Java": java_client_suite}
    for name in suites:
        (tmp_path / name).mkdir()
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(suites)) as pool:
        running = {name: pool.submit(suite, tmp_path / name) for name, suite in suites.items()}
        failures = {name: future.exception() for name, future in running.items()}
    for name, failure in failures.items():
        if failure is not None and not isinstance(failure, pytest.skip.Exception):
            raise AssertionError(f"the {name} suite failed: {failure}") from failure
    for failure in failures.values():
        if failure is not None:
            raise failure  # a language missing on a developer's machine (in CI that fails instead)
