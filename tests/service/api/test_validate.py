"""Validation before AWS: a request that breaks any model constraint is refused with
INVALID_ARGUMENT naming the proto field, and AWS (the emulator) never sees it."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import botocore.model
import botocore.session
import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from botocore.validate import ParamValidator
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator import Emulator
from service.api import operations, validate
from service.api.request_errors import InvalidRequestError
from tests.helpers import MEMORY_ID, RECORD_ID, RunningService, record_create, timestamp
from tests.strategies import build, messages

NOW = timestamp_pb2.Timestamp(seconds=1_732_560_000)
SECRET = "secret record text 4111-1111"


def good_create(**fields: Any) -> pb.MemoryRecordCreate:
    return record_create(SECRET, **fields)


def good_update(**fields: Any) -> pb.MemoryRecordUpdate:
    values: dict[str, Any] = {"memory_record_id": RECORD_ID, "timestamp": NOW}
    values.update(fields)
    return pb.MemoryRecordUpdate(**values)


def create(*records: pb.MemoryRecordCreate, **fields: Any) -> pb.BatchCreateRequest:
    return pb.BatchCreateRequest(memory_id=fields.pop("memory_id", MEMORY_ID), records=records, **fields)


def update(*records: pb.MemoryRecordUpdate, **fields: Any) -> pb.BatchUpdateRequest:
    return pb.BatchUpdateRequest(memory_id=fields.pop("memory_id", MEMORY_ID), records=records, **fields)


INVALID: list[tuple[str, Any, str]] = [
    ("memory id too short", create(good_create(), memory_id="m-1"), "memory_id"),
    ("memory id pattern", create(good_create(), memory_id="1memory-0123456789"), "memory_id"),
    ("memory id missing", update(good_update(), memory_id=""), "memory_id"),
    ("1001 records", create(*[good_create(request_identifier=f"r{i}") for i in range(1001)]), "records"),
    (
        "create: a request identifier twice",
        create(good_create(request_identifier="a"), good_create(request_identifier="a")),
        "records[1].request_identifier",
    ),
    ("update: a record id twice", update(good_update(), good_update()), "records[1].memory_record_id"),
    (
        "batch delete: a record id twice",
        pb.BatchDeleteRequest(
            memory_id=MEMORY_ID, records=[pb.MemoryRecordDelete(memory_record_id=RECORD_ID)] * 2
        ),
        "records[1].memory_record_id",
    ),
    (
        "batch delete: 101 records, one of them invalid",
        pb.BatchDeleteRequest(
            memory_id=MEMORY_ID,
            records=[pb.MemoryRecordDelete(memory_record_id=RECORD_ID[:-3] + f"{i:03}") for i in range(100)]
            + [pb.MemoryRecordDelete(memory_record_id="mem-1")],
        ),
        "records[100].memory_record_id",
    ),
    ("delete: record id missing", pb.DeleteRequest(memory_id=MEMORY_ID), "memory_record_id"),
    ("list: page size over 100", pb.ListRequest(memory_id=MEMORY_ID, page_size=101), "page_size"),
    (
        "list: a filter without operator",
        pb.ListRequest(
            memory_id=MEMORY_ID,
            metadata_filters=[pb.MetadataFilter(left=pb.MetadataFilterLeft(metadata_key="k"))],
        ),
        "metadata_filters[0].operator",
    ),
    (
        "list: an operator this version does not know",
        pb.ListRequest(
            memory_id=MEMORY_ID,
            metadata_filters=[pb.MetadataFilter(left=pb.MetadataFilterLeft(metadata_key="k"), operator=99)],
        ),
        "metadata_filters[0].operator",
    ),
    ("retrieve: no search criteria", pb.RetrieveRequest(memory_id=MEMORY_ID), "search_criteria"),
    (
        "retrieve: top k 0",
        pb.RetrieveRequest(memory_id=MEMORY_ID, search_criteria=pb.SearchCriteria(search_query="q", top_k=0)),
        "search_criteria.top_k",
    ),
    (
        "retrieve: a filter value of no kind",
        pb.RetrieveRequest(
            memory_id=MEMORY_ID,
            search_criteria=pb.SearchCriteria(
                search_query="q",
                metadata_filters=[
                    pb.MetadataFilter(
                        left=pb.MetadataFilterLeft(metadata_key="k"),
                        operator=pb.METADATA_FILTER_OPERATOR_EQUALS_TO,
                        right=pb.MetadataFilterRight(metadata_value=pb.MetadataValue()),
                    )
                ],
            ),
        ),
        "search_criteria.metadata_filters[0].right.metadata_value",
    ),
    ("content missing", create(good_create(content=None)), "records[0].content"),
    ("content oneof unset", create(good_create(content=pb.MemoryContent())), "records[0].content"),
    ("empty text", create(good_create(content=pb.MemoryContent(text=""))), "records[0].content.text"),
    (
        "text too long",
        create(good_create(content=pb.MemoryContent(text="x" * 16001))),
        "records[0].content.text",
    ),
    ("timestamp missing", create(good_create(timestamp=None)), "records[0].timestamp"),
    (
        "timestamp out of range",
        update(good_update(timestamp=timestamp_pb2.Timestamp(seconds=-(10**12)))),
        "records[0].timestamp",
    ),
    (
        "metadata date out of range",
        create(good_create(metadata={"k": pb.MetadataValue(date_time_value={"seconds": 10**12})})),
        'records[0].metadata["k"].date_time_value',
    ),
    (
        "nanos out of range",
        update(good_update(timestamp=timestamp_pb2.Timestamp(seconds=1, nanos=-1))),
        "records[0].timestamp",
    ),
    (
        "request identifier pattern",
        create(good_create(request_identifier="r 1")),
        "records[0].request_identifier",
    ),
    ("two namespaces", create(good_create(namespaces=["a", "b"])), "records[0].namespaces"),
    ("namespace pattern", create(good_create(namespaces=["-bad"])), "records[0].namespaces[0]"),
    ("strategy pattern", create(good_create(memory_strategy_id="-x")), "records[0].memory_strategy_id"),
    ("record id too short", update(good_update(memory_record_id="mem-1")), "records[0].memory_record_id"),
    (
        "record id pattern",
        update(good_update(memory_record_id="rec-aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa")),
        "records[0].memory_record_id",
    ),
    (
        "update namespace list too long",
        update(good_update(namespaces=pb.NamespaceList(values=["a", "b"]))),
        "records[0].namespaces",
    ),
    (
        "source namespace pattern",
        update(good_update(source_namespaces=pb.NamespaceList(values=[" "]))),
        "records[0].source_namespaces.values[0]",
    ),
    (
        "metadata key pattern",
        create(good_create(metadata={"bad!": pb.MetadataValue(string_value="v")})),
        'records[0].metadata["bad!"] (key)',
    ),
    (
        "metadata value unset",
        create(good_create(metadata={"k": pb.MetadataValue()})),
        'records[0].metadata["k"]',
    ),
    (
        "metadata list too long",
        create(
            good_create(
                metadata={"k": pb.MetadataValue(string_list_value=pb.StringList(values=list("abcdef")))}
            )
        ),
        'records[0].metadata["k"].string_list_value',
    ),
    (
        "metadata number not finite",
        create(good_create(metadata={"k": pb.MetadataValue(number_value=float("inf"))})),
        'records[0].metadata["k"].number_value',
    ),
    (
        "21 metadata entries",
        create(good_create(metadata={f"k{i}": pb.MetadataValue(string_value="v") for i in range(21)})),
        "records[0].metadata",
    ),
    (
        "expiry below 31 days",
        create(
            good_create(),
            record_expiry_specification=pb.RecordExpirySpecification(record_expiry_duration_days=30),
        ),
        "record_expiry_specification.record_expiry_duration_days",
    ),
    (
        "expiry action unspecified",
        update(good_update(), record_expiry_specification=pb.RecordExpirySpecification(action=0)),
        "record_expiry_specification.action",
    ),
    (
        "expiry oneof unset",
        update(good_update(), record_expiry_specification=pb.RecordExpirySpecification()),
        "record_expiry_specification",
    ),
    ("get: record id missing", pb.GetRequest(memory_id=MEMORY_ID), "memory_record_id"),
    (
        "get: namespace empty",
        pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID, namespace=""),
        "namespace",
    ),
]


@pytest.mark.parametrize(
    ("request_message", "field"), [(r, f) for _, r, f in INVALID], ids=[n for n, _, _ in INVALID]
)
def test_refused_before_aws_naming_the_field(
    local_service: RunningService, emulator: Emulator, request_message: Any, field: str
) -> None:
    [rpc] = [op.rpc for op in operations.OPERATIONS if op.request_type is type(request_message)]
    method = getattr(local_service.stub, rpc)
    with pytest.raises(grpc.RpcError) as caught:
        method(request_message, timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad_request) for detail in status.details)
    assert field in [violation.field for violation in bad_request.field_violations]
    assert field in (caught.value.details() or "")
    assert SECRET not in (caught.value.details() or "")
    assert emulator.received() == [], "an invalid request never reaches AWS"


def test_every_violation_is_reported_at_once() -> None:
    request = update(good_update(memory_record_id="x", timestamp=None), memory_id="m")
    with pytest.raises(InvalidRequestError) as caught:
        validate.validated_params(operations.BATCH_UPDATE, request)
    assert {v.field for v in caught.value.violations} == {
        "memory_id",
        "records[0].memory_record_id",
        "records[0].timestamp",
    }


def test_valid_requests_pass() -> None:
    validate.validated_params(operations.BATCH_CREATE, create(good_create(memory_strategy_id="s-1")))
    validate.validated_params(operations.BATCH_UPDATE, update(good_update(namespaces=pb.NamespaceList())))
    arn = "arn:aws:bedrock-agentcore:us-east-1:123456789012:memory/demo_memory-0123456789"
    validate.validated_params(operations.GET, pb.GetRequest(memory_id=arn, memory_record_id=RECORD_ID))


def test_limits_come_from_the_botocore_model() -> None:
    """A model whose batch limit is 2 refuses 3 records: no limit is written in our code."""
    loader = botocore.session.get_session().get_component("data_loader")
    model_json = copy.deepcopy(loader.load_service_model("bedrock-agentcore", "service-2"))
    model_json["shapes"]["MemoryRecordsCreateInputList"]["max"] = 2
    converters = validate.compile_requests(botocore.model.ServiceModel(model_json, "bedrock-agentcore"))
    validate.validated_params(operations.BATCH_CREATE, create(good_create()), converters)
    request = create(*[good_create(request_identifier=f"r{i}") for i in range(3)])
    with pytest.raises(InvalidRequestError) as caught:
        validate.validated_params(operations.BATCH_CREATE, request, converters)
    assert [v.field for v in caught.value.violations] == ["records"]


def test_patterns_match_like_aws_ascii_whitespace_only() -> None:
    """AWS's Java patterns treat only ASCII whitespace as \\s; the emulator does too, and so must we."""
    record = good_create(metadata={"k": pb.MetadataValue(string_value="no\u00a0break")})
    with pytest.raises(InvalidRequestError) as caught:
        validate.validated_params(operations.BATCH_CREATE, create(record))
    assert [v.field for v in caught.value.violations] == ['records[0].metadata["k"].string_value']
    validate.validated_params(
        operations.BATCH_CREATE,
        create(good_create(metadata={"k": pb.MetadataValue(string_value="tab\tand space")})),
    )


