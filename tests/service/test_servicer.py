"""servicer.py's own decisions: which failure becomes which status (a caller's mistake keeps its own status
even once the caller is gone), and how one RPC is read, admitted, inflated, authorized and answered."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from google.rpc import error_details_pb2, status_pb2

from service import batches, calls
from service.admission import Admission, OverloadedError
from service.api import operations, request_errors
from service.security import authz, tls
from service.servicer import MemoryRecordsServicer
from tests.helpers import MEMORY_ID, RECORD_ID, record_create, status_details

DEFAULT_DEADLINE_SECONDS = 60.0
READ_TIMEOUT_SECONDS = 5.0
MAX_REQUEST_BYTES = 4 * 1024 * 1024
GET_REQUEST = pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID)
REFUSAL = tls.Refusal("unreadable_certificate", "the client certificate is not PEM X.509", "ab" * 32, "")


@dataclasses.dataclass(frozen=True)
class Answered:
    """What an abort sent: grpc.Status's fields."""

    code: grpc.StatusCode
    details: str
    trailing_metadata: Any


def decoded(status: grpc.Status | Answered) -> tuple[status_pb2.Status, dict[type[Any], Any]]:
    """The google.rpc.Status a client decodes from `status`'s trailers, and its details by type."""
    [value] = [value for key, value in status.trailing_metadata if key == "grpc-status-details-bin"]
    proto = status_pb2.Status.FromString(value)
    assert proto.code == status.code.value[0]
    return proto, status_details(proto)


def reason_of(status: grpc.Status | Answered) -> str:
    reason: str = decoded(status)[1][error_details_pb2.ErrorInfo].reason
    return reason


def a_call(
    *, seconds_left: float | None = None, operation: operations.Operation[Any, Any] = operations.GET
) -> calls.Call:
    deadline = None if seconds_left is None else time.perf_counter() + seconds_left
    return calls.Call(context=None, full_method=operation.full_method, deadline=deadline)


# --- _failure: which status a failure answers -------------------------------------------------------

