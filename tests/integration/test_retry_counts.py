"""agentcore_upstream_retries_total counts the attempts AWS received beyond each call's first: with the
calls counted by agentcore_upstream_request_duration_seconds, it adds up to the requests the emulator
received, under a fault mix and when botocore decides a retry that the deadline then stops unsent."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb

from emulator import Emulator, FaultConfig, Faults, ReceivedRequest, Response
from emulator.backend import MODEL
from emulator.restjson.exceptions import ApiError
from service.upstream import aws, outcomes
from tests.helpers import MEMORY_ID, UNKNOWN_RECORD_ID, RunningService, run_service, settings_for_tests
from tests.integration.helpers import sample

GET = "GetMemoryRecord"


@pytest.fixture
def service(emulator: Emulator) -> Iterator[RunningService]:
    settings = settings_for_tests(aws_max_attempts=3)
    yield from run_service(settings, aws.create_client(settings, endpoint_url=emulator.endpoint_url))


def calls_and_retries(service: RunningService) -> tuple[float, float]:
    calls = sum(
        sample(service, "agentcore_upstream_request_duration_seconds_count", operation=GET, outcome=outcome)
        for outcome in outcomes.Outcome
    )
    return calls, sample(service, "agentcore_upstream_retries_total", operation=GET)


def get_unknown(service: RunningService, timeout: float = 30) -> grpc.StatusCode:
    try:
        request = pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=UNKNOWN_RECORD_ID)
        service.stub.Get(request, timeout=timeout)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_retries_and_calls_add_up_to_the_requests_aws_received_under_faults(
    service: RunningService, emulator: Emulator
) -> None:
    faults = FaultConfig(error_rates={"ServiceException": 0.3}, drop_connection_rate=0.1)
    emulator.set_before_operation_hook(Faults(faults, seed=16))
    codes = {get_unknown(service) for _ in range(40)}
    assert codes == {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE}  # some ran out of attempts
    calls, retries = calls_and_retries(service)
    assert calls == 40 and retries > 10
    assert calls + retries == len(emulator.received(GET))


def test_a_retry_the_deadline_stops_before_sending_is_not_counted(
    service: RunningService, emulator: Emulator
) -> None:
    def hook(operation: str, request: ReceivedRequest) -> Response:
        # A 5xx asking for a back-off longer than the caller's deadline, which botocore honours.
        response = ApiError.modeled(MODEL, "ServiceException", "busy").to_response()
        response.headers["x-amz-retry-after"] = "1500"
        return response

    emulator.set_before_operation_hook(hook)
    assert get_unknown(service, timeout=0.5) is grpc.StatusCode.DEADLINE_EXCEEDED
    deadline = time.monotonic() + 5
    while calls_and_retries(service)[0] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)  # the handler ends after botocore's back-off
    assert len(emulator.received(GET)) == 1
    assert calls_and_retries(service) == (1, 0)
