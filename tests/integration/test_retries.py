"""Safe retries of a large BatchCreate, end to end against an upstream that applies a call and then loses
its reply (the emulator's DropReply): what each failed record says of its fate, and which retry creates
each record once (the whole RPC, same bytes and client_token) or may create some twice (the failed
records alone). docs/batches-and-retries.md (Retries of a batch) says it in prose."""

from __future__ import annotations

import collections
import http.client
import json
import threading
import urllib.parse
from collections.abc import Iterator

import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb

from emulator import DropReply, Emulator, ReceivedRequest, Response
from emulator.backend import MODEL
from emulator.restjson.exceptions import ApiError
from service.upstream import aws
from tests.helpers import (
    MEMORY_ID,
    RunningService,
    emulator_client,
    record_create,
    run_service,
    settings_for_tests,
)
from tests.integration.helpers import sample

CREATE = "BatchCreateMemoryRecords"
TOKEN = "retry-token-1"
# What the upstream does with one attempt of a call.
LOSE_REPLY, THROTTLE, REFUSE_FIRST_RECORD, SERVE = "lose reply", "throttle", "refuse first record", "serve"
REFUSED_RECORD_ID = "mem-00000000-0000-0000-0000-refusedrecord"


def creates(count: int) -> list[pb.MemoryRecordCreate]:
    return [record_create(f"text {i}", request_identifier=f"r{i:04}") for i in range(count)]


def request_of(records: list[pb.MemoryRecordCreate]) -> pb.BatchCreateRequest:
    return pb.BatchCreateRequest(memory_id=MEMORY_ID, records=records, client_token=TOKEN)


@pytest.fixture
def service(emulator: Emulator) -> Iterator[RunningService]:
    settings = settings_for_tests(aws_max_attempts=3, batch_concurrency=3)
    yield from run_service(settings, aws.create_client(settings, endpoint_url=emulator.endpoint_url))


class Upstream:
    """The emulator, with a plan for the batch calls whose first record is a given one (by request
    identifier or id): what each attempt meets, in order, the last one again and again. The clientToken
    of every BatchCreate attempt is noted, by that first record."""

    def __init__(self, emulator: Emulator, plans: dict[str, list[str]]) -> None:
        self._emulator = emulator
        self._plans = {f'"{first}"': list(plan) for first, plan in plans.items()}
        self._lock = threading.Lock()
        self.tokens: dict[str, list[str]] = collections.defaultdict(list)  # clientTokens, attempt by attempt
        emulator.set_before_operation_hook(self)

    def __call__(self, operation: str, request: ReceivedRequest) -> Response | None:
        records = (request.json or {}).get("records")
        if not records:
            return None
        first = records[0].get("requestIdentifier") or records[0]["memoryRecordId"]
        with self._lock:
            if operation == CREATE:
                self.tokens[first].append(request.json["clientToken"])
            plan = self._plans.get(f'"{first}"', [])
            action = plan.pop(0) if len(plan) > 1 else (plan[0] if plan else SERVE)
        if action == LOSE_REPLY:
            raise DropReply
        if action == THROTTLE:
            raise ApiError.modeled(MODEL, "ThrottledException", "Rate exceeded")
        if action == REFUSE_FIRST_RECORD:
            return self._refusing_first_record(request)
        return None

    def _refusing_first_record(self, request: ReceivedRequest) -> Response:
        """AWS fails the call's first record on its own (a per-record failure) and applies the others."""
        body = request.json
        refused, body["records"] = body["records"][0], body["records"][1:]
        endpoint = urllib.parse.urlsplit(self._emulator.endpoint_url)
        connection = http.client.HTTPConnection(endpoint.hostname or "", endpoint.port, timeout=10)
        try:
            headers = {"Authorization": request.headers["authorization"], "Content-Type": "application/json"}
            connection.request("POST", request.path, json.dumps(body).encode(), headers)
            answer = connection.getresponse()
            reply = json.loads(answer.read())
        finally:
            connection.close()
        reply["failedRecords"].append(
            {
                "memoryRecordId": REFUSED_RECORD_ID,
                "requestIdentifier": refused["requestIdentifier"],
                "status": "FAILED",
                "errorCode": 400,
                "errorMessage": "refused",
            }
        )
        return Response(answer.status, json.dumps(reply).encode())


def stored_texts(emulator: Emulator) -> collections.Counter[str]:
    """How many stored records hold each text."""
    client = emulator_client(emulator.endpoint_url)
    texts: collections.Counter[str] = collections.Counter()
    pages = client.get_paginator("list_memory_records").paginate(memoryId=MEMORY_ID, namespace="users/alice")
    for page in pages:
        texts.update(summary["content"]["text"] for summary in page["memoryRecordSummaries"])
    return texts


def texts(start: int, end: int) -> set[str]:
    return {f"text {i}" for i in range(start, end)}


