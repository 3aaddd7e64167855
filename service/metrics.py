"""Every metric of the service, defined once; the interceptor and botocore hooks that record them; and
the one JSON log line per RPC.

gRPC metrics carry the names, labels and label values of go-grpc-middleware v2's Prometheus provider
(`providers/prometheus`, handling-time histogram enabled), so dashboards and alerts written for Go
servers work unchanged. The `agentcore_*` metrics add what only the facade knows: how AWS answers,
call by call and record by record.

Cardinality is bounded: labels hold method, operation and code names from fixed sets, never a memory
id, record id or text. Every Metrics owns its CollectorRegistry, so that tests can run several
servers in one process and read exact counts; production creates one.

Several worker processes: set PROMETHEUS_MULTIPROC_DIR (an empty directory) before the process
starts; prometheus_client then keeps every value in per-process files and `exposition_registry()`
merges them (the in-flight gauge sums live processes, build info takes the max).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import botocore.exceptions
import grpc
import prometheus_client
from agentcore.memory.v1 import memory_records_pb2 as pb
from google.protobuf import descriptor_pool
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from service import __version__, deadlines

VERSION = __version__
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
HEALTH_SERVICE = "grpc.health.v1.Health"

# Seconds. The floor separates requests refused before AWS (under 1 ms) from AWS calls (tens of ms);
# the top covers AWS_READ_TIMEOUT_SECONDS (30 s) times retries with back-off.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80)

# grpc.StatusCode as grpc-go's codes.Code.String() spells it: the values of `grpc_code`.
GO_CODE_NAMES: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}

# The log level of an RPC's line, by code: go-grpc-middleware's DefaultServerCodeToLevel.
_WARN_CODES = frozenset(
    {
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
    }
)
_ERROR_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.DATA_LOSS,
    }
)

# The AWS operations the servicer calls; their series exist at 0 from the start.
UPSTREAM_OPERATIONS = ("BatchCreateMemoryRecords", "BatchUpdateMemoryRecords", "GetMemoryRecord")
_RECORD_OPERATIONS: dict[type[Any], str] = {
    pb.BatchCreateResponse: "BatchCreateMemoryRecords",
    pb.BatchUpdateResponse: "BatchUpdateMemoryRecords",
}

# AWS error codes kept as label values besides the model's error shapes: auth, throttling, transient.
_KNOWN_AWS_ERROR_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "InvalidClientTokenId",
        "MissingAuthenticationTokenException",
        "IncompleteSignature",
        "ExpiredTokenException",
        "ExpiredToken",
        "RequestExpired",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalFailure",
        "ServiceUnavailable",
    }
)
OTHER_ERROR_CODE = "Other"

log = logging.getLogger("service.rpc")

# The RPC in progress on this handler thread, for the botocore hooks (the handler thread makes the call).
_current = threading.local()

# Go's client emits no `_created` series; neither do we (it would double the series count).
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


@dataclasses.dataclass
class _Rpc:
    """What one RPC's log line and metrics need, gathered while it runs."""

    grpc_type: str
    service: str
    method: str
    full_method: str
    started_at: float = dataclasses.field(default_factory=time.perf_counter)
    record_count: int | None = None
    aws_request_id: str | None = None
    aws_error_code: str | None = None

    @property
    def labels(self) -> tuple[str, str, str]:
        return (self.grpc_type, self.service, self.method)


