"""The metrics as a fleet uses them: `python -m service` serving /metrics, a real Prometheus scraping
it and answering PromQL, and the alert rules under `promtool`.

Prometheus and promtool come from Debian's `prometheus` package (make test installs it); without them
these tests skip and say so on a developer's machine, and fail in CI. All traffic stays on loopback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from docs import tables
from emulator import DEFAULT_MEMORY_ID
from tests.helpers import ROOT, free_port
from tests.integration.helpers import UNKNOWN_MEMORY_ID, debian_tool

RULES = ROOT / "deploy" / "prometheus" / "alerts.yaml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yaml"
SERVICE = "agentcore.memory.v1.MemoryRecordsService"
JOB = "agentcore-memory-grpc"
WAIT_SECONDS = 30
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout: float = WAIT_SECONDS) -> T:
    """The first truthy answer of `probe`, polled until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError):
            answer = probe()
            if answer:
                return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        body: bytes = answer.read()
        return body.decode()


# --- the service as a process ----------------------------------------------------------------------


@dataclasses.dataclass
class ServiceProcess:
    process: subprocess.Popen[str]
    grpc_port: int
    metrics_port: int
    log_lines: list[dict[str, Any]]

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def rpc_lines(self) -> list[dict[str, Any]]:
        return [line for line in list(self.log_lines) if line.get("message") == "finished call"]


def _collect(stream: IO[str], lines: list[dict[str, Any]]) -> None:
    for raw in stream:
        with contextlib.suppress(ValueError):
            lines.append(json.loads(raw))


