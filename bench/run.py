"""The phases of a bench run: the echo floor, latency and throughput (A B interleaved, at 0 and 20 ms of
injected AWS latency), throughput with 1 and 2 worker processes, a 1,000-record batch at 200 ms,
instructions under callgrind, the cost of tracing, and RSS over a long run."""

from __future__ import annotations

import dataclasses
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import large_batch
from bench.echo import MODELS as ECHO_MODELS
from bench.processes import (
    ROOT,
    Caller,
    Process,
    start_caller,
    start_echo,
    start_emulator,
    start_facade,
    start_sink,
)

__all__ = ["ROOT", "Plan", "run"]

# (operation, records): BatchUpdate of 1, 10 and 100 records, and Get.
SCENARIOS: tuple[tuple[str, int], ...] = (("update", 1), ("update", 10), ("update", 100), ("get", 0))
CALLERS = (1, 16)
UPSTREAM_LATENCIES = (0.0, 0.02)
# Under 20 ms of latency a round needs fewer calls for the same confidence in p50 and p99.
SLOW_CALLS_DIVISOR = 4
# The worker phase: WORKERS values compared, at this many callers, each on a connection of its own.
WORKER_COUNTS = (1, 2)
WORKER_CALLERS = 16
WORKER_SCENARIOS: tuple[tuple[str, int], ...] = (("update", 1), ("get", 0))
# The tracing phase: the facade with tracing off, on with a sampler that samples nothing, and on at 100%
# (exporting over OTLP/gRPC to bench/otlp_sink.py every 200 ms, so that exports fall inside the counted
# windows; the default 5 s would batch more spans per export, a cheaper case).
TRACING_MODES = ("off", "always_off", "100%")
TRACING_SCENARIOS: tuple[tuple[str, int], ...] = (("update", 1), ("update", 100), ("get", 0))
TRACING_EXPORT_DELAY_MS = 200


@dataclasses.dataclass(frozen=True)
class Plan:
    rounds: int = 3
    calls: int = 400
    instruction_calls: int = 30
    soak_calls: int = 100_000

    @classmethod
    def smoke(cls) -> Plan:
        return cls(rounds=1, calls=4, instruction_calls=2, soak_calls=64)


def name(op: str, records: int) -> str:
    return f"BatchUpdate {records}" if op == "update" else "Get"


def run(plan: Plan, progress: Callable[[str], None]) -> dict[str, Any]:
    results: dict[str, Any] = {
        "plan": dataclasses.asdict(plan),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "echo": _echo_floor(plan, progress),
        "scenarios": [],
    }
    for latency in UPSTREAM_LATENCIES:
        results["scenarios"] += _latency_phase(plan, latency, progress)
    results["workers"] = _workers_phase(plan, progress)
    progress("a 1,000-record BatchUpdate at 200 ms upstream: the facade against a boto3 loop")
    results["large_batch"] = large_batch.measure(plan.rounds)
    if plan.instruction_calls:
        results["instructions"] = _instruction_phase(plan, progress)
    results["tracing"] = _tracing_phase(plan, progress)
    results["rss"] = _rss_phase(plan, progress)
    return results


