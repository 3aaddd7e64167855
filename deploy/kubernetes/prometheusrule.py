"""Writes base/prometheusrule.yaml, the Prometheus Operator's wrapping of deploy/prometheus/alerts.yaml (the
one source of the alerts): `python deploy/kubernetes/prometheusrule.py` (`make generate` runs it);
with `--check` it only fails when the file is stale (`make check-generated`, tests/deploy)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ALERTS = HERE.parent / "prometheus" / "alerts.yaml"
TARGET = HERE / "base" / "prometheusrule.yaml"
HEADER = (
    "# Generated from deploy/prometheus/alerts.yaml by deploy/kubernetes/prometheusrule.py: do not edit;\n"
    "# `make generate` writes it again. Prometheus selects rules by label (kube-prometheus-stack:\n"
    "# `release: <its release name>`): add it in an overlay.\n"
)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (PromQL, descriptions) as literal blocks, as in alerts.yaml."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def render(alerts_text: str) -> str:
    groups: Any = yaml.safe_load(alerts_text)["groups"]
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "agentcore-memory-grpc"},
        "spec": {"groups": groups},
    }
    return HEADER + yaml.dump(rule, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


def main(argv: list[str]) -> int:
    wanted = render(ALERTS.read_text())
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != wanted:
            print(f"{TARGET.relative_to(HERE.parents[1])} is stale: run 'make generate'", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