CALLER_MISTAKES: list[tuple[BaseException, grpc.StatusCode, str]] = [
    (
        request_errors.InvalidRequestError([request_errors.FieldViolation("memory_id", "is required")]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    ),
    (
        request_errors.MalformedRequestError("not a GetRequest"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "MALFORMED_REQUEST",
    ),
    (
        authz.CallerNotAllowedError("Get", "v1", "on this memory"),
        grpc.StatusCode.PERMISSION_DENIED,
        authz.REASON,
    ),
    (tls.CallerIdentityError(REFUSAL), grpc.StatusCode.PERMISSION_DENIED, tls.IDENTITY_INVALID),
    (
        request_errors.RequestReadTimeoutError("the request message did not arrive"),
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "REQUEST_READ_TIMEOUT",
    ),
    (
        request_errors.RequestTooLargeError("the request inflates past the limit"),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "REQUEST_TOO_LARGE",
    ),
]


@pytest.mark.parametrize(
    ("exc", "code", "reason"), CALLER_MISTAKES, ids=[type(m[0]).__name__ for m in CALLER_MISTAKES]
)
@pytest.mark.parametrize("gone", ["waiting", "past its deadline", "cancelled"])
def test_a_callers_mistake_keeps_its_own_status_even_once_the_caller_is_gone(
    exc: BaseException, code: grpc.StatusCode, reason: str, gone: str
) -> None:
    call = a_call(seconds_left=-1.0 if gone == "past its deadline" else 30.0)
    call.cancelled = gone == "cancelled"
    status = MemoryRecordsServicer._failure(call, exc, None, operations.GET)
    assert (status.code, reason_of(status)) == (code, reason)


def read_timeout() -> botocore.exceptions.ReadTimeoutError:
    return botocore.exceptions.ReadTimeoutError(endpoint_url="https://bedrock-agentcore.example")


def server_error() -> botocore.exceptions.ClientError:
    response: Any = {
        "Error": {"Code": "ServiceException", "Message": "busy"},
        "ResponseMetadata": {"HTTPStatusCode": 500},
    }
    return botocore.exceptions.ClientError(response, "GetMemoryRecord")


OTHER_FAILURES = {
    "ReadTimeoutError": read_timeout,
    "ServiceException": server_error,
    "RuntimeError": lambda: RuntimeError("a bug"),
}


@pytest.mark.parametrize("failure", OTHER_FAILURES.values(), ids=OTHER_FAILURES.keys())
def test_any_other_failure_after_the_callers_deadline_is_answered_as_deadline_exceeded(failure: Any) -> None:
    status = MemoryRecordsServicer._failure(a_call(seconds_left=-1.0), failure(), None, operations.GET)
    assert (status.code, reason_of(status)) == (grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED")


@pytest.mark.parametrize("failure", OTHER_FAILURES.values(), ids=OTHER_FAILURES.keys())
def test_any_other_failure_of_a_caller_that_cancelled_is_answered_as_cancelled(failure: Any) -> None:
    call = a_call(seconds_left=30.0)
    call.cancelled = True
    status = MemoryRecordsServicer._failure(call, failure(), None, operations.GET)
    assert (status.code, reason_of(status)) == (grpc.StatusCode.CANCELLED, "CANCELLED")


def test_a_failure_while_the_caller_still_waits_is_answered_as_what_it_was() -> None:
    status = MemoryRecordsServicer._failure(a_call(seconds_left=30.0), read_timeout(), None, operations.GET)
    assert (status.code, reason_of(status)) == (grpc.StatusCode.UNAVAILABLE, "AWS_TIMEOUT")
    status = MemoryRecordsServicer._failure(a_call(), server_error(), None, operations.GET)
    assert (status.code, reason_of(status)) == (grpc.StatusCode.UNAVAILABLE, "AWS_SERVICE_ERROR")


def test_an_overloaded_refusal_is_recorded_on_the_call_with_its_limit() -> None:
    call = a_call(seconds_left=30.0)
    status = MemoryRecordsServicer._failure(call, OverloadedError("bytes"), None, operations.GET)
    assert call.refused == "bytes"
    assert (status.code, reason_of(status)) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "SERVER_OVERLOADED")
    assert error_details_pb2.RetryInfo in decoded(status)[1]


def test_an_overloaded_refusal_is_recorded_even_for_a_caller_already_gone() -> None:
    call = a_call(seconds_left=-1.0)
    MemoryRecordsServicer._failure(
        call, OverloadedError("turns", "every turn is stuck"), None, operations.GET
    )
    assert call.refused == "turns"


def test_a_failure_of_a_request_names_the_resource_it_addressed() -> None:
    response: Any = {
        "Error": {"Code": "ResourceNotFoundException", "Message": "no such record"},
        "ResponseMetadata": {"HTTPStatusCode": 404},
    }
    not_found = botocore.exceptions.ClientError(response, "GetMemoryRecord")
    status = MemoryRecordsServicer._failure(a_call(), not_found, GET_REQUEST, operations.GET)
    assert status.code is grpc.StatusCode.NOT_FOUND
    info = decoded(status)[1][error_details_pb2.ResourceInfo]
    assert info.resource_name == f"memories/{MEMORY_ID}/memoryRecords/{RECORD_ID}"


# --- one RPC through MemoryRecordsServicer.call, with a stand-in for grpc's context ------------------

HANG = object()  # a read that never returns: the caller opened the stream and sends nothing


class Context:
    """The little of grpc.aio.ServicerContext the servicer uses: the request message (or EOF, or HANG),
    the caller's time left and certificate; an abort is recorded and raises as grpc's does."""

    def __init__(self, message: Any, *, remaining: float | None = None, pem: bytes | None = None) -> None:
        self._message = message
        self._remaining = remaining
        self._pem = pem
        self.reads = 0
        self.status: Answered | None = None
        self.metadata: Any = None

    async def read(self) -> Any:
        self.reads += 1
        if self._message is HANG:
            await asyncio.Event().wait()
        return self._message

    def time_remaining(self) -> float | None:
        return self._remaining

    def auth_context(self) -> dict[str, list[bytes]]:
        return {} if self._pem is None else {"x509_pem_cert": [self._pem]}

    def cancelled(self) -> bool:
        return False

    # The RPC id header (calls.REQUEST_ID_HEADER) goes out in one of these; which one is not tested here.
    async def send_initial_metadata(self, metadata: Any) -> None:
        self.metadata = metadata

    def set_trailing_metadata(self, metadata: Any) -> None:
        self.metadata = metadata

    async def abort(self, code: grpc.StatusCode, details: str, trailing_metadata: Any) -> None:
        self.status = Answered(code, details, tuple(trailing_metadata))
        raise grpc.aio.AbortError()


@dataclasses.dataclass
class Sent:
    operation: str
    params: dict[str, Any]
    records: list[Any] | None
    seconds_left: float | None


class RecordingAwsCalls(batches.AwsCalls):
    """The real request checks; AWS itself replaced by a record of what would be sent and a canned answer
    (or `fail`, raised; `during` runs first, on the serving thread)."""

    def __init__(self, admission: Admission, executor: concurrent.futures.Executor) -> None:
        super().__init__(None, admission, max_records=1000, concurrency=2, executor=executor)  # type: ignore[arg-type]
        self.sent: list[Sent] = []
        self.fail: BaseException | None = None
        self.during: Any = lambda call: None

    def _answer(self, operation: operations.Operation[Any, Any], sent: Sent, call: calls.Call) -> Any:
        self.sent.append(sent)
        self.during(call)
        if self.fail is not None:
            raise self.fail
        return operation.response_type()

    def send(
        self, operation: operations.Operation[Any, Any], params: dict[str, Any], call: calls.Call
    ) -> Any:
        return self._answer(operation, Sent(operation.rpc, params, None, call.time_remaining()), call)

    def call(
        self,
        operation: operations.Operation[Any, Any],
        request: Any,
        params: dict[str, Any],
        call: calls.Call,
        records: Any,
    ) -> Any:
        sent = Sent(operation.rpc, params, list(records), call.time_remaining())
        return self._answer(operation, sent, call)


@dataclasses.dataclass
class Rig:
    admission: Admission
    aws: RecordingAwsCalls
    executor: concurrent.futures.ThreadPoolExecutor
    read_timeouts: list[calls.Call]

    def servicer(self, **overrides: Any) -> MemoryRecordsServicer:
        options: dict[str, Any] = {
            "executor": self.executor,
            "default_deadline_seconds": DEFAULT_DEADLINE_SECONDS,
            "request_read_timeout_seconds": READ_TIMEOUT_SECONDS,
            "max_request_bytes": MAX_REQUEST_BYTES,
            "max_inflated_bytes": MAX_REQUEST_BYTES,
            "count_read_timeout": self.read_timeouts.append,
            **overrides,
        }
        return MemoryRecordsServicer(self.admission, self.aws, **options)


@pytest.fixture
def rig() -> Iterator[Rig]:
    admission = Admission(max_rpcs=1, max_bytes=MAX_REQUEST_BYTES, max_running=2)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as executor:
        yield Rig(admission, RecordingAwsCalls(admission, executor), executor, [])


def serve(
    servicer: MemoryRecordsServicer,
    context: Context,
    *,
    operation: operations.Operation[Any, Any] = operations.GET,
    call: calls.Call | None = None,
) -> Any:
    """One RPC of `operation`, as the interceptor would open it (with `call`) or without one: its
    response, or None when it ended with a status (context.status)."""

    async def run() -> Any:
        if call is not None:
            call.context = context
            calls.make_current(call)
        try:
            return await asyncio.wait_for(servicer.call(operation, None, context), timeout=10)
        except grpc.aio.AbortError:
            assert context.status is not None
            return None

    return asyncio.run(run())  # a task of its own: the Call is current in a copy of the context


def test_a_request_is_parsed_checked_and_sent_to_aws_once(rig: Rig) -> None:
    call = a_call(seconds_left=30.0)
    response = serve(rig.servicer(), Context(GET_REQUEST.SerializeToString()), call=call)
    assert isinstance(response, pb.GetResponse)
    assert call.request == GET_REQUEST
    [sent] = rig.aws.sent
    assert (sent.operation, sent.params) == ("Get", {"memoryId": MEMORY_ID, "memoryRecordId": RECORD_ID})


def test_a_gzip_compressed_request_is_inflated_before_it_is_parsed(rig: Rig) -> None:
    call = a_call(seconds_left=30.0)
    raw = gzip.compress(GET_REQUEST.SerializeToString())
    assert serve(rig.servicer(), Context(raw), call=call) is not None
    assert call.request == GET_REQUEST
    assert [sent.params["memoryRecordId"] for sent in rig.aws.sent] == [RECORD_ID]


def test_a_gzip_request_that_inflates_past_the_limit_is_refused_unsent(rig: Rig) -> None:
    request = pb.BatchCreateRequest(memory_id=MEMORY_ID, records=[record_create("x" * 10_000)])
    context = Context(gzip.compress(request.SerializeToString()))
    assert serve(rig.servicer(max_inflated_bytes=1000), context, operation=operations.BATCH_CREATE) is None
    assert context.status is not None
    assert (context.status.code, reason_of(context.status)) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "REQUEST_TOO_LARGE",
    )
    assert rig.aws.sent == []


def test_bytes_that_are_not_the_methods_message_are_invalid_argument_and_never_sent(rig: Rig) -> None:
    context = Context(b"\xff\xff\xff")
    assert serve(rig.servicer(), context) is None
    assert context.status is not None
    assert (context.status.code, reason_of(context.status)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "MALFORMED_REQUEST",
    )
    assert rig.aws.sent == []


def test_a_request_that_breaks_the_model_names_its_field_and_is_never_sent(rig: Rig) -> None:
    request = pb.GetRequest(memory_id="not a memory id!", memory_record_id=RECORD_ID)
    context = Context(request.SerializeToString())
    assert serve(rig.servicer(), context) is None
    assert context.status is not None and context.status.code is grpc.StatusCode.INVALID_ARGUMENT
    violations = decoded(context.status)[1][error_details_pb2.BadRequest].field_violations
    assert [violation.field for violation in violations] == ["memory_id"]
    assert rig.aws.sent == []


def test_a_caller_whose_deadline_passed_in_the_queue_is_answered_without_reading_its_request(
    rig: Rig,
) -> None:
    context = Context(GET_REQUEST.SerializeToString())
    assert serve(rig.servicer(), context, call=a_call(seconds_left=-1.0)) is None
    assert context.status is not None and context.status.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert context.reads == 0 and rig.aws.sent == []


def test_a_caller_whose_certificate_identity_is_refused_is_answered_without_reading_its_request(
    rig: Rig,
) -> None:
    context = Context(GET_REQUEST.SerializeToString(), pem=b"not a certificate")
    assert serve(rig.servicer(), context) is None
    assert context.status is not None
    assert (context.status.code, reason_of(context.status)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        tls.IDENTITY_INVALID,
    )
    assert context.reads == 0 and rig.aws.sent == []


def test_a_request_message_that_never_comes_ends_at_the_read_timeout_and_is_counted(rig: Rig) -> None:
    context = Context(HANG)
    call = a_call()  # no deadline of its own: the default one is far away
    assert serve(rig.servicer(request_read_timeout_seconds=0.05), context, call=call) is None
    assert context.status is not None
    assert (context.status.code, reason_of(context.status)) == (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "REQUEST_READ_TIMEOUT",
    )
    assert rig.read_timeouts == [call]


def test_a_request_message_that_never_comes_before_the_callers_deadline_is_the_callers_deadline(
    rig: Rig,
) -> None:
    context = Context(HANG)
    assert serve(rig.servicer(), context, call=a_call(seconds_left=0.05)) is None
    assert context.status is not None
    assert (context.status.code, reason_of(context.status)) == (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "DEADLINE_EXCEEDED",
    )
    assert rig.read_timeouts == []  # not a read timeout: the caller gave up first


def test_a_request_grpc_ended_for_its_size_is_refused_as_too_large(rig: Rig) -> None:
    context = Context(grpc.aio.EOF)
    assert serve(rig.servicer(), context) is None
    assert context.status is not None
    assert (context.status.code, reason_of(context.status)) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "REQUEST_TOO_LARGE",
    )