class Metrics:
    """The service's metrics in one registry, with the recorders that feed them."""

    def __init__(self, *, backend: str, version: str = VERSION) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        grpc_labels = ("grpc_type", "grpc_service", "grpc_method")
        self.started = Counter(
            "grpc_server_started_total",
            "Total number of RPCs started on the server.",
            grpc_labels,
            registry=registry,
        )
        self.handled = Counter(
            "grpc_server_handled_total",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            (*grpc_labels, "grpc_code"),
            registry=registry,
        )
        self.msg_received = Counter(
            "grpc_server_msg_received_total",
            "Total number of RPC stream messages received on the server.",
            grpc_labels,
            registry=registry,
        )
        self.msg_sent = Counter(
            "grpc_server_msg_sent_total",
            "Total number of gRPC stream messages sent by the server.",
            grpc_labels,
            registry=registry,
        )
        self.handling_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level handled by "
            "the server.",
            grpc_labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "agentcore_grpc_server_requests_in_flight",
            "RPCs started and not yet finished.",
            grpc_labels,
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.upstream_duration = Histogram(
            "agentcore_upstream_request_duration_seconds",
            "Duration of AWS calls, from boto3's call to its answer, retries and back-off included.",
            ("operation", "outcome"),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "agentcore_upstream_errors_total",
            "AWS calls that failed, after retries, by AWS error code (or transport failure).",
            ("operation", "aws_error_code"),
            registry=registry,
        )
        self.upstream_retries = Counter(
            "agentcore_upstream_retries_total",
            "Attempts botocore retried, beyond each call's first.",
            ("operation",),
            registry=registry,
        )
        self.upstream_throttles = Counter(
            "agentcore_upstream_throttles_total",
            "Attempts AWS answered with a throttling error.",
            ("operation",),
            registry=registry,
        )
        self.records = Counter(
            "agentcore_records_total",
            "Records in batch responses, by outcome and per-record error code.",
            ("operation", "outcome", "error_code"),
            registry=registry,
        )
        self.build_info = Gauge(
            "agentcore_build_info",
            "Always 1: the service's version and backend.",
            ("version", "backend"),
            multiprocess_mode="max",
            registry=registry,
        )
        self.build_info.labels(version, backend).set(1)
        for operation in UPSTREAM_OPERATIONS:
            self.upstream_duration.labels(operation, "success")
            self.upstream_retries.labels(operation)
            self.upstream_throttles.labels(operation)
        for operation in _RECORD_OPERATIONS.values():
            self.records.labels(operation, "succeeded", "none")
        self._known_error_codes: frozenset[str] = _KNOWN_AWS_ERROR_CODES
        # Where a call's (operation, start) waits in botocore's request context; one per Metrics.
        self._context_key = f"agentcore_metrics.{id(self)}"
        if not multiprocess_mode():
            # What every Python exporter shows; prometheus_client cannot merge these across processes.
            prometheus_client.ProcessCollector(registry=registry)
            prometheus_client.PlatformCollector(registry=registry)
            prometheus_client.GCCollector(registry=registry)

    def initialize(self, service_names: Iterable[str]) -> None:
        """Create every series of these services' methods at 0, as go-grpc-middleware's
        InitializeMetrics does, so that rates and ratios exist before the first call."""
        pool = descriptor_pool.Default()
        for service_name in service_names:
            service = pool.FindServiceByName(service_name)
            for method in service.methods:
                labels = (
                    _grpc_type(method.client_streaming, method.server_streaming),
                    service_name,
                    method.name,
                )
                for metric in (self.started, self.msg_received, self.msg_sent, self.handling_seconds):
                    metric.labels(*labels)
                self.in_flight.labels(*labels)
                for code_name in GO_CODE_NAMES.values():
                    self.handled.labels(*labels, code_name)

    def interceptor(self) -> grpc.ServerInterceptor:
        """The server interceptor that records the gRPC metrics and logs one line per RPC."""
        return _Interceptor(self)

    def instrument(self, client: Any) -> None:
        """Record the upstream metrics of every call `client` makes (botocore event hooks)."""
        model = client.meta.service_model
        self._known_error_codes |= {shape.name for shape in model.error_shapes}
        service_id = model.service_id.hyphenize()
        hooks: dict[str, Callable[..., None]] = {
            "before-call": self._before_call,
            "response-received": self._on_attempt,
            "after-call": self._after_call,
            "after-call-error": self._after_call_error,
        }
        for event, hook in hooks.items():
            client.meta.events.register(f"{event}.{service_id}", hook, unique_id=f"{id(self)}-{event}")

    def exposition_registry(self) -> CollectorRegistry:
        """What /metrics serves: this registry, or every worker process's values in multiprocess mode."""
        if not multiprocess_mode():
            return self.registry
        merged = CollectorRegistry()
        MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return merged

    def start_http_server(self, host: str, port: int) -> tuple[int, Callable[[], None]]:
        """Serve /metrics on host:port (port 0: any free port); the bound port and a stop function."""
        httpd, thread = prometheus_client.start_http_server(
            port, addr=host.removeprefix("[").removesuffix("]"), registry=self.exposition_registry()
        )

        def stop() -> None:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=5)

        return httpd.server_port, stop

    # --- gRPC ----------------------------------------------------------------------------------

    def _begin(self, rpc: _Rpc) -> None:
        self.started.labels(*rpc.labels).inc()
        self.in_flight.labels(*rpc.labels).inc()

    def _finish(self, rpc: _Rpc, code: grpc.StatusCode, response: Any) -> None:
        duration = time.perf_counter() - rpc.started_at
        code_name = GO_CODE_NAMES[code]
        self.handled.labels(*rpc.labels, code_name).inc()
        self.handling_seconds.labels(*rpc.labels).observe(duration)
        self.in_flight.labels(*rpc.labels).dec()
        fields: dict[str, Any] = {
            "method": rpc.full_method,
            "grpcCode": code_name,
            "durationSeconds": round(duration, 6),
        }
        if rpc.aws_request_id:
            fields["awsRequestId"] = rpc.aws_request_id
        if rpc.aws_error_code:
            fields["awsErrorCode"] = rpc.aws_error_code
        if rpc.record_count is not None:
            fields["recordCount"] = rpc.record_count
        operation = _RECORD_OPERATIONS.get(type(response))
        if operation is not None:
            fields["succeededRecords"] = len(response.successful_records)
            fields["failedRecords"] = len(response.failed_records)
            self._count_records(operation, response)
        log.log(_log_level(rpc, code), "finished call", extra=fields)

    def _count_records(self, operation: str, response: Any) -> None:
        if response.successful_records:
            self.records.labels(operation, "succeeded", "none").inc(len(response.successful_records))
        for result in response.failed_records:
            self.records.labels(operation, "failed", _record_error_code(result)).inc()

    # --- botocore hooks --------------------------------------------------------------------------

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        context[self._context_key] = (model.name, time.perf_counter())

    def _on_attempt(
        self, parsed_response: Any, response_dict: Any, context: dict[str, Any], **_: Any
    ) -> None:
        """Once per attempt, retries included."""
        if self._context_key not in context or not parsed_response:
            return
        status = int((response_dict or {}).get("status_code") or 0)
        error_code = str(parsed_response.get("Error", {}).get("Code") or "")
        if status == 429 or error_code in deadlines.THROTTLE_CODES:
            self.upstream_throttles.labels(context[self._context_key][0]).inc()

    def _after_call(self, http_response: Any, parsed: Any, context: dict[str, Any], **_: Any) -> None:
        """The call is over and AWS answered (success or error), after botocore's retries."""
        status = int(http_response.status_code)
        request_id = str(parsed.get("ResponseMetadata", {}).get("RequestId") or "") or None
        if status < 300:
            self._end_call(context, "success", None, request_id)
            return
        raw_code = str(context.get("error_code_override") or parsed.get("Error", {}).get("Code") or "")
        if status == 429 or raw_code in deadlines.THROTTLE_CODES:
            outcome = "throttled"
        elif status >= 500:
            outcome = "server_error"
        else:
            outcome = "client_error"
        code = raw_code if raw_code in self._known_error_codes else OTHER_ERROR_CODE
        self._end_call(context, outcome, code, request_id)

    def _after_call_error(self, exception: BaseException, context: dict[str, Any], **_: Any) -> None:
        """The call is over and AWS never answered (transport failure, deadline, credentials)."""
        outcome, code = _classify_exception(exception)
        self._end_call(context, outcome, code, None)

    def _end_call(
        self, context: dict[str, Any], outcome: str, code: str | None, request_id: str | None
    ) -> None:
        started = context.pop(self._context_key, None)
        if started is None:
            return
        operation, started_at = started
        self.upstream_duration.labels(operation, outcome).observe(time.perf_counter() - started_at)
        if code is not None:
            self.upstream_errors.labels(operation, code).inc()
        retries = int(context.get("retries", {}).get("attempt", 1)) - 1
        if retries > 0:
            self.upstream_retries.labels(operation).inc(retries)
        rpc: _Rpc | None = getattr(_current, "rpc", None)
        if rpc is not None:
            rpc.aws_request_id = request_id
            rpc.aws_error_code = code


