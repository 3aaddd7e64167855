"""WORKERS > 1: a supervisor and the worker processes it starts, all serving one gRPC port.

Each worker is a fresh `python -m service` process (subprocess), not a fork: grpc must not exist before
a fork, and the supervisor runs threads (the emulator, /metrics) that a fork would copy half-way. A new
interpreter inherits none of that, and its exit status is plain to read. The workers bind the port with
SO_REUSEPORT, so the kernel spreads connections over them; before any starts, the supervisor binds the
port without SO_REUSEPORT (which fails if any other program holds it, sharing or not), then keeps it
reserved with a bound, non-listening socket that does share.

HEALTH_PORT, when set, is reserved and shared the same way: each worker answers health for itself there,
as on the gRPC port, so a probe learns what a connection to the pod would get (a dead worker's listener
is gone; a draining one says NOT_SERVING).

The supervisor serves /metrics (on METRICS_HOST, over HTTPS when METRICS_TLS_* are set), merged from the
workers' multiprocess files in a temporary directory of its own, with its own series: worker restarts,
its certificate's reloads, and each listener's certificate validity (the gRPC one read from the files
the workers serve, at each scrape). It runs the one emulator of the local backend, restarts a worker
that dies (with back-off), and on SIGTERM forwards it to every worker, each of which drains as serve()
does alone.

A worker reads its stdin until the end: the supervisor holds the other end, so a supervisor that dies,
even by SIGKILL, stops its workers too. A worker says it serves with one line on stdout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, multiprocess

from service import listening
from service.api.operations import SERVICE_NAME
from service.runtime.server import SharedServing, metrics_tls, security_fields, serve
from service.security import authz, tls
from service.settings import EXIT_CONFIGURATION_ERROR, Backend, Settings
from service.telemetry import stderr
from service.telemetry.metrics import exposition
from service.telemetry.metrics.security import ConfigMetrics
from service.telemetry.metrics.supervisor import WorkerRestarts
from service.upstream import aws

# In a worker's environment only: the supervisor's pid, and the emulator URL of the local backend.
WORKER_ENV = "AGENTCORE_WORKER_OF"
EMULATOR_URL_ENV = "AGENTCORE_WORKER_EMULATOR_URL"
READY_LINE = b"serving\n"

# Restart back-off per worker: doubles from the first delay up to the cap, and starts over once a worker
# has run for STABLE_SECONDS, so that a crash loop costs a process start every 30 s, not a spin.
FIRST_RESTART_DELAY_SECONDS = 0.25
MAX_RESTART_DELAY_SECONDS = 30.0
STABLE_SECONDS = 60.0
# How often the supervisor looks for dead workers; a restart waits this long at most beyond its delay.
POLL_SECONDS = 0.1
# On top of SHUTDOWN_DRAIN_SECONDS + SHUTDOWN_GRACE_SECONDS: time for a worker to close and exit.
EXIT_MARGIN_SECONDS = 5.0

log = logging.getLogger("service.runtime.workers")


# --- the worker side ---------------------------------------------------------------------------------


def worker_role(environ: Mapping[str, str]) -> SharedServing | None:
    """How this process serves, when a supervisor started it; None otherwise."""
    if WORKER_ENV not in environ:
        return None
    return SharedServing(emulator_url=environ.get(EMULATOR_URL_ENV) or None)


def run_worker(settings: Settings, shared: SharedServing) -> None:
    """serve() as one worker: stops on SIGTERM like a lone server, or when the supervisor is gone."""
    stop = threading.Event()

    def watch_supervisor() -> None:
        # os.read, not sys.stdin: a daemon thread must hold no buffer's lock when the interpreter exits.
        while os.read(sys.stdin.fileno(), 512):
            pass  # at end of file the supervisor has closed its end, or died
        stop.set()

    threading.Thread(target=watch_supervisor, name="supervisor-watch", daemon=True).start()

    def ready(grpc_port: int, metrics_port: int) -> None:
        sys.stdout.buffer.write(READY_LINE)
        sys.stdout.buffer.flush()

    serve(settings, stop=stop, on_serving=ready, shared=shared)


# --- the supervisor side ----------------------------------------------------------------------------


def reserve_port(host: str, port: int, *, what: str = "gRPC") -> socket.socket:
    """A socket bound to host:port (port 0: a free one) with SO_REUSEPORT, not listening: the workers
    can bind beside it, and a program that already holds the port (sharing it or not) is found. Raises
    OSError naming `what` and the address if it is taken."""
    failure: OSError | None = None
    for family, sockaddr in listening.addresses(host, port):
        try:
            # Without SO_REUSEPORT, so that a holder that shares ports is found too.
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.bind(sockaddr)
                bound = probe.getsockname()
            holder = socket.socket(family, socket.SOCK_STREAM)
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                holder.bind(bound)
            except OSError:
                holder.close()
                raise
            return holder
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(
                    f"cannot listen for {what} on {host}:{port}: another program holds the port"
                ) from exc
            failure = exc  # e.g. no IPv6 here: try the next address
    raise OSError(f"cannot listen for {what} on {host}:{port}: {failure}")


@dataclasses.dataclass
class Worker:
    """One worker slot: its current process, and how its restarts back off."""

    slot: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    ready: threading.Event = dataclasses.field(default_factory=threading.Event)
    restart_delay: float = FIRST_RESTART_DELAY_SECONDS
    restart_at: float | None = None  # when a dead worker is started again


class Supervisor:
    """Starts WORKERS processes, restarts the ones that die, and stops them all on request."""

    def __init__(self, settings: Settings, environment: dict[str, str], metrics_directory: str) -> None:
        self._settings = settings
        self._environment = environment
        self._metrics_directory = metrics_directory
        self.restarts = WorkerRestarts()
        self._workers = [Worker(slot) for slot in range(settings.workers)]
        # Once every worker has served: from then on a worker is restarted whatever it died of.
        self.served = False

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process is not None]

    def start(self) -> None:
        for worker in self._workers:
            self._spawn(worker)

    def all_ready(self) -> bool:
        return all(worker.ready.is_set() for worker in self._workers)

    def tend(self) -> int | None:
        """Notes the workers that died and starts again those whose delay has passed. An exit code for
        the supervisor when a worker reports its configuration wrong before the service first served,
        else None. Later (a certificate rotated into a broken file, which the running workers ignore
        while they keep the last good one), the others keep serving and that worker backs off."""
        now = time.monotonic()
        for worker in self._workers:
            process = worker.process
            if process is not None and process.poll() is not None:
                worker.process = None
                multiprocess.mark_process_dead(process.pid, self._metrics_directory)  # type: ignore[no-untyped-call]
                if process.returncode == EXIT_CONFIGURATION_ERROR:
                    log.error("worker found the configuration wrong", extra={"workerPid": process.pid})
                    if not self.served:
                        return EXIT_CONFIGURATION_ERROR
                if now - worker.started_at >= STABLE_SECONDS:
                    worker.restart_delay = FIRST_RESTART_DELAY_SECONDS
                worker.restart_at = now + worker.restart_delay
                log.warning(
                    "worker died",
                    extra={
                        "workerPid": process.pid,
                        "exitCode": process.returncode,  # negative: the signal that ended it
                        "restartInSeconds": worker.restart_delay,
                    },
                )
                worker.restart_delay = min(2 * worker.restart_delay, MAX_RESTART_DELAY_SECONDS)
            elif worker.restart_at is not None and now >= worker.restart_at:
                worker.restart_at = None
                self.restarts.inc()
                self._spawn(worker)
        return None

    def stop(self) -> int:
        """SIGTERM to every worker, each drains; 0 once all exited cleanly within the drain and grace
        time, else 1 (those still running are killed)."""
        running = [w.process for w in self._workers if w.process is not None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        settings = self._settings
        deadline = (
            time.monotonic()
            + settings.shutdown_drain_seconds
            + settings.shutdown_grace_seconds
            + EXIT_MARGIN_SECONDS
        )
        clean = True
        for process in running:
            try:
                code = process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker did not stop in time; killed", extra={"workerPid": process.pid})
                self._kill(process)
                clean = False
                continue
            # -SIGTERM: a worker still starting, before it could handle the signal, had nothing in flight.
            if code not in (0, -signal.SIGTERM):
                log.error("worker stopped with an error", extra={"workerPid": process.pid, "exitCode": code})
                clean = False
        return 0 if clean else 1

    def kill_all(self) -> None:
        """Whatever still runs, at once (the supervisor is leaving on an error)."""
        for worker in self._workers:
            if worker.process is not None and worker.process.poll() is None:
                self._kill(worker.process)

    @staticmethod
    def _kill(process: subprocess.Popen[bytes]) -> None:
        process.kill()
        process.wait(timeout=10)

    def _spawn(self, worker: Worker) -> None:
        process = subprocess.Popen(
            [sys.executable, "-m", "service"],
            env=self._environment,
            stdin=subprocess.PIPE,  # never written: its end of file tells the worker we are gone
            stdout=subprocess.PIPE,
            stderr=stderr.original_fd(),  # its JSON lines bypass our pipe: each is written whole
        )
        worker.process, worker.started_at, worker.ready = process, time.monotonic(), threading.Event()
        threading.Thread(
            target=_watch_ready, args=(process, worker.ready), name=f"worker-{worker.slot}", daemon=True
        ).start()


def _watch_ready(process: subprocess.Popen[bytes], ready: threading.Event) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        if line == READY_LINE:
            ready.set()


def worker_environment(
    environ: Mapping[str, str],
    *,
    grpc_port: int,
    metrics_directory: str,
    emulator_url: str | None,
    health_port: int | None = None,
) -> dict[str, str]:
    """A worker's environment: the supervisor's, plus the ports it reserved, the multiprocess metrics
    directory and, in local mode, the emulator's URL."""
    environment = dict(environ)
    environment.update(
        {
            WORKER_ENV: str(os.getpid()),
            "GRPC_PORT": str(grpc_port),
            exposition.MULTIPROCESS_ENV: metrics_directory,
        }
    )
    if emulator_url is not None:
        environment[EMULATOR_URL_ENV] = emulator_url
    if health_port is not None:
        environment["HEALTH_PORT"] = str(health_port)
    return environment


