"""Every query of the Grafana dashboard (deploy/grafana/agentcore-memory-grpc.json) returns data from a
real Prometheus: five facades under traffic that moves every panel, one Prometheus scraping them, and
each panel's every query, read from the JSON itself with its template variables set as Grafana sets them,
must give a series with a value other than 0 over the run, and each query that asks for exemplars must
find some (as Grafana asks, /api/v1/query_exemplars). A query that cannot is a defect: a wrong metric or
label, or traffic this test does not make for a new panel.

The facades: one plain and traced (successes, callers' mistakes, a batch with a record that fails; its
spans go to a sink that accepts them, its latency observations carry them as exemplars); one whose
emulator throttles, then answers 5xx to everything (retries until botocore's retry quota runs dry); one
with room for two RPCs and one turn to call AWS (RPCs waiting, RPCs refused); one whose policy limits
every caller to 1 RPC a second (refusals by a limit); and one with WORKERS=2 and mutual TLS
(certificates, a reload state, a killed worker restarted). Traffic comes in two rounds with a scrape
between them, so that a series created by its first increment (a new error code) has a rate in the
second. Skips without Prometheus, like tests/integration/test_prometheus.py (fails with CI=true).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import math
import os
import re
import signal
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc

from bench.otlp_sink import receiving
from tests.certs import Authority
from tests.helpers import (
    MEMORY_ID,
    UNKNOWN_RECORD_ID,
    dashboard,
    dashboard_panels,
    record_create,
    update_request,
)
from tests.integration.helpers import UNKNOWN_MEMORY_ID, debian_tool
from tests.integration.test_prometheus import JOB, Prometheus, eventually, http_get, scraping, serving
from tests.integration.test_workers import Supervised, supervised

NAMESPACE = "agentcore-test"
# Grafana's $__rate_interval for a scrape every second: four scrapes.
RATE_INTERVAL = "4s"
RPC_TIMEOUT_SECONDS = 20
# Room for two RPCs and one turn, each AWS call held this long: one RPC runs, one waits, the rest are
# refused, and every scrape (one a second) in between sees them.
SLOW_AWS_SECONDS = 1.2
CALLS_AT_ONCE = 5
# Enough failed calls for botocore's retry quota to run dry (tests/integration/test_metrics.py: < 30).
FAILING_CALLS = 24
# Gets of a caller limited to 1 a second, sent at once.
LIMITED_CALLS = 4
LIMITS = "limits: [{principals: ['anonymous'], requests_per_second: 1}]\n"


def _regex_escaped(value: str) -> str:
    """A label value as Grafana writes it into a regex matcher of a PromQL string."""
    return re.sub(r"[\\^$*+?.()|\[\]{}]", lambda m: "\\\\" + m.group(0), value)


def _substituted(expr: str, values: dict[str, str]) -> str:
    expr = expr.replace("$__rate_interval", RATE_INTERVAL)
    for name, value in values.items():
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    return expr


def variable_values(prometheus: Prometheus) -> dict[str, str]:
    """Each query variable set to every value its own query finds (which must find one), in order, as
    Grafana formats several values for a regex matcher."""
    values: dict[str, str] = {}
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = _substituted(variable["query"], values)
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
        assert match is not None, f"${variable['name']}: not a label_values query: {query}"
        selector, label = match.groups()
        match_selector = urllib.parse.urlencode({"match[]": selector})
        answer = json.loads(http_get(f"{prometheus.url}/api/v1/label/{label}/values?{match_selector}"))
        assert answer["status"] == "success", answer
        found: list[str] = answer["data"]
        assert found, f"${variable['name']}: {query} finds no value"
        values[variable["name"]] = "(" + "|".join(_regex_escaped(value) for value in found) + ")"
    return values


def moved(prometheus: Prometheus, expr: str, start: float) -> bool:
    """Whether `expr` gives, at some second since `start`, a series with a value other than 0."""
    query = {"query": expr, "start": f"{start:.3f}", "end": f"{time.time():.3f}", "step": "1"}
    answer = json.loads(http_get(f"{prometheus.url}/api/v1/query_range?{urllib.parse.urlencode(query)}"))
    assert answer["status"] == "success", (expr, answer)
    return any(
        math.isfinite(value) and value != 0
        for series in answer["data"]["result"]
        for value in (float(point[1]) for point in series["values"])
    )


def has_exemplars(prometheus: Prometheus, expr: str, start: float) -> bool:
    """Whether Prometheus holds exemplars with a trace id for the series `expr` reads, since `start`."""
    query = {"query": expr, "start": f"{start:.3f}", "end": f"{time.time():.3f}"}
    answer = json.loads(http_get(f"{prometheus.url}/api/v1/query_exemplars?{urllib.parse.urlencode(query)}"))
    assert answer["status"] == "success", (expr, answer)
    return any(
        exemplar["labels"].get("trace_id") for series in answer["data"] for exemplar in series["exemplars"]
    )


def scraped_since(prometheus: Prometheus, moment: float, targets: int) -> None:
    """Wait for every target to have been scraped (and up) after `moment`."""
    eventually(
        lambda: (
            prometheus.by("", f'count(timestamp(up{{job="{JOB}"}} == 1) > {moment:.3f})').get("") == targets
        ),
        f"a scrape of all {targets} targets",
    )


# --- traffic ------------------------------------------------------------------------------------------


def _code(method: Callable[..., Any], request: Any) -> grpc.StatusCode:
    """The code a unary call of `method` with `request` ends with."""
    try:
        method(request, timeout=RPC_TIMEOUT_SECONDS)
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()
        return code
    return grpc.StatusCode.OK


def plain_traffic(port: int) -> None:
    """Successes on three methods, a caller's mistake and an unknown memory, and a batch whose second
    record does not exist (a per-record failure)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.MemoryRecordsServiceStub(channel)
        created = stub.BatchCreate(
            pb.BatchCreateRequest(
                memory_id=MEMORY_ID, records=[record_create(), record_create("tea", request_identifier="r2")]
            ),
            timeout=RPC_TIMEOUT_SECONDS,
        )
        record_id = created.successful_records[0].memory_record_id
        stub.Get(pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=record_id), timeout=RPC_TIMEOUT_SECONDS)
        updated = stub.BatchUpdate(
            update_request({record_id: "oolong", UNKNOWN_RECORD_ID: "nothing"}), timeout=RPC_TIMEOUT_SECONDS
        )
        assert len(updated.failed_records) == 1
        for memory_id, code in (
            ("", grpc.StatusCode.INVALID_ARGUMENT),
            (UNKNOWN_MEMORY_ID, grpc.StatusCode.NOT_FOUND),
        ):
            request = pb.BatchCreateRequest(memory_id=memory_id, records=[record_create()])
            assert _code(stub.BatchCreate, request) == code


