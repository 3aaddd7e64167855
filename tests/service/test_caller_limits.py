"""caller_limits.py and the policy's `limits`: which entry applies, the bucket each rate is, refusals
that say when to come back, RPCs at once, later chunks that wait within the deadline, and storage that
fails open or closed (a real Redis client against a port where nothing answers)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb

from service import calls
from service.api import operations
from service.caller_limits import CallerLimitedError, CallerLimits
from service.rate_counters import Counters, StorageUnavailableError, open_storage, window
from service.security import authz
from tests.helpers import free_port


def policy(tmp_path: Path, text: str) -> authz.PolicyFile:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return authz.PolicyFile(str(path), check_interval_seconds=0)


def a_call(identity: str, seconds_left: float | None = None) -> calls.Call:
    call = calls.Call(context=None)
    call.__dict__["identity"] = identity  # what tls.identity_of would have read off the certificate
    if seconds_left is not None:
        call.deadline = time.perf_counter() + seconds_left
    return call


LIMITS = """
limits:
  - {name: noisy, principals: ['spiffe://team/noisy*'], requests_per_second: 5, max_concurrent: 2, weight: 3}
  - {principals: ['spiffe://team/batch'], records_per_second: 100}
"""


def test_the_first_matching_entry_applies_with_its_defaults_and_others_are_unlimited(tmp_path: Path) -> None:
    current = policy(tmp_path, LIMITS).current()
    assert current.rules is None  # limits alone: everyone may call
    noisy = current.limit_for("spiffe://team/noisy-1")
    assert noisy is not None and (noisy.entry, noisy.requests_burst, noisy.weight) == ("noisy", 5, 3.0)
    batch = current.limit_for("spiffe://team/batch")
    assert batch is not None and (batch.entry, batch.records_burst, batch.max_concurrent) == ("1", 100, None)
    assert current.limit_for("spiffe://team/quiet") is None


def test_a_file_of_limits_authorizes_everyone_and_rules_empty_still_denies_all(tmp_path: Path) -> None:
    get = operations.BY_FULL_METHOD["/agentcore.memory.v1.MemoryRecordsService/Get"]
    request = pb.GetRequest(memory_id="m", memory_record_id="r")
    authz.Authorizer(policy(tmp_path, LIMITS)).verdict(get, request, "anyone")
    with pytest.raises(authz.CallerNotAllowedError):
        authz.Authorizer(policy(tmp_path, "rules: []\n" + LIMITS)).verdict(get, request, "anyone")


def test_a_rate_is_a_window_holding_its_burst() -> None:
    item = window(5, 10)
    assert (item.amount, item.get_expiry()) == (10, 2)
    assert window(20, 100).get_expiry() == 5
    assert window(0.5, 1).get_expiry() == 2


def test_past_its_burst_a_caller_is_refused_with_the_time_until_a_token_is_free(tmp_path: Path) -> None:
    counted: list[tuple[str, str]] = []
    limits = CallerLimits(policy(tmp_path, LIMITS), count_limited=lambda *key: counted.append(key))
    noisy, quiet = a_call("spiffe://team/noisy-1"), a_call("spiffe://team/quiet")
    for _ in range(5):
        limits.admit(noisy, None)
    with pytest.raises(CallerLimitedError) as refused:
        limits.admit(noisy, None)
    assert (refused.value.limit, refused.value.entry, refused.value.reason) == (
        "requests_per_second",
        "noisy",
        "CALLER_RATE_LIMITED",
    )
    assert 0 < refused.value.retry_after <= 1.0
    assert counted == [("requests_per_second", "noisy")]
    for _ in range(50):
        limits.admit(quiet, None)  # unlimited, and never slowed by the noisy one


def test_a_callers_rpcs_at_once_are_bounded_and_given_back(tmp_path: Path) -> None:
    limits = CallerLimits(policy(tmp_path, LIMITS))
    first, second, third = (a_call("spiffe://team/noisy-1") for _ in range(3))
    leave_first, _ = limits.enter(first), limits.enter(second)
    assert first.weight == 3.0
    with pytest.raises(CallerLimitedError) as refused:
        limits.enter(third)
    assert refused.value.reason == "CALLER_CONCURRENCY_LIMITED"
    leave_first()
    limits.enter(third)
    limits.enter(a_call("spiffe://team/noisy-2"))  # another caller of the same entry: its own count


def test_a_batch_takes_its_first_chunk_at_admission_and_later_chunks_wait_within_the_deadline(
    tmp_path: Path,
) -> None:
    limits = CallerLimits(
        policy(tmp_path, "limits: [{principals: ['*'], records_per_second: 100, burst: 100}]")
    )
    call = a_call("spiffe://team/batch", seconds_left=5)
    limits.admit(call, 100)
    with pytest.raises(CallerLimitedError):
        limits.admit(a_call("spiffe://team/batch"), 1)  # a new RPC is refused at once
    started = time.monotonic()
    limits.take_records(call, 50)  # the window of 1 s frees them
    assert 0.5 < time.monotonic() - started < 1.5
    with pytest.raises(calls.DeadlineExceededError):
        limits.take_records(a_call("spiffe://team/batch", seconds_left=0.2), 100)


@pytest.mark.parametrize("fail_open", [True, False])
def test_a_storage_that_fails_lets_rpcs_through_or_refuses_them_and_says_so_once(
    tmp_path: Path, fail_open: bool
) -> None:
    reports: list[bool] = []
    counters = Counters(
        open_storage(f"redis://127.0.0.1:{free_port()}/0"),  # nothing listens there
        fail_open=fail_open,
        report_storage=reports.append,
    )
    limits = CallerLimits(policy(tmp_path, LIMITS), counters)
    call = a_call("spiffe://team/noisy-1")
    started = time.monotonic()
    for _ in range(3):
        if fail_open:
            limits.admit(call, None)
        else:
            with pytest.raises(StorageUnavailableError):
                limits.admit(call, None)
    assert time.monotonic() - started < 3 * 0.5  # each attempt bounded by the storage timeout
    assert reports == [False]
