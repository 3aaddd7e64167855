"""deploy/grafana: the dashboard is what dashboard.py makes, its latency panels show exemplars, and its
panels can be told apart (the runbooks name them by title). That every query returns data is
tests/integration/test_dashboard.py's, against a real Prometheus."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.helpers import ROOT

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = json.loads((GRAFANA / "agentcore-memory-grpc.json").read_text())
PANELS = [
    panel for top in DASHBOARD["panels"] for panel in [top, *top.get("panels", [])] if panel["type"] != "row"
]


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