def test_a_request_over_the_admission_limit_is_refused_at_once_and_recorded(rig: Rig) -> None:
    held = rig.admission.admit(10)  # the one RPC the admission allows
    try:
        context = Context(GET_REQUEST.SerializeToString())
        call = a_call(seconds_left=30.0)
        assert serve(rig.servicer(), context, call=call) is None
    finally:
        held.release()
    assert context.status is not None
    assert (context.status.code, reason_of(context.status)) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "SERVER_OVERLOADED",
    )
    assert call.refused == "rpcs"
    assert rig.aws.sent == []


def test_each_answer_gives_its_admission_back(rig: Rig) -> None:
    # The admission holds one RPC: each of these is admitted only if the one before gave its place back.
    servicer = rig.servicer()
    assert serve(servicer, Context(GET_REQUEST.SerializeToString())) is not None
    rig.aws.fail = server_error()
    assert serve(servicer, Context(GET_REQUEST.SerializeToString())) is None
    assert serve(servicer, Context(b"\xff")) is None
    rig.aws.fail = None
    assert serve(servicer, Context(GET_REQUEST.SerializeToString())) is not None
    assert len(rig.aws.sent) == 3


def test_an_aws_failure_while_the_caller_waits_is_answered_as_that_failure(rig: Rig) -> None:
    rig.aws.fail = read_timeout()
    context = Context(GET_REQUEST.SerializeToString())
    assert serve(rig.servicer(), context, call=a_call(seconds_left=30.0)) is None
    assert context.status is not None
    assert (context.status.code, reason_of(context.status)) == (grpc.StatusCode.UNAVAILABLE, "AWS_TIMEOUT")


