"""`python -m bench.instructions`: only the facade's instructions per call, under callgrind, quickly.

The instruction phase of `make bench` without the latency rounds, the direct caller or the RSS run:
for checking one change's cost (instruction counts repeat to a fraction of a percent on a busy
machine; latency does not). Prints one line per scenario: `BatchUpdate 1  4.12M`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.processes import start_caller, start_emulator, start_facade
from bench.run import name

SCENARIOS = {"update1": ("update", 1), "update100": ("update", 100), "get": ("get", 0)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30, help="calls counted per scenario (default 30)")
    parser.add_argument("scenarios", nargs="*", help=f"any of {' '.join(SCENARIOS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {' '.join(sorted(unknown))}")
    scratch = Path(tempfile.mkdtemp(prefix="bench-callgrind-"))
    emulator = start_emulator(0.0)
    facade = start_facade(emulator.address, callgrind_out=scratch / "facade", LOG_LEVEL="INFO")
    client = start_caller("facade", facade.address)
    try:
        for scenario in args.scenarios or SCENARIOS:
            op, records = SCENARIOS[scenario]
            command = {"op": op, "records": records, "calls": args.calls, "callers": 1}
            client.send({**command, "calls": 3})  # warm
            count = facade.instructions(lambda command=command: client.send(command))
            print(f"{name(op, records):<16} {count / args.calls / 1e6:.3f}M", flush=True)
    finally:
        for process in (client, facade, emulator):
            process.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
