"""Metrics and the per-RPC log line, read back exactly.

Each test drives the real server over a real channel (in front of the emulator, or the wire stub for
answers the emulator never gives) and reads its Metrics registry: every counter and histogram count
must equal what the client saw, no more.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from emulator import Emulator
from service import listening
from service.calls import GO_CODE_NAMES
from service.settings import Backend
from service.telemetry import metrics
from service.telemetry.json_logs import JsonFormatter
from service.telemetry.metrics import LATENCY_BUCKETS, Metrics, exposition
from service.upstream import aws
from tests.helpers import (
    MEMORY_ID,
    RECORD_ID,
    ROOT,
    UNKNOWN_RECORD_ID,
    record_create,
    run_service,
    settings_for_tests,
)
from tests.integration.helpers import UNKNOWN_MEMORY_ID, debian_tool
from tests.wire_stub import CannedResponse, WireStub, aws_error, aws_reply

SERVICE = "agentcore.memory.v1.MemoryRecordsService"
RECORD_TEXT = "RECORD-TEXT-must-never-leave-7f3a"
CREATE_REPLY = {
    # The answer for create_request's one record (requestIdentifier "r1"), as the model allows it.
    "successfulRecords": [{"memoryRecordId": RECORD_ID, "status": "SUCCEEDED", "requestIdentifier": "r1"}],
    "failedRecords": [],
}

Labels = frozenset[tuple[str, str]]


@dataclasses.dataclass
class Metered:
    stub: pb_grpc.MemoryRecordsServiceStub
    channel: grpc.Channel
    metrics: Metrics

    def values(self, sample_name: str, **match: str) -> dict[Labels, float]:
        """Every sample called `sample_name` whose labels include `match`, zeros left out."""
        return {
            labels: value
            for labels, value in self.all_values(sample_name, **match).items()
            if value != 0 and "le" not in dict(labels)
        }

    def all_values(self, sample_name: str, **match: str) -> dict[Labels, float]:
        found = {}
        for family in self.metrics.registry.collect():
            for sample in family.samples:
                if sample.name == sample_name and match.items() <= sample.labels.items():
                    found[frozenset(sample.labels.items())] = sample.value
        return found


def labels(**values: str) -> Labels:
    return frozenset(values.items())


def grpc_labels(method: str, service: str = SERVICE, grpc_type: str = "unary", **extra: str) -> Labels:
    return labels(grpc_type=grpc_type, grpc_service=service, grpc_method=method, **extra)


def start(settings: Any, client: Any) -> Iterator[Metered]:
    for running in run_service(settings, client):
        yield Metered(running.stub, running.channel, running.metrics)


@pytest.fixture
def metered(emulator: Emulator) -> Iterator[Metered]:
    """The facade in local mode in front of the emulator, with its own Metrics."""
    settings = settings_for_tests(backend=Backend.LOCAL)
    yield from start(settings, aws.create_client(settings, endpoint_url=emulator.endpoint_url))


@pytest.fixture
def metered_stub(wire_stub: WireStub) -> Iterator[Metered]:
    """The facade in front of the wire stub, with two attempts per AWS call (one retry)."""
    settings = settings_for_tests(backend=Backend.LOCAL, aws_max_attempts=2)
    yield from start(settings, aws.create_client(settings, endpoint_url=wire_stub.endpoint_url))


@pytest.fixture
def rpc_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="service.rpc")
    return caplog


def rpc_lines(captured: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The per-RPC lines exactly as the JSON formatter writes them."""
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in captured.records if r.name == "service.rpc"]


def two_records() -> list[pb.MemoryRecordCreate]:
    second = record_create("second text")
    second.request_identifier = "r2"
    return [record_create(RECORD_TEXT), second]


def call(invoke: Any, request: Any, **kwargs: Any) -> str:
    """The code the client saw, as Go spells it."""
    try:
        invoke(request, timeout=kwargs.pop("timeout", 10), **kwargs)
    except grpc.RpcError as failure:
        return GO_CODE_NAMES[failure.code()]
    return "OK"