def multiprocess_mode() -> bool:
    """Whether prometheus_client keeps values in per-process files (it decides at import)."""
    return bool(os.environ.get(MULTIPROCESS_ENV))


def _grpc_type(client_streaming: bool, server_streaming: bool) -> str:
    if client_streaming and server_streaming:
        return "bidi_stream"
    if client_streaming:
        return "client_stream"
    if server_streaming:
        return "server_stream"
    return "unary"


def _record_error_code(result: pb.MemoryRecordResult) -> str:
    """AWS's per-record code (an HTTP-like status) as a bounded label value."""
    if not result.HasField("error_code"):
        return "unknown"
    return str(result.error_code) if 100 <= result.error_code <= 599 else "other"


def _classify_exception(exception: BaseException) -> tuple[str, str]:
    """(outcome, error code label) of a call that got no answer from AWS."""
    if isinstance(exception, deadlines.DeadlineExceededError):
        return "cancelled", "DeadlineExceeded"
    if isinstance(exception, deadlines.CancelledError):
        return "cancelled", "Cancelled"
    if isinstance(exception, botocore.exceptions.ConnectTimeoutError):
        return "network_error", "ConnectTimeout"
    if isinstance(exception, botocore.exceptions.ReadTimeoutError):
        return "network_error", "ReadTimeout"
    if isinstance(exception, botocore.exceptions.HTTPClientError | botocore.exceptions.ConnectionError):
        return "network_error", "ConnectionError"
    if isinstance(
        exception,
        botocore.exceptions.NoCredentialsError
        | botocore.exceptions.PartialCredentialsError
        | botocore.exceptions.CredentialRetrievalError
        | botocore.exceptions.TokenRetrievalError,
    ):
        return "client_error", "CredentialsError"
    return "other_error", OTHER_ERROR_CODE


