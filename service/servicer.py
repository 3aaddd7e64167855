"""The servicer: one generic method, driven by the operation table. Read the request (under a time limit
of its own), admit, then on a thread: inflate, parse, validate, authorize, translate, wait for a turn, call
boto3 once, translate back (batches: once per 100 records, batches.py).

The facade's methods are registered as stream-unary on grpc's asyncio server, so that the request
message is read by this code on the event loop, not by grpc before any of it runs: a stream that never
sends its message holds no thread and no admission, and is reset at REQUEST_READ_TIMEOUT_SECONDS. Only an
admitted RPC gets a thread (its boto3 call blocks). Messages arrive as they were sent (grpc's own
per-message decompression is off, server.py): a gzip request is inflated here within the admission byte
budget (compression.py).

A failure of any kind leaves through `errors.to_status` exactly once, so nothing reaches a caller as
UNKNOWN. Requests arrive as bytes and are parsed here, so that bytes which are not the method's message
are the caller's mistake (INVALID_ARGUMENT), counted and logged like any other outcome.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc

from service import calls, compression, errors
from service.admission import Admission, OverloadedError, Ticket
from service.api import operations, request_errors, validate
from service.api.operations import Operation
from service.batches import AwsCalls
from service.caller_limits import CallerLimitedError, CallerLimits
from service.rate_counters import StorageUnavailableError
from service.security import authz, tls
from service.upstream import rate_limits


class MemoryRecordsServicer:
    """`agentcore.memory.v1.MemoryRecordsService`; `aws_calls` makes its AWS calls, on one shared boto3
    client; `executor` runs each admitted RPC's blocking part."""

    def __init__(
        self,
        admission: Admission,
        aws_calls: AwsCalls,
        *,
        executor: futures.Executor,
        default_deadline_seconds: float,
        request_read_timeout_seconds: float,
        max_request_bytes: int,
        max_inflated_bytes: int,
        authorizer: authz.Authorizer | None = None,
        caller_limits: CallerLimits | None = None,
        count_read_timeout: Callable[[calls.Call], None] = lambda call: None,
    ) -> None:
        self._admission = admission
        self._aws_calls = aws_calls
        self._executor = executor
        self._authorizer = authorizer or authz.Authorizer(None)
        self._caller_limits = caller_limits or CallerLimits(None)
        self._default_deadline_seconds = default_deadline_seconds
        self._read_timeout_seconds = request_read_timeout_seconds
        self._max_request_bytes = max_request_bytes
        self._max_inflated_bytes = max_inflated_bytes
        self._count_read_timeout = count_read_timeout

    def add_to_server(self, server: grpc.aio.Server) -> None:
        """One method per entry of the operation table, registered by name for stubs that send
        registered calls, and generically for every other client."""
        handlers: dict[str, grpc.RpcMethodHandler[bytes, Any]] = {
            operation.rpc: grpc.stream_unary_rpc_method_handler(
                functools.partial(self.call, operation),
                request_deserializer=None,  # bytes: read and parsed in `call`
                response_serializer=operation.response_type.SerializeToString,
            )
            for operation in operations.OPERATIONS
        }
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(operations.SERVICE_NAME, handlers),)
        )
        server.add_registered_method_handlers(operations.SERVICE_NAME, handlers)

    async def call(self, operation: Operation[Any, Any], requests: Any, context: Any) -> Any:
        """Serve one RPC of `operation`: read its request, admit it, and serve it on a thread."""
        call = calls.current()
        if call is None or call.full_method != operation.full_method:  # no interceptor opened one
            call = calls.Call.opened(context, operation.full_method)
            calls.make_current(call)
        if not call.has_deadline():
            call.default_deadline = time.perf_counter() + self._default_deadline_seconds
        # In the trailers, which leave with the answer: initial metadata of its own would be one more
        # batch through grpc core per RPC (+0.2 ms p50 on loopback). On an error the trailers are the
        # response's only header block.
        context.set_trailing_metadata(((calls.REQUEST_ID_HEADER, call.rpc_id),))
        try:
            gone = call.caller_gone()
            if gone is not None:
                raise gone  # its deadline passed while it waited in gRPC's queue
            self._authorizer.check_identity(call.identity, operation.full_method)  # raises when refused
            leave = self._caller_limits.enter(call)  # raises when the caller's RPCs at once are all taken
        except Exception as exc:
            await self._abort(context, call, self._failure(call, exc, None, operation))
            raise  # abort always raises; this keeps type checkers honest
        outlived: list[futures.Future[Any]] = []  # the RPC's thread, when it goes on after the answer
        try:
            try:
                raw = await self._read(context, call)
                call.on_received(call)
                ticket = self._admission.admit(len(raw))
            except Exception as exc:
                await self._abort(context, call, self._failure(call, exc, None, operation))
                raise
            try:
                outcome = await self._in_thread(
                    ticket, functools.partial(self._serve, operation, raw, call, ticket), outlived
                )
                if isinstance(outcome, grpc.Status):
                    await self._abort(context, call, outcome)
                return outcome
            finally:
                # Only now: the request and its strings were held until the answer left.
                ticket.release()
        finally:
            # The caller's place among its RPCs at once is the thread's as long as it runs: a caller
            # that cancels and sends again cannot have more threads at work than its max_concurrent.
            if outlived:
                outlived[0].add_done_callback(lambda _: leave())
            else:
                leave()

    async def _read(self, context: Any, call: calls.Call) -> bytes:
        """The request message, or RequestReadTimeoutError when it is not all there in time."""
        limit = self._read_timeout_seconds
        remaining = call.time_remaining()
        if remaining is not None and remaining < limit:
            limit = max(remaining, 0.0)
        try:
            async with asyncio.timeout(limit):  # no task of its own, unlike wait_for
                raw = await context.read()
        except TimeoutError:
            gone = call.stopped()
            if gone is not None:
                raise gone from None
            self._count_read_timeout(call)
            raise request_errors.RequestReadTimeoutError(
                f"the request message did not arrive within {self._read_timeout_seconds:g} s"
            ) from None
        if raw is grpc.aio.EOF:
            # grpc ends the read so when the message is over the receive limit (and answers the caller
            # RESOURCE_EXHAUSTED itself); a stub cannot send a unary call without a message.
            raise request_errors.RequestTooLargeError(
                f"the request message is over the receive limit of {self._max_request_bytes} bytes, "
                "or missing"
            )
        return bytes(raw)

    async def _in_thread(
        self, ticket: Ticket, work: Callable[[], Any], outlived: list[futures.Future[Any]]
    ) -> Any:
        """`work()` on the executor, in a copy of this task's context (botocore's hooks find the Call
        there). A caller that goes away does not stop the thread: the Call says it is gone, and the
        AWS work stops at its next step; the ticket is released once the thread is done with it, and
        the thread's future is put in `outlived`."""
        future = self._executor.submit(contextvars.copy_context().run, work)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if not future.cancel():  # started: its admission is given back when the thread ends
                ticket.hold_until(future)
                outlived.append(future)
            raise

    def _serve(self, operation: Operation[Any, Any], raw: bytes, call: calls.Call, ticket: Ticket) -> Any:
        """The blocking part of an admitted RPC: its response, or the grpc.Status to end it with."""
        request = None
        try:
            gone = call.stopped()
            if gone is not None:
                raise gone  # while it waited for a thread
            if compression.is_gzip(raw):
                inflated = compression.inflate(raw, limit=self._max_inflated_bytes, reserve=ticket.grow)
                request = call.request = validate.parse(operation, inflated)
                del inflated
            else:
                request = call.request = validate.parse(operation, raw)
            params = self._aws_calls.validated_params(operation, request)
            if not operation.batch:
                self._authorizer.verdict(operation, request, call.caller)  # raises when denied
                return self._aws_calls.send(operation, params, call)
            verdict = self._authorizer.verdict(operation, request, call.caller)
            if verdict.refused:
                call.event(
                    "agentcore.policy.records_denied", {"agentcore.policy.records": len(verdict.refused)}
                )
            if verdict.refused and len(verdict.refused) == len(request.records):
                return verdict.completed(operation, request, None)  # nothing left for AWS
            response = self._aws_calls.call(
                operation, request, verdict.narrowed(params), call, verdict.kept(request.records)
            )
            return verdict.completed(operation, request, response)
        except Exception as exc:
            return self._failure(call, exc, request, operation)

    @staticmethod
    def _failure(
        call: calls.Call, exc: BaseException, request: Any, operation: Operation[Any, Any]
    ) -> grpc.Status:
        failure: BaseException = exc
        if isinstance(exc, OverloadedError):
            call.refused = exc.reason
            call.event("agentcore.admission.refused", {"agentcore.admission.limit": exc.reason})
        elif isinstance(exc, authz.CallerNotAllowedError):
            call.event("agentcore.policy.denied", {"agentcore.policy.version": exc.rule_set_version})
        elif not isinstance(
            exc,
            request_errors.InvalidRequestError
            | request_errors.MalformedRequestError
            | authz.CallerNotAllowedError
            | CallerLimitedError
            | StorageUnavailableError
            | rate_limits.UpstreamRateLimitedError
            | tls.CallerIdentityError
            | request_errors.RequestReadTimeoutError
            | request_errors.RequestTooLargeError,
        ):
            # Whatever broke last (often a read timeout cut short), the caller is gone: say why.
            failure = call.caller_gone() or exc
        resource = operation.resource(request) if request is not None else None
        return errors.to_status(failure, resource=resource)

    @staticmethod
    async def _abort(context: Any, call: calls.Call, status: grpc.Status) -> None:
        call.on_answer(status.code)
        trailers = (*status.trailing_metadata, (calls.REQUEST_ID_HEADER, call.rpc_id))
        await context.abort(status.code, status.details, trailers)
