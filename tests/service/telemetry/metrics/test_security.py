"""The security metrics: reload reports (their series from success), the served certificates' validity
read at each scrape, and decisions and identity refusals counted only under their fixed label values."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry

from service.security import tls
from service.telemetry.metrics.security import DECISIONS, ConfigMetrics, SecurityMetrics

DAY = 86400.0


def test_a_watched_files_series_start_at_success_and_follow_each_reload() -> None:
    registry = CollectorRegistry()
    reloaded = ConfigMetrics(registry).reload_reporter("authz_policy")

    def state() -> tuple[float | None, float | None, float | None]:
        value = registry.get_sample_value
        return (
            value("agentcore_config_last_reload_successful", {"config": "authz_policy"}),
            value("agentcore_config_reloads_total", {"config": "authz_policy", "outcome": "success"}),
            value("agentcore_config_reloads_total", {"config": "authz_policy", "outcome": "failure"}),
        )

    assert state() == (1, 0, 0)
    reloaded(False)
    assert state() == (0, 0, 1)
    reloaded(False)
    assert state() == (0, 0, 2)
    reloaded(True)
    assert state() == (1, 1, 2)


def test_each_listeners_certificate_is_read_again_at_every_scrape() -> None:
    registry = CollectorRegistry()
    metrics = ConfigMetrics(registry)
    now = float(int(time.time()))  # whole seconds: the differences below are exact
    served = {"grpc": (now - DAY, now + 30 * DAY), "metrics": (now - 2 * DAY, now - DAY)}
    metrics.watch_certificate("grpc", lambda: served["grpc"])
    metrics.watch_certificate("metrics", lambda: served["metrics"])

    def scraped(name: str, listener: str) -> float:
        value = registry.get_sample_value(f"agentcore_tls_certificate_{name}_seconds", {"listener": listener})
        assert value is not None
        return value

    before = time.time()
    expiry = {listener: scraped("expiry", listener) for listener in served}
    after = time.time()
    assert served["grpc"][1] - after <= expiry["grpc"] <= served["grpc"][1] - before
    assert expiry["metrics"] < 0  # expired: negative, not left out
    assert scraped("lifetime", "grpc") == 31 * DAY
    assert scraped("lifetime", "metrics") == DAY
    # A rotated certificate: the next scrape reads it, nothing is cached.
    served["grpc"] = (now, now + 7 * DAY)
    assert scraped("lifetime", "grpc") == 7 * DAY


def test_decisions_and_identity_refusals_exist_at_zero_and_count_alone() -> None:
    registry = CollectorRegistry()
    metrics = SecurityMetrics(registry)
    value = registry.get_sample_value
    decisions = {d: value("agentcore_authz_decisions_total", {"decision": d}) for d in DECISIONS}
    assert decisions == {"allow": 0, "deny": 0}
    metrics.count_decision("deny")
    metrics.count_decision("deny")
    metrics.count_identity_refusal("several_spiffe_ids")
    assert value("agentcore_authz_decisions_total", {"decision": "deny"}) == 2
    assert value("agentcore_authz_decisions_total", {"decision": "allow"}) == 0
    assert {
        reason: value("agentcore_caller_identity_refusals_total", {"reason": reason})
        for reason in tls.REFUSAL_REASONS
    } == {reason: (1 if reason == "several_spiffe_ids" else 0) for reason in tls.REFUSAL_REASONS}


def test_a_decision_or_refusal_reason_outside_the_fixed_set_makes_no_new_series() -> None:
    registry = CollectorRegistry()
    metrics = SecurityMetrics(registry)
    with pytest.raises(KeyError):
        metrics.count_decision("maybe")
    with pytest.raises(KeyError):
        metrics.count_identity_refusal("CN=alice, O=evil")
    labels = {value for family in registry.collect() for s in family.samples for value in s.labels.values()}
    assert "maybe" not in labels
    assert "CN=alice, O=evil" not in labels