# --- exact counts -------------------------------------------------------------------------------


def test_counts_equal_what_the_client_saw(metered: Metered, rpc_log: pytest.LogCaptureFixture) -> None:
    ok, invalid, not_found = 5, 3, 2
    requests = (
        [pb.BatchCreateRequest(memory_id=MEMORY_ID, records=two_records())] * ok
        # Refused by the facade's validation: AWS is never called.
        + [pb.BatchCreateRequest(memory_id="", records=two_records())] * invalid
        # AWS (the emulator) answers ResourceNotFoundException.
        + [pb.BatchCreateRequest(memory_id=UNKNOWN_MEMORY_ID, records=two_records())] * not_found
    )
    seen = collections.Counter(call(metered.stub.BatchCreate, request) for request in requests)
    assert seen == {"OK": ok, "InvalidArgument": invalid, "NotFound": not_found}
    total = ok + invalid + not_found
    batch_create = grpc_labels("BatchCreate")

    assert metered.values("grpc_server_started_total", grpc_service=SERVICE) == {batch_create: total}
    assert metered.values("grpc_server_handled_total", grpc_service=SERVICE) == {
        batch_create | labels(grpc_code=code): count for code, count in seen.items()
    }
    assert metered.values("grpc_server_msg_received_total", grpc_service=SERVICE) == {batch_create: total}
    # As go-grpc-middleware v2: a unary RPC's response counts as sent when it ended OK.
    assert metered.values("grpc_server_msg_sent_total", grpc_service=SERVICE) == {batch_create: ok}
    assert metered.values("grpc_server_handling_seconds_count", grpc_service=SERVICE) == {batch_create: total}
    buckets = metered.all_values("grpc_server_handling_seconds_bucket", grpc_method="BatchCreate")
    assert buckets[batch_create | labels(le="+Inf")] == total
    assert metered.values("grpc_server_handling_seconds_sum", grpc_service=SERVICE)[batch_create] > 0
    assert metered.values("agentcore_grpc_server_requests_in_flight") == {}

    create = "BatchCreateMemoryRecords"
    assert metered.values("agentcore_upstream_request_duration_seconds_count") == {
        labels(operation=create, outcome="success"): ok,
        labels(operation=create, outcome="client_error"): not_found,
    }
    assert metered.values("agentcore_upstream_errors_total") == {
        labels(operation=create, aws_error_code="ResourceNotFoundException"): not_found
    }
    assert metered.values("agentcore_upstream_retries_total") == {}
    assert metered.values("agentcore_upstream_throttles_total") == {}
    assert metered.values("agentcore_records_total") == {
        labels(operation=create, outcome="succeeded", error_code="none"): 2 * ok
    }

    lines = rpc_lines(rpc_log)
    assert collections.Counter(line["grpcCode"] for line in lines) == seen
    for line in lines:
        assert line["method"] == f"/{SERVICE}/BatchCreate"
        assert line["message"] == "finished call"
        assert line["durationSeconds"] > 0
        assert line["recordCount"] == 2
        # A request id exactly when AWS answered.
        assert ("awsRequestId" in line) == (line["grpcCode"] != "InvalidArgument")
    ok_lines = [line for line in lines if line["grpcCode"] == "OK"]
    assert all((line["succeededRecords"], line["failedRecords"]) == (2, 0) for line in ok_lines)
    assert {line["awsErrorCode"] for line in lines if line["grpcCode"] == "NotFound"} == {
        "ResourceNotFoundException"
    }
    assert {line["level"] for line in lines} == {"INFO"}


