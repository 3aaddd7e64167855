"""OpenTelemetry traces of the facade's RPCs, configured by the standard `OTEL_*` variables only.

Off unless an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), or when `OTEL_SDK_DISABLED=true`: then `from_env` gives None and
no reporter, span or exporter thread exists. On, the SDK reads the rest itself (service name, resource,
sampler, the exporter's headers, timeout and TLS) and a batch processor exports over OTLP/gRPC.

`SpanReporter` makes one SERVER span per RPC of the facade (none for health), continuing the caller's
trace; `AwsSpans`, on botocore's events like the metrics' hooks, a CLIENT span per AWS call beneath it
and one per attempt beneath that, and tells AWS the trace (`X-Amzn-Trace-Id`) when `OTEL_PROPAGATORS`
names `xray`. Admission and the policy add events through `Call.event`; log lines carry the span's ids
(json_logs.py) and latency observations its exemplar (`exemplar`). What each span, attribute and event
holds, and what never does (record text, ids, namespaces): docs/observe.md.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from service import calls
from service.telemetry import json_logs
from service.upstream import outcomes

if TYPE_CHECKING:
    from mypy_boto3_bedrock_agentcore import BedrockAgentCoreClient

DEFAULT_SERVICE_NAME = "agentcore-memory-grpc"
# At shutdown, the most a process waits for its last spans to be exported: within the supervisor's
# margin after the grace time (workers.EXIT_MARGIN_SECONDS), so that a collector that never answers
# cannot turn a clean stop into a kill.
FLUSH_SECONDS = 3.0
log = logging.getLogger(__name__)
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# gRPC codes that are the server's failure, in OpenTelemetry's gRPC conventions for a SERVER span (the
# others, a caller's mistake among them, leave the span's status unset).
_SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


def enabled(environ: Mapping[str, str]) -> bool:
    """Whether the environment asks for traces: an OTLP endpoint set, and the SDK not disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in _ENDPOINTS)


def _tells_aws(environ: Mapping[str, str]) -> bool:
    """Whether the propagators asked for include AWS's (X-Ray's) header."""
    names = environ.get("OTEL_PROPAGATORS", "")
    return "xray" in {name.strip().lower() for name in names.split(",")}


def from_env(environ: Mapping[str, str] = os.environ, exporter: SpanExporter | None = None) -> Tracing | None:
    """The tracing the environment asks for, or None when it asks for none. `exporter` replaces the
    OTLP one (a test's in-memory exporter); the SDK reads everything else from `environ`."""
    if exporter is None and not enabled(environ):
        return None
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    named = environ.get("OTEL_SERVICE_NAME") or "service.name=" in environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    resource = Resource.create({} if named else {"service.name": DEFAULT_SERVICE_NAME})
    # The sampler from OTEL_TRACES_SAMPLER. No exit hook of the SDK's: shutdown() is bounded, its is not.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider, tell_aws=_tells_aws(environ))


class Tracing:
    """A tracer provider of the facade's own (never the process-global one) and its reporter."""

    def __init__(self, provider: TracerProvider, *, tell_aws: bool = False) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("agentcore-memory-grpc")
        self.reporter = SpanReporter(self.tracer)
        self.aws_spans = AwsSpans(self.tracer, AwsXRayPropagator() if tell_aws else None)

    def shutdown(self, timeout: float = FLUSH_SECONDS) -> None:
        """Export what is still buffered, then stop the exporter's thread; after `timeout` seconds the
        spans not yet exported are given up (and said so), the export left to end with the process."""
        flushing = threading.Thread(target=self.provider.shutdown, name="otel-shutdown", daemon=True)
        flushing.start()
        flushing.join(timeout)
        if flushing.is_alive():
            log.warning(
                "the last spans were not exported in time; they are dropped", extra={"seconds": timeout}
            )