@pytest.mark.parametrize("operation", operations.OPERATIONS, ids=lambda op: op.rpc)
def test_what_we_accept_botocore_accepts(operation: operations.Operation[Any, Any]) -> None:
    """Our validation is a superset of botocore's, which is why the client turns botocore's off
    (aws.client_config): for generated requests, botocore's validator never refuses what ours passed."""
    shape = operations.service_model().operation_model(operation.aws_operation).input_shape
    accepted = 0

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        values=st.one_of(
            messages(operation.request_type.DESCRIPTOR, valid=True),
            messages(operation.request_type.DESCRIPTOR),
        )
    )
    def check(values: dict[str, Any]) -> None:
        nonlocal accepted
        request = build(operation.request_type, values)
        if request is None:
            return
        try:
            params = validate.validated_params(operation, request)
        except InvalidRequestError:
            return
        accepted += 1
        report = ParamValidator().validate(params, shape)
        assert not report.has_errors(), report.generate_report()

    check()
    assert accepted > 30, accepted  # the property was exercised, not only refusals


# --- what a valid request becomes: every field, presence and absence --------------------------

UTC = dt.UTC


def params_of(operation: operations.Operation[Any, Any], request: Any) -> dict[str, Any]:
    return validate.validated_params(operation, request)


class TestBatchCreateParams:
    def test_every_field(self) -> None:
        request = create(
            pb.MemoryRecordCreate(
                request_identifier="r1",
                namespaces=["users/alice"],
                content=pb.MemoryContent(text="likes tea"),
                timestamp=timestamp(1_700_000_000, 250_000_000),
                memory_strategy_id="manual",
                metadata={
                    "s": pb.MetadataValue(string_value="v"),
                    "l": pb.MetadataValue(string_list_value=pb.StringList(values=["a", "b"])),
                    "n": pb.MetadataValue(number_value=2.5),
                    "d": pb.MetadataValue(date_time_value=timestamp(1_600_000_000, 1_000)),
                },
            ),
            client_token="token-1",
            record_expiry_specification=pb.RecordExpirySpecification(record_expiry_duration_days=45),
        )
        assert params_of(operations.BATCH_CREATE, request) == {
            "memoryId": MEMORY_ID,
            "clientToken": "token-1",
            "recordExpirySpecification": {"recordExpiryDurationDays": 45},
            "records": [
                {
                    "requestIdentifier": "r1",
                    "namespaces": ["users/alice"],
                    "content": {"text": "likes tea"},
                    "timestamp": dt.datetime(2023, 11, 14, 22, 13, 20, 250_000, tzinfo=UTC),
                    "memoryStrategyId": "manual",
                    "metadata": {
                        "s": {"stringValue": "v"},
                        "l": {"stringListValue": ["a", "b"]},
                        "n": {"numberValue": 2.5},
                        "d": {"dateTimeValue": dt.datetime(2020, 9, 13, 12, 26, 40, 1, tzinfo=UTC)},
                    },
                }
            ],
        }

    def test_unset_optional_fields_are_not_sent(self) -> None:
        record = pb.MemoryRecordCreate(
            request_identifier="r1", content=pb.MemoryContent(text="x"), timestamp=timestamp(1)
        )
        assert params_of(operations.BATCH_CREATE, create(record)) == {
            "memoryId": MEMORY_ID,
            "records": [
                {
                    "requestIdentifier": "r1",
                    "namespaces": [],
                    "content": {"text": "x"},
                    "timestamp": dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
                }
            ],
        }

    def test_set_but_empty_optional_scalars_are_sent(self) -> None:
        assert params_of(operations.BATCH_CREATE, create(good_create(), client_token=""))["clientToken"] == ""
        # An empty strategy id is sent, so the model's length names it; unset messages are missing.
        request = create(pb.MemoryRecordCreate(request_identifier="r1", memory_strategy_id=""))
        with pytest.raises(InvalidRequestError) as caught:
            params_of(operations.BATCH_CREATE, request)
        assert {(v.field, v.description) for v in caught.value.violations} == {
            ("records[0].memory_strategy_id", "must have 1 to 100 characters"),
            ("records[0].content", "is required"),
            ("records[0].timestamp", "is required"),
        }

    def test_expiry_action(self) -> None:
        request = create(
            good_create(),
            record_expiry_specification=pb.RecordExpirySpecification(action=pb.RECORD_EXPIRY_ACTION_REMOVE),
        )
        assert params_of(operations.BATCH_CREATE, request)["recordExpirySpecification"] == {
            "action": "REMOVE"
        }

    def test_enum_number_the_proto_lacks_is_named(self) -> None:
        request = create(good_create(), record_expiry_specification=pb.RecordExpirySpecification(action=7))
        with pytest.raises(InvalidRequestError) as caught:
            params_of(operations.BATCH_CREATE, request)
        assert [(v.field, v.description) for v in caught.value.violations] == [
            ("record_expiry_specification.action", "must be one of RECORD_EXPIRY_ACTION_REMOVE")
        ]


