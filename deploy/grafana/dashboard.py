"""Writes agentcore-memory-grpc.json, the facade's Grafana dashboard, from the Grafana Foundation SDK's
builders: `python deploy/grafana/dashboard.py` (`make generate` runs it); with `--check` it only fails
when the file is stale (`make check-generated`, tests/deploy). kustomization.yaml beside it delivers the
file as a ConfigMap for the Grafana sidecar; tests/integration/test_dashboard.py runs every query
against a real Prometheus. Queries are written as the alerts of deploy/prometheus/alerts.yaml are, and
each runbook of docs/runbooks.md names the panel that confirms its alert."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common, dashboard

from service.api.operations import SERVICE_NAME

HERE = Path(__file__).resolve().parent
TARGET = HERE / "agentcore-memory-grpc.json"
UID = "agentcore-memory-grpc"
DATASOURCE = dashboard.DataSourceRef(type_val="prometheus", uid="${datasource}")
# Every query's selector: the chosen namespaces and jobs (a ServiceMonitor's job is the Service's name).
SCOPE = 'namespace=~"$namespace",job=~"$job"'
OURS = f'{SCOPE},grpc_service="{SERVICE_NAME}"'
QUANTILES = (0.5, 0.9, 0.99)
REF_IDS = "ABCDEFGH"


def _rate(metric: str, selector: str = SCOPE) -> str:
    return f"rate({metric}{{{selector}}}[$__rate_interval])"


def _query(expr: str, legend: str, *, exemplar: bool = False) -> prometheus.Dataquery:
    return (
        prometheus.Dataquery()
        .datasource(DATASOURCE)
        .expr(expr)
        .legend_format(legend)
        .range()
        .exemplar(exemplar)
    )


def _targets(panel: timeseries.Panel | stat.Panel, queries: list[prometheus.Dataquery]) -> None:
    if len(queries) > len(REF_IDS):
        raise ValueError(f"a panel holds at most {len(REF_IDS)} queries")
    for ref_id, query in zip(REF_IDS, queries, strict=False):
        panel.with_target(query.ref_id(ref_id))


def _timeseries(
    panel_id: int, title: str, description: str, unit: str, queries: list[prometheus.Dataquery]
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .id(panel_id)
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .min(0)
        .span(12)
        .height(8)
        .legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
        )
        .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
    )
    _targets(panel, queries)
    return panel


def _stat(
    panel_id: int,
    title: str,
    *,
    description: str,
    unit: str,
    query: prometheus.Dataquery,
    steps: list[dashboard.Threshold],
    mappings: list[dashboard.ValueMapping] | None = None,
) -> stat.Panel:
    panel = (
        stat.Panel()
        .id(panel_id)
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(6)
        .height(6)
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        .thresholds(
            dashboard_builders.ThresholdsConfig().mode(dashboard.ThresholdsMode.ABSOLUTE).steps(steps)
        )
    )
    if mappings:
        panel.mappings(mappings)
    _targets(panel, [query])
    return panel


def _percentiles(metric: str, by: str, selector: str) -> list[prometheus.Dataquery]:
    """p50, p90 and p99 of a histogram by `by`, with exemplars (a slow call's trace, one click away)."""
    return [
        _query(
            f"histogram_quantile({quantile}, sum by ({by}, le) ({_rate(f'{metric}_bucket', selector)}))",
            f"p{round(quantile * 100)} {{{{{by}}}}}",
            exemplar=True,
        )
        for quantile in QUANTILES
    ]


def _zero_one(zero: str, one: str) -> list[dashboard.ValueMapping]:
    """A 0-or-1 gauge's values as words: 0 in red, 1 in green."""
    return [
        dashboard.ValueMap(
            options={
                "0": dashboard.ValueMappingResult(text=zero, color="red"),
                "1": dashboard.ValueMappingResult(text=one, color="green"),
            }
        )
    ]


def _variable(name: str, label: str, query: str) -> dashboard_builders.QueryVariable:
    """A label's values; All matches every value, and series without the label (Prometheus outside
    Kubernetes has no namespace)."""
    return (
        dashboard_builders.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dashboard.VariableOption(selected=True, text="All", value="$__all"))
    )