def test_retrying_the_whole_rpc_with_the_same_token_creates_each_record_once(
    service: RunningService, emulator: Emulator
) -> None:
    # The second call (r0100-r0199) is applied on every attempt, and every reply is lost.
    upstream = Upstream(emulator, {"r0100": [LOSE_REPLY]})
    first = service.stub.BatchCreate(request_of(creates(250)), timeout=30)
    assert [r.request_identifier for r in first.failed_records] == [f"r{i:04}" for i in range(100, 200)]
    assert {(r.outcome, r.error_code) for r in first.failed_records} == {(pb.RECORD_OUTCOME_UNKNOWN, 504)}
    # botocore retried the lost call with its clientToken, so AWS applied it once.
    assert len(upstream.tokens["r0100"]) == 3 and len(set(upstream.tokens["r0100"])) == 1
    assert stored_texts(emulator) == collections.Counter(texts(0, 250))

    emulator.set_before_operation_hook(None)
    again = service.stub.BatchCreate(request_of(creates(250)), timeout=30)  # the same bytes
    assert list(again.failed_records) == []
    assert [r.request_identifier for r in again.successful_records] == [f"r{i:04}" for i in range(250)]
    assert [r.memory_record_id for r in again.successful_records if r.request_identifier < "r0100"] == [
        r.memory_record_id for r in first.successful_records if r.request_identifier < "r0100"
    ]
    assert stored_texts(emulator) == collections.Counter(texts(0, 250))  # each record exactly once


def test_a_failed_record_says_whether_it_may_have_been_applied(
    service: RunningService, emulator: Emulator
) -> None:
    Upstream(
        emulator,
        {
            "r0000": [REFUSE_FIRST_RECORD],  # AWS fails r0000 in its reply: not applied
            "r0100": [LOSE_REPLY, THROTTLE],  # applied, reply lost; its retries throttled
            "r0200": [THROTTLE],  # every attempt throttled: never applied
        },
    )
    reply = service.stub.BatchCreate(request_of(creates(250)), timeout=30)
    outcomes = collections.Counter((r.outcome, r.error_code) for r in reply.failed_records)
    assert outcomes == {
        (pb.RECORD_OUTCOME_NOT_APPLIED, 400): 1,
        # The last attempt was a 429, but the first may have been applied (and was).
        (pb.RECORD_OUTCOME_UNKNOWN, 429): 100,
        (pb.RECORD_OUTCOME_NOT_APPLIED, 429): 50,
    }
    assert [r.outcome for r in reply.successful_records] == [pb.RECORD_OUTCOME_UNSPECIFIED] * 99
    assert stored_texts(emulator) == collections.Counter(texts(1, 200))
    # The records metric counts them as the caller sees them: refused, or of unknown fate.
    counted = {
        (outcome, code): sample(
            service, "agentcore_records_total", operation=CREATE, outcome=outcome, error_code=code
        )
        for outcome, code in [("succeeded", "none"), ("failed", "400"), ("unknown", "429"), ("failed", "429")]
    }
    assert counted == {
        ("succeeded", "none"): 99,
        ("failed", "400"): 1,
        ("unknown", "429"): 100,
        ("failed", "429"): 50,
    }


def test_a_retry_of_the_failed_records_alone_may_create_them_twice(
    service: RunningService, emulator: Emulator
) -> None:
    """The risk docs/batches-and-retries.md states: a subset retry is split into calls anew, so unless its
    records fall into the same calls as before, its calls get new clientTokens and AWS applies them again."""
    Upstream(emulator, {"r0000": [REFUSE_FIRST_RECORD], "r0100": [LOSE_REPLY]})
    first = service.stub.BatchCreate(request_of(creates(250)), timeout=30)
    assert len(first.failed_records) == 101  # r0000 (not applied) and r0100-r0199 (unknown)

    emulator.set_before_operation_hook(None)
    by_identifier = {record.request_identifier: record for record in creates(250)}
    subset = [by_identifier[r.request_identifier] for r in first.failed_records]
    retried = service.stub.BatchCreate(request_of(subset), timeout=30)
    assert len(retried.successful_records) == 101
    stored = stored_texts(emulator)
    assert {text for text, count in stored.items() if count == 2} == texts(100, 200)  # created twice
    assert stored.total() == 250 + 100


def test_a_repeated_delete_answers_not_found_for_what_the_first_one_deleted(
    service: RunningService, emulator: Emulator
) -> None:
    """BatchDelete takes no token; retried whole, it deletes nothing twice, and its 404s, known to be
    not applied, tell that the earlier attempt had deleted those records."""
    created = service.stub.BatchCreate(request_of(creates(150)), timeout=30)
    record_ids = [r.memory_record_id for r in created.successful_records]
    Upstream(emulator, {record_ids[100]: [LOSE_REPLY]})
    delete = pb.BatchDeleteRequest(
        memory_id=MEMORY_ID, records=[pb.MemoryRecordDelete(memory_record_id=i) for i in record_ids]
    )
    first = service.stub.BatchDelete(delete, timeout=30)
    assert {(r.outcome, r.error_code) for r in first.failed_records} == {(pb.RECORD_OUTCOME_UNKNOWN, 504)}
    emulator.set_before_operation_hook(None)
    again = service.stub.BatchDelete(delete, timeout=30)
    assert [r.memory_record_id for r in again.failed_records] == record_ids
    assert {(r.outcome, r.error_code) for r in again.failed_records} == {(pb.RECORD_OUTCOME_NOT_APPLIED, 404)}
    assert stored_texts(emulator) == collections.Counter()