def test_counts_stay_exact_under_concurrency(metered: Metered) -> None:
    """8 threads, mixed outcomes: every counter and the histogram count equal what clients saw, and
    nothing stays in flight."""
    requests = [
        pb.BatchCreateRequest(memory_id=MEMORY_ID, records=two_records()),
        pb.BatchCreateRequest(memory_id="", records=two_records()),
        pb.BatchCreateRequest(memory_id=UNKNOWN_MEMORY_ID, records=two_records()),
    ] * 40
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        seen = collections.Counter(
            pool.map(lambda request: call(metered.stub.BatchCreate, request), requests)
        )
    assert seen == {"OK": 40, "InvalidArgument": 40, "NotFound": 40}
    batch_create = grpc_labels("BatchCreate")
    for counter in ("grpc_server_started_total", "grpc_server_msg_received_total"):
        assert metered.values(counter, grpc_service=SERVICE) == {batch_create: 120}, counter
    assert metered.values("grpc_server_msg_sent_total", grpc_service=SERVICE) == {batch_create: 40}
    assert metered.values("grpc_server_handling_seconds_count", grpc_service=SERVICE) == {batch_create: 120}
    assert metered.values("grpc_server_handled_total", grpc_service=SERVICE) == {
        batch_create | labels(grpc_code=code): count for code, count in seen.items()
    }
    assert metered.values("agentcore_records_total") == {
        labels(operation="BatchCreateMemoryRecords", outcome="succeeded", error_code="none"): 80
    }
    assert metered.values("agentcore_grpc_server_requests_in_flight") == {}


def test_failed_records_are_counted_by_their_error_code(metered: Metered) -> None:
    created = metered.stub.BatchCreate(
        pb.BatchCreateRequest(memory_id=MEMORY_ID, records=[record_create(RECORD_TEXT)])
    )
    record_id = created.successful_records[0].memory_record_id
    stamp = timestamp_pb2.Timestamp(seconds=1_732_600_000)
    metered.stub.BatchUpdate(
        pb.BatchUpdateRequest(
            memory_id=MEMORY_ID,
            records=[
                pb.MemoryRecordUpdate(memory_record_id=record_id, timestamp=stamp),
                pb.MemoryRecordUpdate(memory_record_id=UNKNOWN_RECORD_ID, timestamp=stamp),
                pb.MemoryRecordUpdate(memory_record_id=UNKNOWN_RECORD_ID.replace("0", "1"), timestamp=stamp),
            ],
        ),
        timeout=10,
    )
    update = "BatchUpdateMemoryRecords"
    assert metered.values("agentcore_records_total") == {
        labels(operation="BatchCreateMemoryRecords", outcome="succeeded", error_code="none"): 1,
        labels(operation=update, outcome="succeeded", error_code="none"): 1,
        labels(operation=update, outcome="failed", error_code="404"): 2,
    }


def test_series_exist_at_zero_before_any_call(metered: Metered) -> None:
    expected_methods = {
        (SERVICE, "BatchCreate", "unary"),
        (SERVICE, "BatchUpdate", "unary"),
        (SERVICE, "Get", "unary"),
        (SERVICE, "Delete", "unary"),
        (SERVICE, "BatchDelete", "unary"),
        (SERVICE, "List", "unary"),
        (SERVICE, "Retrieve", "unary"),
        ("grpc.health.v1.Health", "Check", "unary"),
        ("grpc.health.v1.Health", "List", "unary"),
        ("grpc.health.v1.Health", "Watch", "server_stream"),
        ("grpc.reflection.v1alpha.ServerReflection", "ServerReflectionInfo", "bidi_stream"),
    }
    for name in (
        "grpc_server_started_total",
        "grpc_server_msg_sent_total",
        "grpc_server_handling_seconds_count",
    ):
        started = metered.all_values(name)
        assert {(d["grpc_service"], d["grpc_method"], d["grpc_type"]) for d in map(dict, started)} == (
            expected_methods
        )
        assert set(started.values()) == {0}
    handled = metered.all_values("grpc_server_handled_total", grpc_method="BatchCreate")
    assert {dict(key)["grpc_code"] for key in handled} == set(GO_CODE_NAMES.values())
    assert len(metered.all_values("grpc_server_handled_total")) == len(expected_methods) * 17
    for operation in (
        "BatchCreateMemoryRecords",
        "BatchUpdateMemoryRecords",
        "GetMemoryRecord",
        "DeleteMemoryRecord",
        "BatchDeleteMemoryRecords",
        "ListMemoryRecords",
        "RetrieveMemoryRecords",
    ):
        assert metered.all_values("agentcore_upstream_retries_total", operation=operation) == {
            labels(operation=operation): 0
        }
        assert metered.all_values(
            "agentcore_upstream_request_duration_seconds_count", operation=operation
        ) == {labels(operation=operation, outcome="success"): 0}
    assert metered.all_values("agentcore_build_info") == {labels(version=metrics.VERSION, backend="local"): 1}


