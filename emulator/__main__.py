"""Run the emulator as a process: ``python -m emulator --port 8000 --db emulator.sqlite3``."""

from __future__ import annotations

import argparse
import logging
import signal
import sqlite3
import threading
from collections.abc import Sequence
from types import FrameType

from emulator.backend import DEFAULT_MEMORY_ID
from emulator.embedded import Emulator
from emulator.faults import FaultConfig

logger = logging.getLogger("emulator")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m emulator",
        description="Local emulator of the Amazon Bedrock AgentCore memory-records API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8000, help="port to bind, 0 for any (default: %(default)s)"
    )
    parser.add_argument(
        "--db", default=":memory:", help="SQLite database file; records survive restarts (default: in memory)"
    )
    parser.add_argument(
        "--memory-ids",
        default=DEFAULT_MEMORY_ID,
        help="comma-separated memory ids that exist (default: %(default)s)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    faults = parser.add_argument_group("fault injection")
    faults.add_argument(
        "--fault-error",
        action="append",
        default=[],
        metavar="CODE=PROBABILITY",
        help="answer this modelled AWS error with this probability, e.g. ServiceException=0.1 (repeatable)",
    )
    faults.add_argument(
        "--fault-rate-limit", type=float, metavar="PER_SECOND", help="throttle above this rate"
    )
    faults.add_argument(
        "--fault-throttle-first",
        type=int,
        default=0,
        metavar="COUNT",
        help="throttle exactly the first COUNT requests, then none",
    )
    faults.add_argument(
        "--fault-latency", type=float, default=0.0, metavar="SECONDS", help="delay every answer"
    )
    faults.add_argument(
        "--fault-drop-rate",
        type=float,
        default=0.0,
        metavar="PROBABILITY",
        help="drop connections unanswered",
    )
    faults.add_argument(
        "--fault-drop-reply-rate",
        type=float,
        default=0.0,
        metavar="PROBABILITY",
        help="apply requests, then drop their connections unanswered",
    )
    return parser.parse_args(argv)


def _fault_config(args: argparse.Namespace) -> FaultConfig:
    error_rates = {}
    for item in args.fault_error:
        code, separator, rate = item.partition("=")
        if not separator:
            raise ValueError(f"--fault-error {item!r}: expected CODE=PROBABILITY")
        error_rates[code.strip()] = float(rate)
    return FaultConfig(
        error_rates=error_rates,
        rate_limit_per_second=args.fault_rate_limit,
        throttle_first=args.fault_throttle_first,
        latency_seconds=args.fault_latency,
        drop_connection_rate=args.fault_drop_rate,
        drop_reply_rate=args.fault_drop_reply_rate,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    memory_ids = [memory_id.strip() for memory_id in args.memory_ids.split(",") if memory_id.strip()]

    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    try:
        emulator = Emulator(
            memory_ids=memory_ids, db_path=args.db, host=args.host, port=args.port, faults=_fault_config(args)
        )
        emulator.start()
    except (ValueError, OSError, sqlite3.Error) as error:
        logger.error("cannot start: %s", error)
        return 2
    logger.info(
        "AgentCore memory emulator listening on %s (memory ids: %s; faults: %s)",
        emulator.endpoint_url,
        ", ".join(memory_ids),
        emulator.faults.config.spec() or "none",
    )
    try:
        stop_requested.wait()
    finally:
        emulator.stop()
        logger.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
