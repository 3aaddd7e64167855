"""One RPC in progress: the Call that every layer shares, and the interceptor that reports it.

The Call lives in a ContextVar: grpc.aio runs each RPC in a task of its own, and the thread the servicer
hands the boto3 call to runs in a copy of that task's context, so botocore's hooks (deadlines, upstream
metrics) find the same object the interceptor opened. Reporters (the gRPC
metrics, the access log) each get their own interceptor from `Interceptor`, as go-grpc-middleware's
`interceptors` package drives its providers; an inner interceptor joins the Call the outer one opened.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from google.protobuf import descriptor_pool

from service.api import operations

# grpc.StatusCode as grpc-go's codes.Code.String() spells it: the `grpc_code` label and `grpcCode` field.
from service.security import tls

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


class CallerGoneError(Exception):
    """The caller's deadline passed or it cancelled: upstream work stops."""

    code = grpc.StatusCode.CANCELLED
    reason = "CANCELLED"
    error_code = "Cancelled"


class DeadlineExceededError(CallerGoneError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"
    error_code = "DeadlineExceeded"


class CancelledError(CallerGoneError):
    pass


@dataclasses.dataclass(eq=False)
class Call:
    """What is known of one RPC while it runs: gathered by every layer, read when it finishes. What
    follows from the method (service, method, operation) is worked out once.

    Its lifecycle (the caller's deadline, a cancellation) is kept here rather than asked of the
    context, so that the handler's threads read plain attributes, never grpc's asyncio objects."""

    context: Any  # the grpc.aio.ServicerContext
    full_method: str = ""
    grpc_type: str = "unary"
    started_at: float = dataclasses.field(default_factory=time.perf_counter)
    # The caller's deadline (perf_counter time); None when it set none.
    deadline: float | None = None
    # When the service gives up on a caller that set no deadline (perf_counter time); None: never.
    default_deadline: float | None = None
    # The caller went away (it cancelled, or the server cut the RPC off): set on the event loop.
    cancelled: bool = False
    request: Any = None  # the facade's request, once parsed
    response: Any = None  # a unary response, once the handler returned one
    code: grpc.StatusCode | None = None  # the code the client received, once finished
    aws_request_id: str | None = None
    aws_error_code: str | None = None  # the `aws_error_code` label of a failed AWS call
    refused: str | None = None  # why admission refused the RPC, if it did
    # Its caller's share of AWS turns when they are scarce: the `weight` of its entry of the policy's
    # `limits` (1 when none applies); the caller is `identity`.
    weight: float = 1.0
    # This RPC's id: on each of its log lines (`rpcId`) and in its response's x-request-id.
    rpc_id: str = dataclasses.field(default_factory=lambda: f"{random.getrandbits(64):016x}")
    # Its OpenTelemetry SERVER span, when tracing is on (telemetry/tracing.py); None otherwise.
    span: Any = None
    # Told when the request message has been read (the metrics' msg_received).
    on_received: Callable[[Call], None] = dataclasses.field(default=lambda call: None, repr=False)
    # Told the code of an error status just before it is sent (the RPC is reported finished then).
    on_answer: Callable[[grpc.StatusCode], None] = dataclasses.field(default=lambda code: None, repr=False)

    @classmethod
    def opened(cls, context: Any, full_method: str = "", grpc_type: str = "unary") -> Call:
        """The Call of an RPC that starts now, its deadline read off `context`."""
        now = time.perf_counter()
        remaining = context.time_remaining()
        deadline = None if remaining is None or remaining >= _NO_DEADLINE_SECONDS else now + remaining
        return cls(context, full_method, grpc_type, started_at=now, deadline=deadline)

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

    def event(self, name: str, attributes: dict[str, Any]) -> None:
        """An event on the RPC's span (telemetry/tracing.py), when tracing is on; nothing otherwise.
        `attributes` must hold nothing of a record: counts, reasons and limits only."""
        if self.span is not None:
            self.span.add_event(name, attributes)

    def has_deadline(self) -> bool:
        """Whether the caller set a deadline."""
        return self.deadline is not None

    def caller_gone(self) -> CallerGoneError | None:
        """Why the caller is no longer waiting (its deadline passed, or it cancelled), or None."""
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            return DeadlineExceededError("the caller's deadline passed")
        if self.cancelled:
            return CancelledError("the caller cancelled")
        return None

    def stopped(self) -> CallerGoneError | None:
        """Why no more work should start for this RPC: the caller went away, or its deadline (the
        caller's or the default one) passed; None while it still waits."""
        gone = self.caller_gone()
        if gone is not None:
            return gone
        remaining = self.time_remaining()
        if remaining is not None and remaining <= 0:
            return DeadlineExceededError("the deadline passed")
        return None

    def time_remaining(self) -> float | None:
        """Seconds left before the caller's deadline, or the default one; None when there is neither."""
        ends = self.deadline
        if self.default_deadline is not None:
            ends = self.default_deadline if ends is None else min(ends, self.default_deadline)
        return None if ends is None else ends - time.perf_counter()


# grpc reports a call without a deadline as one about 292 billion years away.
_NO_DEADLINE_SECONDS = 1e12


# The response metadata (in the trailers) that carries an RPC's id back to its caller, to quote in a
# support ticket.
REQUEST_ID_HEADER = "x-request-id"

_current: contextvars.ContextVar[Call | None] = contextvars.ContextVar("agentcore_call", default=None)

# Which chunk of a batch the AWS call made in this context sends (0 for a batch sent in one call), set
# by batches.py in each chunk's own context; the AWS call's span reads it. None outside a batch.
chunk_index: contextvars.ContextVar[int | None] = contextvars.ContextVar("agentcore_chunk", default=None)


def current() -> Call | None:
    """The RPC this task, or the thread it handed work to, is serving, if any."""
    return _current.get()


def make_current(call: Call) -> None:
    """`call` is the RPC of this asyncio task (grpc.aio runs each RPC in a task of its own, so the
    setting ends with it); threads the task hands work to carry it in a copy of the context."""
    _current.set(call)


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


def final_code(call: Call, context: Any, raised: bool) -> grpc.StatusCode:
    """The code the client received, read once the RPC is done (grpc.aio's done callback): a caller
    that went away has its own answer (CANCELLED, or DEADLINE_EXCEEDED at its deadline), whatever the
    handler did; abort() and set_code() leave theirs on the context; grpc answers UNKNOWN for any other
    exception."""
    if call.cancelled or context.cancelled():
        call.cancelled = True
        if call.deadline is not None and time.perf_counter() >= call.deadline - _DEADLINE_SLACK_SECONDS:
            return grpc.StatusCode.DEADLINE_EXCEEDED
        return grpc.StatusCode.CANCELLED
    code: grpc.StatusCode | None = context.code()
    if code is not None:
        return code
    return grpc.StatusCode.UNKNOWN if raised else grpc.StatusCode.OK


# A cancel that reaches the server this close to the caller's deadline is that deadline: a grpc client
# sends RST_STREAM(CANCEL) when its deadline passes, and the server's copy of the deadline started when
# the headers arrived, a little later (on a loaded 2-core machine the server saw such cancels 0.2-12 ms
# past its own deadline, and once, in CI, before it).
_DEADLINE_SLACK_SECONDS = 0.005


Behavior = Callable[[Any, Any], Any]
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
        self._told = {
            event: tuple(getattr(reporter, event) for reporter in reporters)
            for event in ("started", "received", "sent", "finished")
        }

    def _tell(self, event: str, call: Call) -> None:
        for told in self._told[event]:
            told(call)

    def started(self, call: Call) -> None:
        self._tell("started", call)

    def received(self, call: Call) -> None:
        self._tell("received", call)

    def sent(self, call: Call) -> None:
        self._tell("sent", call)

    def finished(self, call: Call) -> None:
        self._tell("finished", call)


def _method_type(full_method: str, handler: Handler) -> str:
    """The `grpc_type` of a method as its proto declares it: the facade's and health's methods are
    served as if their requests streamed (the service reads each request itself, under a time limit),
    which is no business of the metrics."""
    service, _, method = full_method.lstrip("/").partition("/")
    try:
        declared = descriptor_pool.Default().FindServiceByName(service).methods_by_name[method]
    except KeyError:
        return grpc_type(handler.request_streaming, handler.response_streaming)
    return grpc_type(declared.client_streaming, declared.server_streaming)


class Interceptor(grpc.aio.ServerInterceptor):
    """Reports every registered method to `reporters`, in order; unknown methods (UNIMPLEMENTED) are left
    alone, which keeps method labels bounded. A method's wrapped handler is built once, not per RPC, and
    one interceptor serves every reporter: one Call, one wrapper and one final code per RPC.

    An RPC is reported finished with the code its caller gets: a caller that cancelled, or whose
    deadline passed, is counted as what it saw whatever the handler did."""

    def __init__(self, *reporters: Reporter) -> None:
        self._reporter = reporters[0] if len(reporters) == 1 else _Reporters(reporters)
        self._wrapped: dict[str, Handler] = {}
        # The server is stopping: an RPC cancelled now was cut off by the end of the shutdown grace.
        self.stopping = False

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        full_method = handler_call_details.method
        wrapped = self._wrapped.get(full_method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        kind = _method_type(full_method, handler)
        observe = self._stream_response if handler.response_streaming else self._unary_response
        wrapped = with_behavior(handler, lambda behavior: observe(behavior, full_method, kind))
        self._wrapped[full_method] = wrapped
        return wrapped

    def _open(self, context: Any, full_method: str, kind: str) -> Call:
        call = Call.opened(context, full_method, kind)
        call.on_received = self._reporter.received
        call.on_answer = lambda code: self._answer(call, code)
        make_current(call)
        self._reporter.started(call)
        return call

    def _answer(self, call: Call, code: grpc.StatusCode) -> None:
        # An error status is sent by abort() itself: report the RPC before its caller can read it.
        if call.code is None and not call.cancelled:
            call.code = code
            if code == grpc.StatusCode.OK:
                self._reporter.sent(call)
            self._reporter.finished(call)

    def _finish(self, call: Call, context: Any, raised: bool) -> None:
        """Report the RPC finished, with the code its caller gets: told before grpc sends the status
        (so that a caller reading the metrics after its answer finds its RPC), or once the caller is
        gone; an RPC cut off by the server's stop is what its caller saw, UNAVAILABLE."""
        if call.code is not None:
            return  # reported already
        past_deadline = call.deadline is not None and time.perf_counter() >= call.deadline
        if self.stopping and call.cancelled and not past_deadline:
            call.code = grpc.StatusCode.UNAVAILABLE
        if call.code is None:
            call.code = final_code(call, context, raised)
        self._reporter.finished(call)

    def _received(self, call: Call, request: Any) -> Any:
        """The request as the behavior takes it; each message is reported as it is received (a
        stream-unary facade method reports its one message itself, through `Call.on_received`)."""
        if call.grpc_type in {"unary", "server_stream"}:
            if not hasattr(request, "__aiter__"):
                self._reporter.received(call)
            return request
        return self._each_received(call, request)

    async def _each_received(self, call: Call, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for request in requests:
            self._reporter.received(call)
            yield request

    def _unary_response(self, behavior: Behavior, full_method: str, kind: str) -> Behavior:
        reporter = self._reporter

        async def observed(request: Any, context: Any) -> Any:
            call = self._open(context, full_method, kind)
            raised = True
            try:
                call.response = await behavior(self._received(call, request), context)
                raised = False
                return call.response
            except asyncio.CancelledError:
                call.cancelled = True
                raise
            except grpc.aio.AbortError:
                raised = False  # the code is on the context
                raise
            finally:
                self._finish(call, context, raised)
                # go-grpc-middleware v2 counts a unary RPC's response as sent when it ended OK only
                # (tests/integration/test_middleware_metrics.py compares the two).
                if call.code == grpc.StatusCode.OK:
                    reporter.sent(call)

        return observed

    def _stream_response(self, behavior: Behavior, full_method: str, kind: str) -> Behavior:
        reporter = self._reporter

        async def observed(request: Any, context: Any) -> AsyncIterator[Any]:
            call = self._open(context, full_method, kind)
            raised = True
            try:
                async for response in behavior(self._received(call, request), context):
                    reporter.sent(call)
                    yield response
                raised = False
            except (asyncio.CancelledError, GeneratorExit):
                call.cancelled = True  # grpc stopped reading: the client went away
                raise
            except grpc.aio.AbortError:
                raised = False
                raise
            finally:
                self._finish(call, context, raised)

        return observed
