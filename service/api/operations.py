"""The operation table: every RPC of MemoryRecordsService, described once.

The servicer, validation, the metrics and the error details all read this table, so adding an RPC is
one entry here (plus its reply function in translate.py and their tests); its boto3 method follows
from its AWS operation's name. Its request needs no code:
validate.py compiles the request's conversion and checks from the botocore model and the proto
descriptors, and fails at start when they do not fit (a proto field the model lacks, a required
member the proto lacks); a proto field whose name is not the model member's in snake case is declared
in `renamed`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import botocore
import botocore.loaders
import botocore.model
from agentcore.memory.v1 import memory_records_pb2 as pb
from google.protobuf import message

from service.api import translate

if TYPE_CHECKING:
    from mypy_boto3_bedrock_agentcore import BedrockAgentCoreClient

AWS_SERVICE = "bedrock-agentcore"
SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["MemoryRecordsService"].full_name
MEMORY_RESOURCE_TYPE = "bedrock-agentcore.amazonaws.com/Memory"
MEMORY_RECORD_RESOURCE_TYPE = "bedrock-agentcore.amazonaws.com/MemoryRecord"

Request = TypeVar("Request", bound=message.Message)
Response = TypeVar("Response", bound=message.Message)


@dataclasses.dataclass(frozen=True)
class Resource:
    """The AWS resource a call addressed, named in ResourceInfo and QuotaFailure (AIP-122 style)."""

    type: str
    name: str

    @classmethod
    def memory(cls, memory_id: str) -> Resource:
        return cls(MEMORY_RESOURCE_TYPE, f"memories/{memory_id}")

    @classmethod
    def memory_record(cls, memory_id: str, memory_record_id: str) -> Resource:
        return cls(MEMORY_RECORD_RESOURCE_TYPE, f"memories/{memory_id}/memoryRecords/{memory_record_id}")


@dataclasses.dataclass(frozen=True)
class NamespaceScope:
    """What the authorization policy needs of a request, or of each record of a batch: the namespaces it
    names (a namespace-restricted caller must be allowed every one), and whether AWS itself keeps the
    call inside them (`confined`). Acting on record ids is confined only by the API's own atomic check
    (Get's `namespace`, BatchUpdate's `sourceNamespaces`: AWS refuses a record not in them), which a
    restricted caller must therefore use: no extra call, no race."""

    named: Callable[[Any], tuple[str, ...]]
    confined: Callable[[Any], bool]
    must_name: str  # what a restricted caller must name, for the message of a refusal


# A new record lives in the namespaces it names (AWS requires one).
NEW_RECORD = NamespaceScope(
    named=lambda record: tuple(record.namespaces),
    confined=lambda record: bool(record.namespaces),
    must_name="`namespaces`",
)
# `source_namespaces` confines an update; the new `namespaces` must be allowed too (moving a record), and an
# empty new list would take the record out of every namespace.
UPDATED_RECORD = NamespaceScope(
    named=lambda record: (*record.source_namespaces.values, *record.namespaces.values),
    confined=lambda record: (
        bool(record.source_namespaces.values)
        and (not record.HasField("namespaces") or bool(record.namespaces.values))
    ),
    must_name="`source_namespaces`",
)
# Get, Delete and each record of BatchDelete: `namespace` confines the call.
NAMED_RECORD = NamespaceScope(
    named=lambda request: (request.namespace,) if request.HasField("namespace") else (),
    confined=lambda request: request.HasField("namespace"),
    must_name="`namespace`",
)
# List and Retrieve: `namespace` (exact) or `namespace_path` (a hierarchy) filters what AWS
# returns; naming neither would search every namespace. A path must end in `/`: AWS documents it as the
# parent of a hierarchy, not how it matches, and `chat` must never be read as a prefix of `chatbot`.
NAMESPACE_FILTER = NamespaceScope(
    named=lambda request: tuple(
        getattr(request, field) for field in ("namespace", "namespace_path") if request.HasField(field)
    ),
    confined=lambda request: (
        request.HasField("namespace")
        or (request.HasField("namespace_path") and request.namespace_path.endswith("/"))
    ),
    must_name="`namespace`, or a `namespace_path` ending in `/`",
)


@dataclasses.dataclass(frozen=True)
class Operation(Generic[Request, Response]):
    """One RPC and the one boto3 call that serves it."""

    rpc: str  # the method name in the proto
    request_type: type[Request]
    response_type: type[Response]
    aws_operation: str  # the botocore operation name, also the `operation` label of the metrics
    to_response: Callable[[Mapping[str, Any]], Response]
    resource: Callable[[Request], Resource]
    # Of each record when `batch` (a record refused by the policy fails on its own), else of the request.
    namespaces: NamespaceScope
    # Of a batch: the field that identifies a record, in the request and in its MemoryRecordResult.
    record_key: str = ""
    # Proto field names (in any message of the request) whose model member is not their camelCase
    # spelling, as {"page_size": "maxResults"}.
    renamed: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def batch(self) -> bool:
        """Requests carry `records`; responses carry successful_records and failed_records."""
        return bool(self.record_key)

    @functools.cached_property
    def boto3_method(self) -> str:
        """The boto3 client's method of `aws_operation`, named as botocore names it:
        `BatchCreateMemoryRecords` is `batch_create_memory_records`."""
        return str(botocore.xform_name(self.aws_operation))

    def call_aws(self, client: BedrockAgentCoreClient, params: dict[str, Any]) -> Mapping[str, Any]:
        """The one boto3 call of this operation."""
        result: Mapping[str, Any] = getattr(client, self.boto3_method)(**params)
        return result

    @property
    def full_method(self) -> str:
        """The path gRPC routes on: `/agentcore.memory.v1.MemoryRecordsService/Get`."""
        return f"/{SERVICE_NAME}/{self.rpc}"


# AIP-158's names of the paging members.
PAGING: Mapping[str, str] = {"page_size": "maxResults", "page_token": "nextToken"}

# The table: seven entries alike in shape on purpose (a duplicate scan pairs them), each a declaration of
# one RPC that a reader compares with its neighbours; code that could be shared is in Operation.
BATCH_CREATE = Operation(
    rpc="BatchCreate",
    request_type=pb.BatchCreateRequest,
    response_type=pb.BatchCreateResponse,
    aws_operation="BatchCreateMemoryRecords",
    to_response=translate.from_boto_batch_create,
    resource=lambda request: Resource.memory(request.memory_id),
    record_key="request_identifier",
    namespaces=NEW_RECORD,
)
BATCH_UPDATE = Operation(
    rpc="BatchUpdate",
    request_type=pb.BatchUpdateRequest,
    response_type=pb.BatchUpdateResponse,
    aws_operation="BatchUpdateMemoryRecords",
    to_response=translate.from_boto_batch_update,
    resource=lambda request: Resource.memory(request.memory_id),
    record_key="memory_record_id",
    namespaces=UPDATED_RECORD,
)
GET = Operation(
    rpc="Get",
    request_type=pb.GetRequest,
    response_type=pb.GetResponse,
    aws_operation="GetMemoryRecord",
    to_response=translate.from_boto_get,
    resource=lambda request: Resource.memory_record(request.memory_id, request.memory_record_id),
    namespaces=NAMED_RECORD,
)
DELETE = Operation(
    rpc="Delete",
    request_type=pb.DeleteRequest,
    response_type=pb.DeleteResponse,
    aws_operation="DeleteMemoryRecord",
    to_response=translate.from_boto_delete,
    resource=lambda request: Resource.memory_record(request.memory_id, request.memory_record_id),
    namespaces=NAMED_RECORD,
)
BATCH_DELETE = Operation(
    rpc="BatchDelete",
    request_type=pb.BatchDeleteRequest,
    response_type=pb.BatchDeleteResponse,
    aws_operation="BatchDeleteMemoryRecords",
    to_response=translate.from_boto_batch_delete,
    resource=lambda request: Resource.memory(request.memory_id),
    record_key="memory_record_id",
    namespaces=NAMED_RECORD,
)
LIST = Operation(
    rpc="List",
    request_type=pb.ListRequest,
    response_type=pb.ListResponse,
    aws_operation="ListMemoryRecords",
    to_response=translate.from_boto_list,
    resource=lambda request: Resource.memory(request.memory_id),
    namespaces=NAMESPACE_FILTER,
    renamed=PAGING,
)
RETRIEVE = Operation(
    rpc="Retrieve",
    request_type=pb.RetrieveRequest,
    response_type=pb.RetrieveResponse,
    aws_operation="RetrieveMemoryRecords",
    to_response=translate.from_boto_retrieve,
    resource=lambda request: Resource.memory(request.memory_id),
    namespaces=NAMESPACE_FILTER,
    renamed=PAGING,
)

OPERATIONS: tuple[Operation[Any, Any], ...] = (
    BATCH_CREATE,
    BATCH_UPDATE,
    GET,
    DELETE,
    BATCH_DELETE,
    LIST,
    RETRIEVE,
)
BY_FULL_METHOD: Mapping[str, Operation[Any, Any]] = {op.full_method: op for op in OPERATIONS}


@functools.cache
def service_model() -> Any:
    """The botocore model of `bedrock-agentcore`: the one boto3's client uses.

    Read with botocore's loader alone: a session would read the AWS profile, and a bad AWS_PROFILE
    must not break an import.
    """
    loader = botocore.loaders.create_loader()
    return botocore.model.ServiceModel(
        loader.load_service_model(AWS_SERVICE, "service-2"), service_name=AWS_SERVICE
    )