class TestBatchUpdateParams:
    def test_every_field(self) -> None:
        request = update(
            pb.MemoryRecordUpdate(
                memory_record_id=RECORD_ID,
                timestamp=timestamp(1_700_000_000, 999_999_999),
                content=pb.MemoryContent(text="prefers coffee"),
                namespaces=pb.NamespaceList(values=["users/bob"]),
                source_namespaces=pb.NamespaceList(values=["users/alice"]),
                memory_strategy_id="s-1",
                metadata={"n": pb.MetadataValue(number_value=-0.5)},
            ),
            record_expiry_specification=pb.RecordExpirySpecification(action=pb.RECORD_EXPIRY_ACTION_REMOVE),
        )
        assert params_of(operations.BATCH_UPDATE, request) == {
            "memoryId": MEMORY_ID,
            "recordExpirySpecification": {"action": "REMOVE"},
            "records": [
                {
                    "memoryRecordId": RECORD_ID,
                    "timestamp": dt.datetime(2023, 11, 14, 22, 13, 20, 999_999, tzinfo=UTC),
                    "content": {"text": "prefers coffee"},
                    "namespaces": ["users/bob"],
                    "sourceNamespaces": ["users/alice"],
                    "memoryStrategyId": "s-1",
                    "metadata": {"n": {"numberValue": -0.5}},
                }
            ],
        }

    def test_only_what_is_set_is_sent(self) -> None:
        assert params_of(operations.BATCH_UPDATE, update(good_update())) == {
            "memoryId": MEMORY_ID,
            "records": [
                {"memoryRecordId": RECORD_ID, "timestamp": dt.datetime(2024, 11, 25, 18, 40, tzinfo=UTC)}
            ],
        }

    def test_empty_namespace_list_is_sent_as_empty(self) -> None:
        params = params_of(operations.BATCH_UPDATE, update(good_update(namespaces=pb.NamespaceList())))
        assert params["records"][0]["namespaces"] == []
        assert "sourceNamespaces" not in params["records"][0]


