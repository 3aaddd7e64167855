"""tracing.py: off unless an OTLP endpoint is set; on, one SERVER span per facade RPC over a real
server and channel, the child of the caller's W3C traceparent, with gRPC's attributes and no record
text, id or namespace; none for health; the RPC's log lines carry its trace and span ids."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import propagate
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client.openmetrics.exposition import generate_latest

from emulator import Emulator
from service.runtime.server import create_server
from service.security import tls
from service.settings import Backend
from service.telemetry import json_logs, tracing
from service.telemetry.metrics import Metrics
from service.upstream import aws
from tests.helpers import MEMORY_ID, UNKNOWN_RECORD_ID, record_create, settings_for_tests

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
SECRET_TEXT = "the text of a record, never in a span"
NAMESPACE = "users/secret-namespace"


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, False),
    ],
)
def test_tracing_is_on_only_with_an_endpoint_and_the_sdk_not_disabled(
    environ: dict[str, str], on: bool
) -> None:
    assert tracing.enabled(environ) is on
    if not on:
        assert tracing.from_env(environ) is None


class Traced:
    def __init__(
        self,
        stub: pb_grpc.MemoryRecordsServiceStub,
        channel: grpc.Channel,
        spans: InMemorySpanExporter,
        metrics: Metrics,
    ):
        self.stub = stub
        self.channel = channel
        self.exporter = spans
        self.metrics = metrics

    def spans(self) -> list[ReadableSpan]:
        self.tracing.provider.force_flush()
        return list(self.exporter.get_finished_spans())

    def server_spans(self) -> list[ReadableSpan]:
        return [span for span in self.spans() if span.kind is SpanKind.SERVER]

    tracing: tracing.Tracing


@contextlib.contextmanager
def serving(emulator: Emulator, environ: dict[str, str] | None = None, **overrides: Any) -> Iterator[Traced]:
    """A traced server on the emulator; `environ` is what tracing.from_env reads, `overrides` settings."""
    settings = settings_for_tests(backend=Backend.LOCAL, **overrides)
    exporter = InMemorySpanExporter()
    traces = tracing.from_env(environ or {}, exporter=exporter)
    assert traces is not None
    client = aws.create_client(settings, endpoint_url=emulator.endpoint_url)
    metrics = Metrics(backend="local")
    server, port = create_server(settings, client, metrics=metrics, tracing=traces)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    served = Traced(pb_grpc.MemoryRecordsServiceStub(channel), channel, exporter, metrics)
    served.tracing = traces
    try:
        yield served
    finally:
        channel.close()
        server.stop(grace=None).wait(timeout=5)
        traces.shutdown()


@pytest.fixture
def traced(emulator: Emulator) -> Iterator[Traced]:
    with serving(emulator) as served:
        yield served


def create_request() -> pb.BatchCreateRequest:
    return pb.BatchCreateRequest(
        memory_id=MEMORY_ID, records=[record_create(SECRET_TEXT, namespaces=[NAMESPACE])]
    )


def test_an_rpc_is_a_server_span_that_continues_the_callers_trace(traced: Traced) -> None:
    reply = traced.stub.BatchCreate(
        create_request(), metadata=[("traceparent", TRACEPARENT), ("tracestate", "vendor=opaque")], timeout=10
    )
    [span] = traced.server_spans()
    assert span.context.trace_state.to_header() == "vendor=opaque"  # the caller's, carried on
    assert span.name == "agentcore.memory.v1.MemoryRecordsService/BatchCreate"
    assert span.kind is SpanKind.SERVER
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.parent is not None and f"{span.parent.span_id:016x}" == PARENT_SPAN_ID
    assert dict(span.attributes or {}) == {
        "rpc.system": "grpc",
        "rpc.service": "agentcore.memory.v1.MemoryRecordsService",
        "rpc.method": "BatchCreate",
        "rpc.grpc.status_code": 0,
        "enduser.id": "anonymous",
    }
    assert span.status.status_code is StatusCode.UNSET
    # Nothing of the request in the span: its text, its namespace, the record's id.
    exported = span.to_json()
    for secret in (SECRET_TEXT, NAMESPACE, reply.successful_records[0].memory_record_id):
        assert secret not in exported


def test_a_call_without_a_traceparent_starts_a_trace_of_its_own(traced: Traced) -> None:
    with pytest.raises(grpc.RpcError) as missing:
        traced.stub.Get(pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=UNKNOWN_RECORD_ID), timeout=10)
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    [span] = traced.server_spans()
    assert span.parent is None
    assert span.attributes is not None and span.attributes["rpc.grpc.status_code"] == 5


def test_a_server_failure_marks_the_span_an_error_and_a_callers_mistake_does_not(
    traced: Traced, emulator: Emulator
) -> None:
    emulator.faults.configure(error_rates={"ServiceException": 1.0})
    with pytest.raises(grpc.RpcError) as failure:
        traced.stub.BatchCreate(create_request(), timeout=10)
    assert failure.value.code() is grpc.StatusCode.UNAVAILABLE
    [failed] = traced.server_spans()
    assert failed.status.status_code is StatusCode.ERROR
    emulator.faults.clear()
    traced.exporter.clear()
    with pytest.raises(grpc.RpcError) as mistake:
        traced.stub.Get(pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=""), timeout=10)
    assert mistake.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    [span] = traced.server_spans()
    assert span.attributes is not None and span.attributes["rpc.grpc.status_code"] == 3
    assert span.status.status_code is StatusCode.UNSET


def test_health_checks_make_no_spans(traced: Traced) -> None:
    health = health_pb2_grpc.HealthStub(traced.channel)
    for _ in range(3):
        health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert traced.spans() == []


def test_the_rpcs_log_lines_carry_its_trace_and_span_ids(
    traced: Traced, capsys: pytest.CaptureFixture[str]
) -> None:
    json_logs.configure("INFO")
    try:
        traced.stub.BatchCreate(create_request(), metadata=[("traceparent", TRACEPARENT)], timeout=10)
        [span] = traced.server_spans()
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    [finished] = [line for line in lines if line.get("message") == "finished call"]
    assert finished["traceId"] == TRACE_ID
    assert finished["spanId"] == f"{span.context.span_id:016x}"


def test_a_batch_is_a_span_per_aws_call_and_each_attempt_a_span_beneath_it(
    traced: Traced, emulator: Emulator
) -> None:
    """250 records: three calls of 100, 100 and 50, each a CLIENT span under the RPC's; one of them
    throttled once (throttle_first=1), so its two attempts are two spans, the 429 ending before the
    retry starts; nothing of a record in any span."""
    emulator.faults.configure(throttle_first=1)
    records = [
        record_create(f"{SECRET_TEXT} {n}", request_identifier=f"r{n}", namespaces=[NAMESPACE])
        for n in range(250)
    ]
    reply = traced.stub.BatchCreate(pb.BatchCreateRequest(memory_id=MEMORY_ID, records=records), timeout=30)
    assert len(reply.successful_records) == 250
    spans = traced.spans()
    [server] = [span for span in spans if span.kind is SpanKind.SERVER]
    aws_calls = sorted(
        (span for span in spans if span.name == "BedrockAgentCore/BatchCreateMemoryRecords"),
        key=lambda span: span.start_time or 0,
    )
    chunks = {
        dict(span.attributes or {})["aws.agentcore.chunk_index"]: dict(span.attributes or {})[
            "aws.agentcore.record_count"
        ]
        for span in aws_calls
    }
    assert chunks == {0: 100, 1: 100, 2: 50}
    for span in aws_calls:
        assert span.parent is not None and span.parent.span_id == server.context.span_id
        assert span.attributes is not None and span.attributes["rpc.system"] == "aws-api"
        assert span.attributes["http.response.status_code"] == 201 and span.attributes["aws.request_id"]
    attempts = {
        call.context.span_id: sorted(
            (
                span
                for span in spans
                if span.parent is not None and span.parent.span_id == call.context.span_id
            ),
            key=lambda span: span.start_time or 0,
        )
        for call in aws_calls
    }

    # The chunks may be sent at once: whichever reached the emulator first was the one throttled.
    def statuses(call_attempts: list[ReadableSpan]) -> list[object]:
        return [dict(span.attributes or {}).get("http.response.status_code") for span in call_attempts]

    [retried] = [call_attempts for call_attempts in attempts.values() if len(call_attempts) > 1]
    assert sorted(statuses(call_attempts) for call_attempts in attempts.values()) == [
        [201],
        [201],
        [429, 201],
    ]
    assert [dict(span.attributes or {}).get("aws.attempt") for span in retried] == [1, 2]
    throttled, retry = retried
    assert throttled.attributes is not None and throttled.attributes["aws.error_code"] == "ThrottledException"
    assert throttled.status.status_code is StatusCode.ERROR
    assert (throttled.end_time or 0) <= (retry.start_time or 0)
    assert len(spans) == 1 + 3 + 4
    everything = "".join(span.to_json() for span in spans)
    assert SECRET_TEXT not in everything and NAMESPACE not in everything
    for result in reply.successful_records:
        assert result.memory_record_id not in everything


def events(span: ReadableSpan) -> list[tuple[str, dict[str, object]]]:
    return [(event.name, dict(event.attributes or {})) for event in span.events]


def test_a_single_call_of_a_batch_is_its_chunk_0_and_other_calls_have_no_chunk(traced: Traced) -> None:
    traced.stub.BatchCreate(create_request(), timeout=10)
    with pytest.raises(grpc.RpcError):
        traced.stub.Get(pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=UNKNOWN_RECORD_ID), timeout=10)
    by_name = {span.name: dict(span.attributes or {}) for span in traced.spans()}
    assert by_name["BedrockAgentCore/BatchCreateMemoryRecords"]["aws.agentcore.chunk_index"] == 0
    assert "aws.agentcore.chunk_index" not in by_name["BedrockAgentCore/GetMemoryRecord"]


def test_with_the_xray_propagator_each_attempt_tells_aws_the_trace_and_otherwise_nothing(
    emulator: Emulator,
) -> None:
    """OTEL_PROPAGATORS naming xray: every attempt (a throttle and its retry) sends X-Amzn-Trace-Id
    with the caller's trace and the attempt's own span as parent; without it no such header leaves."""
    emulator.faults.configure(throttle_first=1)
    with serving(emulator, {"OTEL_PROPAGATORS": "tracecontext, baggage, xray"}) as traced:
        traced.stub.BatchCreate(create_request(), metadata=[("traceparent", TRACEPARENT)], timeout=10)
        attempts = sorted(
            (span for span in traced.spans() if span.name == "attempt"), key=lambda span: span.start_time or 0
        )
    sent = emulator.received("BatchCreateMemoryRecords")
    assert len(sent) == len(attempts) == 2
    for request, attempt in zip(sent, attempts, strict=True):
        assert request.headers["x-amzn-trace-id"] == (
            f"Root=1-{TRACE_ID[:8]}-{TRACE_ID[8:]};Parent={attempt.context.span_id:016x};Sampled=1"
        )
    emulator.clear_received()
    with serving(emulator) as traced:
        traced.stub.BatchCreate(create_request(), metadata=[("traceparent", TRACEPARENT)], timeout=10)
    [request] = emulator.received("BatchCreateMemoryRecords")
    assert "x-amzn-trace-id" not in request.headers and "traceparent" not in request.headers


def test_a_callers_x_ray_header_continues_its_trace_when_the_propagators_name_xray(
    traced: Traced, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As OTEL_PROPAGATORS=tracecontext,xray sets it at import; gRPC metadata keys are lower case.
    monkeypatch.setattr(
        propagate,
        "_HTTP_TEXT_FORMAT",
        CompositePropagator([TraceContextTextMapPropagator(), AwsXRayPropagator()]),
    )
    header = f"Root=1-{TRACE_ID[:8]}-{TRACE_ID[8:]};Parent={PARENT_SPAN_ID};Sampled=1"
    traced.stub.BatchCreate(create_request(), metadata=[("x-amzn-trace-id", header)], timeout=10)
    [span] = traced.server_spans()
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.parent is not None and f"{span.parent.span_id:016x}" == PARENT_SPAN_ID


def holding_aws(traced: Traced, emulator: Emulator) -> threading.Thread:
    """A BatchCreate started on a thread, returned once the (slow) emulator has it."""
    held = threading.Thread(target=lambda: traced.stub.BatchCreate(create_request(), timeout=10))
    held.start()
    for _ in range(250):
        if emulator.received():
            break
        threading.Event().wait(0.02)
    return held


def test_a_wait_for_an_aws_turn_is_two_events_on_the_rpcs_span(emulator: Emulator) -> None:
    """One turn (GRPC_MAX_WORKERS=1) held by a slow call: the next RPC waits for it, none ahead."""
    emulator.faults.configure(latency_seconds=0.5)
    with serving(emulator, max_workers=1) as traced:
        held = holding_aws(traced, emulator)
        try:
            traced.stub.BatchCreate(create_request(), timeout=10)
        finally:
            held.join()
        spans = sorted(traced.server_spans(), key=lambda span: span.start_time or 0)
    assert [[name for name, _ in events(span)] for span in spans] == [
        [],
        ["agentcore.turn.waiting", "agentcore.turn.taken"],
    ]
    assert events(spans[1])[0][1] == {"agentcore.turn.ahead": 0}


def test_a_deadline_that_passes_while_waiting_for_a_turn_is_an_event_on_the_rpcs_span(
    emulator: Emulator,
) -> None:
    emulator.faults.configure(latency_seconds=1.0)
    with serving(emulator, max_workers=1) as traced:
        held = holding_aws(traced, emulator)
        try:
            with pytest.raises(grpc.RpcError) as late:
                traced.stub.BatchCreate(create_request(), timeout=0.3)
        finally:
            held.join()
        spans = sorted(traced.server_spans(), key=lambda span: span.start_time or 0)
    assert late.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert [name for name, _ in events(spans[1])] == ["agentcore.turn.waiting", "agentcore.turn.deadline"]


def exporter_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("OtelBatch")]


def test_with_tracing_off_there_is_no_exporter_thread_and_no_exemplar(emulator: Emulator) -> None:
    """No endpoint, no Tracing: nothing of the SDK runs. With tracing on (the control) its batch
    exporter's thread exists and the RPC's latency carries an exemplar."""
    assert tracing.from_env({"OTEL_SERVICE_NAME": "x"}) is None
    settings = settings_for_tests(backend=Backend.LOCAL)
    metrics = Metrics(backend="local")
    client = aws.create_client(settings, endpoint_url=emulator.endpoint_url)
    server, port = create_server(settings, client, metrics=metrics)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            pb_grpc.MemoryRecordsServiceStub(channel).BatchCreate(create_request(), timeout=10)
        assert exporter_threads() == []
        assert exemplars(metrics) == {}
    finally:
        server.stop(grace=None).wait(timeout=5)
    with serving(emulator) as traced:
        traced.stub.BatchCreate(create_request(), timeout=10)
        assert exporter_threads() and exemplars(traced.metrics)


def test_an_admission_refusal_is_an_event_on_the_rpcs_span(emulator: Emulator) -> None:
    emulator.faults.configure(latency_seconds=0.5)
    with serving(emulator, max_workers=1, max_concurrent_rpcs=1) as traced:
        held = holding_aws(traced, emulator)
        try:
            with pytest.raises(grpc.RpcError) as refused:
                traced.stub.BatchCreate(create_request(), timeout=10)
        finally:
            held.join()
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        spans = traced.server_spans()
    assert sorted(events(span) for span in spans) == [
        [],
        [("agentcore.admission.refused", {"agentcore.admission.limit": "rpcs"})],
    ]


def test_the_policys_refusals_are_events_on_the_rpcs_span(emulator: Emulator, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"rules: [{{name: chat, principals: ['{tls.ANONYMOUS}'], methods: [BatchCreate], "
        f"memories: ['{MEMORY_ID}'], namespaces: ['allowed']}}]\n"
    )
    records = [record_create(request_identifier="in", namespaces=["allowed/a"])] + [
        record_create(request_identifier=f"out{n}", namespaces=[NAMESPACE]) for n in range(2)
    ]
    with serving(emulator, authz_policy_file=str(policy)) as traced:
        reply = traced.stub.BatchCreate(
            pb.BatchCreateRequest(memory_id=MEMORY_ID, records=records), timeout=10
        )
        assert len(reply.failed_records) == 2
        with pytest.raises(grpc.RpcError) as denied:
            traced.stub.Get(
                pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=UNKNOWN_RECORD_ID), timeout=10
            )
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
        by_method = {span.attributes["rpc.method"]: span for span in traced.server_spans() if span.attributes}
    assert events(by_method["BatchCreate"]) == [
        ("agentcore.policy.records_denied", {"agentcore.policy.records": 2})
    ]
    [(name, attributes)] = events(by_method["Get"])
    assert name == "agentcore.policy.denied" and set(attributes) == {"agentcore.policy.version"}
    assert NAMESPACE not in "".join(span.to_json() for span in by_method.values())


EXEMPLAR = re.compile(
    r'^(\w+)_bucket\{.*\} \d+(?:\.\d+)? # \{span_id="([0-9a-f]{16})",trace_id="([0-9a-f]{32})"\}'
)


def exemplars(metrics: Metrics) -> dict[str, set[str]]:
    """The trace ids of the exemplars in the OpenMetrics exposition, by histogram."""
    found: dict[str, set[str]] = {}
    for line in generate_latest(metrics.registry).decode().splitlines():
        match = EXEMPLAR.match(line)
        if match:
            found.setdefault(match[1], set()).add(match[3])
    return found


def test_the_latency_histograms_carry_a_sampled_rpcs_trace_as_their_exemplar(traced: Traced) -> None:
    traced.stub.BatchCreate(create_request(), metadata=[("traceparent", TRACEPARENT)], timeout=10)
    assert exemplars(traced.metrics) == {
        "grpc_server_handling_seconds": {TRACE_ID},
        "agentcore_upstream_request_duration_seconds": {TRACE_ID},
    }


def test_an_unsampled_rpc_makes_no_span_and_no_exemplar_and_still_tells_aws_its_trace(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")  # the SDK reads its sampler itself
    with serving(emulator, {"OTEL_PROPAGATORS": "tracecontext,xray"}) as traced:
        traced.stub.BatchCreate(create_request(), metadata=[("traceparent", TRACEPARENT)], timeout=10)
        assert traced.spans() == []
        assert exemplars(traced.metrics) == {}
    [request] = emulator.received("BatchCreateMemoryRecords")
    # The RPC's own (unsampled, unexported) span id as the parent.
    assert re.fullmatch(
        f"Root=1-{TRACE_ID[:8]}-{TRACE_ID[8:]};Parent=[0-9a-f]{{16}};Sampled=0",
        request.headers["x-amzn-trace-id"],
    )
