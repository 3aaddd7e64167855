"""`python -m bench.otlp_sink`: an OTLP/gRPC trace receiver on loopback that keeps nothing but a count,
for the bench's traced facades to export to (what a collector costs is not the facade's). Prints its
port on the first line of stdout, then after each export the running total of spans: `spans N`."""

from __future__ import annotations

import sys
import threading
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as otlp
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as otlp_grpc


class _Sink(otlp_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spans = 0

    def Export(
        self, request: otlp.ExportTraceServiceRequest, context: Any
    ) -> otlp.ExportTraceServiceResponse:
        received = sum(
            len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans
        )
        with self._lock:
            self.spans += received
            print(f"spans {self.spans}", flush=True)
        return otlp.ExportTraceServiceResponse()


def main() -> int:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    otlp_grpc.add_TraceServiceServicer_to_server(_Sink(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main())
