"""One RPC in progress: the Call that every layer shares, and the interceptor that reports it.

The Call lives in a ContextVar: the handler thread runs the servicer and the boto3 call, so botocore's
hooks (deadlines, upstream metrics) find the same object the interceptors opened. Reporters (the gRPC
metrics, the access log) each get their own interceptor from `Interceptor`, as go-grpc-middleware's
`interceptors` package drives its providers; an inner interceptor joins the Call the outer one opened.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias

import grpc

from service import operations, tls, upstream

# grpc.StatusCode as grpc-go's codes.Code.String() spells it: the `grpc_code` label and `grpcCode` field.
GO_CODE_NAMES: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}


@dataclasses.dataclass
class Call:
    """What is known of one RPC while it runs: gathered by every layer, read when it finishes. What
    follows from the method (service, method, operation) is worked out once."""

    context: grpc.ServicerContext
    full_method: str = ""
    grpc_type: str = "unary"
    started_at: float = dataclasses.field(default_factory=time.perf_counter)
    request: Any = None  # the facade's request, once parsed
    response: Any = None  # a unary response, once the handler returned one
    code: grpc.StatusCode | None = None  # the code the client received, once finished
    aws_request_id: str | None = None
    aws_error_code: str | None = None  # the `aws_error_code` label of a failed AWS call
    # The caller's deadline shortened the AWS read timeout: a read timeout is then that deadline.
    read_timeout_cut_short: bool = False
    # When the service gives up on a caller that set no deadline (perf_counter time); None: never.
    default_deadline: float | None = None
    refused: str | None = None  # why admission refused the RPC, if it did
    # errors.py's pattern of the request's strings, with the request it was built from.
    redaction: tuple[Any, Any] | None = dataclasses.field(default=None, repr=False)

    @functools.cached_property
    def service(self) -> str:
        return self.full_method.lstrip("/").partition("/")[0]

    @functools.cached_property
    def method(self) -> str:
        return self.full_method.rpartition("/")[2]

    @functools.cached_property
    def identity(self) -> str | tls.Refusal:
        """Who is calling: the identity of its client certificate, or `anonymous`; or why that
        identity is refused (tls.identity_of)."""
        return tls.identity_of(self.context)

    @property
    def caller(self) -> str:
        """Who is calling; tls.CallerIdentityError when its certificate's identity is refused."""
        return tls.accepted(self.identity)

    @functools.cached_property
    def operation(self) -> operations.Operation[Any, Any] | None:
        """The table's entry, for the facade's own RPCs (not health or reflection)."""
        return operations.BY_FULL_METHOD.get(self.full_method)

    def seconds(self) -> float:
        return time.perf_counter() - self.started_at

    def stopped(self) -> upstream.CallerGoneError | None:
        """Why no more work should start for this RPC: the caller went away, or its deadline (the
        caller's or the default one) passed; None while it still waits."""
        gone = upstream.caller_gone(self.context)
        if gone is not None:
            return gone
        remaining = self.time_remaining()
        if remaining is not None and remaining <= 0:
            return upstream.DeadlineExceededError("the deadline passed")
        return None

    def time_remaining(self) -> float | None:
        """Seconds left before the caller's deadline, or the default one; None when there is neither."""
        remaining: float | None = self.context.time_remaining()
        if self.default_deadline is not None:
            own = self.default_deadline - time.perf_counter()
            remaining = own if remaining is None else min(remaining, own)
        return remaining


# grpc reports a call without a deadline as one about 292 billion years away.
_NO_DEADLINE_SECONDS = 1e12


def has_deadline(context: grpc.ServicerContext) -> bool:
    """Whether the caller set a deadline."""
    remaining = context.time_remaining()
    return remaining is not None and remaining < _NO_DEADLINE_SECONDS


_current: contextvars.ContextVar[Call | None] = contextvars.ContextVar("agentcore_call", default=None)


def current() -> Call | None:
    """The RPC this thread is serving, if any."""
    return _current.get()


@contextlib.contextmanager
def scope(context: grpc.ServicerContext, full_method: str = "", grpc_type: str = "unary") -> Iterator[Call]:
    """The Call of this RPC: the one an outer layer opened (an interceptor may wrap `context`), else a
    new one for this block."""
    call = _current.get()
    if call is not None:
        yield call
        return
    call = Call(context, full_method, grpc_type)
    token = _current.set(call)
    try:
        yield call
    finally:
        _current.reset(token)


class Reporter:
    """What an interceptor tells: a call started, a message came or went, the call finished. Each does
    nothing unless a reporter overrides it."""

    def started(self, call: Call) -> None:
        pass

    def received(self, call: Call) -> None:
        pass

    def sent(self, call: Call) -> None:
        pass

    def finished(self, call: Call) -> None:
        pass


