"""calls.py: one Call per RPC, shared by every layer on the handler thread, and the code the client
received."""

from __future__ import annotations

import time
from typing import Any

import grpc

from service import calls, operations, upstream
from tests.helpers import FakeContext


class CodedContext(FakeContext):
    def __init__(self, code: grpc.StatusCode | None = None, **state: Any) -> None:
        super().__init__(**{"active": True, "remaining": None, **state})
        self._code = code

    def code(self) -> grpc.StatusCode | None:
        return self._code


def test_a_scope_opens_one_call_and_inner_scopes_join_it() -> None:
    context: Any = CodedContext()
    assert calls.current() is None
    with calls.scope(context, operations.GET.full_method) as outer:
        assert calls.current() is outer
        assert outer.operation is operations.GET
        assert (outer.service, outer.method) == (operations.SERVICE_NAME, "Get")
        with calls.scope(context) as inner:
            assert inner is outer
        with calls.scope(CodedContext()) as wrapped:  # type: ignore[arg-type]
            assert wrapped is outer, "an interceptor may hand on a wrapped context: still one Call"
        assert calls.current() is outer
    assert calls.current() is None


def test_health_and_reflection_have_no_operation() -> None:
    call = calls.Call(CodedContext(), "/grpc.health.v1.Health/Check")  # type: ignore[arg-type]
    assert call.operation is None


def test_the_final_code() -> None:
    def final(context: Any, raised: bool = False) -> grpc.StatusCode:
        return calls.final_code(context, raised)

    assert final(CodedContext()) is grpc.StatusCode.OK
    assert final(CodedContext(grpc.StatusCode.NOT_FOUND), raised=True) is grpc.StatusCode.NOT_FOUND
    assert final(CodedContext(), raised=True) is grpc.StatusCode.UNKNOWN
    assert final(CodedContext(active=False, remaining=-1.0)) is grpc.StatusCode.DEADLINE_EXCEEDED
    assert final(CodedContext(active=False, remaining=3.0)) is grpc.StatusCode.CANCELLED


def test_go_code_names_cover_every_code_as_grpc_go_spells_them() -> None:
    assert set(calls.GO_CODE_NAMES) == set(grpc.StatusCode)
    assert calls.GO_CODE_NAMES[grpc.StatusCode.CANCELLED] == "Canceled"  # one L, as in grpc-go
    assert calls.GO_CODE_NAMES[grpc.StatusCode.RESOURCE_EXHAUSTED] == "ResourceExhausted"


def test_a_methods_wrapped_handler_is_built_once() -> None:
    """Every RPC passes through the interceptor: it wraps each method's handler once, not per call, and
    leaves unknown methods (no handler) alone."""
    looked_up: list[str] = []
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: request)

    def continuation(details: Any) -> Any:
        looked_up.append(details.method)
        return handler if details.method == "/x.Y/Known" else None

    def details(method: str) -> Any:
        return type("Details", (), {"method": method, "invocation_metadata": ()})()

    interceptor = calls.Interceptor(calls.Reporter())
    first = interceptor.intercept_service(continuation, details("/x.Y/Known"))
    assert first is not None and first is not handler and first.unary_unary is not handler.unary_unary
    assert interceptor.intercept_service(continuation, details("/x.Y/Known")) is first
    assert interceptor.intercept_service(continuation, details("/x.Y/Unknown")) is None
    assert interceptor.intercept_service(continuation, details("/x.Y/Unknown")) is None
    assert looked_up == ["/x.Y/Known", "/x.Y/Unknown", "/x.Y/Unknown"]


def test_a_call_stopped_by_the_default_deadline_is_deadline_exceeded_not_cancelled() -> None:
    # The caller is still there (its context is active) but DEFAULT_DEADLINE_SECONDS has passed: the
    # chunks of a batch stop starting, and the RPC answers DEADLINE_EXCEEDED.
    call = calls.Call(FakeContext(active=True, remaining=None), default_deadline=time.perf_counter() - 1)
    assert isinstance(call.stopped(), upstream.DeadlineExceededError)
    gone = calls.Call(FakeContext(active=False, remaining=None))
    assert type(gone.stopped()) is upstream.CancelledError
    waiting = calls.Call(FakeContext(active=True, remaining=5.0), default_deadline=time.perf_counter() + 5)
    assert waiting.stopped() is None