class SpanReporter(calls.Reporter):
    """Opens an RPC's SERVER span when it starts and ends it with its code when it finishes."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def started(self, call: calls.Call) -> None:
        if call.operation is None:
            return  # health and reflection make no spans
        carrier = {
            key: value for key, value in call.context.invocation_metadata() or () if isinstance(value, str)
        }
        parent = propagate.extract(carrier, getter=_METADATA)
        call.span = self._tracer.start_span(
            call.full_method.lstrip("/"),
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": call.service, "rpc.method": call.method},
        )

    def finished(self, call: calls.Call) -> None:
        span: Any = call.span
        if span is None:
            return
        if not span.is_recording():
            return  # not sampled: nothing to say, nothing will be exported
        code = call.code or grpc.StatusCode.UNKNOWN
        identity = call.identity
        if isinstance(identity, str):
            span.set_attributes({"rpc.grpc.status_code": code.value[0], "enduser.id": identity})
        else:
            span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code in _SERVER_ERRORS:
            span.set_status(Status(StatusCode.ERROR, code.name))
        span.end()


class _MetadataGetter(Getter[dict[str, str]]):
    """gRPC metadata's keys are lower case; propagators ask for `X-Amzn-Trace-Id` as well as
    `traceparent`."""

    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key.lower())
        return None if value is None else [value]

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return list(carrier)


_METADATA = _MetadataGetter()


def exemplar(span: Any) -> dict[str, str] | None:
    """The OpenMetrics exemplar labels of an observation made for `span`'s RPC: its trace and span ids,
    when it is sampled (an unsampled trace is nowhere to be found); None otherwise."""
    if not span.get_span_context().trace_flags.sampled:
        return None
    ids = json_logs.trace_fields(span)  # as the log lines write them
    return {"trace_id": ids["traceId"], "span_id": ids["spanId"]}


class AwsSpans:
    """A CLIENT span per AWS call of a traced RPC, and a span per attempt beneath it (botocore hooks);
    with `xray`, each attempt's request carries the trace in `X-Amzn-Trace-Id`.

    A call runs on one thread from before-call to after-call, its attempts one after another; the
    attempt's hooks (before-send) get no request context, so the call's span and the open attempt's
    wait in a thread-local."""

    def __init__(self, tracer: trace.Tracer, xray: AwsXRayPropagator | None = None) -> None:
        self._tracer = tracer
        self._xray = xray
        self._local = threading.local()

    def instrument(self, client: BedrockAgentCoreClient) -> None:
        service_id = client.meta.service_model.service_id.hyphenize()
        hooks: dict[str, Callable[..., None]] = {
            "before-parameter-build": self._before_parameter_build,
            "before-call": self._before_call,
            "before-send": self._before_send,
            "response-received": self._after_attempt,
            "after-call": self._after_call,
            "after-call-error": self._after_call_error,
        }
        for event, hook in hooks.items():
            client.meta.events.register(f"{event}.{service_id}", hook, unique_id=f"{id(self)}-{event}")

    def _before_parameter_build(self, params: Any, **_: Any) -> None:
        """The call's parameters, as the caller of boto3 gave them: how many records it sends."""
        records = params.get("records") if isinstance(params, dict) else None
        self._local.records = len(records) if isinstance(records, list) else None

    def _before_call(self, model: Any, **_: Any) -> None:
        call = calls.current()
        # Every local afresh: a call whose hooks stopped short (an exception before its first attempt)
        # leaves nothing to the next.
        self._local.call = self._local.unsampled = self._local.attempt = None
        self._local.attempts = 0
        if call is None or call.span is None:
            return
        if not call.span.is_recording():
            self._local.unsampled = call.span  # no spans beneath it; AWS may be told the trace all the same
            return
        attributes: dict[str, Any] = {
            "rpc.system": "aws-api",
            "rpc.service": "BedrockAgentCore",
            "rpc.method": model.name,
        }
        records = getattr(self._local, "records", None)
        if records is not None:
            attributes["aws.agentcore.record_count"] = records
        chunk = calls.chunk_index.get()
        if chunk is not None:
            attributes["aws.agentcore.chunk_index"] = chunk
        self._local.call = self._tracer.start_span(
            f"BedrockAgentCore/{model.name}",
            context=trace.set_span_in_context(call.span),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )

    def _before_send(self, request: Any = None, **_: Any) -> None:
        parent = getattr(self._local, "call", None)
        if parent is None:
            self._tell_aws(request, getattr(self._local, "unsampled", None))
            return
        self._local.attempts += 1
        attempt = self._local.attempt = self._tracer.start_span(
            "attempt",
            context=trace.set_span_in_context(parent),
            kind=SpanKind.CLIENT,
            attributes={"rpc.system": "aws-api", "aws.attempt": self._local.attempts},
        )
        self._tell_aws(request, attempt)

    def _tell_aws(self, request: Any, span: Any) -> None:
        """`X-Amzn-Trace-Id` on an attempt's request (each attempt is a request of its own), with `span`
        as the parent AWS sees: the attempt's, or an unsampled RPC's own."""
        if self._xray is not None and request is not None and span is not None:
            self._xray.inject(request.headers, context=trace.set_span_in_context(span))

    def _after_attempt(
        self, parsed_response: Any, response_dict: Any, exception: BaseException | None = None, **_: Any
    ) -> None:
        attempt = getattr(self._local, "attempt", None)
        if attempt is None:
            return  # refused before it was sent (the deadline hooks), or not a traced call
        self._local.attempt = None
        if parsed_response:
            _answered(
                attempt,
                outcomes.Answer.read(parsed_response, int((response_dict or {}).get("status_code") or 0)),
            )
        elif exception is not None:
            _failed(attempt, type(exception).__name__, exception)
        attempt.end()

    def _after_call(self, http_response: Any, parsed: Any, **_: Any) -> None:
        span = self._take_call()
        if span is None:
            return
        _answered(span, outcomes.Answer.read(parsed, int(http_response.status_code)))
        span.end()

    def _after_call_error(self, exception: BaseException, **_: Any) -> None:
        span = self._take_call()
        if span is None:
            return
        _failed(span, outcomes.classify(exception).error_code or type(exception).__name__, exception)
        span.end()

    def _take_call(self) -> Any:
        span = getattr(self._local, "call", None)
        self._local.call = None
        return span


def _answered(span: Any, answer: outcomes.Answer) -> None:
    """What AWS answered, on an attempt's span or a call's: its status, request id and error code."""
    attributes: dict[str, Any] = {"http.response.status_code": answer.http_status}
    if answer.request_id:
        attributes["aws.request_id"] = answer.request_id
    if answer.http_status >= 300:
        attributes["aws.error_code"] = answer.code
        span.set_status(Status(StatusCode.ERROR, answer.code))
    span.set_attributes(attributes)


def _failed(span: Any, error_type: str, exception: BaseException) -> None:
    """An attempt or call that got no answer (a transport failure, the deadline)."""
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
