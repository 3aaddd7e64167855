"""The contract proven from Go: the Go client tests (tests/go/, `go test`, with the generated client of
generated/go and grpc-go) against `python -m service` processes on the embedded emulator, so that one
runner reports them (tests/integration/test_clients.py, beside the Java suite). The Go modules come from
`make client-deps` (`go mod download`): the tests run offline (GOPROXY=off, -mod=readonly) with the
machine's own Go. Without go the test skips on a developer's machine and fails in CI.

One `go test` run serves every Go test at once (their 35 s keepalive run beside the rest), against: a
plaintext facade; one over mutual TLS whose policy admits one SPIFFE ID; one whose AWS answers late
(LOCAL_FAULTS latency), for deadlines; a pair on one store (the second in aws mode on the first's
emulator, as replicas share AWS) for load balancing, the second of which the Go test stops with SIGTERM
mid-run; and a second such pair, whose emulator answers late (so that calls are in flight), the second
of which (not the first, which owns the store) the Go test kills with SIGKILL mid-call, for the
service config's retries and the client_token's safety."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

from tests.helpers import ROOT, require, service_process
from tests.integration.helpers import admitting_one_caller

GO_TESTS = ROOT / "tests" / "go"
GO_TEST_TIMEOUT_SECONDS = 300
GO_CLIENT_ID = "spiffe://cluster.local/ns/go/sa/client"
DENIED_CLIENT_ID = "spiffe://cluster.local/ns/go/sa/intruder"
# The emulator of the slow facade answers after this long; the Go test's deadline is 500 ms.
SLOW_LATENCY_SECONDS = "3"
# The drain of the facade the Go test stops: long enough to tell health checking (it leaves rotation
# at once) from the stop (connections refused after the drain). The Go client's health Watch is ended
# when the drain is over, so the stop does not wait out the grace (the default, 10 s).
DRAIN_SECONDS = "3"
# The emulator of the pair whose second facade the Go test kills answers after this long, so that calls
# are in flight on the facade when it is killed; the retried calls wait it out on the other.
CRASH_LATENCY_SECONDS = "0.2"
# The Go tests, each of which must have run and passed (with all of its subtests): the top-level ones,
# and the subtest that the crash pair is for.
GO_TESTS_EXPECTED = {
    "TestEveryRPC",
    "TestBatchCreateOf250Records",
    "TestErrorDetails",
    "TestPermissionDenied",
    "TestDeadlineReachesTheFacade",
    "TestKeepalive",
    "TestTwoFacades",
    "TestTwoFacades/published_config_retries_a_kill",
    "TestDocsExample",
}
# The Go test of a traced call (tests/go/trace_test.go), left to tests/integration/test_trace_jaeger.py.
GO_TRACE_TEST = "TestTraceOfBatchCreate"


def go_or_skip() -> str:
    """The path of `go`."""
    go = shutil.which("go")
    require(go is not None, "go is not installed")
    assert go is not None
    return go


def offline_env(**variables: str) -> dict[str, str]:
    """The environment of `go test` in tests/go: offline, with the machine's own Go, plus `variables`."""
    return {
        **os.environ,
        "GOPROXY": "off",
        "GOFLAGS": "-mod=readonly -buildvcs=false",
        "GOTOOLCHAIN": "local",
        **variables,
    }


def run_go_tests(go: str, **variables: str) -> dict[str, str]:
    """`go test` of tests/go, offline, every test run now (-count=1); each test's final action."""
    env = offline_env(**variables)
    # -parallel: the tests wait on the facades (and the keepalive one on the clock), not on the CPU.
    # -skip: the trace test needs a Jaeger, and runs alone in tests/integration/test_trace_jaeger.py.
    command = [
        go,
        "test",
        "-count=1",
        "-json",
        "-parallel=8",
        "-timeout=180s",
        f"-skip=^{GO_TRACE_TEST}$",
        "./...",
    ]
    result = subprocess.run(
        command,
        cwd=GO_TESTS,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=GO_TEST_TIMEOUT_SECONDS,
    )
    outcomes: dict[str, str] = {}
    output: list[str] = []
    for line in result.stdout.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            output.append(line + "\n")  # the build's own messages
            continue
        output.append(event.get("Output", ""))
        if "Test" in event and event.get("Action") in ("pass", "fail", "skip"):
            outcomes[event["Test"]] = event["Action"]
    report = "".join(output) + result.stderr
    print(report)  # shown by pytest -s, and on a failure
    hint = "\n(the Go modules come from `make client-deps`)" if "GOPROXY=off" in report else ""
    assert result.returncode == 0, f"go test failed:\n{report}{hint}"
    # A skipped test proves nothing: none may be.
    assert {name: action for name, action in outcomes.items() if action != "pass"} == {}, report
    assert outcomes.keys() >= GO_TESTS_EXPECTED, f"not run: {GO_TESTS_EXPECTED - outcomes.keys()}\n{report}"
    return outcomes


