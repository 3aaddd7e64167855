"""The contract proven from Java: the JUnit tests of tests/java (the generated client of generated/java,
grpc-java with netty-shaded) against `python -m service` processes, so that one runner reports them
(tests/integration/test_clients.py, beside the Go suite).

pytest starts the facades and names them in MEMORY_RECORDS_* variables: one in plaintext, one over
mutual TLS with a policy that admits only the Java client's SPIFFE ID, one whose emulator answers late
(LOCAL_FAULTS latency, for deadlines; with its /metrics), two replicas over one AWS (an emulator here)
for the service config's health-checked balancing, one of which the Java test stops with SIGTERM, and
the crash pair for its retry policy: a facade whose embedded emulator answers late (so that calls are in
flight) and owns the store, and a second in aws mode on that emulator, which the Java test kills with
SIGKILL mid-call (and pytest reaps). Maven runs offline (`mvn -o`): `make client-deps` installs the Java
client into ~/.m2 and fetches what tests/java needs. Without mvn or java the test skips on a developer's
machine and fails in CI."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

from emulator import Emulator
from tests.helpers import ROOT, require, service_process
from tests.integration.helpers import admitting_one_caller

JAVA_TESTS = ROOT / "tests" / "java"
SUREFIRE_REPORTS = JAVA_TESTS / "target" / "surefire-reports"
# Held for a run of `mvn test`: tests/java/target is one directory, so runs at the same time (two pytest
# sessions in one checkout) would clear each other's classes and reports; they take turns instead.
RUN_LOCK = JAVA_TESTS / "target" / "pytest-run.lock"
SERVICE_CONFIG = ROOT / "deploy" / "clients" / "service-config.json"
MVN_TIMEOUT_SECONDS = 300
# Every test of tests/java: the contract's 10 on each transport (the last checks that the others called
# every RPC), 2 more over mutual TLS, the deadline and keepalive tests, the drain and kill tests of the
# service config, and the docs snippet. All must run and pass; a skipped one proves nothing.
JAVA_TESTS_EXPECTED = 10 * 2 + 2 + 2 + 2 + 1
JAVA_CLIENT_ID = "spiffe://cluster.local/ns/java/sa/client"
OTHER_CLIENT_ID = "spiffe://cluster.local/ns/java/sa/intruder"
# The slow facade's emulator waits this long before each answer; the Java deadline is 300 ms, and the
# facade must have counted its AWS call ended within 1 s of it, well before the latency.
SLOW_LATENCY_SECONDS = 3
# The stopped replica drains this long (health NOT_SERVING, still serving), then stops within the grace.
DRAIN_SECONDS = 2
GRACE_SECONDS = 3
# The crash pair's emulator answers after this long, so that calls are in flight on the facade when it is
# killed; the retried calls wait it out on the other.
CRASH_LATENCY_SECONDS = 0.2


def maven_or_skip() -> str:
    """The path of `mvn`, with a `java` beside it."""
    mvn, java = shutil.which("mvn"), shutil.which("java")
    require(mvn is not None and java is not None, "mvn or java is not installed")
    assert mvn is not None
    return mvn


def surefire_totals() -> dict[str, int]:
    """Tests, failures, errors and skipped, summed over surefire's XML reports of the run."""
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    reports = sorted(SUREFIRE_REPORTS.glob("TEST-*.xml"))
    assert reports, f"no surefire reports in {SUREFIRE_REPORTS}"
    for report in reports:
        suite = ET.parse(report).getroot()
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
    return totals


def run_java_tests(mvn: str, **variables: str) -> None:
    """`mvn -o test` of tests/java, whose JAVA_TESTS_EXPECTED tests must all pass and none skip."""
    RUN_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with RUN_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(SUREFIRE_REPORTS, ignore_errors=True)  # counts of this run only
        result = subprocess.run(
            [mvn, "-B", "-o", "-q", "-f", str(JAVA_TESTS / "pom.xml"), "test"],
            cwd=ROOT,
            env={**os.environ, **variables},
            capture_output=True,
            text=True,
            check=False,
            timeout=MVN_TIMEOUT_SECONDS,
        )
        totals = surefire_totals() if result.returncode == 0 else {}
    output = result.stdout + result.stderr
    print(output)  # the tests' own lines (what the retry loops measured), shown by pytest -s
    hint = "" if "offline" not in output else "\n(`make client-deps` fetches what Maven needs offline)"
    assert result.returncode == 0, f"mvn test failed:\n{output}{hint}"
    expected = {"tests": JAVA_TESTS_EXPECTED, "failures": 0, "errors": 0, "skipped": 0}
    assert totals == expected, output


