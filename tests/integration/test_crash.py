"""kill -9 of `python -m service` during updates, then a restart on the same `LOCAL_DB_PATH`.

Clients update their own records one RPC at a time and note what was acknowledged; the server is
killed with SIGKILL while they still send. The restarted server must show every acknowledged update
(or a later one whose RPC the kill left unanswered), and SQLite must find its file intact.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc

from tests.helpers import MEMORY_ID, record_create, service_process, update_request
from tests.integration.helpers import Ledger

CLIENTS = 2
RECORDS_PER_CLIENT = 4
# The kill comes once this many update RPCs were acknowledged in all, while the clients still send.
ACKNOWLEDGED_BEFORE_KILL = 40
MAX_UPDATES_PER_CLIENT = 10_000
TRAFFIC_TIMEOUT_SECONDS = 60.0
RPC_TIMEOUT_SECONDS = 30.0


@dataclasses.dataclass
class Served:
    process: subprocess.Popen[str]
    grpc_port: int
    log_tail: collections.deque[str]  # the last lines on stderr, for a failure's message


@contextlib.contextmanager
def serving(db_path: Path) -> Iterator[Served]:
    """`python -m service` in local mode on `db_path`, killed on the way out if still running."""
    log_tail: collections.deque[str] = collections.deque(maxlen=20)
    variables = {"AGENTCORE_BACKEND": "local", "LOCAL_DB_PATH": str(db_path), "SHUTDOWN_GRACE_SECONDS": "2"}
    with service_process(log_tail=log_tail, **variables) as (process, start):
        yield Served(process, int(str(start["grpcPort"])), log_tail)


class Progress:
    """Acknowledged update RPCs across clients; `enough` is set at ACKNOWLEDGED_BEFORE_KILL."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.acknowledged = 0
        self.enough = threading.Event()

    def acknowledge(self) -> None:
        with self._lock:
            self.acknowledged += 1
            if self.acknowledged >= ACKNOWLEDGED_BEFORE_KILL:
                self.enough.set()


def test_acknowledged_updates_survive_kill_9_and_the_database_stays_intact(tmp_path: Path) -> None:
    """After SIGKILL in the middle of updates and a restart on the same file, every record holds its
    last acknowledged content or a later one left unanswered, and PRAGMA integrity_check says ok."""
    db_path = tmp_path / "records.sqlite3"
    # The pool is left after the server: should an assertion fail, the kill ends the clients' traffic.
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool, serving(db_path) as served:
        with grpc.insecure_channel(f"127.0.0.1:{served.grpc_port}") as channel:
            ledgers = create_records(pb_grpc.MemoryRecordsServiceStub(channel))
        progress = Progress()
        clients = [
            pool.submit(update_until_killed, served.grpc_port, client, ledgers[client], progress)
            for client in range(CLIENTS)
        ]
        assert progress.enough.wait(TRAFFIC_TIMEOUT_SECONDS), (progress.acknowledged, list(served.log_tail))
        os.kill(served.process.pid, signal.SIGKILL)
        assert served.process.wait(timeout=10) == -signal.SIGKILL
        endings = [future.result(timeout=TRAFFIC_TIMEOUT_SECONDS) for future in clients]
    # Every client was still sending when the server died: its last RPC failed for that reason.
    assert endings == [grpc.StatusCode.UNAVAILABLE] * CLIENTS

    with serving(db_path) as restarted:
        with grpc.insecure_channel(f"127.0.0.1:{restarted.grpc_port}") as channel:
            stub = pb_grpc.MemoryRecordsServiceStub(channel)
            for client_ledgers in ledgers:
                for record_id, ledger in client_ledgers.items():
                    got = stub.Get(
                        pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=record_id),
                        timeout=RPC_TIMEOUT_SECONDS,
                    )
                    assert got.memory_record.content.text in ledger.allowed(), (record_id, ledger)
        restarted.process.send_signal(signal.SIGTERM)
        assert restarted.process.wait(timeout=30) == 0, list(restarted.log_tail)

    with contextlib.closing(sqlite3.connect(db_path)) as database:
        assert database.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        (stored,) = database.execute("SELECT count(*) FROM memory_records").fetchone()
    assert stored == CLIENTS * RECORDS_PER_CLIENT


def create_records(stub: pb_grpc.MemoryRecordsServiceStub) -> list[dict[str, Ledger]]:
    """RECORDS_PER_CLIENT records for each client, with their ledgers."""
    ledgers: list[dict[str, Ledger]] = []
    for client in range(CLIENTS):
        texts = {
            f"c{client}-r{index}": f"client {client} record {index} created"
            for index in range(RECORDS_PER_CLIENT)
        }
        created = stub.BatchCreate(
            pb.BatchCreateRequest(
                memory_id=MEMORY_ID,
                records=[record_create(text, request_identifier=key) for key, text in texts.items()],
            ),
            timeout=RPC_TIMEOUT_SECONDS,
        )
        assert list(created.failed_records) == []
        ledgers.append(
            {
                result.memory_record_id: Ledger(texts[result.request_identifier])
                for result in created.successful_records
            }
        )
        assert len(ledgers[-1]) == RECORDS_PER_CLIENT
    return ledgers


def update_until_killed(
    port: int, client: int, ledgers: dict[str, Ledger], progress: Progress
) -> grpc.StatusCode | None:
    """Update one to all of this client's records per RPC, one RPC at a time, until an RPC fails
    (the server died) or the count or time bound is reached; note each outcome in the ledgers.
    Returns the failed RPC's code (None if a bound was reached first)."""
    dice = random.Random(client)
    record_ids = sorted(ledgers)
    deadline = time.monotonic() + TRAFFIC_TIMEOUT_SECONDS
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.MemoryRecordsServiceStub(channel)
        for sequence in range(MAX_UPDATES_PER_CLIENT):
            if time.monotonic() > deadline:
                return None
            chosen = dice.sample(record_ids, dice.randint(1, len(record_ids)))
            contents = {
                record_id: f"client {client} record {record_id} update {sequence}" for record_id in chosen
            }
            request = update_request(contents)
            try:
                response = stub.BatchUpdate(request, timeout=RPC_TIMEOUT_SECONDS)
            except grpc.RpcError as error:
                for record_id, text in contents.items():
                    ledgers[record_id].uncertain.append(text)
                code: grpc.StatusCode = error.code()
                return code
            assert list(response.failed_records) == [], response
            assert {result.memory_record_id for result in response.successful_records} == set(contents)
            for record_id, text in contents.items():
                ledgers[record_id].acknowledged = text
                ledgers[record_id].uncertain.clear()
            progress.acknowledge()
    return None