def test_an_aws_failure_after_the_caller_cancelled_is_answered_as_cancelled(rig: Rig) -> None:
    rig.aws.fail = read_timeout()
    rig.aws.during = lambda call: setattr(call, "cancelled", True)  # it goes away while AWS answers
    context = Context(GET_REQUEST.SerializeToString())
    assert serve(rig.servicer(), context, call=a_call(seconds_left=30.0)) is None
    assert context.status is not None and context.status.code is grpc.StatusCode.CANCELLED


def test_a_caller_without_a_deadline_gets_the_default_one(rig: Rig) -> None:
    call = a_call()
    serve(rig.servicer(), Context(GET_REQUEST.SerializeToString()), call=call)
    [sent] = rig.aws.sent
    assert sent.seconds_left is not None and 0 < sent.seconds_left <= DEFAULT_DEADLINE_SECONDS
    assert call.deadline is None  # the caller's own stays unset: the default is the service's


def test_a_callers_own_deadline_is_not_replaced_by_the_default(rig: Rig) -> None:
    call = a_call(seconds_left=30.0)
    serve(rig.servicer(default_deadline_seconds=1000.0), Context(GET_REQUEST.SerializeToString()), call=call)
    assert call.default_deadline is None
    [sent] = rig.aws.sent
    assert sent.seconds_left is not None and sent.seconds_left <= 30.0


