"""workers.py's decisions without worker processes: the restart back-off, when a dead worker ends the start,
how stopping judges each worker's exit, the worker's environment and role, the port reservation, readiness."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from service.runtime import workers
from service.runtime.server import SharedServing
from service.security import tls
from service.settings import EXIT_CONFIGURATION_ERROR, Settings
from service.telemetry.metrics import exposition
from service.telemetry.metrics.security import ConfigMetrics
from tests.certs import Authority

# --- the supervisor's decisions, with stand-ins for processes and the clock ------------------------


# How far the clock moves between two looks for dead workers: less than POLL_SECONDS, and a power of two
# so that the delays (0.25 s, 0.5 s ... 30 s) add up exactly.
STEP_SECONDS = 1 / 32


class Clock:
    """time.monotonic() as the supervisor reads it, moved by the test."""

    def __init__(self) -> None:
        self.now = 1024.0

    def monotonic(self) -> float:
        return self.now


class Process:
    """The little of subprocess.Popen the supervisor uses: alive until `exit(code)`; `wait` answers the
    code it is given (None: still running at the timeout)."""

    _pids = iter(range(40_000, 50_000))

    def __init__(self, *, stops_with: int | None = 0) -> None:
        self.pid = next(self._pids)
        self.returncode: int | None = None
        self.signals: list[int] = []
        self.killed = False
        self._stops_with = stops_with

    def exit(self, code: int) -> None:
        self.returncode = code

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, signum: int) -> None:
        self.signals.append(signum)

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is not None:
            return self.returncode
        if self.killed:
            self.returncode = -signal.SIGKILL
            return self.returncode
        if self._stops_with is None:
            raise subprocess.TimeoutExpired("python -m service", timeout or 0)
        self.returncode = self._stops_with
        return self.returncode

    def kill(self) -> None:
        self.killed = True


class Supervisor(workers.Supervisor):
    """The real supervisor, starting stand-in processes instead of `python -m service`."""

    def __init__(self, settings: Settings, metrics_directory: str, clock: Clock) -> None:
        super().__init__(settings, {}, metrics_directory)
        self.clock = clock
        self.spawned: list[tuple[int, Process]] = []  # (slot, process), in order

    def _spawn(self, worker: workers.Worker) -> None:
        process = Process()
        worker.process, worker.started_at = process, self.clock.monotonic()  # type: ignore[assignment]
        self.spawned.append((worker.slot, process))

    def current(self, slot: int) -> Process:
        return [process for spawned_slot, process in self.spawned if spawned_slot == slot][-1]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(workers, "time", clock)  # the module's clock only
    return clock


def started(tmp_path: Path, clock: Clock, count: int = 2, **settings: Any) -> Supervisor:
    supervisor = Supervisor(Settings(workers=count, **settings), str(tmp_path), clock)
    supervisor.start()
    return supervisor


def restart_counter(supervisor: workers.Supervisor) -> float:
    registry = CollectorRegistry()
    registry.register(supervisor.restarts)
    return registry.get_sample_value("agentcore_worker_restarts_total") or 0.0


def delay_before_restart(supervisor: Supervisor, clock: Clock, slot: int = 0) -> float:
    """Kill the worker in `slot` now and tend until it is started again: how long that took. Raises
    when no restart comes within MAX_RESTART_DELAY_SECONDS and a poll."""
    before = len(supervisor.spawned)
    supervisor.current(slot).exit(1)
    died_at = clock.now
    assert supervisor.tend() is None
    for _ in range(int((workers.MAX_RESTART_DELAY_SECONDS + 1) / STEP_SECONDS)):
        if len(supervisor.spawned) > before:
            return clock.now - died_at
        clock.now += STEP_SECONDS
        assert supervisor.tend() is None
    raise AssertionError("the dead worker was never started again")


def test_every_slot_gets_a_worker_at_start(tmp_path: Path, clock: Clock) -> None:
    supervisor = started(tmp_path, clock, count=3)
    assert [slot for slot, _ in supervisor.spawned] == [0, 1, 2]
    assert supervisor.pids == [process.pid for _, process in supervisor.spawned]


def test_a_dead_worker_is_started_again_only_once_its_delay_has_passed(tmp_path: Path, clock: Clock) -> None:
    supervisor = started(tmp_path, clock)
    supervisor.current(0).exit(-signal.SIGKILL)
    assert supervisor.tend() is None
    assert len(supervisor.spawned) == 2 and supervisor.pids == [supervisor.current(1).pid]
    clock.now += workers.FIRST_RESTART_DELAY_SECONDS / 2
    assert supervisor.tend() is None
    assert len(supervisor.spawned) == 2
    clock.now += workers.FIRST_RESTART_DELAY_SECONDS / 2
    assert supervisor.tend() is None
    assert [slot for slot, _ in supervisor.spawned] == [0, 1, 0]
    assert restart_counter(supervisor) == 1


def test_a_worker_that_keeps_crashing_waits_twice_as_long_each_time_up_to_the_cap(
    tmp_path: Path, clock: Clock
) -> None:
    supervisor = started(tmp_path, clock)
    delays = [delay_before_restart(supervisor, clock) for _ in range(10)]
    assert delays == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert restart_counter(supervisor) == 10


def test_a_worker_that_ran_stably_before_dying_is_restarted_after_the_first_delay_again(
    tmp_path: Path, clock: Clock
) -> None:
    supervisor = started(tmp_path, clock)
    assert [delay_before_restart(supervisor, clock) for _ in range(4)] == [0.25, 0.5, 1.0, 2.0]
    clock.now += workers.STABLE_SECONDS
    assert delay_before_restart(supervisor, clock) == workers.FIRST_RESTART_DELAY_SECONDS


def test_a_worker_that_dies_just_short_of_stable_keeps_backing_off(tmp_path: Path, clock: Clock) -> None:
    supervisor = started(tmp_path, clock)
    assert [delay_before_restart(supervisor, clock) for _ in range(2)] == [0.25, 0.5]
    clock.now += workers.STABLE_SECONDS - 1
    assert delay_before_restart(supervisor, clock) == 1.0


def test_each_slot_backs_off_on_its_own(tmp_path: Path, clock: Clock) -> None:
    supervisor = started(tmp_path, clock)
    assert [delay_before_restart(supervisor, clock, slot=0) for _ in range(3)] == [0.25, 0.5, 1.0]
    assert delay_before_restart(supervisor, clock, slot=1) == workers.FIRST_RESTART_DELAY_SECONDS


def test_a_worker_that_fails_before_the_service_served_for_another_reason_is_restarted(
    tmp_path: Path, clock: Clock
) -> None:
    # Only a configuration error ends the start; a crash (exit 1) is restarted as later.
    supervisor = started(tmp_path, clock)
    assert not supervisor.served
    assert delay_before_restart(supervisor, clock) == workers.FIRST_RESTART_DELAY_SECONDS


def test_a_configuration_error_before_the_service_served_ends_the_start(tmp_path: Path, clock: Clock) -> None:
    supervisor = started(tmp_path, clock)
    supervisor.current(1).exit(EXIT_CONFIGURATION_ERROR)
    assert supervisor.tend() == EXIT_CONFIGURATION_ERROR


def test_a_configuration_error_after_the_service_served_is_restarted_with_back_off(
    tmp_path: Path, clock: Clock
) -> None:
    supervisor = started(tmp_path, clock)
    supervisor.served = True
    supervisor.current(0).exit(EXIT_CONFIGURATION_ERROR)
    assert supervisor.tend() is None
    clock.now += workers.FIRST_RESTART_DELAY_SECONDS
    assert supervisor.tend() is None
    assert [slot for slot, _ in supervisor.spawned] == [0, 1, 0]


def test_the_supervisor_is_ready_once_every_current_worker_said_so(tmp_path: Path, clock: Clock) -> None:
    supervisor = started(tmp_path, clock)
    assert not supervisor.all_ready()
    supervisor._workers[0].ready.set()
    assert not supervisor.all_ready()
    supervisor._workers[1].ready.set()
    assert supervisor.all_ready()


# --- stopping ---------------------------------------------------------------------------------------


def stopping(tmp_path: Path, clock: Clock, *processes: Process) -> Supervisor:
    supervisor = Supervisor(Settings(workers=len(processes), shutdown_grace_seconds=0), str(tmp_path), clock)
    for worker, process in zip(supervisor._workers, processes, strict=True):
        worker.process = process  # type: ignore[assignment]
    return supervisor


@pytest.mark.parametrize("code", [0, -signal.SIGTERM], ids=["exit 0", "SIGTERM before its handler"])
def test_stopping_workers_that_exit_cleanly_is_a_clean_stop(tmp_path: Path, clock: Clock, code: int) -> None:
    processes = [Process(stops_with=code), Process(stops_with=0)]
    assert stopping(tmp_path, clock, *processes).stop() == 0
    assert [process.signals for process in processes] == [[signal.SIGTERM], [signal.SIGTERM]]
    assert not any(process.killed for process in processes)


@pytest.mark.parametrize("code", [1, -signal.SIGKILL, EXIT_CONFIGURATION_ERROR])
def test_a_worker_stopping_with_an_error_makes_the_stop_fail(tmp_path: Path, clock: Clock, code: int) -> None:
    assert stopping(tmp_path, clock, Process(stops_with=0), Process(stops_with=code)).stop() == 1


def test_a_worker_that_does_not_stop_in_time_is_killed_and_the_stop_fails(
    tmp_path: Path, clock: Clock
) -> None:
    stuck, clean = Process(stops_with=None), Process(stops_with=0)
    assert stopping(tmp_path, clock, stuck, clean).stop() == 1
    assert stuck.killed and not clean.killed
    assert clean.signals == [signal.SIGTERM]  # the others were told and waited for all the same


def test_a_slot_waiting_for_its_restart_is_not_signalled(tmp_path: Path, clock: Clock) -> None:
    alive = Process(stops_with=0)
    supervisor = stopping(tmp_path, clock, alive, Process())
    supervisor._workers[1].process = None  # dead, its restart pending
    assert supervisor.stop() == 0
    assert alive.signals == [signal.SIGTERM]


def test_leaving_on_an_error_kills_only_the_workers_still_running(tmp_path: Path, clock: Clock) -> None:
    running, exited = Process(), Process()
    exited.exit(1)
    stopping(tmp_path, clock, running, exited).kill_all()
    assert running.killed and not exited.killed


# --- the worker's side: its environment and role ----------------------------------------------------

SUPERVISOR_ENVIRON = {"PATH": "/usr/bin", "WORKERS": "4", "GRPC_PORT": "0", "HEALTH_PORT": "0"}


def test_a_worker_gets_the_supervisors_environment_and_the_ports_it_reserved() -> None:
    environ = dict(SUPERVISOR_ENVIRON)
    environment = workers.worker_environment(
        environ,
        grpc_port=50123,
        metrics_directory="/tmp/m",
        emulator_url="http://127.0.0.1:8123",
        health_port=8081,
    )
    assert environ == SUPERVISOR_ENVIRON  # the supervisor's own is left as it was
    assert environment == {
        **SUPERVISOR_ENVIRON,
        workers.WORKER_ENV: str(os.getpid()),
        "GRPC_PORT": "50123",
        "HEALTH_PORT": "8081",
        exposition.MULTIPROCESS_ENV: "/tmp/m",
        workers.EMULATOR_URL_ENV: "http://127.0.0.1:8123",
    }


def test_a_worker_against_aws_gets_no_emulator_url() -> None:
    environment = workers.worker_environment(
        {"PATH": "/usr/bin"}, grpc_port=50123, metrics_directory="/tmp/m", emulator_url=None
    )
    assert workers.EMULATOR_URL_ENV not in environment and "HEALTH_PORT" not in environment
    assert workers.worker_role(environment) == SharedServing(emulator_url=None)


def test_a_worker_knows_its_role_and_its_supervisors_emulator_from_its_environment() -> None:
    environment = workers.worker_environment(
        {}, grpc_port=1, metrics_directory="/tmp/m", emulator_url="http://127.0.0.1:8123"
    )
    assert workers.worker_role(environment) == SharedServing(emulator_url="http://127.0.0.1:8123")


def test_a_process_no_supervisor_started_is_no_worker() -> None:
    assert workers.worker_role({"WORKERS": "4", workers.EMULATOR_URL_ENV: "http://127.0.0.1:1"}) is None


def test_an_empty_emulator_url_means_none() -> None:
    assert workers.worker_role({workers.WORKER_ENV: "1", workers.EMULATOR_URL_ENV: ""}) == SharedServing(None)


# --- the port reservation ---------------------------------------------------------------------------


def test_a_reserved_port_is_held_without_listening_and_workers_can_bind_beside_it() -> None:
    with workers.reserve_port("127.0.0.1", 0) as holder:
        host, port = holder.getsockname()
        assert host == "127.0.0.1" and port > 0
        assert holder.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0
        with socket.socket() as worker:  # as a worker's grpc server binds it
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            worker.bind(("127.0.0.1", port))
            worker.listen()
        with socket.socket() as stranger, pytest.raises(OSError):  # a program that does not share
            stranger.bind(("127.0.0.1", port))


@pytest.mark.parametrize("shares", [False, True], ids=["not sharing", "sharing"])
def test_a_port_another_program_holds_is_refused_naming_the_listener(shares: bool) -> None:
    with socket.socket() as other:
        if shares:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(OSError) as refused:
            workers.reserve_port("127.0.0.1", port, what="health")
    assert (
        str(refused.value) == f"cannot listen for health on 127.0.0.1:{port}: another program holds the port"
    )


def test_an_address_this_host_does_not_have_is_refused_with_the_systems_reason() -> None:
    with pytest.raises(OSError, match=r"^cannot listen for gRPC on 192\.0\.2\.1:0: .*ssign"):
        workers.reserve_port("192.0.2.1", 0)  # TEST-NET-1: never a local address


# --- readiness, the metrics directory, the certificate watch ----------------------------------------


class Started:
    def __init__(self, output: bytes) -> None:
        self.stdout = io.BytesIO(output)


@pytest.mark.parametrize(
    ("output", "ready"),
    [
        (b"serving\n", True),
        (b"warming up\nserving\n", True),
        (b"", False),
        (b"serving", False),  # cut short: the worker died before ending its line
        (b"not serving\nserving yet\n", False),
    ],
)
def test_a_worker_is_ready_when_it_says_the_ready_line_whole(output: bytes, ready: bool) -> None:
    event = threading.Event()
    workers._watch_ready(Started(output), event)  # type: ignore[arg-type]
    assert event.is_set() is ready


def test_the_metrics_directory_is_fresh_under_tmpdir_and_removed_with_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with workers.metrics_directory() as directory:
        made = Path(directory)
        assert made.parent == tmp_path and made.name.startswith("agentcore-metrics-")
        assert list(made.iterdir()) == []
        (made / "counter_123.db").write_bytes(b"x")
    assert not made.exists()


def test_the_metrics_directory_is_removed_when_the_supervisor_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(RuntimeError), workers.metrics_directory():
        raise RuntimeError("the start failed")
    assert list(tmp_path.iterdir()) == []


def certificate_series(config_registry: CollectorRegistry) -> float | None:
    return config_registry.get_sample_value(
        "agentcore_tls_certificate_lifetime_seconds", {"listener": "grpc"}
    )


def test_without_tls_no_grpc_certificate_is_watched() -> None:
    registry = CollectorRegistry()
    workers.watch_grpc_certificate(Settings(), ConfigMetrics(registry))
    assert certificate_series(registry) is None


def test_the_grpc_certificate_the_workers_serve_is_reported(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    Authority().issue(server=True, days=3).write(cert, key)
    registry = CollectorRegistry()
    workers.watch_grpc_certificate(
        Settings(tls_cert_file=str(cert), tls_key_file=str(key)), ConfigMetrics(registry)
    )
    assert certificate_series(registry) == 3 * 86400 + 3600  # issued an hour ago, for 3 days


def test_grpc_certificate_files_that_do_not_load_fail_the_start(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("not a certificate")
    key.write_text("not a key")
    with pytest.raises(tls.TlsError):
        workers.watch_grpc_certificate(
            Settings(tls_cert_file=str(cert), tls_key_file=str(key)), ConfigMetrics(CollectorRegistry())
        )
