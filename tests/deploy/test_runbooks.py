"""Every alert of deploy/prometheus/alerts.yaml has a runbook: its `runbook_url` is its own section of
docs/runbooks.md (a heading named after the alert, which MkDocs and GitHub both anchor as the name in
lower case), and that section says what the alert means, how to confirm it (starting with a panel of the
Grafana dashboard, deploy/grafana/agentcore-memory-grpc.json) and what to do. A section for an alert
that does not exist fails too, and so does a panel the dashboard does not have."""

from __future__ import annotations

import re

import yaml

from tests.helpers import ROOT, dashboard_panels

ALERTS = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yaml").read_text())
RULES = [rule for group in ALERTS["groups"] for rule in group["rules"] if "alert" in rule]
RUNBOOKS = (ROOT / "docs" / "runbooks.md").read_text()
BASE = "https://github.com/agentcore-memory-grpc/agentcore-memory-grpc/blob/main/docs/runbooks.md"
# Each section: "## <alert>", then its three parts, up to the next section.
SECTIONS = dict(re.findall(r"^## (\w+)\n(.*?)(?=^## |\Z)", RUNBOOKS, re.MULTILINE | re.DOTALL))
# A panel as a runbook names it: "the *Error ratio by code* panel".
PANEL_NAME = re.compile(r"\*([^*]+)\* panel")


def _panel_names(text: str) -> list[str]:
    return [" ".join(name.split()) for name in PANEL_NAME.findall(text)]


def test_every_alert_links_to_its_own_section() -> None:
    assert RULES
    for rule in RULES:
        assert rule["annotations"].get("runbook_url") == f"{BASE}#{rule['alert'].lower()}", rule["alert"]


def test_every_section_is_an_alerts_and_says_what_it_means_how_to_confirm_it_and_what_to_do() -> None:
    assert set(SECTIONS) == {rule["alert"] for rule in RULES}
    for alert, section in SECTIONS.items():
        for part in ("**Means:**", "**Confirm:**", "**Do:**"):
            assert part in section, f"{alert}: no {part}"


def test_the_queries_a_runbook_gives_name_metrics_the_service_exports() -> None:
    """A runbook's query that names a metric the service does not export could never return data."""
    exported = set(re.findall(r"^\| `(\w+)` \|", (ROOT / "docs" / "metrics.md").read_text(), re.MULTILINE))
    assert exported
    named = set(re.findall(r"\b((?:grpc_server|agentcore)_\w+?)(?:_bucket|_count|_sum)?\b", RUNBOOKS))
    assert named
    assert named <= exported, f"not exported: {sorted(named - exported)}"


def test_each_runbook_confirms_on_a_panel_the_dashboard_has() -> None:
    titles = {panel["title"] for panel in dashboard_panels()}
    assert titles
    for alert, section in SECTIONS.items():
        confirm = section.split("**Confirm:**", 1)[1].split("**Do:**", 1)[0]
        assert _panel_names(confirm), f"{alert}: its Confirm names no panel of the dashboard"
        unknown = set(_panel_names(section)) - titles
        assert not unknown, f"{alert}: the dashboard has no panel {sorted(unknown)}"
    assert set(_panel_names(RUNBOOKS)) <= titles