def failing_traffic(port: int) -> None:
    """Gets that AWS (throttles first, then 5xx) fails, retried until the retry quota is empty."""
    request = pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=UNKNOWN_RECORD_ID)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.MemoryRecordsServiceStub(channel)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(_code, [stub.Get] * FAILING_CALLS, [request] * FAILING_CALLS))
    assert set(codes) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}, codes


def crowding_traffic(port: int) -> None:
    """More Gets at once than the facade admits: one runs, one waits for the turn, the rest are refused."""
    request = pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=UNKNOWN_RECORD_ID)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.MemoryRecordsServiceStub(channel)
        grpc.channel_ready_future(channel).result(timeout=RPC_TIMEOUT_SECONDS)
        with concurrent.futures.ThreadPoolExecutor(CALLS_AT_ONCE) as pool:
            codes = list(pool.map(_code, [stub.Get] * CALLS_AT_ONCE, [request] * CALLS_AT_ONCE))
    # Two admitted (one a little late on a busy machine may make three), the rest refused.
    assert set(codes) == {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.RESOURCE_EXHAUSTED}, codes


def limited_traffic(port: int) -> None:
    """Gets beyond the policy's limit of 1 a second for every caller (`anonymous`): one admitted, the
    rest refused CALLER_RATE_LIMITED."""
    request = pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=UNKNOWN_RECORD_ID)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.MemoryRecordsServiceStub(channel)
        codes = [_code(stub.Get, request) for _ in range(LIMITED_CALLS)]
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= LIMITED_CALLS - 2, codes