def go_client_suite(tmp_path: Path) -> None:
    """The Go client tests against their facades (tests/integration/test_clients.py runs it)."""
    go = go_or_skip()
    tls_settings = admitting_one_caller(tmp_path, GO_CLIENT_ID, DENIED_CLIENT_ID)
    # For a failure's message: enough lines for a crash's tracebacks of every thread (PYTHONFAULTHANDLER).
    stopped_log: collections.deque[str] = collections.deque(maxlen=400)
    with contextlib.ExitStack() as facades:
        _, plain = facades.enter_context(service_process(AGENTCORE_BACKEND="local"))
        _, secure = facades.enter_context(
            service_process(
                AGENTCORE_BACKEND="local",
                **tls_settings,
            )
        )
        _, slow = facades.enter_context(
            service_process(AGENTCORE_BACKEND="local", LOCAL_FAULTS=f"latency={SLOW_LATENCY_SECONDS}")
        )
        _, first = facades.enter_context(service_process(AGENTCORE_BACKEND="local"))
        second_process, second = facades.enter_context(
            service_process(
                log_tail=stopped_log,
                AGENTCORE_BACKEND="aws",
                AWS_ENDPOINT_URL_BEDROCK_AGENTCORE=str(first["awsEndpoint"]),
                AWS_REGION="us-east-1",
                AWS_ACCESS_KEY_ID="local",
                AWS_SECRET_ACCESS_KEY="local",
                SHUTDOWN_DRAIN_SECONDS=DRAIN_SECONDS,
            )
        )
        # The crash pair: the first owns the store (its embedded emulator), the second, on it, is killed.
        _, survivor = facades.enter_context(
            service_process(AGENTCORE_BACKEND="local", LOCAL_FAULTS=f"latency={CRASH_LATENCY_SECONDS}")
        )
        victim_process, victim = facades.enter_context(
            service_process(
                AGENTCORE_BACKEND="aws",
                AWS_ENDPOINT_URL_BEDROCK_AGENTCORE=str(survivor["awsEndpoint"]),
                AWS_REGION="us-east-1",
                AWS_ACCESS_KEY_ID="local",
                AWS_SECRET_ACCESS_KEY="local",
            )
        )
        run_go_tests(
            go,
            MEMORY_RECORDS_ADDRESS=f"127.0.0.1:{plain['grpcPort']}",
            MEMORY_RECORDS_TLS_ADDRESS=f"127.0.0.1:{secure['grpcPort']}",
            MEMORY_RECORDS_TLS_CA_FILE=str(tmp_path / "ca.crt"),
            MEMORY_RECORDS_TLS_CERT_FILE=str(tmp_path / "client.crt"),
            MEMORY_RECORDS_TLS_KEY_FILE=str(tmp_path / "client.key"),
            MEMORY_RECORDS_TLS_DENIED_CERT_FILE=str(tmp_path / "other.crt"),
            MEMORY_RECORDS_TLS_DENIED_KEY_FILE=str(tmp_path / "other.key"),
            MEMORY_RECORDS_SLOW_ADDRESS=f"127.0.0.1:{slow['grpcPort']}",
            MEMORY_RECORDS_SLOW_METRICS_ADDRESS=f"127.0.0.1:{slow['metricsPort']}",
            MEMORY_RECORDS_SLOW_LATENCY_SECONDS=SLOW_LATENCY_SECONDS,
            MEMORY_RECORDS_PAIR_ADDRESSES=f"127.0.0.1:{first['grpcPort']},127.0.0.1:{second['grpcPort']}",
            MEMORY_RECORDS_PAIR_METRICS_ADDRESSES=(
                f"127.0.0.1:{first['metricsPort']},127.0.0.1:{second['metricsPort']}"
            ),
            MEMORY_RECORDS_PAIR_STOP_PID=str(second_process.pid),
            MEMORY_RECORDS_PAIR_DRAIN_SECONDS=DRAIN_SECONDS,
            MEMORY_RECORDS_CRASH_PAIR_ADDRESSES=(
                f"127.0.0.1:{survivor['grpcPort']},127.0.0.1:{victim['grpcPort']}"
            ),
            MEMORY_RECORDS_CRASH_PAIR_KILL_PID=str(victim_process.pid),
            MEMORY_RECORDS_CRASH_PAIR_LATENCY_SECONDS=CRASH_LATENCY_SECONDS,
        )
        # The facade the Go test stopped drained and exited cleanly; the one it killed died of SIGKILL
        # (reaped here, by its parent).
        stopped_code = second_process.wait(timeout=15)
        assert stopped_code == 0, f"the stopped facade exited {stopped_code}: {''.join(stopped_log)}"
        killed_code = victim_process.wait(timeout=10)
        assert killed_code == -signal.SIGKILL, f"the killed facade exited {killed_code}"