def java_client_suite(tmp_path: Path) -> None:
    """The Java client tests against their facades (tests/integration/test_clients.py runs it)."""
    mvn = maven_or_skip()
    tls_settings = admitting_one_caller(tmp_path, JAVA_CLIENT_ID, OTHER_CLIENT_ID)
    with Emulator() as aws, contextlib.ExitStack() as processes:
        _, plain = processes.enter_context(service_process(AGENTCORE_BACKEND="local"))
        _, mtls = processes.enter_context(
            service_process(
                AGENTCORE_BACKEND="local",
                **tls_settings,
            )
        )
        _, slow = processes.enter_context(
            service_process(AGENTCORE_BACKEND="local", LOCAL_FAULTS=f"latency={SLOW_LATENCY_SECONDS}")
        )
        # Two replicas of the facade over one AWS, as in a Deployment: a record either wrote, the other reads.
        replica_env = {
            "AGENTCORE_BACKEND": "aws",
            "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE": aws.endpoint_url,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "SHUTDOWN_DRAIN_SECONDS": str(DRAIN_SECONDS),
            "SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
        }
        _, staying = processes.enter_context(service_process(**replica_env))
        stopping_process, stopping = processes.enter_context(service_process(**replica_env))
        # The Java test sends SIGTERM to this one and waits for its exit, which only its parent (pytest)
        # can reap.
        threading.Thread(target=stopping_process.wait, daemon=True).start()
        replicas = [f"127.0.0.1:{start['grpcPort']}" for start in (staying, stopping)]
        # The crash pair: the first owns the store (its embedded emulator), the second, on it, is killed.
        _, survivor = processes.enter_context(
            service_process(AGENTCORE_BACKEND="local", LOCAL_FAULTS=f"latency={CRASH_LATENCY_SECONDS}")
        )
        victim_process, victim = processes.enter_context(
            service_process(
                AGENTCORE_BACKEND="aws",
                AWS_ENDPOINT_URL_BEDROCK_AGENTCORE=str(survivor["awsEndpoint"]),
                AWS_DEFAULT_REGION="us-east-1",
                AWS_ACCESS_KEY_ID="x",
                AWS_SECRET_ACCESS_KEY="x",
            )
        )
        crash_pair = [f"127.0.0.1:{start['grpcPort']}" for start in (survivor, victim)]

        run_java_tests(
            mvn,
            MEMORY_RECORDS_ADDRESS=f"127.0.0.1:{plain['grpcPort']}",
            MEMORY_RECORDS_MTLS_ADDRESS=f"127.0.0.1:{mtls['grpcPort']}",
            MEMORY_RECORDS_TLS_CA_FILE=str(tmp_path / "ca.crt"),
            MEMORY_RECORDS_TLS_CERT_FILE=str(tmp_path / "client.crt"),
            MEMORY_RECORDS_TLS_KEY_FILE=str(tmp_path / "client.key"),
            MEMORY_RECORDS_TLS_OTHER_CERT_FILE=str(tmp_path / "other.crt"),
            MEMORY_RECORDS_TLS_OTHER_KEY_FILE=str(tmp_path / "other.key"),
            MEMORY_RECORDS_SLOW_ADDRESS=f"127.0.0.1:{slow['grpcPort']}",
            MEMORY_RECORDS_SLOW_METRICS_ADDRESS=f"127.0.0.1:{slow['metricsPort']}",
            MEMORY_RECORDS_SLOW_LATENCY_SECONDS=str(SLOW_LATENCY_SECONDS),
            MEMORY_RECORDS_SERVICE_CONFIG=str(SERVICE_CONFIG),
            MEMORY_RECORDS_REPLICA_ADDRESSES=",".join(replicas),
            MEMORY_RECORDS_STOPPING_REPLICA_ADDRESS=replicas[1],
            MEMORY_RECORDS_STOPPING_REPLICA_PID=str(stopping_process.pid),
            MEMORY_RECORDS_CRASH_PAIR_ADDRESSES=",".join(crash_pair),
            MEMORY_RECORDS_CRASH_PAIR_KILL_PID=str(victim_process.pid),
            MEMORY_RECORDS_CRASH_PAIR_LATENCY_SECONDS=str(CRASH_LATENCY_SECONDS),
        )
        # The replica the Java test stopped shut down cleanly on its SIGTERM; the one it killed died of
        # SIGKILL (reaped here, by its parent).
        assert stopping_process.wait(timeout=10) == 0
        assert victim_process.wait(timeout=10) == -signal.SIGKILL