def _echo_floor(plan: Plan, progress: Callable[[str], None]) -> dict[str, Any]:
    """The bare round trip of each serving model, interleaved; `latencies` is the sync server's (the floor
    the targets add to, as before issue 16)."""
    progress(f"echo floor: a bare gRPC round trip, serving models {', '.join(ECHO_MODELS)}")
    servers = {model: start_echo(model) for model in ECHO_MODELS}
    callers = {model: start_caller("echo", server.address) for model, server in servers.items()}
    try:
        for caller in callers.values():
            caller.send({"op": "get", "calls": max(10, plan.calls // 4), "callers": 1})  # warm
        models: dict[str, list[float]] = {model: [] for model in ECHO_MODELS}
        for _ in range(plan.rounds):
            for model, caller in callers.items():
                models[model] += caller.send({"op": "get", "calls": plan.calls, "callers": 1})["latencies"]
        return {"latencies": models["sync"], "models": models}
    finally:
        for process in [*callers.values(), *servers.values()]:
            process.stop()


def _latency_phase(plan: Plan, latency: float, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    emulator = start_emulator(latency)
    facade = start_facade(emulator.address, LOG_LEVEL="INFO")
    direct = start_caller("direct", emulator.address)
    client = start_caller("facade", facade.address)
    calls = plan.calls if latency == 0 else max(2, plan.calls // SLOW_CALLS_DIVISOR)
    found = []
    try:
        for op, records in SCENARIOS:
            for callers in CALLERS:
                command = {
                    "op": op,
                    "records": records,
                    "calls": calls * (4 if callers > 1 else 1),
                    "callers": callers,
                }
                progress(f"{name(op, records)}, {callers} caller(s), {latency * 1000:.0f} ms upstream")
                warm = {**command, "calls": max(2, min(20, calls // 10))}
                direct.send(warm)
                client.send(warm)
                scenario: dict[str, Any] = {
                    "name": name(op, records),
                    "callers": callers,
                    "upstream_latency": latency,
                    "direct": _empty(),
                    "facade": _empty(),
                }
                for _ in range(plan.rounds):
                    _measure(scenario["direct"], direct, command, direct)
                    _measure(scenario["facade"], client, command, facade)
                found.append(scenario)
    finally:
        for process in (client, direct, facade, emulator):
            process.stop()
    return found


def workers_side(workers: int) -> str:
    return f"{workers} worker{'s' if workers > 1 else ''}"


def _workers_phase(plan: Plan, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    """Throughput at WORKER_CALLERS callers of direct boto3 and of the facade with each of WORKER_COUNTS,
    every facade called with a connection per caller (so that the kernel spreads them over workers)."""
    emulator = start_emulator(0.0)
    facades = {
        workers: start_facade(emulator.address, LOG_LEVEL="INFO", WORKERS=str(workers))
        for workers in WORKER_COUNTS
    }
    # No CPU seconds here: a supervisor's /proc counts neither its workers nor its callers' work.
    callers = {"direct": start_caller("direct", emulator.address)} | {
        workers_side(workers): start_caller("facade-connections", facade.address)
        for workers, facade in facades.items()
    }
    found = []
    try:
        for op, records in WORKER_SCENARIOS:
            progress(
                f"{name(op, records)}, {WORKER_CALLERS} callers: direct, and the facade with 1 and 2 workers"
            )
            command = {"op": op, "records": records, "calls": 4 * plan.calls, "callers": WORKER_CALLERS}
            warm = {**command, "calls": max(WORKER_CALLERS, plan.calls // 10)}
            for caller in callers.values():
                caller.send(warm)
            sides = {side: _empty() for side in callers}
            for _ in range(plan.rounds):
                for side, caller in callers.items():
                    _measure(sides[side], caller, command, None)
            found.append({"name": name(op, records), "callers": WORKER_CALLERS, "sides": sides})
    finally:
        for caller in callers.values():
            caller.stop()
        for process in (*facades.values(), emulator):
            process.stop()
    return found


def _empty() -> dict[str, Any]:
    return {"latencies": [], "seconds": 0.0, "calls": 0, "errors": 0, "cpu_seconds": 0.0}


def _measure(into: dict[str, Any], caller: Caller, command: dict[str, Any], worker: Process | None) -> None:
    """One round: latencies seen by the caller, and the CPU seconds `worker` spent on it (if given)."""
    cpu_before = worker.cpu_seconds() if worker else 0.0
    answer = caller.send(command)
    into["cpu_seconds"] += worker.cpu_seconds() - cpu_before if worker else 0.0
    into["latencies"] += answer["latencies"]
    into["seconds"] += answer["seconds"]
    into["calls"] += command["calls"]
    into["errors"] += answer["errors"]


def _instruction_phase(plan: Plan, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    progress("instructions: the facade's process and the direct caller's, under callgrind (slow)")
    scratch = Path(tempfile.mkdtemp(prefix="bench-callgrind-"))
    emulator = start_emulator(0.0)
    facade = start_facade(emulator.address, callgrind_out=scratch / "facade", LOG_LEVEL="INFO")
    direct = start_caller("direct", emulator.address, callgrind_out=scratch / "direct")
    client = start_caller("facade", facade.address)
    found = []
    try:
        for op, records in (("update", 1), ("update", 100), ("get", 0)):
            command = {"op": op, "records": records, "calls": plan.instruction_calls, "callers": 1}
            progress(f"  {name(op, records)}")
            warm = {**command, "calls": 3}
            client.send(warm)
            direct.send(warm)
            facade_count = facade.instructions(lambda command=command: client.send(command))
            direct_count = direct.instructions(lambda command=command: direct.send(command))
            found.append(
                {
                    "name": name(op, records),
                    "facade": facade_count / plan.instruction_calls,
                    "direct": direct_count / plan.instruction_calls,
                }
            )
    finally:
        for process in (client, direct, facade, emulator):
            process.stop()
    return found


def tracing_settings(mode: str, sink: Process) -> dict[str, str]:
    """The standard OTEL_* variables of each tracing mode (off: none)."""
    if mode == "off":
        return {}
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{sink.address}",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_TRACES_SAMPLER": "always_off" if mode == "always_off" else "always_on",
        "OTEL_BSP_SCHEDULE_DELAY": str(TRACING_EXPORT_DELAY_MS),
    }


def _tracing_phase(plan: Plan, progress: Callable[[str], None]) -> dict[str, Any]:
    """Added p50 at one caller (direct and the three modes interleaved, round by round) and, with
    callgrind, instructions per call of each mode; and how many spans reached the sink."""
    progress(f"tracing: the facade with tracing {', '.join(TRACING_MODES)}, against direct boto3")
    sink = start_sink()
    emulator = start_emulator(0.0)
    found: dict[str, Any] = {"latency": [], "instructions": []}
    try:
        facades = {
            mode: start_facade(emulator.address, LOG_LEVEL="INFO", environ=tracing_settings(mode, sink))
            for mode in TRACING_MODES
        }
        callers = {"direct": start_caller("direct", emulator.address)} | {
            mode: start_caller("facade", facade.address) for mode, facade in facades.items()
        }
        try:
            for op, records in TRACING_SCENARIOS:
                command = {"op": op, "records": records, "calls": plan.calls, "callers": 1}
                sides = {side: _empty() for side in callers}
                for caller in callers.values():
                    caller.send({**command, "calls": max(2, min(20, plan.calls // 10))})
                for _ in range(plan.rounds):
                    for side, caller in callers.items():
                        _measure(sides[side], caller, command, None)
                found["latency"].append({"name": name(op, records), "sides": sides})
        finally:
            for process in [*callers.values(), *facades.values()]:
                process.stop()
        if plan.instruction_calls:
            found["instructions"] = _tracing_instructions(plan, emulator, sink, progress)
    finally:
        for process in (emulator, sink):
            process.stop()
    found["spans_exported"] = sink.spans
    return found


def _tracing_instructions(
    plan: Plan, emulator: Process, sink: Process, progress: Callable[[str], None]
) -> list[dict[str, Any]]:
    progress("  instructions of each tracing mode, under callgrind (slow)")
    scratch = Path(tempfile.mkdtemp(prefix="bench-callgrind-tracing-"))
    facades = {
        mode: start_facade(
            emulator.address,
            callgrind_out=scratch / mode.replace("%", "pct"),
            LOG_LEVEL="INFO",
            environ=tracing_settings(mode, sink),
        )
        for mode in TRACING_MODES
    }
    clients = {mode: start_caller("facade", facade.address) for mode, facade in facades.items()}
    # Counted past the last call by two export periods, so that the spans' export is counted too.
    settle = 2 * TRACING_EXPORT_DELAY_MS / 1000
    found = []
    try:
        for op, records in TRACING_SCENARIOS:
            command = {"op": op, "records": records, "calls": plan.instruction_calls, "callers": 1}
            item: dict[str, Any] = {"name": name(op, records)}
            for mode, facade in facades.items():
                clients[mode].send({**command, "calls": 3})  # warm
                time.sleep(settle)

                def window(client: Caller = clients[mode], command: dict[str, Any] = command) -> None:
                    client.send(command)
                    time.sleep(settle)

                item[mode] = facade.instructions(window) / plan.instruction_calls
            found.append(item)
    finally:
        for process in [*clients.values(), *facades.values()]:
            process.stop()
    return found


def _rss_phase(plan: Plan, progress: Callable[[str], None]) -> dict[str, Any]:
    progress(f"RSS: {plan.soak_calls} calls at 16 callers (BatchUpdate 10 and Get)")
    emulator = start_emulator(0.0)
    facade = start_facade(emulator.address, LOG_LEVEL="INFO")
    client = start_caller("facade", facade.address)
    samples: list[tuple[int, int]] = []
    try:
        chunk = max(16, plan.soak_calls // 50)
        done = 0
        while done < plan.soak_calls:
            client.send({"op": "update", "records": 10, "calls": chunk // 2, "callers": 16})
            client.send({"op": "get", "calls": chunk - chunk // 2, "callers": 16})
            done += chunk
            samples.append((done, facade.rss_bytes()))
    finally:
        for process in (client, facade, emulator):
            process.stop()
    return {"samples": samples}