def test_an_rpc_without_an_interceptor_opens_its_own_call_from_the_context(rig: Rig) -> None:
    serve(rig.servicer(), Context(GET_REQUEST.SerializeToString(), remaining=20.0))
    [sent] = rig.aws.sent
    assert sent.seconds_left is not None and 0 < sent.seconds_left <= 20.0


def write_policy(tmp_path: Path, namespaces: list[str]) -> authz.Authorizer:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"rules: [{{name: chat, principals: ['{tls.ANONYMOUS}'], methods: ['*'], memories: ['{MEMORY_ID}'], "
        f"namespaces: {namespaces}}}]\n"
    )
    return authz.Authorizer(authz.PolicyFile(str(policy)))


def batch_create(*namespaces: str) -> pb.BatchCreateRequest:
    records = [record_create(request_identifier=f"r{i}", namespaces=[ns]) for i, ns in enumerate(namespaces)]
    return pb.BatchCreateRequest(memory_id=MEMORY_ID, records=records)


def test_a_batch_whose_every_record_the_policy_refuses_is_answered_without_aws(
    rig: Rig, tmp_path: Path
) -> None:
    servicer = rig.servicer(authorizer=write_policy(tmp_path, ["chat/"]))
    request = batch_create("users/alice", "users/bob")
    response = serve(servicer, Context(request.SerializeToString()), operation=operations.BATCH_CREATE)
    assert isinstance(response, pb.BatchCreateResponse)
    assert [r.request_identifier for r in response.failed_records] == ["r0", "r1"]
    assert {r.error_code for r in response.failed_records} == {authz.RECORD_REFUSED_CODE}
    assert {r.outcome for r in response.failed_records} == {pb.RECORD_OUTCOME_NOT_APPLIED}
    assert rig.aws.sent == []


def test_only_the_records_the_policy_allows_reach_aws(rig: Rig, tmp_path: Path) -> None:
    servicer = rig.servicer(authorizer=write_policy(tmp_path, ["chat/"]))
    request = batch_create("users/alice", "chat/alice", "users/bob")
    response = serve(servicer, Context(request.SerializeToString()), operation=operations.BATCH_CREATE)
    [sent] = rig.aws.sent
    assert [record.request_identifier for record in sent.records or []] == ["r1"]
    assert [record["requestIdentifier"] for record in sent.params["records"]] == ["r1"]
    assert [r.request_identifier for r in response.failed_records] == ["r0", "r2"]


def test_a_caller_the_policy_does_not_allow_on_a_memory_is_denied_unsent(rig: Rig, tmp_path: Path) -> None:
    servicer = rig.servicer(authorizer=write_policy(tmp_path, ["chat/"]))
    other = pb.GetRequest(memory_id="other_memory-abcdefghij", memory_record_id=RECORD_ID)
    context = Context(other.SerializeToString())
    assert serve(servicer, context) is None
    assert context.status is not None
    assert (context.status.code, reason_of(context.status)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        authz.REASON,
    )
    assert rig.aws.sent == []