def build() -> dashboard.Dashboard:
    not_ok = _rate("grpc_server_handled_total", f'{OURS},grpc_code!="OK"')
    not_succeeded = _rate("agentcore_records_total", f'{SCOPE},outcome!="succeeded"')
    rpcs = [
        _timeseries(
            1,
            "Request rate by method",
            "RPCs of the facade that ended, per second, whatever their code.",
            "reqps",
            [_query(f"sum by (grpc_method) ({_rate('grpc_server_handled_total', OURS)})", "{{grpc_method}}")],
        ),
        _timeseries(
            2,
            "Error ratio by code",
            "The share of each method's RPCs that ended with each code other than OK. "
            "AgentCoreGrpcErrorRatioHigh counts Unknown, DeadlineExceeded, Internal, Unavailable and "
            "DataLoss; InvalidArgument and NotFound are callers' mistakes, ResourceExhausted throttling or "
            "overload.",
            "percentunit",
            [
                _query(
                    f"sum by (grpc_method, grpc_code) ({not_ok}) / ignoring (grpc_code) group_left "
                    f"sum by (grpc_method) ({_rate('grpc_server_handled_total', OURS)})",
                    "{{grpc_method}} {{grpc_code}}",
                )
            ],
        ),
        _timeseries(
            3,
            "Latency by method",
            "Handling time percentiles of each method, from the RPC's start to its answer "
            "(AgentCoreGrpcLatencyP99High watches p99). Exemplars link a slow RPC to its trace.",
            "s",
            _percentiles("grpc_server_handling_seconds", "grpc_method", OURS),
        ),
        _timeseries(
            4,
            "Record failures by AWS code",
            "Records of batch RPCs that AWS did not apply (failed) or whose fate is unknown, per second, "
            "by AWS's per-record code (an HTTP-like status; none: the records of an RPC that ended with "
            "an error).",
            "cps",
            [
                _query(
                    f"sum by (operation, outcome, error_code) ({not_succeeded})",
                    "{{operation}} {{outcome}} {{error_code}}",
                )
            ],
        ),
    ]
    aws = [
        _timeseries(
            5,
            "AWS latency by operation",
            "Duration percentiles of AWS calls, retries and back-off included.",
            "s",
            _percentiles("agentcore_upstream_request_duration_seconds", "operation", SCOPE),
        ),
        _timeseries(
            6,
            "AWS throttles and retries",
            "Attempts AWS answered with a throttle, and attempts botocore sent beyond each call's first, per "
            "second (AgentCoreUpstreamThrottling watches throttled attempts per call).",
            "ops",
            [
                _query(
                    f"sum by (operation) ({_rate('agentcore_upstream_throttles_total')})",
                    "throttled {{operation}}",
                ),
                _query(
                    f"sum by (operation) ({_rate('agentcore_upstream_retries_total')})",
                    "retried {{operation}}",
                ),
            ],
        ),
        _timeseries(
            7,
            "AWS errors by code",
            "AWS calls that failed after retries, per second, by AWS's error code or the transport failure "
            "(AgentCoreUpstreamErrors watches the share with a 5xx answer or none).",
            "ops",
            [
                _query(
                    f"sum by (operation, aws_error_code) ({_rate('agentcore_upstream_errors_total')})",
                    "{{operation}} {{aws_error_code}}",
                )
            ],
        ),
        _timeseries(
            8,
            "Retry-quota refusals",
            "AWS calls that failed retryably and were not retried because botocore's retry quota was empty, "
            "per second (AgentCoreUpstreamRetryQuotaExhausted).",
            "ops",
            [
                _query(
                    f"sum by (operation) ({_rate('agentcore_upstream_retries_refused_total')})",
                    "{{operation}}",
                )
            ],
        ),
    ]
    admission = [
        _timeseries(
            9,
            "Admission refusals by reason",
            "RPCs refused at once with ResourceExhausted (SERVER_OVERLOADED), per second, by the limit they "
            "would have broken: rpcs (MAX_CONCURRENT_RPCS), bytes (MAX_INFLIGHT_BYTES) or turns "
            "(AgentCoreOverloaded).",
            "reqps",
            [
                _query(
                    f"sum by (reason) ({_rate('agentcore_grpc_server_requests_refused_total')})",
                    "{{reason}}",
                )
            ],
        ),
        _timeseries(
            10,
            "In flight and waiting",
            "RPCs admitted and not yet finished, by method, and those of them waiting for one of the "
            "GRPC_MAX_WORKERS turns to call AWS.",
            "short",
            [
                _query(
                    f"sum by (grpc_method) (agentcore_grpc_server_requests_in_flight{{{OURS}}})",
                    "in flight {{grpc_method}}",
                ),
                _query(f"sum(agentcore_grpc_server_requests_waiting{{{SCOPE}}})", "waiting for a turn"),
            ],
        ),
    ]
    red_below = [dashboard.Threshold(value=None, color="red")]
    security_and_workers = [
        _stat(
            11,
            "Certificate expiry",
            description="Days until the certificate each listener serves expires, the soonest of the pods.",
            unit="d",
            query=_query(
                f"min by (job, listener) (agentcore_tls_certificate_expiry_seconds{{{SCOPE}}}) / 86400",
                "{{job}} {{listener}}",
            ),
            steps=[*red_below, dashboard.Threshold(value=7, color="green")],
        ),
        _stat(
            12,
            "Certificate lifetime left",
            description="The share of its validity the certificate each listener serves has left "
            "(AgentCoreCertificateRotationOverdue watches it; red where that alert would fire).",
            unit="percentunit",
            query=_query(
                f"min by (job, listener) (agentcore_tls_certificate_expiry_seconds{{{SCOPE}}}"
                f" / agentcore_tls_certificate_lifetime_seconds{{{SCOPE}}})",
                "{{job}} {{listener}}",
            ),
            steps=[*red_below, dashboard.Threshold(value=0.25, color="green")],
        ),
        _stat(
            13,
            "Config reloads",
            description="1 when the last change to each watched file (tls, metrics_tls, authz_policy) "
            "loaded on every pod, 0 when one refused it and keeps the last good one "
            "(AgentCoreConfigReloadFailing).",
            unit="none",
            query=_query(
                f"min by (job, config) (agentcore_config_last_reload_successful{{{SCOPE}}})",
                "{{job}} {{config}}",
            ),
            steps=[*red_below, dashboard.Threshold(value=1, color="green")],
            mappings=_zero_one("refused", "loaded"),
        ),
        _stat(
            14,
            "Worker restarts",
            description="Worker processes (WORKERS > 1) that died and were started again in the last 15 "
            "minutes (AgentCoreWorkerRestarts watches it; red where that alert would fire).",
            unit="none",
            query=_query(
                f"sum by (job) (increase(agentcore_worker_restarts_total{{{SCOPE}}}[15m]))", "{{job}}"
            ),
            steps=[
                dashboard.Threshold(value=None, color="green"),
                dashboard.Threshold(value=2.5, color="red"),
            ],
        ),
    ]
    limits = [
        _timeseries(
            15,
            "Caller limit refusals",
            "RPCs refused by a per-caller limit of the policy's `limits`, per second, by the limit "
            "(requests_per_second, records_per_second, max_concurrent) and the entry (its name or index, "
            "never the caller's identity).",
            "reqps",
            [
                _query(
                    f"sum by (limit, entry) ({_rate('agentcore_caller_limited_total')})",
                    "{{entry}} {{limit}}",
                )
            ],
        ),
        _stat(
            16,
            "Rate-limit storage",
            description="Whether the storage of the rate limits' counters (RATE_LIMIT_STORAGE_URI) answers "
            "every pod: 0 while one finds it failing, limits then open or closed as "
            "RATE_LIMIT_STORAGE_FAILURE says (AgentCoreRateLimitStorageDown).",
            unit="none",
            query=_query(f"min by (job) (agentcore_rate_limit_storage_up{{{SCOPE}}})", "{{job}}"),
            steps=[*red_below, dashboard.Threshold(value=1, color="green")],
            mappings=_zero_one("failing", "answering"),
        ),
    ]
    builder = (
        dashboard_builders.Dashboard("AgentCore memory gRPC")
        .uid(UID)
        .description(
            "The agentcore-memory-grpc facade: its RPCs, its AWS calls, admission, certificates, workers and "
            "limits. "
            "Generated by deploy/grafana/dashboard.py: do not edit here; `make generate` writes it again."
        )
        .tags(["agentcore", "grpc"])
        .timezone("browser")
        .time("now-1h", "now")
        .refresh("30s")
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .with_variable(
            dashboard_builders.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
        .with_variable(_variable("namespace", "Namespace", "label_values(agentcore_build_info, namespace)"))
        .with_variable(
            _variable("job", "Job", 'label_values(agentcore_build_info{namespace=~"$namespace"}, job)')
        )
    )
    rows = (
        ("RPCs", rpcs),
        ("AWS", aws),
        ("Admission", admission),
        ("Certificates and workers", security_and_workers),
        ("Limits", limits),
    )
    row_id = 100
    for title, panels in rows:
        row_id += 1
        builder.with_row(dashboard_builders.Row(title).id(row_id))
        for panel in panels:
            builder.with_panel(panel)
    return builder.build()


def render() -> str:
    return json.dumps(build(), cls=JSONEncoder, indent=2) + "\n"


def main(argv: list[str]) -> int:
    wanted = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != wanted:
            print(f"{TARGET.relative_to(HERE.parents[1])} is stale: run 'make generate'", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
