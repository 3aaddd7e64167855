"""Fault injection in the emulator, through an unmodified boto3 client."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import botocore.config
import botocore.exceptions
import pytest

from emulator import DEFAULT_MEMORY_ID, ApiError, Emulator, FaultConfig, Faults
from emulator.backend import OPERATIONS
from tests.emulator.helpers import get_unknown_record
from tests.helpers import UNKNOWN_RECORD_ID, emulator_client, record_input


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator per test, so that no test inherits another's faults."""
    with Emulator() as running:
        yield running


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottledException", 429),
        ("ServiceException", 500),
        ("ServiceQuotaExceededException", 402),
        ("AccessDeniedException", 403),
        ("ValidationException", 400),
        ("InvalidInputException", 400),
        ("ResourceNotFoundException", 404),
    ],
)
def test_injected_errors_have_the_modelled_status(emulator: Emulator, code: str, status: int) -> None:
    emulator.faults.configure(error_rates={code: 1.0})
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        get_unknown_record(emulator_client(emulator.endpoint_url))
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert caught.value.response["ResponseMetadata"]["RequestId"]


def test_faults_change_at_run_time_and_clear(emulator: Emulator) -> None:
    client = emulator_client(emulator.endpoint_url)
    emulator.faults.configure(error_rates={"ServiceException": 1.0})
    with pytest.raises(botocore.exceptions.ClientError):
        get_unknown_record(client)
    emulator.faults.clear()
    with pytest.raises(client.exceptions.ResourceNotFoundException):  # the real answer: no such record
        get_unknown_record(client)


def test_probability_is_honoured(emulator: Emulator) -> None:
    emulator.faults.configure(error_rates={"ServiceException": 0.5})
    client = emulator_client(emulator.endpoint_url)
    failures = 0
    for _ in range(200):
        try:
            get_unknown_record(client)
        except botocore.exceptions.ClientError as error:
            failures += error.response["Error"]["Code"] == "ServiceException"
    assert 60 <= failures <= 140  # 0.5 of 200, far outside chance for a broken implementation


def test_rate_limit_throttles_like_aws(emulator: Emulator) -> None:
    emulator.faults.configure(rate_limit_per_second=5)
    client = emulator_client(emulator.endpoint_url)
    codes = []
    for _ in range(12):
        try:
            get_unknown_record(client)
        except botocore.exceptions.ClientError as error:
            codes.append(error.response["Error"]["Code"])
    assert codes.count("ThrottledException") >= 5
    assert "ResourceNotFoundException" in codes  # requests within the limit are served


def test_exactly_the_first_requests_are_throttled(emulator: Emulator) -> None:
    """throttle_first=2: the next two requests answer ThrottledException (429), every later one its
    real answer; configuring again starts the count anew."""
    client = emulator_client(emulator.endpoint_url)

    def codes(count: int) -> list[str]:
        answered = []
        for _ in range(count):
            try:
                get_unknown_record(client)
            except botocore.exceptions.ClientError as error:
                answered.append(error.response["Error"]["Code"])
        return answered

    emulator.faults.configure(throttle_first=2)
    assert codes(5) == ["ThrottledException"] * 2 + ["ResourceNotFoundException"] * 3
    emulator.faults.configure(throttle_first=1)
    assert codes(3) == ["ThrottledException"] + ["ResourceNotFoundException"] * 2


def test_latency_is_added(emulator: Emulator) -> None:
    emulator.faults.configure(latency_seconds=0.4)
    started = time.monotonic()
    with pytest.raises(botocore.exceptions.ClientError):
        get_unknown_record(emulator_client(emulator.endpoint_url))
    assert time.monotonic() - started >= 0.4


def test_dropped_connection(emulator: Emulator) -> None:
    emulator.faults.configure(drop_connection_rate=1.0)
    with pytest.raises(
        (botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError)
    ):
        get_unknown_record(emulator_client(emulator.endpoint_url))
    emulator.faults.clear()
    with pytest.raises(botocore.exceptions.ClientError):  # the emulator still serves afterwards
        get_unknown_record(emulator_client(emulator.endpoint_url))


def test_a_dropped_reply_comes_after_the_request_was_applied(emulator: Emulator) -> None:
    emulator.faults.configure(drop_reply_rate=1.0, operations=frozenset({"BatchCreateMemoryRecords"}))
    client = emulator_client(emulator.endpoint_url)
    create = {"memoryId": DEFAULT_MEMORY_ID, "records": [record_input()], "clientToken": "t" * 33}
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        client.batch_create_memory_records(**create)
    listed = client.list_memory_records(memoryId=DEFAULT_MEMORY_ID, namespace="users/alice/preferences")
    assert len(listed["memoryRecordSummaries"]) == 1  # applied, though nobody heard of it
    emulator.faults.clear()
    replayed = client.batch_create_memory_records(**create)  # the same token: the same answer
    assert [r["memoryRecordId"] for r in replayed["successfulRecords"]] == [
        listed["memoryRecordSummaries"][0]["memoryRecordId"]
    ]