def test_health_and_reflection_are_counted_under_their_own_service(metered: Metered) -> None:
    health = health_pb2_grpc.HealthStub(metered.channel)
    assert call(health.Check, health_pb2.HealthCheckRequest()) == "OK"
    assert call(health.Check, health_pb2.HealthCheckRequest(service="no.such.Service")) == "NotFound"
    reflection = reflection_pb2_grpc.ServerReflectionStub(metered.channel)
    [answer] = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
    )
    assert SERVICE in {service.name for service in answer.list_services_response.service}

    check = grpc_labels("Check", "grpc.health.v1.Health")
    info = grpc_labels("ServerReflectionInfo", "grpc.reflection.v1alpha.ServerReflection", "bidi_stream")
    assert metered.values("grpc_server_handled_total") == {
        check | labels(grpc_code="OK"): 1,
        check | labels(grpc_code="NotFound"): 1,
        info | labels(grpc_code="OK"): 1,
    }
    assert metered.values("grpc_server_msg_received_total") == {check: 2, info: 1}
    assert metered.values("grpc_server_msg_sent_total") == {check: 1, info: 1}


def test_a_cancelled_stream_counts_as_canceled(metered: Metered) -> None:
    watch = health_pb2_grpc.HealthStub(metered.channel).Watch(health_pb2.HealthCheckRequest(), timeout=10)
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    watch.cancel()
    watch_labels = grpc_labels("Watch", "grpc.health.v1.Health", "server_stream")
    wait_for(lambda: metered.values("grpc_server_handled_total", grpc_method="Watch") != {})
    assert metered.values("grpc_server_handled_total", grpc_method="Watch") == {
        watch_labels | labels(grpc_code="Canceled"): 1
    }
    assert metered.values("grpc_server_msg_sent_total", grpc_method="Watch") == {watch_labels: 1}


def test_unknown_methods_are_not_counted(metered: Metered) -> None:
    unknown: Any = metered.channel.unary_unary(f"/{SERVICE}/NoSuchMethod")
    assert call(unknown, b"") == "Unimplemented"
    assert metered.values("grpc_server_started_total") == {}
    assert not any("NoSuchMethod" in str(key) for key in metered.all_values("grpc_server_handled_total"))


def test_in_flight_counts_a_call_while_it_runs(metered_stub: Metered, wire_stub: WireStub) -> None:
    wire_stub.queue(aws_reply(201, CREATE_REPLY, delay_seconds=1.0))
    seen: list[str] = []
    worker = threading.Thread(
        target=lambda: seen.append(call(metered_stub.stub.BatchCreate, create_request())), daemon=True
    )
    worker.start()
    in_flight = "agentcore_grpc_server_requests_in_flight"
    wait_for(lambda: metered_stub.values(in_flight) != {})
    assert metered_stub.values(in_flight) == {grpc_labels("BatchCreate"): 1}
    worker.join(timeout=10)
    assert seen == ["OK"]
    assert metered_stub.values(in_flight) == {}


# --- upstream: retries, throttles, error codes ----------------------------------------------------


def create_request() -> pb.BatchCreateRequest:
    return pb.BatchCreateRequest(memory_id=MEMORY_ID, records=[record_create(RECORD_TEXT)])


def upstream_values(metered: Metered) -> dict[str, dict[Labels, float]]:
    return {
        name: metered.values(f"agentcore_upstream_{name}")
        for name in ("request_duration_seconds_count", "errors_total", "retries_total", "throttles_total")
    }


CREATE = labels(operation="BatchCreateMemoryRecords")


