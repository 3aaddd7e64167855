"""The gRPC server metrics and their interceptor, with go-grpc-middleware v2's names, labels and label
values (`providers/prometheus`, handling-time histogram enabled), so that dashboards and alerts
written for Go servers work unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import grpc
from agentcore.memory.v1 import memory_records_pb2 as pb
from google.protobuf import descriptor_pool
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from service import calls
from service.admission import LIMITS as ADMISSION_LIMITS
from service.api import operations
from service.telemetry import tracing
from service.telemetry.metrics import exposition
from service.telemetry.metrics.children import Children

_LABELS = ("grpc_type", "grpc_service", "grpc_method")


def _labels(call: calls.Call) -> tuple[str, str, str]:
    return (call.grpc_type, call.service, call.method)


class _MethodSeries:
    """One method's children of every per-method metric, looked up once (see children.py)."""

    def __init__(self, metrics: ServerMetrics, labels: tuple[str, str, str]) -> None:
        self.started = metrics.started_total.labels(*labels)
        self.received = metrics.msg_received_total.labels(*labels)
        self.sent = metrics.msg_sent_total.labels(*labels)
        self.handling = metrics.handling_seconds.labels(*labels)
        self.in_flight = metrics.in_flight.labels(*labels)
        self.handled = {
            name: metrics.handled_total.labels(*labels, name) for name in calls.GO_CODE_NAMES.values()
        }
        # Admission refuses only the facade's own RPCs: health and reflection get no such series.
        admitted = f"/{labels[1]}/{labels[2]}" in operations.BY_FULL_METHOD
        self.refused = {
            reason: metrics.refused_total.labels(*labels, reason) for reason in ADMISSION_LIMITS if admitted
        }
        self.read_timeouts = metrics.read_timeouts_total.labels(*labels) if admitted else None


class ServerMetrics(calls.Reporter):
    """Started, handled, messages, handling time and in-flight RPCs by method, and the records of batch
    responses."""

    def __init__(self, registry: CollectorRegistry, buckets: Sequence[float]) -> None:
        # A sampled RPC's trace on its latency bucket; multiprocess values have no room for it.
        self.keeps_exemplars = not exposition.multiprocess_mode()
        # Declarations (name, help, labels), alike in shape on purpose as prometheus/client_golang's are:
        # a duplicate scan pairs them, and a helper would hide the names a reader greps for.
        self.started_total = Counter(
            "grpc_server_started_total",
            "Total number of RPCs started on the server.",
            _LABELS,
            registry=registry,
        )
        self.handled_total = Counter(
            "grpc_server_handled_total",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            (*_LABELS, "grpc_code"),
            registry=registry,
        )
        self.msg_received_total = Counter(
            "grpc_server_msg_received_total",
            "Total number of RPC stream messages received on the server.",
            _LABELS,
            registry=registry,
        )
        self.msg_sent_total = Counter(
            "grpc_server_msg_sent_total",
            "Total number of gRPC stream messages sent by the server.",
            _LABELS,
            registry=registry,
        )
        self.handling_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level handled by "
            "the server.",
            _LABELS,
            buckets=buckets,
            registry=registry,
        )
        self.in_flight = Gauge(
            "agentcore_grpc_server_requests_in_flight",
            "RPCs started and not yet finished.",
            _LABELS,
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.waiting = Gauge(
            "agentcore_grpc_server_requests_waiting",
            "RPCs admitted and waiting for a turn to call AWS (GRPC_MAX_WORKERS are served at once).",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.refused_total = Counter(
            "agentcore_grpc_server_requests_refused_total",
            "RPCs refused at once, by the limit they would have broken (rpcs, bytes or turns).",
            (*_LABELS, "reason"),
            registry=registry,
        )
        self.read_timeouts_total = Counter(
            "agentcore_grpc_server_request_read_timeouts_total",
            "RPCs reset because their request message did not arrive within REQUEST_READ_TIMEOUT_SECONDS.",
            _LABELS,
            registry=registry,
        )
        self.records = Counter(
            "agentcore_records_total",
            "Records of batch RPCs, by outcome (succeeded, failed, unknown) and per-record error code.",
            ("operation", "outcome", "error_code"),
            registry=registry,
        )
        self._records = Children(self.records)
        for operation in operations.OPERATIONS:
            if operation.batch:
                self._records(operation.aws_operation, "succeeded", "none")
                self._records(operation.aws_operation, "unknown", "none")
        self._series: dict[str, _MethodSeries] = {}  # by full method; only registered methods come here

    def _of(self, call: calls.Call) -> _MethodSeries:
        series = self._series.get(call.full_method)
        if series is None:
            series = self._series[call.full_method] = _MethodSeries(self, _labels(call))
        return series

    def initialize(self, service_names: Iterable[str]) -> None:
        """Create every series of these services' methods at 0, as go-grpc-middleware's
        InitializeMetrics does, so that rates and ratios exist before the first call."""
        pool = descriptor_pool.Default()
        for service_name in service_names:
            for method in pool.FindServiceByName(service_name).methods:
                labels = (
                    calls.grpc_type(method.client_streaming, method.server_streaming),
                    service_name,
                    method.name,
                )
                self._series[f"/{service_name}/{method.name}"] = _MethodSeries(self, labels)

    def count_read_timeout(self, call: calls.Call) -> None:
        counter = self._of(call).read_timeouts
        if counter is not None:
            counter.inc()

    def started(self, call: calls.Call) -> None:
        series = self._of(call)
        series.started.inc()
        series.in_flight.inc()

    def received(self, call: calls.Call) -> None:
        self._of(call).received.inc()

    def sent(self, call: calls.Call) -> None:
        self._of(call).sent.inc()

    def finished(self, call: calls.Call) -> None:
        series = self._of(call)
        series.handled[calls.GO_CODE_NAMES[call.code or grpc.StatusCode.UNKNOWN]].inc()
        span = call.span  # tracing off: None, and no call made for it
        exemplar = None if span is None or not self.keeps_exemplars else tracing.exemplar(span)
        series.handling.observe(call.seconds(), exemplar)
        series.in_flight.dec()
        if call.refused is not None:
            series.refused[call.refused].inc()
        operation = call.operation
        if operation is not None and operation.batch and call.response is not None:
            if call.code is grpc.StatusCode.OK:
                self._count_records(operation.aws_operation, call.response)
            else:  # the reply was built, but the caller got an error (its deadline passed, say)
                self._records(operation.aws_operation, "unknown", "none").inc(len(call.request.records))

    def _count_records(self, aws_operation: str, response: Any) -> None:
        """The records of a batch response the caller received: failed ones as refused, or as of unknown
        fate when AWS may have applied them all the same."""
        if response.successful_records:
            self._records(aws_operation, "succeeded", "none").inc(len(response.successful_records))
        for result in response.failed_records:
            outcome = "unknown" if result.outcome == pb.RECORD_OUTCOME_UNKNOWN else "failed"
            self._records(aws_operation, outcome, _record_error_code(result)).inc()


def _record_error_code(result: pb.MemoryRecordResult) -> str:
    """AWS's per-record code (an HTTP-like status) as a bounded label value."""
    if not result.HasField("error_code"):
        return "unknown"
    return str(result.error_code) if 100 <= result.error_code <= 599 else "other"
