"""Each HTTP attempt to AWS ends on time, whatever AWS sends or withholds, and a reply larger than the
request allows (reply_sizes.py) is refused without being read whole.

botocore's read timeout applies to each socket read, so a body trickled a byte at a time never trips
it. Here the thread making the attempt gives every blocking socket operation at most the time the
attempt has left: the connect and TLS handshake (the connection's timeout), the request's send
(`sendall` counts its timeout as a total), and each read of the reply, whose timeout is worked out
again from the attempt's end before every read, so a trickle, a body that never ends, headers then
silence and a reply after the deadline all end at the attempt's end (CPython's TLS reads and
handshakes count their timeout as a total too). The attempt's end is the RPC's deadline
(`calls.Call.time_remaining()`) or AWS_ATTEMPT_TIMEOUT_SECONDS from its start, whichever comes first.

Why not a watchdog that shuts the socket down from another thread when time is up: it needs a timer
per attempt, and its shutdown races with the pool handing the same connection to the next attempt
once the reply is read. Limits that the reading thread applies to itself need no thread and cannot
touch another attempt's socket. Not bounded: DNS resolution (getaddrinfo takes no timeout).

The limits reach the socket through connection classes of our own (botocore's own, with a bounded
reply reader), set in this client's own URLLib3Session, in its pool-class table: botocore has no public
choice of connection class, and the table belongs to that one session, so no other client in the
process is touched. The attempt travels in a ContextVar, set by the `before-send` hook in the thread
that then makes the attempt (boto3 calls run on the thread, or the copied context, of their RPC).
"""

from __future__ import annotations

import contextvars
import dataclasses
import http.client
import io
import socket
import time
from typing import TYPE_CHECKING, Any

import botocore.awsrequest
import botocore.exceptions
import urllib3.exceptions

from service import calls
from service.api import reply_sizes, translate

if TYPE_CHECKING:
    from mypy_boto3_bedrock_agentcore import BedrockAgentCoreClient

# What a reply's status line, headers and chunk framing may add to its body on the wire.
HEADER_BYTES = 64 * 1024
# Where the reply limit of a call waits in botocore's request context (shared by its attempts).
_REPLY_LIMIT_KEY = "agentcore_max_reply_bytes"


class ReplyTooLargeError(translate.MalformedReplyError):
    """AWS's reply is larger than the model allows for the request: refused unread, never retried."""


@dataclasses.dataclass(frozen=True)
class Attempt:
    """The limits of one HTTP attempt."""

    ends_at: float  # time.monotonic()
    by_deadline: bool  # the RPC's deadline ends it, not AWS_ATTEMPT_TIMEOUT_SECONDS
    max_reply_bytes: int | None  # of the body; None: no limit known

    def seconds_left(self) -> float:
        return self.ends_at - time.monotonic()


_current: contextvars.ContextVar[Attempt | None] = contextvars.ContextVar("agentcore_attempt", default=None)


def current() -> Attempt | None:
    """The attempt this thread is making, or made last."""
    return _current.get()


def _bounded_timeout(timeout: Any, attempt: Attempt) -> float:
    """`timeout` (a socket timeout, None: none) lowered to the time `attempt` has left."""
    left = attempt.seconds_left()
    if left <= 0:
        raise TimeoutError("the attempt's time is up")
    return left if not isinstance(timeout, int | float) else min(float(timeout), left)


