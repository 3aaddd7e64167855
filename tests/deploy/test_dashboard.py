"""deploy/grafana: the dashboard is what dashboard.py makes, its latency panels show exemplars, and its
panels can be told apart (the runbooks name them by title). That every query returns data is
tests/integration/test_dashboard.py's, against a real Prometheus."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import yaml

from tests.helpers import ROOT, dashboard_panels

GRAFANA = ROOT / "deploy" / "grafana"
PANELS = dashboard_panels()
ALERTS = {
    rule["alert"]: rule["expr"]
    for group in yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yaml").read_text())["groups"]
    for rule in group["rules"]
}


def test_the_dashboard_is_what_the_generator_makes() -> None:
    # It imports the service (its name), as `make generate` runs it.
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'generated'}:{ROOT}"}
    checked = subprocess.run(
        [sys.executable, GRAFANA / "dashboard.py", "--check"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert checked.returncode == 0, checked.stderr


def test_latency_panels_and_only_they_ask_for_exemplars() -> None:
    targets = [target for panel in PANELS for target in panel["targets"]]
    latencies = [target for target in targets if target["expr"].startswith("histogram_quantile(")]
    assert len(latencies) >= 6  # three percentiles of the RPCs' and of AWS's latency
    assert all(target["exemplar"] for target in latencies)
    assert not any(target["exemplar"] for target in targets if target not in latencies)


def test_every_panel_has_its_own_id_and_title_and_queries_the_chosen_data_source() -> None:
    assert len({panel["id"] for panel in PANELS}) == len(PANELS)
    assert len({panel["title"] for panel in PANELS}) == len(PANELS)
    for panel in PANELS:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert 'namespace=~"$namespace",job=~"$job"' in target["expr"], panel["title"]


def _stat_thresholds(title: str) -> list[float]:
    [panel] = [panel for panel in PANELS if panel["title"] == title]
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [step["value"] for step in steps if step["value"] is not None]


def test_the_stat_panels_turn_red_where_their_alerts_fire() -> None:
    """The thresholds are the alerts' own, read off deploy/prometheus/alerts.yaml."""
    [quarter] = re.findall(
        r"< ([\d.]+) \* agentcore_tls_certificate_lifetime_seconds",
        ALERTS["AgentCoreCertificateRotationOverdue"],
    )
    assert _stat_thresholds("Certificate lifetime left")[-1] == float(quarter)
    [restarts] = re.findall(r"\) > (\d+)", ALERTS["AgentCoreWorkerRestarts"])
    # Counts are whole: red from the first count above the alert's.
    assert int(restarts) < _stat_thresholds("Worker restarts")[-1] <= int(restarts) + 1
