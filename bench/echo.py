"""A bare gRPC echo server: the floor under the facade's added latency, in one of three serving models.

- `sync`: the facade's model, grpc's sync server (its polling thread hands each call to a pool thread);
- `aio`: grpc's asyncio server, the handler on the event loop (no hand-off, but a handler that blocks
  stalls every call: boto3 blocks);
- `aio-thread`: grpc's asyncio server handing the handler to a thread, which is what the facade would
  need there, since boto3 blocks.

`python -m bench.echo MODEL` prints its port, then serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from concurrent import futures
from typing import Any

import grpc

MODELS = ("sync", "aio", "aio-thread")
SERVICE, METHOD = "bench.Echo", "Echo"


def echo(request: bytes, context: Any) -> bytes:
    return request


def serve_sync() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(echo)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {METHOD: handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop(None)


async def serve_aio(in_thread: bool) -> None:
    pool = futures.ThreadPoolExecutor(max_workers=16)

    async def echo_async(request: bytes, context: Any) -> bytes:
        if in_thread:
            return await asyncio.get_running_loop().run_in_executor(pool, echo, request, context)
        return request

    server = grpc.aio.server()
    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(echo_async)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {METHOD: handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(None)
    pool.shutdown()


def main() -> None:
    model = sys.argv[1] if len(sys.argv) > 1 else "sync"
    if model not in MODELS:
        sys.exit(f"usage: python -m bench.echo [{'|'.join(MODELS)}]")
    if model == "sync":
        serve_sync()
    else:
        asyncio.run(serve_aio(in_thread=model == "aio-thread"))


if __name__ == "__main__":
    main()