class TestGetParams:
    def test_namespace_only_when_set(self) -> None:
        request = pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID)
        assert params_of(operations.GET, request) == {"memoryId": MEMORY_ID, "memoryRecordId": RECORD_ID}
        request.namespace = "users/alice"
        assert params_of(operations.GET, request)["namespace"] == "users/alice"


class TestDeleteParams:
    def test_delete_and_batch_delete(self) -> None:
        request = pb.DeleteRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID)
        assert params_of(operations.DELETE, request) == {"memoryId": MEMORY_ID, "memoryRecordId": RECORD_ID}
        request.namespace = "users/alice"
        assert params_of(operations.DELETE, request)["namespace"] == "users/alice"
        batch = pb.BatchDeleteRequest(
            memory_id=MEMORY_ID,
            records=[
                pb.MemoryRecordDelete(memory_record_id=RECORD_ID, namespace="n"),
                pb.MemoryRecordDelete(memory_record_id=RECORD_ID[:-1] + "b"),
            ],
        )
        assert params_of(operations.BATCH_DELETE, batch) == {
            "memoryId": MEMORY_ID,
            "records": [
                {"memoryRecordId": RECORD_ID, "namespace": "n"},
                {"memoryRecordId": RECORD_ID[:-1] + "b"},
            ],
        }