def grpc_type(client_streaming: bool, server_streaming: bool) -> str:
    """The `grpc_type` label, as go-grpc-middleware names the four kinds of RPC."""
    if client_streaming and server_streaming:
        return "bidi_stream"
    if client_streaming:
        return "client_stream"
    if server_streaming:
        return "server_stream"
    return "unary"


def final_code(context: grpc.ServicerContext, raised: bool) -> grpc.StatusCode:
    """The code the client receives. abort() and set_code() leave it on the context; grpc answers
    UNKNOWN for any other exception; and the client has its answer already if it went away."""
    # grpcio's ServicerContext.code() (since 1.38) is missing from the stubs; None when never set.
    code: grpc.StatusCode | None = context.code()  # type: ignore[attr-defined]
    if code is not None:
        return code
    if raised:
        return grpc.StatusCode.UNKNOWN
    gone = upstream.caller_gone(context)
    return gone.code if gone is not None else grpc.StatusCode.OK


Behavior = Callable[[Any, grpc.ServicerContext], Any]
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
_BEHAVIORS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


def with_behavior(handler: Handler, wrap: Callable[[Behavior], Behavior]) -> Handler:
    """`handler` with its behavior (whichever of the four kinds it has) replaced by `wrap(behavior)`."""
    kind = next(name for name in _BEHAVIORS if getattr(handler, name) is not None)
    replaced: Handler = handler._replace(**{kind: wrap(getattr(handler, kind))})  # type: ignore[attr-defined]
    return replaced


class _Reporters(Reporter):
    """Several reporters as one, told in order."""

    def __init__(self, reporters: tuple[Reporter, ...]) -> None:
        self._reporters = reporters

    def started(self, call: Call) -> None:
        for reporter in self._reporters:
            reporter.started(call)

    def received(self, call: Call) -> None:
        for reporter in self._reporters:
            reporter.received(call)

    def sent(self, call: Call) -> None:
        for reporter in self._reporters:
            reporter.sent(call)

    def finished(self, call: Call) -> None:
        for reporter in self._reporters:
            reporter.finished(call)


class Interceptor(grpc.ServerInterceptor):
    """Reports every registered method to `reporters`, in order; unknown methods (UNIMPLEMENTED) are left
    alone, which keeps method labels bounded. A method's wrapped handler is built once, not per RPC, and
    one interceptor serves every reporter: one Call, one wrapper and one final code per RPC."""

    def __init__(self, *reporters: Reporter) -> None:
        self._reporter = reporters[0] if len(reporters) == 1 else _Reporters(reporters)
        self._wrapped: dict[str, Handler] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        full_method = handler_call_details.method
        wrapped = self._wrapped.get(full_method)
        if wrapped is not None:
            return wrapped
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        kind = grpc_type(handler.request_streaming, handler.response_streaming)
        observe = self._stream_response if handler.response_streaming else self._unary_response
        wrapped = with_behavior(handler, lambda behavior: observe(behavior, full_method, kind))
        self._wrapped[full_method] = wrapped
        return wrapped

    def _received(self, call: Call, request: Any) -> Any:
        """The request as the behavior takes it; each message is reported as it is received."""
        if call.grpc_type in {"unary", "server_stream"}:
            self._reporter.received(call)
            return request
        return self._each_received(call, request)

    def _each_received(self, call: Call, requests: Iterator[Any]) -> Iterator[Any]:
        for request in requests:
            self._reporter.received(call)
            yield request

    def _unary_response(self, behavior: Behavior, full_method: str, kind: str) -> Behavior:
        reporter = self._reporter

        def observed(request: Any, context: grpc.ServicerContext) -> Any:
            with scope(context, full_method, kind) as call:
                reporter.started(call)
                raised = True
                try:
                    call.response = behavior(self._received(call, request), context)
                    raised = False
                    return call.response
                finally:
                    # go-grpc-middleware v2 counts a unary RPC's response as sent whatever its outcome.
                    reporter.sent(call)
                    call.code = final_code(context, raised)
                    reporter.finished(call)

        return observed

    def _stream_response(self, behavior: Behavior, full_method: str, kind: str) -> Behavior:
        reporter = self._reporter

        def observed(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            # Not made current: a generator may be closed on another thread, and streams call no AWS.
            call = Call(context, full_method, kind)
            reporter.started(call)
            raised = True
            try:
                for response in behavior(self._received(call, request), context):
                    reporter.sent(call)
                    yield response
                raised = False
            except GeneratorExit:
                raised = False  # grpc stopped reading: the client went away
                raise
            finally:
                call.code = final_code(context, raised)
                reporter.finished(call)

        return observed