@contextlib.contextmanager
def serving(**variables: str) -> Iterator[ServiceProcess]:
    """`python -m service` on the local backend and free loopback ports, with these settings besides;
    stopped with SIGTERM at the end, which it must exit 0 from."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PROMETHEUS_"))}
    env.update(
        PYTHONPATH=f"{ROOT / 'generated'}:{ROOT}",
        AGENTCORE_BACKEND="local",
        GRPC_HOST="127.0.0.1",
        GRPC_PORT="0",
        METRICS_PORT="0",
        LOG_LEVEL="INFO",
        SHUTDOWN_GRACE_SECONDS="1",
    )
    env.update(variables)
    process = subprocess.Popen(
        [sys.executable, "-m", "service"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    lines: list[dict[str, Any]] = []
    threading.Thread(target=_collect, args=(process.stderr, lines), daemon=True).start()
    try:
        start = eventually(
            lambda: next(
                (line for line in list(lines) if line.get("message", "").startswith("serving")), None
            ),
            "the service's start line",
        )
        yield ServiceProcess(process, int(start["grpcPort"]), int(start["metricsPort"]), lines)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def service() -> Iterator[ServiceProcess]:
    with serving() as running:
        yield running


def drive(service: ServiceProcess, *, ok: int, invalid: int, not_found: int) -> None:
    """`ok` successful BatchCreate calls, `invalid` refused ones, `not_found` for an unknown memory."""
    record = pb.MemoryRecordCreate(
        request_identifier="r1",
        namespaces=["users/alice"],
        content=pb.MemoryContent(text="likes green tea"),
        timestamp=timestamp_pb2.Timestamp(seconds=1_732_560_000),
    )
    with grpc.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
        stub = pb_grpc.MemoryRecordsServiceStub(channel)
        for memory_id, count in ((DEFAULT_MEMORY_ID, ok), ("", invalid), (UNKNOWN_MEMORY_ID, not_found)):
            for _ in range(count):
                with contextlib.suppress(grpc.RpcError):
                    stub.BatchCreate(pb.BatchCreateRequest(memory_id=memory_id, records=[record]), timeout=10)
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)


def test_serve_exposes_metrics_and_logs_one_line_per_rpc(service: ServiceProcess) -> None:
    drive(service, ok=2, invalid=1, not_found=1)
    exposition = http_get(service.metrics_url)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }
    build_info = ("agentcore_build_info", (("backend", "local"), ("version", "0.1.0")))
    assert samples[build_info] == 1

    def handled(code: str) -> float:
        key = (
            ("grpc_code", code),
            ("grpc_method", "BatchCreate"),
            ("grpc_service", SERVICE),
            ("grpc_type", "unary"),
        )
        return samples[("grpc_server_handled_total", key)]

    assert (handled("OK"), handled("InvalidArgument"), handled("NotFound")) == (2, 1, 1)

    # One line per RPC at INFO; the health check logs at DEBUG, below LOG_LEVEL=INFO.
    eventually(lambda: len(service.rpc_lines()) >= 4, "the RPC lines")
    time.sleep(0.2)  # room for a line too many to show up
    lines = service.rpc_lines()
    assert sorted(line["grpcCode"] for line in lines) == ["InvalidArgument", "NotFound", "OK", "OK"]
    assert {line["method"] for line in lines} == {f"/{SERVICE}/BatchCreate"}
    for line in lines:
        assert line["logger"] == "service.rpc"
        assert line["level"] == "INFO"
        assert line["durationSeconds"] > 0
        assert line["recordCount"] == 1
        assert "likes green tea" not in json.dumps(line)
    assert all(line["awsRequestId"] for line in lines if line["grpcCode"] != "InvalidArgument")

    promtool = shutil.which("promtool")
    if promtool is not None:
        checked = subprocess.run(
            [promtool, "check", "metrics"],
            input=exposition,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


# --- a real Prometheus -------------------------------------------------------------------------------


@dataclasses.dataclass
class Prometheus:
    url: str

    def query(self, promql: str) -> list[dict[str, Any]]:
        answer = json.loads(http_get(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"))
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def by(self, label: str, promql: str) -> dict[str, float]:
        return {series["metric"].get(label, ""): float(series["value"][1]) for series in self.query(promql)}


@contextlib.contextmanager
def scraping(
    tmp_path: Path,
    metrics_ports: list[int],
    labels: dict[str, str] | None = None,
    features: tuple[str, ...] = (),
) -> Iterator[Prometheus]:
    """A Prometheus scraping these ports every second as the job JOB, with the alert rules loaded; each
    series gets `labels` too (as a ServiceMonitor's get `namespace`), and `features` are enabled."""
    binary = debian_tool("prometheus")
    config = tmp_path / "prometheus.yml"
    targets = ", ".join(f"'127.0.0.1:{port}'" for port in metrics_ports)
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        f"rule_files: ['{RULES}']\n"
        "scrape_configs:\n"
        f"  - job_name: {JOB}\n"
        "    static_configs:\n"
        f"      - targets: [{targets}]\n"
        f"        labels: {json.dumps(labels or {})}\n"
    )
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            "--log.level=warn",
            *(f"--enable-feature={feature}" for feature in features),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        eventually(lambda: process.poll() is None and http_get(f"{url}/-/ready"), "Prometheus to be ready")
        yield Prometheus(url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.fixture
def prometheus(service: ServiceProcess, tmp_path: Path) -> Iterator[Prometheus]:
    with scraping(tmp_path, [service.metrics_port]) as running:
        yield running


def test_a_real_prometheus_scrapes_the_service_and_answers_promql(
    service: ServiceProcess, prometheus: Prometheus
) -> None:
    up = f'up{{job="{JOB}"}}'
    eventually(lambda: prometheus.by("job", up).get(JOB) == 1, "the scrape target to be up")
    # Scraped once at zero before any call, so that rates start from a known point.
    eventually(
        lambda: prometheus.query(f'grpc_server_handled_total{{job="{JOB}",grpc_method="BatchCreate"}}'),
        "the pre-initialised series",
    )
    ok, invalid, not_found = 6, 3, 1
    drive(service, ok=ok, invalid=invalid, not_found=not_found)
    total = ok + invalid + not_found
    scraped = (
        f'sum(grpc_server_handled_total{{job="{JOB}",grpc_service="{SERVICE}",grpc_method="BatchCreate"}})'
    )
    eventually(lambda: prometheus.by("", scraped).get("") == total, "a scrape after the calls")

    quantiles = prometheus.by(
        "grpc_method",
        "histogram_quantile(0.99, sum by (le, grpc_method) (rate(grpc_server_handling_seconds_bucket[1m])))",
    )
    # Every registered method has a series (pre-initialised); only BatchCreate was called.
    assert {"BatchCreate", "BatchUpdate", "Get", "Check"} <= set(quantiles)
    assert math.isnan(quantiles["Get"])
    lower, upper = p99_bucket(http_get(service.metrics_url), "BatchCreate")
    assert lower < quantiles["BatchCreate"] <= upper

    ours = f'grpc_service="{SERVICE}"'
    error_ratio = prometheus.by(
        "grpc_method",
        f'sum by (grpc_method) (rate(grpc_server_handled_total{{{ours},grpc_code!="OK"}}[1m]))'
        f" / sum by (grpc_method) (rate(grpc_server_handled_total{{{ours}}}[1m]))",
    )
    assert error_ratio["BatchCreate"] == pytest.approx((invalid + not_found) / total, abs=0.01)
    assert math.isnan(error_ratio["Get"])  # no calls: 0/0, so no alert either

    upstream = prometheus.by(
        "outcome",
        "sum by (outcome) (agentcore_upstream_request_duration_seconds_count"
        '{operation="BatchCreateMemoryRecords"})',
    )
    assert upstream == {"success": ok, "client_error": not_found}  # the invalid calls never reached AWS

    rules = json.loads(http_get(f"{prometheus.url}/api/v1/rules"))["data"]["groups"]
    loaded = {rule["name"]: rule["health"] for group in rules for rule in group["rules"]}
    assert loaded == dict.fromkeys(
        (
            "AgentCoreGrpcErrorRatioHigh",
            "AgentCoreGrpcLatencyP99High",
            "AgentCoreUpstreamThrottling",
            "AgentCoreUpstreamErrors",
            "AgentCoreOverloaded",
            "AgentCoreUpstreamRetryQuotaExhausted",
            "AgentCoreCertificateRotationOverdue",
            "AgentCoreConfigReloadFailing",
            "AgentCoreWorkerRestarts",
            "AgentCoreRateLimitStorageDown",
        ),
        "ok",
    )

    for example in docs_example_queries():
        prometheus.query(example)  # each example of docs/metrics.md is valid PromQL over these metrics


def p99_bucket(exposition: str, method: str) -> tuple[float, float]:
    """The bucket (lower, upper] the service's own histogram puts the 99th percentile of `method` in."""
    buckets = sorted(
        (float(sample.labels["le"]), sample.value)
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "grpc_server_handling_seconds_bucket" and sample.labels["grpc_method"] == method
    )
    total = buckets[-1][1]
    lower = 0.0
    for bound, count in buckets:
        if count >= 0.99 * total:
            return lower, bound
        lower = bound
    raise AssertionError("no bucket holds the 99th percentile")


def docs_example_queries() -> list[str]:
    """The example query column of the metric table of docs/metrics.md (docs/tables.py writes it)."""
    return list(tables.QUERIES.values())


# --- alert rules --------------------------------------------------------------------------------------


def test_alert_rules_pass_promtool_check_and_their_unit_tests() -> None:
    promtool = debian_tool("promtool")
    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 10 rules found" in checked.stdout
    tested = subprocess.run(
        [promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, check=False, timeout=60
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