class _BoundedReader(io.RawIOBase):
    """The reply's bytes, each read given the time the attempt has left, the whole within its limit."""

    def __init__(self, sock: socket.socket, attempt: Attempt) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)  # counted by the socket, as http.client's own
        self._attempt = attempt
        self._read_timeout = sock.gettimeout()  # botocore's, set by urllib3 for this reply
        limit = attempt.max_reply_bytes
        self._wire_limit = None if limit is None else limit + HEADER_BYTES
        self._received = 0

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._raw.fileno()

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(_bounded_timeout(self._read_timeout, self._attempt))
        count = self._raw.readinto(buffer)
        self._received += count or 0
        if self._wire_limit is not None and self._received > self._wire_limit:
            raise ReplyTooLargeError(f"the reply is longer than the {self._attempt.max_reply_bytes} bytes")
        return count

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _BoundedReply(http.client.HTTPResponse):
    """http.client's reply, read through a _BoundedReader; a declared length over the limit is refused
    before any of the body is read."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self._attempt = current()
        if self._attempt is not None:
            self.fp.close()
            self.fp = io.BufferedReader(_BoundedReader(sock, self._attempt))

    def begin(self) -> None:
        super().begin()
        limit = None if self._attempt is None else self._attempt.max_reply_bytes
        if limit is not None and self.length is not None and self.length > limit:
            raise ReplyTooLargeError(f"the reply declares {self.length} bytes, more than the {limit} allowed")


class _Bounded:
    """What the connection classes add to botocore's: the attempt's time bounds connect and send."""

    response_class = _BoundedReply
    timeout: Any
    sock: socket.socket | None

    def connect(self) -> None:
        attempt = current()
        if attempt is not None:
            try:
                self.timeout = _bounded_timeout(self.timeout, attempt)
            except TimeoutError:
                raise urllib3.exceptions.ConnectTimeoutError(self, "the attempt's time is up") from None
        super().connect()  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> None:
        attempt = current()
        if attempt is not None and self.sock is not None:
            # A pooled connection's socket still has the last read's timeout.
            self.sock.settimeout(_bounded_timeout(self.timeout, attempt))
        super().request(*args, **kwargs)  # type: ignore[misc]


class _BoundedHTTPConnection(_Bounded, botocore.awsrequest.AWSHTTPConnection):  # type: ignore[misc]
    pass


class _BoundedHTTPSConnection(_Bounded, botocore.awsrequest.AWSHTTPSConnection):  # type: ignore[misc]
    pass


class _BoundedHTTPConnectionPool(botocore.awsrequest.AWSHTTPConnectionPool):  # type: ignore[misc]
    ConnectionCls = _BoundedHTTPConnection


class _BoundedHTTPSConnectionPool(botocore.awsrequest.AWSHTTPSConnectionPool):  # type: ignore[misc]
    ConnectionCls = _BoundedHTTPSConnection


def install(client: BedrockAgentCoreClient, attempt_timeout_seconds: float) -> None:
    """Bound every attempt `client` makes (once, at start, before its first call)."""
    session = client._endpoint.http_session
    pool_classes = getattr(session, "_pool_classes_by_scheme", None)
    if not isinstance(pool_classes, dict) or set(pool_classes) != {"http", "https"}:
        raise RuntimeError(f"botocore {botocore.__version__}: its HTTP session no longer has pool classes")
    # In place: the session's pool managers share this table, and build their pools from it lazily.
    pool_classes.update(http=_BoundedHTTPConnectionPool, https=_BoundedHTTPSConnectionPool)
    service_id = client.meta.service_model.service_id.hyphenize()

    def remember_reply_limit(params: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        context[_REPLY_LIMIT_KEY] = reply_sizes.largest_reply_bytes(model.name, params)

    def start_attempt(request: Any, **_: Any) -> None:
        call = calls.current()
        remaining = None if call is None else call.time_remaining()
        by_deadline = remaining is not None and remaining < attempt_timeout_seconds
        seconds = remaining if by_deadline and remaining is not None else attempt_timeout_seconds
        limit = getattr(request, "context", {}).get(_REPLY_LIMIT_KEY)
        _current.set(Attempt(time.monotonic() + seconds, by_deadline, limit))

    def refuse_retry_of_large_reply(caught_exception: Any = None, **_: Any) -> None:
        # botocore wraps what the reader raised; the same request would be answered as large again.
        if isinstance(caught_exception, botocore.exceptions.HTTPClientError):
            cause = caught_exception.kwargs.get("error")
            if isinstance(cause, ReplyTooLargeError):
                raise cause

    events = client.meta.events
    events.register(f"before-parameter-build.{service_id}", remember_reply_limit)
    events.register(f"before-send.{service_id}", start_attempt)
    # First, before botocore's retry handler takes quota for a retry that will not happen.
    events.register_first(f"needs-retry.{service_id}", refuse_retry_of_large_reply)
