"""The supervisor's worker-restart counter: a collector whose count lives in the supervisor's memory,
exposed as a counter from zero (its place beside the workers' values: test_exposition.py)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from service.telemetry.metrics.supervisor import WorkerRestarts


def test_worker_restarts_start_at_zero_and_count_each_restart() -> None:
    restarts = WorkerRestarts()
    registry = CollectorRegistry()
    registry.register(restarts)
    assert registry.get_sample_value("agentcore_worker_restarts_total") == 0
    for _ in range(3):
        restarts.inc()
    assert registry.get_sample_value("agentcore_worker_restarts_total") == 3
    assert "# TYPE agentcore_worker_restarts_total counter" in generate_latest(registry).decode()
