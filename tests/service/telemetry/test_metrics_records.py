"""agentcore_records_total counts the records of a batch RPC as its caller saw them
(service/telemetry/metrics/grpc_server.py): a reply the caller never received (its RPC ended with an
error after the reply was built) counts every record as of unknown fate, never as succeeded."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb

from service import calls
from service.api.operations import SERVICE_NAME
from service.telemetry.metrics import Metrics
from tests.helpers import record_create
from tests.service.helpers import FakeContext

CREATE = "BatchCreateMemoryRecords"


def finished_batch_create(metrics: Metrics, code: grpc.StatusCode, response: pb.BatchCreateResponse) -> None:
    """Report one BatchCreate of 50 records that ended with `code` after building `response`."""
    request = pb.BatchCreateRequest(
        memory_id="m", records=[record_create(request_identifier=f"r{i}") for i in range(50)]
    )
    call = calls.Call(FakeContext(active=False, remaining=0), f"/{SERVICE_NAME}/BatchCreate")  # type: ignore[arg-type]
    call.request, call.response, call.code = request, response, code
    metrics.server.started(call)
    metrics.server.finished(call)


def records(metrics: Metrics) -> dict[tuple[str, str], float]:
    return {
        (sample.labels["outcome"], sample.labels["error_code"]): sample.value
        for family in metrics.registry.collect()
        if family.name == "agentcore_records"
        for sample in family.samples
        if sample.labels["operation"] == CREATE and sample.value
    }


def succeeded(count: int) -> list[pb.MemoryRecordResult]:
    return [
        pb.MemoryRecordResult(memory_record_id=f"mem-{i}", status=pb.MEMORY_RECORD_STATUS_SUCCEEDED)
        for i in range(count)
    ]


def failed(count: int, outcome: Any, error_code: int) -> list[pb.MemoryRecordResult]:
    result = pb.MemoryRecordResult(
        status=pb.MEMORY_RECORD_STATUS_FAILED, outcome=outcome, error_code=error_code
    )
    return [result] * count


@pytest.mark.parametrize("code", [grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED])
def test_the_records_of_a_reply_the_caller_did_not_receive_are_of_unknown_fate(code: grpc.StatusCode) -> None:
    metrics = Metrics(backend="local")
    for _ in range(5):
        finished_batch_create(metrics, code, pb.BatchCreateResponse(successful_records=succeeded(50)))
    assert records(metrics) == {("unknown", "none"): 250}


def test_failed_records_count_as_refused_or_of_unknown_fate_by_their_outcome() -> None:
    metrics = Metrics(backend="local")
    response = pb.BatchCreateResponse(
        successful_records=succeeded(20),
        failed_records=[
            *failed(10, pb.RECORD_OUTCOME_NOT_APPLIED, 429),
            *failed(15, pb.RECORD_OUTCOME_UNKNOWN, 504),
            *failed(5, pb.RECORD_OUTCOME_NOT_APPLIED, 403),
        ],
    )
    finished_batch_create(metrics, grpc.StatusCode.OK, response)
    assert records(metrics) == {
        ("succeeded", "none"): 20,
        ("failed", "429"): 10,
        ("unknown", "504"): 15,
        ("failed", "403"): 5,
    }
