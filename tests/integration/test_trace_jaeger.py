"""One call seen end to end in a real trace backend: Jaeger (var/tools/bin/jaeger, which make builds
from tools/jaeger) receives OTLP from a Go caller (tests/go/trace_test.go, otelgrpc's client handler)
and from `python -m service` on the embedded emulator, whose first AWS request is throttled
(LOCAL_FAULTS=throttle_first=1). The Go caller's BatchCreate of 250 records is then one trace in Jaeger's
query API: the caller's span, its gRPC client span, the facade's server span beneath that, three AWS
calls (100, 100 and 50 records) and four attempts beneath those, the throttle and its retry in one call,
with no record text, record id or namespace anywhere; the facade's log lines of the RPC carry the
trace's id, and a real Prometheus (exemplar storage on) returns the RPC's latency exemplar naming the
facade's span. The trace Jaeger returned is kept in var/trace/ (docs/observe.md's picture is drawn
from it). Without the jaeger binary the test skips (with CI=true it fails). All traffic is loopback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from service.api.operations import SERVICE_NAME
from tests.helpers import ROOT, free_port, require, service_process
from tests.integration.go_client import GO_TESTS, GO_TRACE_TEST, go_or_skip, offline_env
from tests.integration.test_prometheus import Prometheus, eventually, http_get, scraping

JAEGER = ROOT / "var" / "tools" / "bin" / "jaeger"
JAEGER_CONFIG = ROOT / "tests" / "integration" / "jaeger.yaml"
FACADE_SERVICE_NAME = "agentcore-memory-grpc"
START_SECONDS = 15
GO_TEST_TIMEOUT_SECONDS = 120  # a cold build of the Go test (the OTel SDK) included
TRACE_WAIT_SECONDS = 15
# The caller's span and its gRPC span; the server span; 3 AWS calls; 4 attempts (one retried throttle).
SPANS_IN_THE_TRACE = 10
PICTURE_DATA = ROOT / "var" / "trace" / "jaeger-trace.json"


@dataclasses.dataclass
class Jaeger:
    otlp_endpoint: str  # host:port of the OTLP/gRPC receiver
    query_url: str  # the query HTTP API

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """The trace as /api/traces/<id> answers it; None while Jaeger holds none of it."""
        try:
            with urllib.request.urlopen(f"{self.query_url}/api/traces/{trace_id}", timeout=5) as answer:
                document: dict[str, Any] = json.load(answer)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise
        return document


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@pytest.fixture
def jaeger(tmp_path: Path) -> Iterator[Jaeger]:
    require(JAEGER.exists(), f"{JAEGER.relative_to(ROOT)} is missing: `make client-deps` builds it")
    otlp, query_http, query_grpc = free_port(), free_port(), free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "JAEGER_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{otlp}",
        "JAEGER_QUERY_HTTP_ENDPOINT": f"127.0.0.1:{query_http}",
        "JAEGER_QUERY_GRPC_ENDPOINT": f"127.0.0.1:{query_grpc}",
    }
    log = tmp_path / "jaeger.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [JAEGER, "--config", JAEGER_CONFIG], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        running = Jaeger(f"127.0.0.1:{otlp}", f"http://127.0.0.1:{query_http}")
        deadline = time.monotonic() + START_SECONDS
        while not ("Everything is ready" in log.read_text() and _listening(otlp)):
            assert process.poll() is None, f"jaeger exited {process.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"jaeger did not start:\n{log.read_text()}"
            time.sleep(0.1)
        yield running
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _collect(stream: IO[str], lines: list[str]) -> None:
    lines.extend(stream)


def _run_go_trace_test(address: str, otlp_endpoint: str, result_file: Path) -> dict[str, Any]:
    """tests/go's trace test alone; what it wrote (trace id, its span's id, the sensitive values)."""
    result = subprocess.run(
        [go_or_skip(), "test", "-count=1", "-v", f"-run=^{GO_TRACE_TEST}$", "."],
        cwd=GO_TESTS,
        env=offline_env(
            MEMORY_RECORDS_ADDRESS=address,
            MEMORY_RECORDS_TRACE_OTLP_ENDPOINT=otlp_endpoint,
            MEMORY_RECORDS_TRACE_RESULT_FILE=str(result_file),
        ),
        capture_output=True,
        text=True,
        check=False,
        timeout=GO_TEST_TIMEOUT_SECONDS,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"go test failed:\n{report}"
    assert f"--- PASS: {GO_TRACE_TEST}" in report, report
    written: dict[str, Any] = json.loads(result_file.read_text())
    return written


def _exemplar_of(prometheus: Prometheus, trace_id: str) -> dict[str, Any] | None:
    """BatchCreate's exemplar on grpc_server_handling_seconds whose trace is `trace_id`, if Prometheus
    holds it (/api/v1/query_exemplars, as Grafana asks)."""
    query = urllib.parse.urlencode(
        {
            "query": 'grpc_server_handling_seconds_bucket{grpc_method="BatchCreate"}',
            "start": time.time() - 300,
            "end": time.time() + 60,
        }
    )
    answer = json.loads(http_get(f"{prometheus.url}/api/v1/query_exemplars?{query}"))
    found = [
        exemplar
        for series in answer["data"]
        for exemplar in series["exemplars"]
        if exemplar["labels"].get("trace_id") == trace_id
    ]
    return found[0] if found else None


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span["tags"]}


def _parent(span: dict[str, Any]) -> str | None:
    parents = [ref["spanID"] for ref in span["references"] if ref["refType"] == "CHILD_OF"]
    assert len(parents) <= 1, span
    return parents[0] if parents else None


def _status_class(http_status: int) -> str:
    """A success as 2xx (BatchCreateMemoryRecords answers 201), anything else as itself."""
    return "2xx" if 200 <= http_status < 300 else str(http_status)


def _end(span: dict[str, Any]) -> int:
    return int(span["startTime"]) + int(span["duration"])  # microseconds


def test_a_go_callers_batch_create_is_one_trace_in_jaeger_with_the_throttle_and_its_retry(
    jaeger: Jaeger, tmp_path: Path
) -> None:
    log_lines: list[str] = []
    with service_process(
        read_log=True,
        AGENTCORE_BACKEND="local",
        LOCAL_FAULTS="throttle_first=1",
        LOG_LEVEL="DEBUG",
        SHUTDOWN_GRACE_SECONDS="1",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{jaeger.otlp_endpoint}",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"http://{jaeger.otlp_endpoint}",
        OTEL_SERVICE_NAME=FACADE_SERVICE_NAME,
        OTEL_BSP_SCHEDULE_DELAY="100",
    ) as (facade, start):
        assert facade.stderr is not None
        reader = threading.Thread(target=_collect, args=(facade.stderr, log_lines), daemon=True)
        reader.start()
        with scraping(
            tmp_path, [int(str(start["metricsPort"]))], features=("exemplar-storage",)
        ) as prometheus:
            call = _run_go_trace_test(
                f"127.0.0.1:{start['grpcPort']}", jaeger.otlp_endpoint, tmp_path / "go.json"
            )
            # The RPC's latency observation carries its trace: a real Prometheus returns the exemplar.
            exemplar = eventually(
                lambda: _exemplar_of(prometheus, call["traceId"]), "the BatchCreate's exemplar in Prometheus"
            )
        # A graceful stop exports every span the facade still holds.
        facade.send_signal(signal.SIGTERM)
        assert facade.wait(timeout=15) == 0
        reader.join(timeout=5)

    trace_id = call["traceId"]
    # What the docs' picture of a trace is drawn from (docs/observe.md).
    PICTURE_DATA.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + TRACE_WAIT_SECONDS
    while True:
        document = jaeger.trace(trace_id)
        spans = document["data"][0]["spans"] if document and document["data"] else []
        if len(spans) >= SPANS_IN_THE_TRACE or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert document is not None and len(document["data"]) == 1, document
    PICTURE_DATA.write_text(json.dumps(document, indent=1))
    [trace] = document["data"]
    assert trace["traceID"] == trace_id
    assert len(spans) == SPANS_IN_THE_TRACE, [span["operationName"] for span in spans]
    service_of = {span["spanID"]: trace["processes"][span["processID"]]["serviceName"] for span in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        children.setdefault(_parent(span), []).append(span)

    # The Go caller's own span is the root; otelgrpc's client span is its only child.
    [root] = children[None]
    assert (root["spanID"], root["operationName"], service_of[root["spanID"]]) == (
        call["spanId"],
        "go-caller",
        "go-caller",
    )
    [client] = children[root["spanID"]]
    assert service_of[client["spanID"]] == "go-caller"
    assert client["operationName"] == f"{SERVICE_NAME}/BatchCreate"
    assert _tags(client)["span.kind"] == "client"

    # The facade's server span continues the caller's: the child of its gRPC client span.
    [server] = children[client["spanID"]]
    server_tags = _tags(server)
    assert service_of[server["spanID"]] == FACADE_SERVICE_NAME
    assert server["operationName"] == f"{SERVICE_NAME}/BatchCreate"
    assert {
        key: server_tags.get(key) for key in ("span.kind", "rpc.system", "rpc.service", "rpc.method")
    } == {
        "span.kind": "server",
        "rpc.system": "grpc",
        "rpc.service": SERVICE_NAME,
        "rpc.method": "BatchCreate",
    }
    assert server_tags["rpc.grpc.status_code"] == 0
    assert server_tags["enduser.id"] == "anonymous"  # no client certificate here
    # The exemplar Prometheus returned names this very span.
    assert exemplar["labels"]["span_id"] == server["spanID"]

    # Three AWS calls beneath it, one per chunk of at most 100 records, each a success in the end.
    aws_calls = children[server["spanID"]]
    assert len(aws_calls) == 3, aws_calls
    for aws_call in aws_calls:
        tags = _tags(aws_call)
        assert aws_call["operationName"] == "BedrockAgentCore/BatchCreateMemoryRecords"
        assert (tags["span.kind"], tags["rpc.system"], tags["rpc.service"], tags["rpc.method"]) == (
            "client",
            "aws-api",
            "BedrockAgentCore",
            "BatchCreateMemoryRecords",
        )
        assert 200 <= tags["http.response.status_code"] < 300
    chunks = {
        _tags(aws_call)["aws.agentcore.chunk_index"]: _tags(aws_call)["aws.agentcore.record_count"]
        for aws_call in aws_calls
    }
    assert chunks == {0: 100, 1: 100, 2: 50}

    # Four attempts: one per call, but the throttled one's call has two, the retry starting after the
    # throttle ended (botocore's back-off between them).
    attempts_by_call = {
        aws_call["spanID"]: sorted(
            children.get(aws_call["spanID"], []), key=lambda span: _tags(span)["aws.attempt"]
        )
        for aws_call in aws_calls
    }
    assert sum(len(attempts) for attempts in attempts_by_call.values()) == 4
    for attempts in attempts_by_call.values():
        for attempt in attempts:
            tags = _tags(attempt)
            assert (attempt["operationName"], tags["span.kind"], tags["rpc.system"]) == (
                "attempt",
                "client",
                "aws-api",
            )
            assert tags["aws.request_id"]
    statuses = sorted(
        [_status_class(_tags(attempt)["http.response.status_code"]) for attempt in attempts]
        for attempts in attempts_by_call.values()
    )
    assert statuses == [["2xx"], ["2xx"], ["429", "2xx"]], statuses
    [(throttled, retry)] = [attempts for attempts in attempts_by_call.values() if len(attempts) == 2]
    throttled_tags, retry_tags = _tags(throttled), _tags(retry)
    assert (throttled_tags["aws.attempt"], retry_tags["aws.attempt"]) == (1, 2)
    assert throttled_tags["aws.error_code"] == "ThrottledException"  # what the emulator throttles with
    assert throttled_tags["otel.status_code"] == "ERROR"
    assert "aws.error_code" not in retry_tags
    assert _end(throttled) <= int(retry["startTime"])

    # No record text, record id or namespace anywhere in what Jaeger holds.
    whole_trace = json.dumps(document)
    for secret in [call["marker"], call["namespace"], *call["memoryRecordIds"]]:
        assert secret not in whole_trace, f"{secret!r} is in the trace"

    # The RPC's log line (the access log's: the RPC writes no other, even at DEBUG) carries the trace
    # id that Jaeger holds and the server span's id; no line holds record text.
    entries = [json.loads(line) for line in log_lines if line.startswith("{")]
    [finished] = [
        entry
        for entry in entries
        if entry.get("message") == "finished call" and entry.get("method") == f"/{SERVICE_NAME}/BatchCreate"
    ]
    assert (finished["traceId"], finished["spanId"]) == (trace_id, server["spanID"])
    assert not [line for line in log_lines if call["marker"] in line]
