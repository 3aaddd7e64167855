"""What /metrics serves with one process or several: the process collectors only in one process, the
workers' multiprocess files in several, and the supervisor's own series joined into the same families.
(Several real processes, and the HTTP listener end to end: tests/integration/test_metrics.py.)"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest, values
from prometheus_client.parser import text_string_to_metric_families

from service.telemetry.metrics import exposition
from service.telemetry.metrics.security import ConfigMetrics
from service.telemetry.metrics.supervisor import WorkerRestarts


@pytest.fixture
def multiprocess_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PROMETHEUS_MULTIPROC_DIR set, as the supervisor sets it for its workers."""
    monkeypatch.setenv(exposition.MULTIPROCESS_ENV, str(tmp_path))
    return tmp_path


@contextlib.contextmanager
def worker_process(pid: int) -> Iterator[None]:
    """Metrics made inside keep their values in the multiprocess files, as worker `pid`'s do (the value
    class prometheus_client picks at import when PROMETHEUS_MULTIPROC_DIR is set)."""
    previous = values.ValueClass
    worker = values.MultiProcessValue(lambda: pid)  # type: ignore[no-untyped-call]
    values.ValueClass = worker
    try:
        yield
    finally:
        values.ValueClass = previous
        worker.close_all_files()


def family_names(registry: CollectorRegistry) -> list[str]:
    return [family.name for family in registry.collect()]


def test_multiprocess_mode_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(exposition.MULTIPROCESS_ENV, raising=False)
    assert not exposition.multiprocess_mode()
    monkeypatch.setenv(exposition.MULTIPROCESS_ENV, "")
    assert not exposition.multiprocess_mode()
    monkeypatch.setenv(exposition.MULTIPROCESS_ENV, "/tmp/m")
    assert exposition.multiprocess_mode()


def test_one_process_shows_the_process_collectors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(exposition.MULTIPROCESS_ENV, raising=False)
    registry = CollectorRegistry()
    exposition.add_process_collectors(registry)
    expected = {"process_cpu_seconds", "python_info", "python_gc_objects_collected"}
    assert expected <= set(family_names(registry))


def test_workers_show_no_process_collectors_they_could_not_merge(multiprocess_dir: Path) -> None:
    registry = CollectorRegistry()
    exposition.add_process_collectors(registry)
    assert family_names(registry) == []


def test_one_process_serves_its_own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(exposition.MULTIPROCESS_ENV, raising=False)
    registry = CollectorRegistry()
    assert exposition.registry_to_serve(registry) is registry


def test_several_processes_serve_every_workers_files_merged(multiprocess_dir: Path) -> None:
    for pid, reloads in ((101, 3), (102, 4)):
        with worker_process(pid):
            ConfigMetrics(CollectorRegistry()).reloads.labels("tls", "success").inc(reloads)
    in_memory = CollectorRegistry()
    Gauge("only_in_this_process", "Not in any worker's file.", registry=in_memory).set(1)
    served = exposition.registry_to_serve(in_memory)
    success = {"config": "tls", "outcome": "success"}
    assert served.get_sample_value("agentcore_config_reloads_total", success) == 7
    assert "only_in_this_process" not in family_names(served)


def test_the_supervisors_series_join_the_workers_families_of_the_same_name(multiprocess_dir: Path) -> None:
    with worker_process(201):
        ConfigMetrics(CollectorRegistry()).reload_reporter("tls")(False)  # a worker refused a rotation
    own = CollectorRegistry()
    ConfigMetrics(own).reload_reporter("metrics_tls")
    restarts = WorkerRestarts()
    own.register(restarts)
    restarts.inc()

    merged = exposition.merged_registry(str(multiprocess_dir), own)
    value = merged.get_sample_value
    assert value("agentcore_config_reloads_total", {"config": "tls", "outcome": "failure"}) == 1
    assert value("agentcore_config_reloads_total", {"config": "metrics_tls", "outcome": "failure"}) == 0
    assert value("agentcore_config_last_reload_successful", {"config": "tls"}) == 0
    assert value("agentcore_config_last_reload_successful", {"config": "metrics_tls"}) == 1
    assert value("agentcore_worker_restarts_total") == 1
    # One family per name, or the exposition is invalid.
    text = generate_latest(merged).decode()
    assert text.count("# TYPE agentcore_config_reloads_total counter") == 1
    assert text.count("# TYPE agentcore_config_last_reload_successful gauge") == 1
    names = [family.name for family in text_string_to_metric_families(text)]
    assert len(names) == len(set(names))


def test_without_the_supervisors_series_the_workers_files_are_served_alone(multiprocess_dir: Path) -> None:
    with worker_process(301):
        ConfigMetrics(CollectorRegistry()).reload_reporter("authz_policy")(True)
    merged = exposition.merged_registry(str(multiprocess_dir))
    expected = {"agentcore_config_reloads", "agentcore_config_last_reload_successful"}
    assert set(family_names(merged)) == expected