def watch_grpc_certificate(settings: Settings, config: ConfigMetrics) -> None:
    """Report the validity of the certificate the workers serve on the gRPC port, from the same files,
    re-read at each scrape when they changed: what the workers' next handshakes present. The workers
    count the reloads; this reads quietly. TlsError, at start, when the files do not load."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return
    pair = tls.WatchedPair(
        settings.tls_cert_file,
        settings.tls_key_file,
        settings.tls_client_ca_file,
        listener="grpc",
        quiet=True,
    )

    def validity() -> tuple[float, float]:
        pair.refresh()
        return pair.validity()

    config.watch_certificate("grpc", validity)


@contextlib.contextmanager
def metrics_directory() -> Iterator[str]:
    """An empty directory for the workers' metric files, in TMPDIR (or /tmp): writable even when the
    root filesystem is not. Removed on the way out."""
    directory = tempfile.mkdtemp(prefix="agentcore-metrics-")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def supervise(settings: Settings, *, stop: threading.Event | None = None) -> int:
    """Run `settings.workers` workers until SIGTERM or SIGINT (or `stop`); the process's exit code."""
    stop = stop or threading.Event()
    with contextlib.ExitStack() as resources:
        directory = resources.enter_context(metrics_directory())
        emulator_url = None
        local_fields: dict[str, object] = {}
        if settings.backend is Backend.LOCAL:
            from service.runtime import local  # the emulator is loaded in local mode only

            local_fields = local.start_fields(settings)
            emulator_url = resources.enter_context(local.emulator(settings)).endpoint_url
        # A configuration error shows here once, rather than from every worker in a restart loop.
        aws.create_client(settings, endpoint_url=emulator_url)
        if settings.authz_policy_file is not None:
            authz.PolicyFile(settings.authz_policy_file)
        own = CollectorRegistry()
        config = ConfigMetrics(own)
        watch_grpc_certificate(settings, config)
        served_tls = metrics_tls(settings, config)
        holder = resources.enter_context(reserve_port(settings.grpc_host, settings.grpc_port))
        grpc_port: int = holder.getsockname()[1]
        health_port = None
        if settings.health_port is not None:
            health_holder = resources.enter_context(
                reserve_port(settings.grpc_host, settings.health_port, what="health")
            )
            health_port = health_holder.getsockname()[1]
        supervisor = Supervisor(
            settings,
            worker_environment(
                os.environ,
                grpc_port=grpc_port,
                metrics_directory=directory,
                emulator_url=emulator_url,
                health_port=health_port,
            ),
            directory,
        )
        own.register(supervisor.restarts)
        metrics_port, stop_metrics = exposition.start_http_server(
            exposition.merged_registry(directory, own),
            settings.metrics_listen_host,
            settings.metrics_port,
            tls=served_tls,
        )
        resources.callback(stop_metrics)
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
        resources.callback(supervisor.kill_all)
        supervisor.start()
        while not stop.wait(POLL_SECONDS):
            failed = supervisor.tend()
            if failed is not None:
                return failed
            if not supervisor.served and supervisor.all_ready():
                supervisor.served = True
                log.info(
                    f"serving {SERVICE_NAME}",
                    extra={
                        "grpcPort": grpc_port,
                        "metricsPort": metrics_port,
                        **({"healthPort": health_port} if health_port is not None else {}),
                        **security_fields(settings),
                        "backend": settings.backend.value,
                        "workers": settings.workers,
                        "workerPids": supervisor.pids,
                        **local_fields,
                    },
                )
        log.info("shutting down", extra={"graceSeconds": settings.shutdown_grace_seconds})
        code = supervisor.stop()
        log.info("stopped", extra={"exitCode": code})
        return code
