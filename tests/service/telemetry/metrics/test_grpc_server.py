"""The gRPC server metrics' own decisions (end-to-end counts are in tests/integration/test_metrics.py):
agentcore_records_total counts the records of a batch RPC as its caller saw them (a reply the caller
never received counts every record as of unknown fate, never as succeeded), with bounded error codes."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from grpc_health.v1 import health_pb2

from service import admission, calls
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


def test_a_per_record_error_code_outside_http_statuses_or_absent_gets_a_bounded_label() -> None:
    metrics = Metrics(backend="local")
    response = pb.BatchCreateResponse(
        failed_records=[
            *failed(3, pb.RECORD_OUTCOME_NOT_APPLIED, 700),
            *failed(2, pb.RECORD_OUTCOME_NOT_APPLIED, 99),
            *failed(1, pb.RECORD_OUTCOME_NOT_APPLIED, 0),
            *[pb.MemoryRecordResult(status=pb.MEMORY_RECORD_STATUS_FAILED)] * 4,  # no error_code
        ],
    )
    finished_batch_create(metrics, grpc.StatusCode.OK, response)
    assert records(metrics) == {("failed", "other"): 6, ("failed", "unknown"): 4}


def handled(metrics: Metrics, method: str) -> dict[str, float]:
    return {
        sample.labels["grpc_code"]: sample.value
        for family in metrics.registry.collect()
        if family.name == "grpc_server_handled"
        for sample in family.samples
        if sample.labels["grpc_method"] == method and sample.value
    }


def test_an_rpc_that_finished_without_a_code_counts_as_unknown_and_leaves_in_flight() -> None:
    metrics = Metrics(backend="local")
    call = calls.Call(FakeContext(active=True, remaining=None), f"/{SERVICE_NAME}/Get")
    metrics.server.started(call)
    labels = {"grpc_type": "unary", "grpc_service": SERVICE_NAME, "grpc_method": "Get"}
    assert metrics.registry.get_sample_value("agentcore_grpc_server_requests_in_flight", labels) == 1
    metrics.server.finished(call)
    assert handled(metrics, "Get") == {"Unknown": 1}
    assert metrics.registry.get_sample_value("agentcore_grpc_server_requests_in_flight", labels) == 0


def refused_series(metrics: Metrics) -> set[tuple[str, str, str]]:
    return {
        (sample.labels["grpc_service"], sample.labels["grpc_method"], sample.labels["reason"])
        for family in metrics.registry.collect()
        if family.name == "agentcore_grpc_server_requests_refused"
        for sample in family.samples
    }


def test_only_the_facades_own_rpcs_get_admission_series() -> None:
    metrics = Metrics(backend="local")
    health = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    metrics.server.initialize([SERVICE_NAME, health])
    methods = [method.name for method in pb.DESCRIPTOR.services_by_name["MemoryRecordsService"].methods]
    assert refused_series(metrics) == {
        (SERVICE_NAME, method, reason) for method in methods for reason in admission.LIMITS
    }
    # A read timeout on a health check is not the facade's to count: no series appears for it.
    for method in (f"/{health}/Check", f"/{SERVICE_NAME}/Get"):
        call = calls.Call(FakeContext(active=True, remaining=None), method)
        metrics.server.count_read_timeout(call)
    assert {
        (sample.labels["grpc_service"], sample.labels["grpc_method"]): sample.value
        for family in metrics.registry.collect()
        if family.name == "agentcore_grpc_server_request_read_timeouts"
        for sample in family.samples
        if sample.value
    } == {(SERVICE_NAME, "Get"): 1}