def kill_a_worker(served: Supervised) -> None:
    """SIGKILL one worker and wait for the supervisor to start another."""
    os.kill(min(served.worker_pids), signal.SIGKILL)
    eventually(
        lambda: {line["pid"] for line in served.logged("worker serving")} - served.worker_pids,
        "a new worker",
    )


@contextlib.contextmanager
def mutual_tls_workers(tmp_path: Path) -> Iterator[Supervised]:
    authority = Authority()
    certs = tmp_path / "certs"
    certs.mkdir()
    authority.issue(server=True, common_name="facade").write(certs / "tls.crt", certs / "tls.key")
    (certs / "ca.crt").write_bytes(authority.cert_pem)
    workers = tmp_path / "workers"
    workers.mkdir()
    with supervised(
        workers,
        TLS_CERT_FILE=str(certs / "tls.crt"),
        TLS_KEY_FILE=str(certs / "tls.key"),
        TLS_CLIENT_CA_FILE=str(certs / "ca.crt"),
    ) as served:
        yield served


# --- the test ---------------------------------------------------------------------------------------


def test_every_panel_query_returns_data_under_traffic(tmp_path: Path) -> None:
    debian_tool("prometheus")  # a skip (a failure in CI) before any facade starts
    queries = [
        (panel["title"], target) for panel in dashboard_panels() for target in panel.get("targets", [])
    ]
    assert queries
    assert all(panel.get("targets") for panel in dashboard_panels()), "a panel without a query"
    with contextlib.ExitStack() as stack:
        plain = stack.enter_context(serving(OTEL_EXPORTER_OTLP_ENDPOINT=stack.enter_context(receiving())[0]))
        failing = stack.enter_context(serving(LOCAL_FAULTS="throttle_first=2,ServiceException=1"))
        crowded = stack.enter_context(
            serving(MAX_CONCURRENT_RPCS="2", GRPC_MAX_WORKERS="1", LOCAL_FAULTS=f"latency={SLOW_AWS_SECONDS}")
        )
        policy = tmp_path / "limits.yaml"
        policy.write_text(LIMITS)
        limited = stack.enter_context(serving(AUTHZ_POLICY_FILE=str(policy)))
        workers = stack.enter_context(mutual_tls_workers(tmp_path))
        ports = [
            plain.metrics_port,
            failing.metrics_port,
            crowded.metrics_port,
            limited.metrics_port,
            workers.metrics_port,
        ]
        prometheus = stack.enter_context(
            scraping(tmp_path, ports, {"namespace": NAMESPACE}, features=("exemplar-storage",))
        )
        start = time.time()
        scraped_since(prometheus, start, len(ports))  # every counter seen before it moves

        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            for round_number in (1, 2):
                traffic = [
                    pool.submit(plain_traffic, plain.grpc_port),
                    pool.submit(failing_traffic, failing.grpc_port),
                    pool.submit(crowding_traffic, crowded.grpc_port),
                    pool.submit(limited_traffic, limited.grpc_port),
                ]
                if round_number == 1:
                    traffic.append(pool.submit(kill_a_worker, workers))
                for done in traffic:
                    done.result(timeout=60)
                scraped_since(prometheus, time.time(), len(ports))

        values = variable_values(prometheus)
        assert values["namespace"] == f"({_regex_escaped(NAMESPACE)})"
        silent = []
        for title, target in queries:
            expr = _substituted(target["expr"], values)
            assert "$" not in expr, f"{title}: a variable the test does not set: {expr}"
            if not moved(prometheus, expr, start):
                silent.append(f"{title} ({target['refId']}): {expr}")
            if target.get("exemplar") and not has_exemplars(prometheus, expr, start):
                silent.append(f"{title} ({target['refId']}), its exemplars: {expr}")
        assert not silent, "queries without data:\n" + "\n".join(silent)
