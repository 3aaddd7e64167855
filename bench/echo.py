"""A bare gRPC echo server: the floor under the facade's added latency, in one of four serving models.

- `sync`: grpc's sync server (its polling thread hands each call to a pool thread), the facade's model
  before issue 16: a stream that never sends its message holds one of those threads;
- `aio`: grpc's asyncio server, the handler on the event loop (no hand-off, but a handler that blocks
  stalls every call: boto3 blocks);
- `aio-thread`: grpc's asyncio server handing a unary handler to a thread (`run_in_executor`);
- `facade`: the facade's serving model (servicer.py): grpc's asyncio server, the method registered
  stream-unary so that the request is read on the loop under a time limit, then handed to a pool
  thread in a copy of the task's context.

`python -m bench.echo MODEL` prints its port, then serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import signal
import sys
import threading
from concurrent import futures
from typing import Any

import grpc

from service.settings import Settings

MODELS = ("sync", "aio", "aio-thread", "facade")
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


async def serve_aio(model: str) -> None:
    pool = futures.ThreadPoolExecutor(max_workers=16)

    async def echo_async(request: bytes, context: Any) -> bytes:
        if model == "aio-thread":
            return await asyncio.get_running_loop().run_in_executor(pool, echo, request, context)
        return request

    read_timeout_seconds = Settings.from_env({}).request_read_timeout_seconds  # the facade's default

    async def echo_as_facade(requests: Any, context: Any) -> bytes:
        async with asyncio.timeout(read_timeout_seconds):
            request = await context.read()
        work = pool.submit(contextvars.copy_context().run, functools.partial(echo, request, None))
        return await asyncio.wrap_future(work)

    server = grpc.aio.server()
    handler: grpc.RpcMethodHandler[bytes, bytes] = (
        grpc.stream_unary_rpc_method_handler(echo_as_facade)
        if model == "facade"
        else grpc.unary_unary_rpc_method_handler(echo_async)
    )
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
        asyncio.run(serve_aio(model))


if __name__ == "__main__":
    main()
