"""The error table again, this time through the embedded emulator's fault injection in local mode:
the same path `make run` takes (gRPC -> facade -> boto3 -> emulator over HTTP)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from google.rpc import error_details_pb2

from emulator import Emulator
from service.upstream import aws
from tests.helpers import MEMORY_ID, RECORD_ID, RunningService, run_service, settings_for_tests
from tests.integration.helpers import details_of

GET = pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID)


@pytest.fixture
def retrying_service(emulator: Emulator) -> Iterator[RunningService]:
    settings = settings_for_tests(aws_max_attempts=3, aws_read_timeout_seconds=1.5)
    yield from run_service(settings, aws.create_client(settings, endpoint_url=emulator.endpoint_url))


@pytest.mark.parametrize(
    ("aws_code", "grpc_code", "attempts"),
    [
        ("ValidationException", grpc.StatusCode.INVALID_ARGUMENT, 1),
        ("InvalidInputException", grpc.StatusCode.INVALID_ARGUMENT, 1),
        ("ResourceNotFoundException", grpc.StatusCode.NOT_FOUND, 1),
        ("AccessDeniedException", grpc.StatusCode.PERMISSION_DENIED, 1),
        ("ServiceQuotaExceededException", grpc.StatusCode.RESOURCE_EXHAUSTED, 1),
        ("ThrottledException", grpc.StatusCode.RESOURCE_EXHAUSTED, 3),
        ("ServiceException", grpc.StatusCode.UNAVAILABLE, 3),
    ],
)
def test_every_modelled_error(
    retrying_service: RunningService,
    emulator: Emulator,
    aws_code: str,
    grpc_code: grpc.StatusCode,
    attempts: int,
) -> None:
    emulator.faults.configure(error_rates={aws_code: 1.0})
    with pytest.raises(grpc.RpcError) as caught:
        retrying_service.stub.Get(GET, timeout=30)
    assert caught.value.code() is grpc_code
    assert len(emulator.received("GetMemoryRecord")) == attempts


def test_rate_limit_surfaces_as_resource_exhausted(emulator: Emulator) -> None:
    settings = settings_for_tests(aws_max_attempts=1)  # no botocore retry to absorb the throttle
    emulator.faults.configure(rate_limit_per_second=2)
    codes = []
    for service in run_service(settings, aws.create_client(settings, endpoint_url=emulator.endpoint_url)):
        for _ in range(8):
            try:
                service.stub.Get(GET, timeout=10)
            except grpc.RpcError as error:
                codes.append(error.code())
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
    assert grpc.StatusCode.NOT_FOUND in codes  # within the limit, the real answer


def test_dropped_connections_are_unavailable(retrying_service: RunningService, emulator: Emulator) -> None:
    emulator.faults.configure(drop_connection_rate=1.0)
    with pytest.raises(grpc.RpcError) as caught:
        retrying_service.stub.Get(GET, timeout=30)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert details_of(caught.value)[error_details_pb2.ErrorInfo].reason == "AWS_UNREACHABLE"
    assert len(emulator.received("GetMemoryRecord")) == 3


def test_slow_upstream_and_short_deadline(retrying_service: RunningService, emulator: Emulator) -> None:
    emulator.faults.configure(latency_seconds=5)
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        retrying_service.stub.Get(GET, timeout=1)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2.5
    time.sleep(2.5)  # past the 1.5 s read timeout: a retry would have been journaled by now
    assert len(emulator.received("GetMemoryRecord")) == 1
