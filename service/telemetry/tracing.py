"""OpenTelemetry traces of the facade's RPCs, configured by the standard `OTEL_*` variables only.

Off unless an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), or when `OTEL_SDK_DISABLED=true`: then `from_env` gives None and
no reporter, span or exporter thread exists. On, the SDK reads the rest itself (`OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and its argument, the exporter's headers, timeout and
TLS) and a batch processor exports over OTLP/gRPC.

One SERVER span per RPC of the facade (health makes none: probes come every few seconds), the child of
the caller's span when the caller sent W3C `traceparent`/`tracestate` (baggage is continued too), with
gRPC's semantic conventions: `rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`, and the
caller's identity. No attribute holds record text, a record id or a namespace. While an RPC is served,
its log lines carry `traceId` and `spanId` (json_logs.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from service import calls

DEFAULT_SERVICE_NAME = "agentcore-memory-grpc"
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
    provider = TracerProvider(resource=resource)  # the sampler from OTEL_TRACES_SAMPLER
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider)


class Tracing:
    """A tracer provider of the facade's own (never the process-global one) and its reporter."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("agentcore-memory-grpc")
        self.reporter = SpanReporter(self.tracer)

    def shutdown(self) -> None:
        """Export what is still buffered, then stop the exporter's thread."""
        self.provider.shutdown()


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
        parent = propagate.extract(carrier)
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
        code = call.code or grpc.StatusCode.UNKNOWN
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        identity = call.identity
        if isinstance(identity, str):
            span.set_attribute("enduser.id", identity)
        if code in _SERVER_ERRORS:
            span.set_status(Status(StatusCode.ERROR, code.name))
        span.end()
