"""Which threads run which RPC: health checks, and streams (health Watch, reflection), on small pools of
their own, so that neither admitted work, a flood of refusals, nor open streams can make a health
check wait; every other RPC on the main pool.

grpc's sync server runs a method on the pool its behavior names in `experimental_thread_pool`; this
interceptor, outermost, sets it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc

from service import calls

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
# Kubernetes probes and load balancers check health a few times a second at most.
HEALTH_CHECK_THREADS = 2
# Open streams (health Watch, server reflection) hold a thread each; past this many they wait.
STREAM_THREADS = 8


class ThreadPools(grpc.ServerInterceptor):
    """Runs health checks and streaming RPCs on pools of their own."""

    def __init__(self) -> None:
        self._health = futures.ThreadPoolExecutor(HEALTH_CHECK_THREADS, thread_name_prefix="grpc-health")
        self._streams = futures.ThreadPoolExecutor(STREAM_THREADS, thread_name_prefix="grpc-stream")
        # By method: the handler the next interceptor gave (built once per method) and ours around it.
        self._wrapped: dict[str, tuple[calls.Handler, calls.Handler]] = {}

    def pool_for(self, full_method: str, handler: calls.Handler) -> futures.ThreadPoolExecutor | None:
        """The pool of this method, or None for the server's main pool."""
        if full_method == HEALTH_CHECK:
            return self._health
        if handler.request_streaming or handler.response_streaming:
            return self._streams
        return None

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], calls.Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> calls.Handler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        pool = self.pool_for(method, handler)
        wrapped = (
            handler if pool is None else calls.with_behavior(handler, lambda behavior: _on(pool, behavior))
        )
        self._wrapped[method] = (handler, wrapped)
        return wrapped


def _on(pool: futures.ThreadPoolExecutor, behavior: calls.Behavior) -> calls.Behavior:
    """`behavior`, run by grpc on `pool`."""

    @functools.wraps(behavior)
    def on_its_pool(request: Any, context: grpc.ServicerContext) -> Any:
        return behavior(request, context)

    on_its_pool.experimental_thread_pool = pool  # type: ignore[attr-defined]
    return on_its_pool