def test_a_throttle_retried_away_counts_a_retry_and_a_throttle(
    metered_stub: Metered, wire_stub: WireStub, rpc_log: pytest.LogCaptureFixture
) -> None:
    wire_stub.queue(aws_error(429, "ThrottledException", "slow down"), aws_reply(201, CREATE_REPLY))
    assert call(metered_stub.stub.BatchCreate, create_request()) == "OK"
    assert upstream_values(metered_stub) == {
        "request_duration_seconds_count": {CREATE | labels(outcome="success"): 1},
        "errors_total": {},
        "retries_total": {CREATE: 1},
        "throttles_total": {CREATE: 1},
    }
    [line] = rpc_lines(rpc_log)
    assert line["awsRequestId"] == "req-ok"  # the attempt that answered
    assert "awsErrorCode" not in line


def test_throttled_after_every_attempt(
    metered_stub: Metered, wire_stub: WireStub, rpc_log: pytest.LogCaptureFixture
) -> None:
    wire_stub.queue(*[aws_error(429, "ThrottledException", "slow down")] * 2)
    assert call(metered_stub.stub.BatchCreate, create_request()) == "ResourceExhausted"
    assert upstream_values(metered_stub) == {
        "request_duration_seconds_count": {CREATE | labels(outcome="throttled"): 1},
        "errors_total": {CREATE | labels(aws_error_code="ThrottledException"): 1},
        "retries_total": {CREATE: 1},
        "throttles_total": {CREATE: 2},
    }
    assert metered_stub.values("grpc_server_handled_total") == {
        grpc_labels("BatchCreate", grpc_code="ResourceExhausted"): 1
    }
    [line] = rpc_lines(rpc_log)
    assert (line["level"], line["grpcCode"]) == ("WARNING", "ResourceExhausted")
    assert (line["awsRequestId"], line["awsErrorCode"]) == ("req-ThrottledException", "ThrottledException")


def test_retries_the_quota_refuses_are_counted(emulator: Emulator) -> None:
    """botocore's retry quota (500 units, 14 per retry after a 5xx) runs dry after about 35 retries:
    from then on failed calls are not retried, and each is counted."""
    emulator.faults.configure(
        error_rates={"ServiceException": 1.0}, operations=frozenset({"GetMemoryRecord"})
    )
    settings = settings_for_tests(backend=Backend.LOCAL, aws_max_attempts=3)
    for metered in start(settings, aws.create_client(settings, endpoint_url=emulator.endpoint_url)):
        request = pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=UNKNOWN_RECORD_ID)
        seen = collections.Counter(call(metered.stub.Get, request) for _ in range(30))
        assert seen == {"Unavailable": 30}
        attempts = len(emulator.received("GetMemoryRecord"))
        get = labels(operation="GetMemoryRecord")
        refused = metered.values("agentcore_upstream_retries_refused_total").get(get, 0)
        retried = metered.values("agentcore_upstream_retries_total")[get]
        assert 0 < refused < 30
        assert attempts == 30 + retried < 90
        # Every call the quota never refused used all three attempts; a refused one one or two.
        assert 2 * (30 - refused) <= retried < 2 * (30 - refused) + refused


def test_an_error_code_outside_the_model_is_counted_as_other(
    metered_stub: Metered, wire_stub: WireStub
) -> None:
    wire_stub.queue(aws_error(400, "BrandNewFancyException", "what is this"))
    call(metered_stub.stub.BatchCreate, create_request())
    assert upstream_values(metered_stub)["errors_total"] == {CREATE | labels(aws_error_code="Other"): 1}
    assert upstream_values(metered_stub)["request_duration_seconds_count"] == {
        CREATE | labels(outcome="client_error"): 1
    }


