"""`python -m bench` (`make bench`): the facade against direct boto3, side by side in one run.

Both call the same emulator, in processes of their own: latency and throughput interleaved round by
round (A B A B), instructions counted by callgrind in the facade's process and in the direct caller's,
CPU seconds and RSS read from /proc. Prints the ratio table with the targets of docs/performance.md and
whether each holds, and writes var/bench/results.json and var/bench/latency.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import report, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few calls of every phase (make test)")
    parser.add_argument("--rounds", type=int, default=3, help="A B rounds per scenario (default 3)")
    parser.add_argument("--calls", type=int, default=400, help="calls per round at one caller (default 400)")
    parser.add_argument(
        "--instruction-calls", type=int, default=30, help="calls counted under callgrind (default 30)"
    )
    parser.add_argument(
        "--soak-calls", type=int, default=100_000, help="calls of the RSS run (default 100000)"
    )
    parser.add_argument("--no-instructions", action="store_true", help="skip callgrind")
    parser.add_argument("--out", type=Path, default=run.ROOT / "var" / "bench", help="where results go")
    args = parser.parse_args(argv)
    plan = (
        run.Plan.smoke()
        if args.smoke
        else run.Plan(
            rounds=args.rounds,
            calls=args.calls,
            instruction_calls=0 if args.no_instructions else args.instruction_calls,
            soak_calls=args.soak_calls,
        )
    )
    results = run.run(plan, progress=lambda text: print(text, file=sys.stderr, flush=True))
    args.out.mkdir(parents=True, exist_ok=True)
    print(report.table(results))
    report.write_json(results, args.out / "results.json")
    drawn = report.draw(results, args.out / "latency.png")
    print(f"\nwrote {args.out / 'results.json'}" + (f" and {args.out / 'latency.png'}" if drawn else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
