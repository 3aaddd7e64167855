"""Batches of any size: BatchCreate, BatchUpdate and BatchDelete take up to MAX_BATCH_RECORDS records,
sent to AWS in calls of at most the model's 100, BATCH_CONCURRENCY at a time, merged in request order.

What a caller sees (docs/batches-and-retries.md says it in prose):
- the whole request is validated before any call, with duplicate record ids (request identifiers for
  creations) refused, since AWS checks them only within one call of its own;
- a call that fails as a whole while others succeed puts each of its records in `failed_records`
  (error_code: AWS's HTTP status, 504 when AWS never answered, 502 for a reply that could not be read;
  outcome: whether any of its attempts may have been applied, applied.py), so that no success is
  hidden; when every call fails, the RPC fails with the first call's error;
- each call's reply accounts for each record the call sent once: a record it does not mention fails
  (502, outcome unknown), and results for records the call did not send, or second results, are dropped;
- each BatchCreate call gets a clientToken derived from the caller's client_token and that call's
  records, so that retrying the same RPC creates nothing twice (a retry of some records is split
  anew, and its calls get other tokens);
- every call waits for a turn (admission.py) and is bounded by the caller's deadline; a caller that went
  away starts no further call.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import logging
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import TYPE_CHECKING, Any

import botocore.exceptions
from agentcore.memory.v1 import memory_records_pb2 as pb

from service import calls
from service.admission import Admission
from service.api import operations, translate, validate
from service.api.operations import Operation
from service.api.request_errors import FieldViolation, InvalidRequestError
from service.caller_limits import CallerLimits
from service.upstream import applied, outcomes

if TYPE_CHECKING:
    from mypy_boto3_bedrock_agentcore import BedrockAgentCoreClient

log = logging.getLogger(__name__)

# The error_code of a record whose call got no answer (timeout, connection failure), as a gateway says.
NO_ANSWER_STATUS = 504
# The error_code of a record whose call AWS answered 2xx with a reply that could not be read, or that
# did not mention the record.
UNREADABLE_ANSWER_STATUS = 502


def chunk_size(operation: Operation[Any, Any]) -> int:
    """The most records AWS takes in one call of `operation` (the model's `records` maximum)."""
    shape = operations.service_model().operation_model(operation.aws_operation).input_shape
    return int(shape.members["records"].metadata["max"])


def chunk_client_token(client_token: str, params: dict[str, Any], records: Sequence[Any]) -> str:
    """The clientToken of one BatchCreate call: a hash of the caller's token and of what the call sends
    (memory, expiry and the records, as their deterministic proto bytes). 64 hex characters."""
    digest = hashlib.sha256()
    for part in (client_token, params["memoryId"], repr(params.get("recordExpirySpecification"))):
        digest.update(part.encode())
        digest.update(b"\0")
    for record in records:
        encoded = record.SerializeToString(deterministic=True)
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


def _chunks(
    operation: Operation[Any, Any], request: Any, params: dict[str, Any], records: Sequence[Any], size: int
) -> list[dict[str, Any]]:
    """The parameters of each AWS call of a batch (`records`, which `params` carries), `size` records a
    call; each BatchCreate call's clientToken derived from the caller's, when it set one."""
    derive_token = operation.rpc == "BatchCreate" and request.HasField("client_token")
    count = len(records)
    if count <= size and not derive_token:
        return [params]  # the whole batch in one call: nothing to copy
    chunks = []
    for start in range(0, max(count, 1), size):
        end = min(start + size, count)
        chunk = {**params, "records": params["records"][start:end]}
        if derive_token:
            chunk["clientToken"] = chunk_client_token(request.client_token, params, records[start:end])
        chunks.append(chunk)
    return chunks


def _duplicates(operation: Operation[Any, Any], records: Sequence[Any]) -> list[FieldViolation]:
    """A violation for each record whose id (or request identifier) an earlier record has. The id itself
    is not quoted: ids are the caller's data."""
    key = operation.record_key
    first_index: dict[str, int] = {}
    violations = []
    for index, record in enumerate(records):
        value = getattr(record, key)
        if not value:
            continue  # an empty id is the model's to name (it is required)
        if value in first_index:
            violations.append(
                FieldViolation(f"records[{index}].{key}", f"repeats records[{first_index[value]}].{key}")
            )
        else:
            first_index[value] = index
    return violations


class AwsCalls:
    """Every AWS call of the facade, on one boto3 client within one Admission: a request's one call, or
    a batch's calls of 100 merged; and the one compiled set of request checks they are made from."""

    def __init__(
        self,
        client: BedrockAgentCoreClient,
        admission: Admission,
        *,
        max_records: int,
        concurrency: int,
        executor: futures.Executor,
        caller_limits: CallerLimits | None = None,
    ) -> None:
        self._client = client
        self._admission = admission
        self._limits = caller_limits or CallerLimits(None)
        self._concurrency = concurrency
        self._executor = executor
        # The model's checks, with its per-call limit on a batch's `records` replaced by MAX_BATCH_RECORDS.
        self._converters = validate.compile_requests(operations.service_model(), batch_records=max_records)
        self._chunk_sizes = {op.rpc: chunk_size(op) for op in operations.OPERATIONS if op.batch}
        self._model_record_keys = {
            op.rpc: op.request_type.DESCRIPTOR.fields_by_name["records"]
            .message_type.fields_by_name[op.record_key]
            .json_name
            for op in operations.OPERATIONS
            if op.batch
        }

    def validated_params(self, operation: Operation[Any, Any], request: Any) -> dict[str, Any]:
        """The boto3 parameters of `request`, or InvalidRequestError: the model's checks (for a batch,
        with the per-call record limit replaced by MAX_BATCH_RECORDS, and no repeated record id)."""
        if not operation.batch:
            return validate.validated_params(operation, request, self._converters)
        try:
            params = validate.validated_params(operation, request, self._converters)
        except InvalidRequestError as invalid:
            raise InvalidRequestError(
                [*_duplicates(operation, request.records), *invalid.violations]
            ) from None
        # Most batches repeat nothing: a set of the converted ids says so at a seventh of naming them.
        model_key = self._model_record_keys[operation.rpc]
        records = params["records"]
        if len({record[model_key] for record in records}) != len(records):
            violations = _duplicates(operation, request.records)
            if violations:
                raise InvalidRequestError(violations)
        return params

    def call(
        self,
        operation: Operation[Any, Any],
        request: Any,
        params: dict[str, Any],
        call: calls.Call,
        records: Sequence[Any],
    ) -> Any:
        """The merged response of the AWS calls that serve `request` (parameters `params`). `records`:
        the request's records that `params` carries (all of them unless the policy refused some)."""
        chunks = _chunks(operation, request, params, records, self._chunk_sizes[operation.rpc])
        # The caller's limits refuse the RPC now or never: later chunks wait for their records instead.
        self._limits.admit(call, len(chunks[0]["records"]))
        if len(chunks) == 1:  # one call, answered as it is (an empty batch too, as AWS would answer it)
            calls.chunk_index.set(0)  # in this thread's copy of the RPC's context
            return self._send(operation, chunks[0], call)
        attempts = [applied.Attempts() for _ in chunks]
        chunk_ends = self._run(
            call,
            [
                functools.partial(self._call_one, operation, index, chunk, call, chunk_attempts)
                for index, (chunk, chunk_attempts) in enumerate(zip(chunks, attempts, strict=True))
            ],
        )
        failed = [outcome for outcome in chunk_ends if isinstance(outcome, BaseException)]
        gone = next((f for f in failed if isinstance(f, calls.CallerGoneError)), None)
        if gone is not None or len(chunk_ends) < len(chunks):
            raise gone or call.stopped() or calls.DeadlineExceededError("the deadline passed")
        if failed and len(failed) == len(chunk_ends):
            raise failed[0]  # as a single call would fail
        response = operation.response_type()
        for chunk, outcome, chunk_attempts in zip(chunks, chunk_ends, attempts, strict=True):
            if isinstance(outcome, BaseException):
                if outcomes.is_unexpected(outcomes.classify(outcome)):
                    raise outcome  # a bug, not AWS: answered INTERNAL and logged with its traceback
                response.failed_records.extend(
                    _failed_as_a_whole(operation, chunk["records"], outcome, chunk_attempts.record_outcome())
                )
            else:
                response.successful_records.extend(outcome.successful_records)
                response.failed_records.extend(outcome.failed_records)
        return response

    def _call_one(
        self,
        operation: Operation[Any, Any],
        index: int,
        params: dict[str, Any],
        call: calls.Call,
        attempts: applied.Attempts,
    ) -> Any:
        gone = call.stopped()  # while this chunk waited for a thread
        if gone is not None:
            raise gone
        calls.chunk_index.set(index)  # in this chunk's own context (_run)
        if index:  # the first chunk's records were taken when the RPC was admitted
            self._limits.take_records(call, len(params["records"]))
        with applied.watching(attempts):
            return self._send(operation, params, call)

    def send(self, operation: Operation[Any, Any], params: dict[str, Any], call: calls.Call) -> Any:
        """The one AWS call of a request that is not a batch, answered as the RPC's response, once the
        caller's limits allow it (CallerLimitedError when they do not)."""
        self._limits.admit(call, None)
        return self._send(operation, params, call)

    def _send(self, operation: Operation[Any, Any], params: dict[str, Any], call: calls.Call) -> Any:
        """One AWS call for `operation`, on its turn, answered as the RPC's response."""
        with self._admission.turn(call):
            reply = operation.call_aws(self._client, params)
        if operation.batch:
            return self._accounted(operation, params["records"], reply)
        return operation.to_response(reply)

    def _accounted(
        self, operation: Operation[Any, Any], boto_records: Sequence[dict[str, Any]], reply: Any
    ) -> Any:
        """The response of one batch call, with exactly one result for each record it sent, matched by id
        (request identifier for creations): a record AWS did not mention fails on its own, and a result
        for a record the call did not send, or a second one for the same record, is dropped, before any
        is translated. A record AWS lists as both succeeded and failed keeps its success (listed first)."""
        model_key = self._model_record_keys[operation.rpc]
        unanswered = {boto_record[model_key]: boto_record for boto_record in boto_records}
        accounted: dict[str, list[Any]] = {}
        dropped = 0
        for member in ("successfulRecords", "failedRecords"):  # required members: replies.py checked them
            kept = []
            for result in reply[member]:
                if unanswered.pop(result.get(model_key), None) is None:
                    dropped += 1
                else:
                    kept.append(result)
            accounted[member] = kept
        if dropped:
            # The count and the operation only: ids are the caller's data.
            log.warning(
                "AWS's batch reply had results for records the call did not send, or two for one record; "
                "they were dropped",
                extra={"operation": operation.aws_operation, "droppedResults": dropped},
            )
        response = operation.to_response(accounted)
        message = (
            f"{outcomes.MALFORMED_REASON}: AWS's {operation.aws_operation} reply did not mention this "
            "record, so whether AWS applied it is unknown"
        )
        response.failed_records.extend(
            _failed_result(boto_record, UNREADABLE_ANSWER_STATUS, message, pb.RECORD_OUTCOME_UNKNOWN)
            for boto_record in unanswered.values()
        )
        return response

    def _run(self, call: calls.Call, tasks: Sequence[Callable[[], Any]]) -> list[Any]:
        """Each task's result or exception, in order; at most BATCH_CONCURRENCY at once. Once the caller
        is gone no further task starts, and the list is cut short there."""
        ends: list[Any] = [None] * len(tasks)
        pending: dict[futures.Future[Any], int] = {}
        started = 0
        while started < len(tasks) or pending:
            while started < len(tasks) and len(pending) < self._concurrency and call.stopped() is None:
                # Each task runs in a copy of this thread's context, so that botocore's hooks find the Call.
                context = contextvars.copy_context()
                pending[self._executor.submit(context.run, _outcome, tasks[started])] = started
                started += 1
            if not pending:
                return ends[:started]
            done, _ = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
            for future in done:
                ends[pending.pop(future)] = future.result()
        return ends


def _outcome(task: Callable[[], Any]) -> Any:
    try:
        return task()
    except Exception as exc:
        return exc


def _failed_as_a_whole(
    operation: Operation[Any, Any],
    boto_records: Sequence[dict[str, Any]],
    exc: BaseException,
    outcome: pb.RecordOutcome.ValueType,
) -> list[pb.MemoryRecordResult]:
    """A failed result for each record of a call that failed as a whole, naming what AWS answered."""
    if isinstance(exc, botocore.exceptions.ClientError):
        answer = outcomes.Answer.read(exc.response)
        status = answer.http_status or NO_ANSWER_STATUS
        name = (answer.code or "Unknown")[:100]
    else:
        status = (
            UNREADABLE_ANSWER_STATUS if isinstance(exc, translate.MalformedReplyError) else NO_ANSWER_STATUS
        )
        name = outcomes.classify(exc).row.reason
    message = f"{name}: the {operation.aws_operation} call that held this record failed as a whole"
    return [_failed_result(boto_record, status, message, outcome) for boto_record in boto_records]


def _failed_result(
    boto_record: dict[str, Any], error_code: int, message: str, outcome: pb.RecordOutcome.ValueType
) -> pb.MemoryRecordResult:
    """The facade's failed result for a record it sent (`boto_record`, its boto3 parameters)."""
    return translate.failed_record(
        error_code,
        message,
        outcome,
        memory_record_id=boto_record.get("memoryRecordId", ""),
        request_identifier=boto_record.get("requestIdentifier", ""),
    )
