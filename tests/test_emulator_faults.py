"""Fault injection in the emulator, through an unmodified boto3 client and as a process."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.config
import botocore.exceptions
import pytest

from emulator import DEFAULT_MEMORY_ID, ApiError, Emulator, FaultConfig, Faults
from tests.helpers import emulator_client

ROOT = Path(__file__).resolve().parent.parent
RECORD_ID = "mem-aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


def get(client: Any) -> Any:
    return client.get_memory_record(memoryId=DEFAULT_MEMORY_ID, memoryRecordId=RECORD_ID)


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
        get(emulator_client(emulator.endpoint_url))
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert caught.value.response["ResponseMetadata"]["RequestId"]


def test_faults_change_at_run_time_and_clear(emulator: Emulator) -> None:
    client = emulator_client(emulator.endpoint_url)
    emulator.faults.configure(error_rates={"ServiceException": 1.0})
    with pytest.raises(botocore.exceptions.ClientError):
        get(client)
    emulator.faults.clear()
    with pytest.raises(client.exceptions.ResourceNotFoundException):  # the real answer: no such record
        get(client)


def test_probability_is_honoured(emulator: Emulator) -> None:
    emulator.faults.configure(error_rates={"ServiceException": 0.5})
    client = emulator_client(emulator.endpoint_url)
    failures = 0
    for _ in range(200):
        try:
            get(client)
        except botocore.exceptions.ClientError as error:
            failures += error.response["Error"]["Code"] == "ServiceException"
    assert 60 <= failures <= 140  # 0.5 of 200, far outside chance for a broken implementation


def test_rate_limit_throttles_like_aws(emulator: Emulator) -> None:
    emulator.faults.configure(rate_limit_per_second=5)
    client = emulator_client(emulator.endpoint_url)
    codes = []
    for _ in range(12):
        try:
            get(client)
        except botocore.exceptions.ClientError as error:
            codes.append(error.response["Error"]["Code"])
    assert codes.count("ThrottledException") >= 5
    assert "ResourceNotFoundException" in codes  # requests within the limit are served


def test_latency_is_added(emulator: Emulator) -> None:
    emulator.faults.configure(latency_seconds=0.4)
    started = time.monotonic()
    with pytest.raises(botocore.exceptions.ClientError):
        get(emulator_client(emulator.endpoint_url))
    assert time.monotonic() - started >= 0.4


def test_dropped_connection(emulator: Emulator) -> None:
    emulator.faults.configure(drop_connection_rate=1.0)
    with pytest.raises(
        (botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError)
    ):
        get(emulator_client(emulator.endpoint_url))
    emulator.faults.clear()
    with pytest.raises(botocore.exceptions.ClientError):  # the emulator still serves afterwards
        get(emulator_client(emulator.endpoint_url))


def test_only_named_operations_are_affected(emulator: Emulator) -> None:
    emulator.faults.configure(
        error_rates={"ServiceException": 1.0}, operations=frozenset({"GetMemoryRecord"})
    )
    client = emulator_client(emulator.endpoint_url)
    reply = client.batch_update_memory_records(
        memoryId=DEFAULT_MEMORY_ID,
        records=[{"memoryRecordId": RECORD_ID, "timestamp": dt.datetime.now(dt.UTC)}],
    )
    assert reply["failedRecords"][0]["memoryRecordId"] == RECORD_ID


@pytest.mark.parametrize(
    "config",
    [
        {"error_rates": {"NoSuchException": 1.0}},
        {"error_rates": {"ServiceException": 1.5}},
        {"latency_seconds": -1},
        {"rate_limit_per_second": 0},
        {"drop_connection_rate": -0.1},
    ],
)
def test_invalid_fault_config_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FaultConfig(**config)


def test_faults_set_at_start_from_the_command_line() -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}"}
    command = [sys.executable, "-m", "emulator", "--port", "0", "--fault-error", "AccessDeniedException=1"]
    with subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stderr is not None
            line = process.stderr.readline()  # the start line names the endpoint; a dead child gives ""
            match = re.search(r"listening on (http://\S+)", line)
            assert match, line
            with pytest.raises(botocore.exceptions.ClientError) as caught:
                get(emulator_client(match.group(1)))
            assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)


def test_a_rate_below_one_per_second_still_serves() -> None:
    faults = Faults(FaultConfig(rate_limit_per_second=0.5))
    assert faults("GetMemoryRecord", None) is None  # the first passes; the bucket refills at 0.5/s
    with pytest.raises(ApiError):
        faults("GetMemoryRecord", None)


def test_a_config_parses_from_text() -> None:
    assert FaultConfig.parse("") == FaultConfig()
    assert FaultConfig.parse("rate_limit=50, latency=0.2,drop=0.01,ServiceException=0.05") == FaultConfig(
        error_rates={"ServiceException": 0.05},
        rate_limit_per_second=50,
        latency_seconds=0.2,
        drop_connection_rate=0.01,
    )
    for bad in ("latency", "latency=soon", "NoSuchException=1", "drop=2"):
        with pytest.raises(ValueError):
            FaultConfig.parse(bad)


@pytest.mark.parametrize("days", [3_000_000, 2_147_483_647])
def test_an_expiry_past_the_year_9999_is_a_validation_error(emulator: Emulator, days: int) -> None:
    """The model sets no maximum; a date no SDK can parse back is refused rather than stored."""
    client = emulator_client(emulator.endpoint_url)
    record = {
        "requestIdentifier": "r1",
        "namespaces": [],
        "content": {"text": "x"},
        "timestamp": dt.datetime.now(dt.UTC),
    }
    expiry = {"recordExpiryDurationDays": days}
    with pytest.raises(client.exceptions.ValidationException) as caught:
        client.batch_create_memory_records(
            memoryId=DEFAULT_MEMORY_ID, records=[record], recordExpirySpecification=expiry
        )
    assert (
        caught.value.response["fieldList"][0]["name"] == "recordExpirySpecification.recordExpiryDurationDays"
    )
    created = client.batch_create_memory_records(memoryId=DEFAULT_MEMORY_ID, records=[record])
    record_id = created["successfulRecords"][0]["memoryRecordId"]
    update = {"memoryRecordId": record_id, "timestamp": dt.datetime.now(dt.UTC)}
    with pytest.raises(client.exceptions.ValidationException):
        client.batch_update_memory_records(
            memoryId=DEFAULT_MEMORY_ID, records=[update], recordExpirySpecification=expiry
        )
    assert (
        "expiresAt"
        not in client.get_memory_record(memoryId=DEFAULT_MEMORY_ID, memoryRecordId=record_id)["memoryRecord"]
    )
