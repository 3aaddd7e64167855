"""A bare gRPC echo server with the facade's serving model (grpc's sync server and a thread pool): the
floor under the facade's added latency. Prints its port, then serves until SIGTERM."""

from __future__ import annotations

import signal
import threading
from concurrent import futures
from typing import Any

import grpc


def main() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))

    def echo(request: bytes, context: Any) -> bytes:
        return request

    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(echo)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Echo", {"Echo": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop(None)


if __name__ == "__main__":
    main()