def key_filter(operator: int = pb.METADATA_FILTER_OPERATOR_EXISTS, **fields: Any) -> pb.MetadataFilter:
    return pb.MetadataFilter(left=pb.MetadataFilterLeft(metadata_key="k"), operator=operator, **fields)


class TestListParams:
    def test_sends_what_is_set_and_paging_by_aip_158(self) -> None:
        assert params_of(operations.LIST, pb.ListRequest(memory_id=MEMORY_ID)) == {"memoryId": MEMORY_ID}
        request = pb.ListRequest(
            memory_id=MEMORY_ID,
            namespace="users/alice",
            namespace_path="users",
            memory_strategy_id="s",
            page_size=5,
            page_token="t",
            metadata_filters=[key_filter()],
        )
        assert params_of(operations.LIST, request) == {
            "memoryId": MEMORY_ID,
            "namespace": "users/alice",
            "namespacePath": "users",
            "memoryStrategyId": "s",
            "maxResults": 5,
            "nextToken": "t",
            "metadataFilters": [{"left": {"metadataKey": "k"}, "operator": "EXISTS"}],
        }

    def test_page_size_zero_and_empty_token_mean_not_set(self) -> None:
        request = pb.ListRequest(memory_id=MEMORY_ID, page_size=0, page_token="")
        assert params_of(operations.LIST, request) == {"memoryId": MEMORY_ID}

    def test_violations_name_the_proto_fields(self) -> None:
        request = pb.ListRequest(memory_id=MEMORY_ID, page_size=-1, namespace_path="")
        with pytest.raises(InvalidRequestError) as caught:
            params_of(operations.LIST, request)
        assert [(v.field, v.description) for v in caught.value.violations] == [
            ("namespace_path", "must have 1 to 1024 characters"),
            ("page_size", "must be at least 1"),
        ]


