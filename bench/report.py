"""What a bench run found: percentiles, ratios against direct boto3, the targets and whether each holds,
as a table, as JSON, and as a PNG of the latency distributions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import large_batch

MS = 1000.0


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summary(side: dict[str, Any]) -> dict[str, float]:
    calls = max(1, side["calls"])
    return {
        "p50_ms": percentile(side["latencies"], 0.5) * MS,
        "p99_ms": percentile(side["latencies"], 0.99) * MS,
        "calls_per_second": side["calls"] / side["seconds"] if side["seconds"] else float("nan"),
        "cpu_ms_per_call": side["cpu_seconds"] / calls * MS,
        "errors": side["errors"],
    }


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of docs/performance.md, with the measured value and whether it holds."""
    floor_ms = percentile(results["echo"]["latencies"], 0.5) * MS
    found: list[dict[str, Any]] = []
    models = echo_models(results)

    def target(what: str, measured: float, limit: float, unit: str, *, at_least: bool = False) -> None:
        holds = measured >= limit if at_least else measured <= limit
        found.append(
            {
                "target": what,
                "measured": measured,
                "limit": limit,
                "unit": unit,
                "at_least": at_least,
                "holds": holds,
            }
        )

    if "facade" in models and "sync" in models:
        # Issue 16's budget for the serving model alone: its echo floor against the sync server's.
        added = (percentile(models["facade"], 0.5) - percentile(models["sync"], 0.5)) * MS
        target("serving model: echo p50, facade model less sync server", added, 0.1, "ms")

    for item in results.get("instructions", []):
        limit = 1.0 if item["name"] == "BatchUpdate 100" else 1.15
        target(
            f"instructions/call, {item['name']} (facade/direct)", item["facade"] / item["direct"], limit, "x"
        )
    for scenario in results["scenarios"]:
        direct, facade = summary(scenario["direct"]), summary(scenario["facade"])
        label = f"{scenario['name']}, {scenario['callers']} caller(s)"
        if scenario["upstream_latency"] == 0 and scenario["callers"] == 1:
            added = facade["p50_ms"] - direct["p50_ms"]
            if scenario["name"] == "BatchUpdate 100":
                target(f"added p50, {label}", added, 1.5, "ms")
            elif scenario["name"] in {"BatchUpdate 1", "Get"}:
                target(
                    f"added p50, {label} (echo floor {floor_ms:.2f} ms + 0.2)", added, floor_ms + 0.2, "ms"
                )
        if scenario["upstream_latency"] > 0 and scenario["callers"] == 1:
            target(
                f"p50 at 20 ms upstream, {label} (facade/direct)",
                facade["p50_ms"] / direct["p50_ms"],
                1.05,
                "x",
            )
            target(
                f"p99 at 20 ms upstream, {label} (facade/direct)",
                facade["p99_ms"] / direct["p99_ms"],
                1.10,
                "x",
            )
        if scenario["upstream_latency"] == 0 and scenario["callers"] > 1:
            ratio = facade["calls_per_second"] / direct["calls_per_second"]
            target(f"throughput, {label}, 1 worker (facade/direct)", ratio, 0.8, "x", at_least=True)
    for item in results.get("tracing", {}).get("instructions", []):
        if item["name"] == "BatchUpdate 1":
            target(
                "instructions/call, BatchUpdate 1, tracing at 100% / tracing off",
                item["100%"] / item["off"],
                1.15,
                "x",
            )
    samples = results["rss"]["samples"]
    second_half = [rss for _, rss in samples[len(samples) // 2 :]] or [0]
    growth = (max(second_half) - min(second_half)) / max(1, min(second_half))
    target("RSS growth over the second half of the long run", growth, 0.05, "fraction")
    if "large_batch" in results:
        target(
            "1,000-record BatchUpdate at 200 ms upstream, boto3 loop time / facade time (median)",
            large_batch.speedup(results["large_batch"]),
            5.0,
            "x",
            at_least=True,
        )
    return found


def echo_models(results: dict[str, Any]) -> dict[str, list[float]]:
    """The echo floor's latencies by serving model (results of older runs hold the sync server's alone)."""
    models: dict[str, list[float]] = results["echo"].get("models", {"sync": results["echo"]["latencies"]})
    return models


def table(results: dict[str, Any]) -> str:
    models = echo_models(results)
    floors = ", ".join(f"{model} {percentile(found, 0.5) * MS:.3f}" for model, found in models.items())
    lines = [
        f"echo floor (bare gRPC round trip), p50 ms by serving model: {floors}"
        " (the facade serves as `facade`; `sync` was its model before issue 16)",
        "",
        "| scenario | callers | upstream | direct p50 / p99 ms | facade p50 / p99 ms | added p50 ms "
        "| throughput facade/direct | CPU ms/call facade / direct |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scenario in results["scenarios"]:
        direct, facade = summary(scenario["direct"]), summary(scenario["facade"])
        lines.append(
            f"| {scenario['name']} | {scenario['callers']} | {scenario['upstream_latency'] * MS:.0f} ms "
            f"| {direct['p50_ms']:.2f} / {direct['p99_ms']:.2f} "
            f"| {facade['p50_ms']:.2f} / {facade['p99_ms']:.2f} "
            f"| {facade['p50_ms'] - direct['p50_ms']:+.2f} "
            f"| {facade['calls_per_second'] / direct['calls_per_second']:.2f}x "
            f"| {facade['cpu_ms_per_call']:.2f} / {direct['cpu_ms_per_call']:.2f} |"
        )
    if results.get("instructions"):
        lines += [
            "",
            "| instructions per call | facade process | direct boto3 caller | ratio |",
            "|---|---|---|---|",
        ]
        for item in results["instructions"]:
            lines.append(
                f"| {item['name']} | {item['facade'] / 1e6:.2f}M | {item['direct'] / 1e6:.2f}M "
                f"| {item['facade'] / item['direct']:.2f}x |"
            )
    lines += workers_table(results.get("workers", []))
    lines += tracing_table(results.get("tracing"))
    lines += ["", "| target | measured | limit | holds |", "|---|---|---|---|"]
    for item in targets(results):
        lines.append(
            f"| {item['target']} | {item['measured']:.3f} {item['unit']} "
            f"| {'>=' if item['at_least'] else '<='} {item['limit']:.3f} {item['unit']} "
            f"| {'yes' if item['holds'] else 'NO'} |"
        )
    errors = sum(s["direct"]["errors"] + s["facade"]["errors"] for s in results["scenarios"]) + sum(
        side["errors"] for w in results.get("workers", []) for side in w["sides"].values()
    )
    if errors:
        lines.append(f"\n{errors} calls failed: the numbers above leave them out")
    return "\n".join(lines)


def workers_table(workers: list[dict[str, Any]]) -> list[str]:
    """Throughput of direct boto3 and of the facade with each WORKERS value, same callers."""
    if not workers:
        return []
    sides = list(workers[0]["sides"])
    lines = [
        "",
        f"| {workers[0]['callers']} callers, a connection each | "
        + " | ".join(f"{side} calls/s (p50 ms)" for side in sides)
        + " | last / first facade |",
        "|---" * (len(sides) + 2) + "|",
    ]
    for scenario in workers:
        found = {side: summary(scenario["sides"][side]) for side in sides}
        facades = [found[side]["calls_per_second"] for side in sides if side != "direct"]
        lines.append(
            f"| {scenario['name']} | "
            + " | ".join(f"{found[s]['calls_per_second']:.0f} ({found[s]['p50_ms']:.1f})" for s in sides)
            + f" | {facades[-1] / facades[0]:.2f}x |"
        )
    return lines


def tracing_table(tracing: dict[str, Any] | None) -> list[str]:
    """Added p50 at one caller and instructions per call, by tracing mode (`run.TRACING_MODES`)."""
    if not tracing or not tracing["latency"]:
        return []
    modes = [side for side in tracing["latency"][0]["sides"] if side != "direct"]
    instructions = {item["name"]: item for item in tracing.get("instructions", [])}
    lines = [
        "",
        "| tracing, 1 caller, 0 ms upstream | direct p50 ms | added p50 ms: "
        + " / ".join(modes)
        + " | instructions/call: "
        + " / ".join(modes)
        + " |",
        "|---|---|---|---|",
    ]
    for scenario in tracing["latency"]:
        found = {side: summary(measured) for side, measured in scenario["sides"].items()}
        direct = found["direct"]["p50_ms"]
        added = " / ".join(f"{found[mode]['p50_ms'] - direct:+.2f}" for mode in modes)
        counted = instructions.get(scenario["name"])
        counts = (
            " / ".join(
                f"{counted[mode] / 1e6:.2f}M ({counted[mode] / counted[modes[0]]:.3f}x)" for mode in modes
            )
            if counted
            else "not counted"
        )
        lines.append(f"| {scenario['name']} | {direct:.2f} | {added} | {counts} |")
    lines.append(f"\n{tracing['spans_exported']} spans reached the OTLP sink")
    return lines


def write_json(results: dict[str, Any], path: Path) -> None:
    """Everything measured, with the summaries and targets next to the raw latencies."""
    enriched = {
        **results,
        "summaries": [
            {
                "name": s["name"],
                "callers": s["callers"],
                "upstream_latency": s["upstream_latency"],
                "direct": summary(s["direct"]),
                "facade": summary(s["facade"]),
            }
            for s in results["scenarios"]
        ],
        "worker_summaries": [
            {
                "name": w["name"],
                "callers": w["callers"],
                **{side: summary(measured) for side, measured in w["sides"].items()},
            }
            for w in results.get("workers", [])
        ],
        "targets": targets(results),
    }
    path.write_text(json.dumps(enriched, indent=1))


def draw(results: dict[str, Any], path: Path) -> bool:
    """Latency distributions, direct and facade side by side per scenario; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    scenarios = results["scenarios"]
    figure, axes = plt.subplots(len(scenarios), 1, figsize=(9, 1.4 * len(scenarios)), sharex=False)
    for axis, scenario in zip(axes if len(scenarios) > 1 else [axes], scenarios, strict=True):
        data = [[v * MS for v in scenario[side]["latencies"]] or [0.0] for side in ("direct", "facade")]
        axis.boxplot(data, vert=False, tick_labels=["direct", "facade"], showfliers=False, whis=(1, 99))
        upstream_ms = scenario["upstream_latency"] * MS
        title = f"{scenario['name']}, {scenario['callers']} caller(s), {upstream_ms:.0f} ms upstream"
        axis.set_title(title, fontsize=8)
        axis.tick_params(labelsize=7)
    axes[-1].set_xlabel("latency (ms); whiskers at p1 and p99")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