def test_server_errors_and_dropped_connections(metered_stub: Metered, wire_stub: WireStub) -> None:
    dropped = CannedResponse(200, b"", {}, drop_connection=True)
    wire_stub.queue(
        aws_error(503, "ServiceException", "down"), aws_reply(201, CREATE_REPLY), dropped, dropped
    )
    assert call(metered_stub.stub.BatchCreate, create_request()) == "OK"
    assert call(metered_stub.stub.BatchCreate, create_request()) == "Unavailable"
    assert upstream_values(metered_stub) == {
        "request_duration_seconds_count": {
            CREATE | labels(outcome="success"): 1,
            CREATE | labels(outcome="network_error"): 1,
        },
        "errors_total": {CREATE | labels(aws_error_code="ConnectionError"): 1},
        "retries_total": {CREATE: 2},
        "throttles_total": {},
    }


def test_a_call_past_the_callers_deadline(metered_stub: Metered, wire_stub: WireStub) -> None:
    wire_stub.queue(aws_reply(201, CREATE_REPLY, delay_seconds=2.0))
    assert call(metered_stub.stub.BatchCreate, create_request(), timeout=0.3) == "DeadlineExceeded"
    wait_for(lambda: metered_stub.values("grpc_server_handled_total") != {})
    assert metered_stub.values("grpc_server_handled_total") == {
        grpc_labels("BatchCreate", grpc_code="DeadlineExceeded"): 1
    }
    [(outcome, count)] = [
        (dict(key)["outcome"], value)
        for key, value in upstream_values(metered_stub)["request_duration_seconds_count"].items()
    ]
    assert (outcome, count) in {("network_error", 1), ("cancelled", 1)}


# --- what the exposition contains -----------------------------------------------------------------


def test_no_id_or_record_text_reaches_a_label_or_a_log_line(
    metered: Metered, rpc_log: pytest.LogCaptureFixture
) -> None:
    created = metered.stub.BatchCreate(
        pb.BatchCreateRequest(memory_id=MEMORY_ID, records=[record_create(RECORD_TEXT)])
    )
    record_id = created.successful_records[0].memory_record_id
    call(
        metered.stub.BatchCreate,
        pb.BatchCreateRequest(memory_id=UNKNOWN_MEMORY_ID, records=[record_create(RECORD_TEXT)]),
    )
    call(metered.stub.Get, pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=record_id))
    exposition = generate_latest(metered.metrics.registry).decode()
    logged = "\n".join(json.dumps(line) for line in rpc_lines(rpc_log))
    assert len(rpc_lines(rpc_log)) == 3
    for secret in (RECORD_TEXT, MEMORY_ID, UNKNOWN_MEMORY_ID, record_id, "users/alice"):
        assert secret not in exposition
        assert secret not in logged


def test_exposition_parses_with_go_grpc_middleware_names_and_labels(metered: Metered) -> None:
    call(metered.stub.BatchCreate, create_request())
    call(
        metered.stub.BatchCreate,
        pb.BatchCreateRequest(memory_id=UNKNOWN_MEMORY_ID, records=[record_create(RECORD_TEXT)]),
    )
    exposition = generate_latest(metered.metrics.registry).decode()
    families = {family.name: family for family in text_string_to_metric_families(exposition)}
    grpc_label_names = {"grpc_type", "grpc_service", "grpc_method"}
    expected = {
        "grpc_server_started": ("counter", grpc_label_names),
        "grpc_server_handled": ("counter", grpc_label_names | {"grpc_code"}),
        "grpc_server_msg_received": ("counter", grpc_label_names),
        "grpc_server_msg_sent": ("counter", grpc_label_names),
        "grpc_server_handling_seconds": ("histogram", grpc_label_names),
        "agentcore_grpc_server_requests_in_flight": ("gauge", grpc_label_names),
        "agentcore_upstream_request_duration_seconds": ("histogram", {"operation", "outcome"}),
        "agentcore_upstream_errors": ("counter", {"operation", "aws_error_code"}),
        "agentcore_upstream_retries": ("counter", {"operation"}),
        "agentcore_upstream_throttles": ("counter", {"operation"}),
        "agentcore_records": ("counter", {"operation", "outcome", "error_code"}),
        "agentcore_build_info": ("gauge", {"version", "backend"}),
    }
    for name, (kind, label_names) in expected.items():
        family = families[name]
        assert family.type == kind, name
        assert family.samples, name
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == label_names, sample
            assert not sample.name.endswith("_created"), sample
    buckets = {
        float(s.labels["le"]) for s in families["grpc_server_handling_seconds"].samples if "le" in s.labels
    }
    assert buckets == {*map(float, LATENCY_BUCKETS), float("inf")}
    assert "process_cpu_seconds" in families  # what every Python exporter shows