def test_only_named_operations_are_affected(emulator: Emulator) -> None:
    emulator.faults.configure(
        error_rates={"ServiceException": 1.0}, operations=frozenset({"GetMemoryRecord"})
    )
    client = emulator_client(emulator.endpoint_url)
    reply = client.batch_update_memory_records(
        memoryId=DEFAULT_MEMORY_ID,
        records=[{"memoryRecordId": UNKNOWN_RECORD_ID, "timestamp": dt.datetime.now(dt.UTC)}],
    )
    assert reply["failedRecords"][0]["memoryRecordId"] == UNKNOWN_RECORD_ID


@pytest.mark.parametrize(
    "config",
    [
        {"error_rates": {"NoSuchException": 1.0}},
        {"error_rates": {"ServiceException": 1.5}},
        {"latency_seconds": -1},
        {"rate_limit_per_second": 0},
        {"drop_connection_rate": -0.1},
        {"drop_reply_rate": 1.1},
    ],
)
def test_invalid_fault_config_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FaultConfig(**config)


def test_a_rate_below_one_per_second_still_serves() -> None:
    faults = Faults(FaultConfig(rate_limit_per_second=0.5))
    assert faults("GetMemoryRecord", None) is None  # the first passes; the bucket refills at 0.5/s
    with pytest.raises(ApiError):
        faults("GetMemoryRecord", None)


def test_a_config_parses_from_text() -> None:
    assert FaultConfig.parse("") == FaultConfig()
    assert FaultConfig.parse(
        "rate_limit=50, throttle_first=1, latency=0.2,drop=0.01,drop_reply=0.02,ServiceException=0.05"
    ) == FaultConfig(
        error_rates={"ServiceException": 0.05},
        rate_limit_per_second=50,
        throttle_first=1,
        latency_seconds=0.2,
        drop_connection_rate=0.01,
        drop_reply_rate=0.02,
    )
    for bad in (
        "latency",
        "latency=soon",
        "NoSuchException=1",
        "drop=2",
        "throttle_first=1.5",
        "throttle_first=-1",
    ):
        with pytest.raises(ValueError):
            FaultConfig.parse(bad)


def every_operation(client: Any) -> dict[str, Any]:
    """A valid call of each operation, by AWS operation name."""
    record_id, namespace = UNKNOWN_RECORD_ID, "users/alice"
    timestamp = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    record = {
        "requestIdentifier": "r1",
        "namespaces": [namespace],
        "content": {"text": "x"},
        "timestamp": timestamp,
    }
    return {
        "BatchCreateMemoryRecords": lambda: client.batch_create_memory_records(
            memoryId=DEFAULT_MEMORY_ID, records=[record]
        ),
        "BatchUpdateMemoryRecords": lambda: client.batch_update_memory_records(
            memoryId=DEFAULT_MEMORY_ID, records=[{"memoryRecordId": record_id, "timestamp": timestamp}]
        ),
        "GetMemoryRecord": lambda: get_unknown_record(client),
        "DeleteMemoryRecord": lambda: client.delete_memory_record(
            memoryId=DEFAULT_MEMORY_ID, memoryRecordId=record_id
        ),
        "BatchDeleteMemoryRecords": lambda: client.batch_delete_memory_records(
            memoryId=DEFAULT_MEMORY_ID, records=[{"memoryRecordId": record_id}]
        ),
        "ListMemoryRecords": lambda: client.list_memory_records(
            memoryId=DEFAULT_MEMORY_ID, namespace=namespace
        ),
        "RetrieveMemoryRecords": lambda: client.retrieve_memory_records(
            memoryId=DEFAULT_MEMORY_ID, namespace=namespace, searchCriteria={"searchQuery": "x"}
        ),
    }


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_faults_reach_every_operation_and_only_the_chosen_ones(emulator: Emulator, operation: str) -> None:
    client = emulator_client(emulator.endpoint_url)
    calls = every_operation(client)
    assert set(calls) == set(OPERATIONS)
    emulator.faults.configure(error_rates={"ThrottledException": 1.0}, operations=frozenset({operation}))
    with pytest.raises(client.exceptions.ThrottledException) as caught:
        calls[operation]()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    for other in sorted(set(calls) - {operation}):
        if other in {"GetMemoryRecord", "DeleteMemoryRecord"}:  # unaffected: their real answer
            with pytest.raises(client.exceptions.ResourceNotFoundException):
                calls[other]()
        else:
            calls[other]()


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "rate_limit=50",
        "throttle_first=1",
        "rate_limit=0.5,throttle_first=3,latency=0.2,drop=0.01,drop_reply=0.02,ServiceException=0.05",
    ],
)
def test_the_spec_reads_back_as_the_same_config(spec: str) -> None:
    config = FaultConfig.parse(spec)
    assert config.spec() == spec
    assert FaultConfig.parse(config.spec()) == config


def test_the_spec_names_the_operations_it_is_confined_to() -> None:
    config = FaultConfig(error_rates={"ThrottledException": 1.0}, operations=frozenset({"GetMemoryRecord"}))
    assert config.spec() == "ThrottledException=1 (only GetMemoryRecord)"
