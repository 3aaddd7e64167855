"""calls.py: one Call per RPC, its deadline and the caller's leaving kept on it for the handler's
threads, and the code the client received."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc

from service import calls
from service.api import operations
from tests.service.helpers import FakeContext


def test_a_call_reads_the_callers_deadline_once() -> None:
    call = calls.Call.opened(FakeContext(active=True, remaining=5.0), operations.GET.full_method)
    assert call.operation is operations.GET
    assert (call.service, call.method) == (operations.SERVICE_NAME, "Get")
    assert call.has_deadline()
    remaining = call.time_remaining()
    assert remaining is not None and 4.5 < remaining <= 5.0
    # grpc reports "no deadline" as one about 292 billion years away.
    assert not calls.Call.opened(FakeContext(active=True, remaining=9e12)).has_deadline()
    assert calls.Call.opened(FakeContext(active=True, remaining=None)).time_remaining() is None


def test_health_and_reflection_have_no_operation() -> None:
    call = calls.Call.opened(FakeContext(active=True, remaining=None), "/grpc.health.v1.Health/Check")
    assert call.operation is None


def test_the_final_code_is_what_the_client_saw() -> None:
    def final(context: Any, raised: bool = False, cancelled: bool = False) -> grpc.StatusCode:
        call = calls.Call.opened(context)
        call.cancelled = cancelled
        return calls.final_code(call, context, raised)

    assert final(FakeContext(active=True, remaining=None)) is grpc.StatusCode.OK
    not_found = FakeContext(active=True, remaining=None, code=grpc.StatusCode.NOT_FOUND)
    assert final(not_found, raised=True) is grpc.StatusCode.NOT_FOUND
    assert final(FakeContext(active=True, remaining=None), raised=True) is grpc.StatusCode.UNKNOWN
    # A caller that went away has its own answer, whatever the handler set or returned.
    assert final(FakeContext(active=False, remaining=-1.0)) is grpc.StatusCode.DEADLINE_EXCEEDED
    assert (
        final(FakeContext(active=False, remaining=3.0, code=grpc.StatusCode.OK)) is grpc.StatusCode.CANCELLED
    )
    assert final(FakeContext(active=True, remaining=3.0), cancelled=True) is grpc.StatusCode.CANCELLED
    # The cancel a client sends at its deadline can reach the server just before the server's copy of it.
    assert final(FakeContext(active=False, remaining=0.002)) is grpc.StatusCode.DEADLINE_EXCEEDED
    assert final(FakeContext(active=False, remaining=0.02)) is grpc.StatusCode.CANCELLED


def test_go_code_names_cover_every_code_as_grpc_go_spells_them() -> None:
    assert set(calls.GO_CODE_NAMES) == set(grpc.StatusCode)
    assert calls.GO_CODE_NAMES[grpc.StatusCode.CANCELLED] == "Canceled"  # one L, as in grpc-go
    assert calls.GO_CODE_NAMES[grpc.StatusCode.RESOURCE_EXHAUSTED] == "ResourceExhausted"


def test_a_methods_wrapped_handler_is_built_once() -> None:
    """Every RPC passes through the interceptor: it wraps each method's handler once, not per call, and
    leaves unknown methods (no handler) alone."""
    looked_up: list[str] = []

    async def echo(request: Any, context: Any) -> Any:
        return request

    handler = grpc.unary_unary_rpc_method_handler(echo)

    async def continuation(details: Any) -> Any:
        looked_up.append(details.method)
        return handler if details.method == "/x.Y/Known" else None

    def details(method: str) -> Any:
        return type("Details", (), {"method": method, "invocation_metadata": ()})()

    async def intercepted() -> None:
        interceptor = calls.Interceptor(calls.Reporter())
        first = await interceptor.intercept_service(continuation, details("/x.Y/Known"))
        assert first is not None and first is not handler and first.unary_unary is not handler.unary_unary
        assert await interceptor.intercept_service(continuation, details("/x.Y/Known")) is first
        assert await interceptor.intercept_service(continuation, details("/x.Y/Unknown")) is None
        assert await interceptor.intercept_service(continuation, details("/x.Y/Unknown")) is None

    asyncio.run(intercepted())
    assert looked_up == ["/x.Y/Known", "/x.Y/Unknown", "/x.Y/Unknown"]


def test_a_call_stopped_by_the_default_deadline_is_deadline_exceeded_not_cancelled() -> None:
    # The caller is still there but DEFAULT_DEADLINE_SECONDS has passed: the chunks of a batch stop
    # starting, and the RPC answers DEADLINE_EXCEEDED.
    call = calls.Call.opened(FakeContext(active=True, remaining=None))
    call.default_deadline = time.perf_counter() - 1
    assert isinstance(call.stopped(), calls.DeadlineExceededError)
    assert call.caller_gone() is None, "the caller itself is still waiting"
    gone = calls.Call.opened(FakeContext(active=True, remaining=None))
    gone.cancelled = True
    assert type(gone.stopped()) is calls.CancelledError
    waiting = calls.Call.opened(FakeContext(active=True, remaining=5.0))
    waiting.default_deadline = time.perf_counter() + 5
    assert waiting.stopped() is None
    late = calls.Call.opened(FakeContext(active=True, remaining=0.0))
    assert type(late.caller_gone()) is calls.DeadlineExceededError
