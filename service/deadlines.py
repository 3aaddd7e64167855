"""The caller's deadline and cancellation bound the upstream work.

A botocore `before-send` hook runs before every attempt (first try and each retry). It refuses to
start an attempt once the caller's deadline has passed or the caller has cancelled, and it lowers
the attempt's read timeout to the time the caller has left (botocore honours a per-request
`read_timeout` in the request context). The connect timeout stays as configured: botocore offers no
per-request override for it.

The RPC in progress is found through a thread-local: the gRPC handler thread is the thread that
makes the boto3 call.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import grpc

# Below this, an attempt cannot finish in time: refuse it rather than start it.
MIN_ATTEMPT_SECONDS = 0.001

_current = threading.local()


class DeadlineExceededError(Exception):
    """The caller's deadline passed before an upstream attempt could start."""


class CancelledError(Exception):
    """The caller cancelled before an upstream attempt could start."""


@contextlib.contextmanager
def bounded_by(context: grpc.ServicerContext) -> Iterator[None]:
    """Within this block, boto3 calls on this thread are bounded by `context`'s deadline."""
    _current.context = context
    try:
        yield
    finally:
        _current.context = None


def register(client: Any, read_timeout_seconds: float) -> None:
    """Install the hook on `client` (once, at start)."""

    def before_send(request: Any, **_: Any) -> None:
        context: grpc.ServicerContext | None = getattr(_current, "context", None)
        if context is None:
            return
        remaining = context.time_remaining()
        if not context.is_active():
            if remaining is not None and remaining <= 0:
                raise DeadlineExceededError("the caller's deadline passed before the upstream call")
            raise CancelledError("the caller cancelled before the upstream call")
        if remaining is None:
            return
        if remaining < MIN_ATTEMPT_SECONDS:
            raise DeadlineExceededError("the caller's deadline passed before the upstream call")
        request.context["read_timeout"] = min(read_timeout_seconds, remaining)

    client.meta.events.register("before-send.bedrock-agentcore", before_send)
