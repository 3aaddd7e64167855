"""Run the emulator as a process: ``python -m emulator --port 8000 --db emulator.sqlite3``."""

from __future__ import annotations

import argparse
import logging
import signal
import sqlite3
import threading
from collections.abc import Sequence
from types import FrameType

from emulator.app import DEFAULT_MEMORY_ID, Emulator

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
    return parser.parse_args(argv)


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
        emulator = Emulator(memory_ids=memory_ids, db_path=args.db, host=args.host, port=args.port)
        emulator.start()
    except (ValueError, OSError, sqlite3.Error) as error:
        logger.error("cannot start: %s", error)
        return 2
    logger.info(
        "AgentCore memory emulator listening on %s (memory ids: %s)",
        emulator.endpoint_url,
        ", ".join(memory_ids),
    )
    try:
        stop_requested.wait()
    finally:
        emulator.stop()
        logger.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
