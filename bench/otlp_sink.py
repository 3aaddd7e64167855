"""An OTLP/gRPC trace receiver on loopback that keeps only the trace ids of what it receives, for the
bench's traced facades (what a collector costs is not the facade's) and the tests' (`receiving()`).

`python -m bench.otlp_sink` prints its port on the first line of stdout, then after each export the
running total of spans: `spans N`.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as otlp
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as otlp_grpc


class Receiver(otlp_grpc.TraceServiceServicer):
    """Accepts every export; keeps, for each exporting connection (its peer), the trace ids of its
    spans in the order received. `on_export(total)` is told the running count of spans."""

    def __init__(self, on_export: Callable[[int], None] = lambda total: None) -> None:
        self._lock = threading.Lock()
        self._on_export = on_export
        self.by_peer: dict[str, list[str]] = {}
        self.spans = 0

    def Export(
        self, request: otlp.ExportTraceServiceRequest, context: Any
    ) -> otlp.ExportTraceServiceResponse:
        traces = [
            span.trace_id.hex()
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]
        with self._lock:
            self.by_peer.setdefault(context.peer(), []).extend(traces)
            self.spans += len(traces)
            self._on_export(self.spans)
        return otlp.ExportTraceServiceResponse()


def _serve(receiver: Receiver) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    otlp_grpc.add_TraceServiceServicer_to_server(receiver, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


@contextlib.contextmanager
def receiving() -> Iterator[tuple[str, Receiver]]:
    """A receiver serving in this process: its endpoint (`http://127.0.0.1:port`, for
    OTEL_EXPORTER_OTLP_ENDPOINT) and what it received."""
    receiver = Receiver()
    server, port = _serve(receiver)
    try:
        yield f"http://127.0.0.1:{port}", receiver
    finally:
        server.stop(grace=None)


def main() -> int:
    server, port = _serve(Receiver(lambda total: print(f"spans {total}", flush=True)))
    print(port, flush=True)
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main())