def _log_level(rpc: _Rpc, code: grpc.StatusCode) -> int:
    if code in _ERROR_CODES:
        return logging.ERROR
    if code in _WARN_CODES:
        return logging.WARNING
    if rpc.service == HEALTH_SERVICE and code is grpc.StatusCode.OK:
        return logging.DEBUG  # Kubernetes probes every few seconds: not news
    return logging.INFO


def _final_code(context: grpc.ServicerContext, raised: bool) -> grpc.StatusCode:
    """The code the client receives. abort() and set_code() leave it on the context; grpc answers
    UNKNOWN for any other exception; and the client has its answer already if it went away."""
    # grpcio's ServicerContext.code() (since 1.38) is missing from the stubs; None when never set.
    code: grpc.StatusCode | None = context.code()  # type: ignore[attr-defined]
    if code is not None:
        return code
    if raised:
        return grpc.StatusCode.UNKNOWN
    if not context.is_active():
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            return grpc.StatusCode.DEADLINE_EXCEEDED
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.OK


def _record_count(request: Any) -> int | None:
    if isinstance(request, pb.BatchCreateRequest | pb.BatchUpdateRequest):
        return len(request.records)
    return None


class _Interceptor(grpc.ServerInterceptor):
    """Wraps every registered method; unknown methods (UNIMPLEMENTED) are left alone, which keeps
    `grpc_method` bounded."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        full_method = handler_call_details.method
        service, _, method = full_method.lstrip("/").partition("/")
        grpc_type = _grpc_type(handler.request_streaming, handler.response_streaming)

        def new_rpc() -> _Rpc:
            return _Rpc(grpc_type, service, method, full_method)

        serializers = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary_response(handler.unary_unary, new_rpc, request_streaming=False), **serializers
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary_response(handler.stream_unary, new_rpc, request_streaming=True), **serializers
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream_response(handler.unary_stream, new_rpc, request_streaming=False), **serializers
            )
        assert handler.stream_stream is not None
        return grpc.stream_stream_rpc_method_handler(
            self._stream_response(handler.stream_stream, new_rpc, request_streaming=True), **serializers
        )

    def _received(self, rpc: _Rpc, request: Any, *, streaming: bool) -> Any:
        """The request as the behavior takes it; each message counts as it is received."""
        if not streaming:
            self._metrics.msg_received.labels(*rpc.labels).inc()
            rpc.record_count = _record_count(request)
            return request
        return self._counted(rpc, request)

    def _counted(self, rpc: _Rpc, requests: Iterator[Any]) -> Iterator[Any]:
        for request in requests:
            self._metrics.msg_received.labels(*rpc.labels).inc()
            yield request

    def _unary_response(
        self,
        behavior: Callable[[Any, grpc.ServicerContext], Any],
        new_rpc: Callable[[], _Rpc],
        *,
        request_streaming: bool,
    ) -> Callable[[Any, grpc.ServicerContext], Any]:
        metrics = self._metrics

        def observed(request: Any, context: grpc.ServicerContext) -> Any:
            rpc = new_rpc()
            metrics._begin(rpc)
            _current.rpc = rpc
            response, raised = None, True
            try:
                response = behavior(self._received(rpc, request, streaming=request_streaming), context)
                raised = False
                return response
            finally:
                _current.rpc = None
                # go-grpc-middleware v2 counts a unary RPC's response as sent whatever its outcome.
                metrics.msg_sent.labels(*rpc.labels).inc()
                metrics._finish(rpc, _final_code(context, raised), response)

        return observed

    def _stream_response(
        self,
        behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]],
        new_rpc: Callable[[], _Rpc],
        *,
        request_streaming: bool,
    ) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
        metrics = self._metrics

        def observed(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            rpc = new_rpc()
            metrics._begin(rpc)
            raised = True
            try:
                for response in behavior(self._received(rpc, request, streaming=request_streaming), context):
                    metrics.msg_sent.labels(*rpc.labels).inc()
                    yield response
                raised = False
            except GeneratorExit:
                raised = False  # grpc stopped reading: the client went away
                raise
            finally:
                metrics._finish(rpc, _final_code(context, raised), None)

        return observed
