"""Every metric of the service, in one registry, split by job as go-grpc-middleware splits its
provider: `grpc_server` (the gRPC server metrics and their reporter), `aws_calls` (AWS calls, recorded
by the botocore hooks of telemetry/aws_hooks.py), `security` (TLS and authorization) and `exposition`
(/metrics).

Cardinality is bounded: labels hold method, operation and code names from fixed sets, never a memory
id, record id or text. Every Metrics owns its CollectorRegistry, so that tests can run several servers
in one process and read exact counts; production creates one.
"""

from __future__ import annotations

import prometheus_client
from prometheus_client import CollectorRegistry, Gauge

from service import __version__
from service.telemetry.metrics import exposition
from service.telemetry.metrics.aws_calls import AwsCallMetrics
from service.telemetry.metrics.children import Children
from service.telemetry.metrics.grpc_server import ServerMetrics
from service.telemetry.metrics.limits import LimitMetrics
from service.telemetry.metrics.security import SecurityMetrics

__all__ = ["AwsCallMetrics", "Children", "LimitMetrics", "Metrics", "ServerMetrics"]

VERSION = __version__
# Seconds. The floor separates requests refused before AWS (under 1 ms) from AWS calls (tens of ms);
# the top covers AWS_READ_TIMEOUT_SECONDS (30 s) times retries with back-off.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80)

# Go's client emits no `_created` series; neither do we (it would double the series count).
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    """The service's metrics in one registry: `server` (gRPC), `aws_calls` (AWS), `security` (TLS and
    the authorization policy) and `limits` (per-caller limits)."""

    def __init__(self, *, backend: str, version: str = VERSION) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.server = ServerMetrics(self.registry, LATENCY_BUCKETS)
        self.aws_calls = AwsCallMetrics(self.registry, LATENCY_BUCKETS)
        self.security = SecurityMetrics(self.registry)
        self.limits = LimitMetrics(self.registry)
        self.build_info = Gauge(
            "agentcore_build_info",
            "Always 1: the service's version and backend.",
            ("version", "backend"),
            multiprocess_mode="max",
            registry=self.registry,
        )
        self.build_info.labels(version, backend).set(1)
        exposition.add_process_collectors(self.registry)