class TestRetrieveParams:
    def test_every_operator_name(self) -> None:
        operators = operations.service_model().shape_for("MemoryRecordOperatorType").enum
        for number, name in enumerate(operators, 1):
            assert pb.MetadataFilterOperator.Name(number) == f"METADATA_FILTER_OPERATOR_{name}"
            request = pb.ListRequest(memory_id=MEMORY_ID, metadata_filters=[key_filter(number)])
            assert params_of(operations.LIST, request)["metadataFilters"][0]["operator"] == name

    def test_an_unset_operator_is_refused_with_the_names_a_caller_can_send(self) -> None:
        request = pb.ListRequest(memory_id=MEMORY_ID, namespace="a", metadata_filters=[key_filter(0)])
        with pytest.raises(InvalidRequestError) as caught:
            params_of(operations.LIST, request)
        [violation] = caught.value.violations
        assert violation.field == "metadata_filters[0].operator"
        assert violation.description.startswith("must be one of METADATA_FILTER_OPERATOR_EQUALS_TO, ")

    def test_search_criteria_and_a_value_filter(self) -> None:
        criteria = pb.SearchCriteria(
            search_query="q",
            top_k=3,
            memory_strategy_id="s",
            metadata_filters=[
                key_filter(
                    pb.METADATA_FILTER_OPERATOR_EQUALS_TO,
                    right=pb.MetadataFilterRight(metadata_value=pb.MetadataValue(number_value=2.5)),
                )
            ],
        )
        request = pb.RetrieveRequest(
            memory_id=MEMORY_ID, namespace="users/alice", search_criteria=criteria, page_size=10
        )
        assert params_of(operations.RETRIEVE, request) == {
            "memoryId": MEMORY_ID,
            "namespace": "users/alice",
            "maxResults": 10,
            "searchCriteria": {
                "searchQuery": "q",
                "topK": 3,
                "memoryStrategyId": "s",
                "metadataFilters": [
                    {
                        "left": {"metadataKey": "k"},
                        "operator": "EQUALS_TO",
                        "right": {"metadataValue": {"numberValue": 2.5}},
                    }
                ],
            },
        }

    def test_an_empty_query_left_side_and_operator_are_named(self) -> None:
        criteria = pb.SearchCriteria(metadata_filters=[pb.MetadataFilter(left=pb.MetadataFilterLeft())])
        with pytest.raises(InvalidRequestError) as caught:
            params_of(operations.RETRIEVE, pb.RetrieveRequest(memory_id=MEMORY_ID, search_criteria=criteria))
        assert {v.field for v in caught.value.violations} == {
            "search_criteria.search_query",
            "search_criteria.metadata_filters[0].left",
            "search_criteria.metadata_filters[0].operator",
        }


def test_a_request_that_does_not_fit_the_model_fails_when_compiled() -> None:
    """A new RPC whose proto has a field the model lacks, or lacks a required member, fails at import;
    a field of another name is declared as renamed."""
    model = operations.service_model()
    get = model.operation_model("GetMemoryRecord").input_shape
    listing = model.operation_model("ListMemoryRecords").input_shape
    with pytest.raises(validate.ModelMismatchError, match="records, record_expiry_specification"):
        validate.compile_request(listing, pb.BatchUpdateRequest.DESCRIPTOR)
    with pytest.raises(validate.ModelMismatchError, match="memoryRecordId"):
        validate.compile_request(get, pb.BatchCreateRequest.DESCRIPTOR)
    swap = {"memory_record_id": "memoryId", "memory_id": "memoryRecordId"}
    convert = validate.compile_request(get, pb.GetRequest.DESCRIPTOR, swap)
    assert convert(pb.GetRequest(memory_id="a", memory_record_id="b"), None, []) == {
        "memoryId": "b",
        "memoryRecordId": "a",
    }


@pytest.mark.parametrize(("shape_name", "example"), sorted(validate.EXAMPLES.items()))
def test_each_example_is_what_the_model_accepts(shape_name: str, example: str) -> None:
    assert validate.string_violations(shape_name, example, "field") == []


@pytest.mark.parametrize(
    ("request_", "field", "message"),
    [
        (
            pb.GetRequest(memory_id=MEMORY_ID, memory_record_id="mem-1"),
            "memory_record_id",
            "must have 40 to 50 characters, like mem-7b0e8f2a-3c4d-4e5f-9a6b-1c2d3e4f5a6b",
        ),
        (
            pb.GetRequest(memory_id="my memory 0123456789", memory_record_id=RECORD_ID),
            "memory_id",
            "must look like support_bot-a1B2c3D4e5",
        ),
    ],
)
def test_an_id_that_does_not_fit_is_answered_with_an_example_and_the_pattern_in_the_details(
    request_: Any, field: str, message: str
) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        validate.validated_params(next(op for op in operations.OPERATIONS if op.rpc == "Get"), request_)
    [violation] = refused.value.violations
    assert (violation.field, violation.description) == (field, message)
    assert "[a-zA-Z" not in violation.description  # a person reads the example; the pattern is in detail
    assert violation.detail.startswith("the pattern ")