def test_exposition_passes_promtool_check_metrics(metered: Metered) -> None:
    promtool = debian_tool("promtool")
    call(metered.stub.BatchCreate, create_request())
    call(metered.stub.BatchCreate, pb.BatchCreateRequest(memory_id=""))
    exposition = generate_latest(metered.metrics.registry)
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=30, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == b""


def test_build_info_version_is_the_project_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == metrics.VERSION


def test_metrics_are_served_over_http_on_the_bound_port() -> None:
    served = Metrics(backend="aws")
    port, stop = exposition.start_http_server(served.registry, "127.0.0.1", 0)
    try:
        assert port > 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            body = answer.read().decode()
            assert answer.headers["Content-Type"].startswith("text/plain")
        assert f'agentcore_build_info{{backend="aws",version="{metrics.VERSION}"}} 1.0' in body
    finally:
        stop()


# --- several worker processes ---------------------------------------------------------------------

WORKER = """
import os, sys
from service.telemetry.metrics import Metrics
m = Metrics(backend="local")
labels = ("unary", "agentcore.memory.v1.MemoryRecordsService", "BatchCreate")
m.server.handled_total.labels(*labels, "OK").inc(int(sys.argv[1]))
m.server.in_flight.labels(*labels).inc()
print(os.getpid())
"""

EXPORTER = """
import sys
from prometheus_client import generate_latest, multiprocess
from service.telemetry.metrics import Metrics, exposition
for pid in sys.argv[1:]:
    multiprocess.mark_process_dead(int(pid))
sys.stdout.write(generate_latest(exposition.registry_to_serve(Metrics(backend="local").registry)).decode())
"""


def test_multiprocess_mode_merges_the_workers_values(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'generated'}:{ROOT}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }

    def run(script: str, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", script, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    first_pid = run(WORKER, "3").strip()
    run(WORKER, "4")

    def sample(exposition: str, name: str) -> float:
        [value] = [
            s.value
            for family in text_string_to_metric_families(exposition)
            for s in family.samples
            if s.name == name
            and s.labels.get("grpc_method") == "BatchCreate"
            and s.labels.get("grpc_code", "OK") == "OK"
        ]
        return value

    merged = run(EXPORTER)
    assert sample(merged, "grpc_server_handled_total") == 7
    assert sample(merged, "agentcore_grpc_server_requests_in_flight") == 2
    # A dead worker's in-flight RPCs stop counting once it is marked dead; its counts stay.
    after_death = run(EXPORTER, first_pid)
    assert sample(after_death, "agentcore_grpc_server_requests_in_flight") == 1
    assert sample(after_death, "grpc_server_handled_total") == 7


# --- helpers --------------------------------------------------------------------------------------


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_a_metrics_port_held_by_another_program_is_named_in_the_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen for metrics on 127.0.0.1:{port}: "):
            exposition.start_http_server(CollectorRegistry(), "127.0.0.1", port)


def test_metrics_bind_the_next_address_when_one_cannot_be_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    # As on a host without IPv6, where `[::]` cannot be bound and 0.0.0.0 can (listening.addresses).
    assert [family for family, _ in listening.addresses("[::]", 0)][-1] is socket.AF_INET
    unbindable = (socket.AF_INET, ("192.0.2.1", 0))  # TEST-NET-1: never an address of this host
    monkeypatch.setattr(
        listening, "addresses", lambda host, port: [unbindable, (socket.AF_INET, ("127.0.0.1", 0))]
    )
    port, stop = exposition.start_http_server(CollectorRegistry(), "[::]", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            assert answer.status == 200
    finally:
        stop()
