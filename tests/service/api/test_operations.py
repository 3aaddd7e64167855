"""The operation table: one entry per RPC of the proto, each naming a real AWS operation and calling
the boto3 method botocore names for it."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from botocore import xform_name
from mypy_boto3_bedrock_agentcore.client import BedrockAgentCoreClient

from service.api import operations
from tests.helpers import MEMORY_ID, RECORD_ID


def test_every_rpc_of_the_proto_has_exactly_one_entry() -> None:
    service = pb.DESCRIPTOR.services_by_name["MemoryRecordsService"]
    assert sorted(op.rpc for op in operations.OPERATIONS) == sorted(m.name for m in service.methods)
    for operation in operations.OPERATIONS:
        method = service.methods_by_name[operation.rpc]
        assert operation.request_type.DESCRIPTOR is method.input_type
        assert operation.response_type.DESCRIPTOR is method.output_type
        assert not (method.client_streaming or method.server_streaming)
        assert operations.BY_FULL_METHOD[f"/{service.full_name}/{method.name}"] is operation


@pytest.mark.parametrize("operation", operations.OPERATIONS, ids=lambda op: op.rpc)
def test_each_entry_calls_the_boto3_method_of_its_aws_operation(
    operation: operations.Operation[Any, Any],
) -> None:
    assert operation.aws_operation in operations.service_model().operation_names

    called: list[tuple[str, dict[str, Any]]] = []

    class RecordingClient:
        def __getattr__(self, name: str) -> Any:
            return lambda **params: called.append((name, params)) or {"answer": name}

    reply = operation.call_aws(RecordingClient(), {"memoryId": MEMORY_ID})  # type: ignore[arg-type]
    assert called == [(xform_name(operation.aws_operation), {"memoryId": MEMORY_ID})]
    assert reply == {"answer": xform_name(operation.aws_operation)}


@pytest.mark.parametrize("operation", operations.OPERATIONS, ids=lambda op: op.rpc)
def test_each_derived_boto3_method_exists_on_the_typed_and_the_real_client(
    operation: operations.Operation[Any, Any],
) -> None:
    """mypy cannot see a method named at run time: the typed client's stubs and a real boto3 client
    (made offline, never called) both have it."""
    assert callable(getattr(BedrockAgentCoreClient, operation.boto3_method, None))
    client = boto3.client(
        "bedrock-agentcore", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    assert callable(getattr(client, operation.boto3_method, None))


def test_batch_means_records_in_and_record_results_out() -> None:
    for operation in operations.OPERATIONS:
        has_records = "records" in operation.request_type.DESCRIPTOR.fields_by_name
        has_results = "failed_records" in operation.response_type.DESCRIPTOR.fields_by_name
        assert operation.batch == has_records == has_results, operation.rpc


def test_resources_name_what_the_call_addressed() -> None:
    memory = operations.BATCH_UPDATE.resource(pb.BatchUpdateRequest(memory_id=MEMORY_ID))
    assert memory == operations.Resource(operations.MEMORY_RESOURCE_TYPE, f"memories/{MEMORY_ID}")
    record = operations.GET.resource(pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID))
    assert record.name == f"memories/{MEMORY_ID}/memoryRecords/{RECORD_ID}"
    assert record.type == operations.MEMORY_RECORD_RESOURCE_TYPE
