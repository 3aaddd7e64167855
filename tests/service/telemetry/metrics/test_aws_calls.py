"""AwsCallMetrics: the upstream series exist at zero for every operation, and a call's end is counted in
exactly the series its outcome, error code, retries and a refused retry name."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from service.api import operations
from service.telemetry.metrics.aws_calls import AwsCallMetrics
from service.upstream.outcomes import Outcome

BUCKETS = (0.1, 1.0)
GET = "GetMemoryRecord"


Series = tuple[str, frozenset[tuple[str, str]]]


def series(name: str, **labels: str) -> Series:
    return name, frozenset(labels.items())


def nonzero(registry: CollectorRegistry) -> dict[Series, float]:
    return {
        series(sample.name, **sample.labels): sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.value
    }


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def test_every_operations_series_exist_at_zero_before_any_call(registry: CollectorRegistry) -> None:
    AwsCallMetrics(registry, BUCKETS)
    for operation in operations.OPERATIONS:
        name = operation.aws_operation
        for series in ("retries", "throttles", "retries_refused"):
            assert registry.get_sample_value(f"agentcore_upstream_{series}_total", {"operation": name}) == 0
        success = {"operation": name, "outcome": "success"}
        assert registry.get_sample_value("agentcore_upstream_request_duration_seconds_count", success) == 0
    assert registry.get_sample_value("agentcore_upstream_turns_stuck") == 0
    assert nonzero(registry) == {}


def test_a_success_is_observed_once_in_its_bucket_with_no_error_or_retry(registry: CollectorRegistry) -> None:
    AwsCallMetrics(registry, BUCKETS).call_ended(
        GET, Outcome.SUCCESS, None, seconds=0.5, retries=0, retry_refused=False
    )
    duration = "agentcore_upstream_request_duration_seconds"
    assert nonzero(registry) == {
        series(f"{duration}_count", operation=GET, outcome="success"): 1,
        series(f"{duration}_sum", operation=GET, outcome="success"): 0.5,
        series(f"{duration}_bucket", operation=GET, outcome="success", le="1.0"): 1,
        series(f"{duration}_bucket", operation=GET, outcome="success", le="+Inf"): 1,
    }


def test_a_failure_counts_its_error_code_its_retries_and_a_refused_retry(registry: CollectorRegistry) -> None:
    metrics = AwsCallMetrics(registry, BUCKETS)
    failed = Outcome.SERVER_ERROR
    metrics.call_ended(GET, failed, "ServiceException", seconds=2, retries=2, retry_refused=True)
    metrics.call_ended(GET, failed, "ServiceException", seconds=2, retries=0, retry_refused=False)
    value = registry.get_sample_value
    errors = {"operation": GET, "aws_error_code": "ServiceException"}
    assert value("agentcore_upstream_errors_total", errors) == 2
    assert value("agentcore_upstream_retries_total", {"operation": GET}) == 2
    assert value("agentcore_upstream_retries_refused_total", {"operation": GET}) == 1
    server_error = {"operation": GET, "outcome": "server_error"}
    assert value("agentcore_upstream_request_duration_seconds_count", server_error) == 2
    assert value("agentcore_upstream_request_duration_seconds_bucket", {**server_error, "le": "1.0"}) == 0


def test_a_call_refused_before_its_first_attempt_counts_no_retry(registry: CollectorRegistry) -> None:
    """No attempt sent is -1 retries: nothing is subtracted, and nothing fails."""
    metrics = AwsCallMetrics(registry, BUCKETS)
    metrics.call_ended(GET, Outcome.CANCELLED, "DeadlineExceeded", seconds=0, retries=-1, retry_refused=False)
    assert registry.get_sample_value("agentcore_upstream_retries_total", {"operation": GET}) == 0
    cancelled = {"operation": GET, "outcome": "cancelled"}
    assert registry.get_sample_value("agentcore_upstream_request_duration_seconds_count", cancelled) == 1


def test_a_throttled_attempt_counts_only_as_a_throttle_of_its_operation(registry: CollectorRegistry) -> None:
    metrics = AwsCallMetrics(registry, BUCKETS)
    metrics.attempt_throttled(GET)
    metrics.attempt_throttled(GET)
    assert nonzero(registry) == {series("agentcore_upstream_throttles_total", operation=GET): 2}
