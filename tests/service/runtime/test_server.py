"""server.py: health, reflection, and a graceful stop that lets in-flight RPCs finish."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from service.api.operations import SERVICE_NAME
from service.runtime.server import serve
from service.settings import Backend, Settings
from tests.helpers import MEMORY_ID, RECORD_ID, AwsServiceFactory, RunningService, settings_for_tests
from tests.wire_stub import WireStub, aws_reply

RECORD = {"memoryRecordId": RECORD_ID, "content": {"text": "x"}, "namespaces": [], "createdAt": 1}


def test_health_serving_for_the_server_and_the_service(local_service: RunningService) -> None:
    health = health_pb2_grpc.HealthStub(local_service.channel)
    for name in ("", SERVICE_NAME):
        reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as caught:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_reflection_describes_the_contract(local_service: RunningService) -> None:
    database = ProtoReflectionDescriptorDatabase(local_service.channel)
    assert set(database.get_services()) >= {SERVICE_NAME, "grpc.health.v1.Health"}
    pool = descriptor_pool.DescriptorPool(database)
    service = pool.FindServiceByName(SERVICE_NAME)
    assert [method.name for method in service.methods] == [
        *("BatchCreate", "BatchUpdate", "Get", "Delete", "BatchDelete", "List", "Retrieve")
    ]
    assert pool.FindMessageTypeByName("agentcore.memory.v1.MemoryRecordUpdate").fields_by_name[
        "source_namespaces"
    ]


@contextlib.contextmanager
def serving(settings: Settings, stop: threading.Event) -> Iterator[grpc.Channel]:
    """serve() on a thread, on free ports, and a channel to it; joined when the block ends."""
    ports: queue.Queue[int] = queue.Queue()
    server_thread = threading.Thread(
        target=serve,
        args=(settings,),
        kwargs={"stop": stop, "on_serving": lambda grpc_port, _: ports.put(grpc_port)},
        daemon=True,
    )
    server_thread.start()
    with grpc.insecure_channel(f"127.0.0.1:{ports.get(timeout=10)}") as channel:
        yield channel
    server_thread.join(timeout=10)
    assert not server_thread.is_alive()


def test_stop_lets_in_flight_rpcs_finish(aws_service_factory: AwsServiceFactory, wire_stub: WireStub) -> None:
    del aws_service_factory  # its AWS variables aim serve()'s own client at the wire stub
    settings = settings_for_tests(backend=Backend.AWS, metrics_port=0, shutdown_grace_seconds=5)
    stop = threading.Event()
    with serving(settings, stop) as channel:
        wire_stub.queue(aws_reply(200, {"memoryRecord": RECORD}, delay_seconds=1.0))
        in_flight = pb_grpc.MemoryRecordsServiceStub(channel).Get.future(
            pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID), timeout=10
        )
        deadline = time.monotonic() + 5
        while not wire_stub.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        assert wire_stub.requests, "the RPC reached the upstream"
        stop.set()
        assert in_flight.result(timeout=10).memory_record.memory_record_id == RECORD_ID


def test_drain_reports_not_serving_while_still_serving(
    aws_service_factory: AwsServiceFactory, wire_stub: WireStub
) -> None:
    del aws_service_factory  # its AWS variables aim serve()'s own client at the wire stub
    settings = settings_for_tests(
        backend=Backend.AWS, metrics_port=0, shutdown_drain_seconds=2, shutdown_grace_seconds=1
    )
    stop = threading.Event()
    with serving(settings, stop) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        stop.set()
        deadline = time.monotonic() + 1.5
        status = health_pb2.HealthCheckResponse.SERVING
        while status == health_pb2.HealthCheckResponse.SERVING and time.monotonic() < deadline:
            status = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=1).status
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        wire_stub.queue(aws_reply(200, {"memoryRecord": RECORD}))
        get = pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID)
        reply = pb_grpc.MemoryRecordsServiceStub(channel).Get(get, timeout=5)
        assert reply.memory_record.memory_record_id == RECORD_ID, "new RPCs are still served while draining"


def test_health_turns_not_serving_at_once_while_every_handler_is_busy(
    aws_service_factory: AwsServiceFactory, wire_stub: WireStub
) -> None:
    """Four slow RPCs fill every turn and every admission slot; SIGTERM's NOT_SERVING still shows on
    the very next health check, and the slow RPCs then finish within the grace period."""
    del aws_service_factory  # its AWS variables aim serve()'s own client at the wire stub
    settings = settings_for_tests(
        backend=Backend.AWS,
        metrics_port=0,
        max_workers=2,
        max_concurrent_rpcs=4,
        shutdown_drain_seconds=1,
        shutdown_grace_seconds=5,
    )
    stop = threading.Event()
    with serving(settings, stop) as channel:
        wire_stub.queue(*[aws_reply(200, {"memoryRecord": RECORD}, delay_seconds=1.5)] * 4)
        stub = pb_grpc.MemoryRecordsServiceStub(channel)
        get = pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID)
        slow = [stub.Get.future(get, timeout=10) for _ in range(4)]
        deadline = time.monotonic() + 5
        while len(wire_stub.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(wire_stub.requests) == 2, "two RPCs call AWS, two wait for a turn"
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1  # SERVING
        stop.set()
        deadline = time.monotonic() + 1
        status = health_pb2.HealthCheckResponse.SERVING
        while status == health_pb2.HealthCheckResponse.SERVING and time.monotonic() < deadline:
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert all(call.result(timeout=10).memory_record.memory_record_id == RECORD_ID for call in slow)
