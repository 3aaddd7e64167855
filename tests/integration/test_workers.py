"""WORKERS > 1 with real processes on loopback: `python -m service` as a supervisor of worker processes.

Which worker answered an RPC is read off its access-log line, which carries the pid of the process that
wrote it. Each RPC below uses a channel of its own with a local subchannel pool (a new TCP connection),
so the kernel's SO_REUSEPORT hashing spreads them over the workers.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from bench.otlp_sink import receiving
from service.api.operations import SERVICE_NAME
from service.runtime import workers
from service.settings import EXIT_CONFIGURATION_ERROR, Settings
from service.telemetry import tracing
from tests.certs import SERVER_NAME, Authority, channel_credentials
from tests.helpers import MEMORY_ID, ROOT, UNKNOWN_RECORD_ID, record_create, service_env

WORKERS = 2
# With this many connections, the chance that one worker gets them all is 2 x 2^-24.
CONNECTIONS = 24
WAIT_SECONDS = 30.0
RPC_TIMEOUT_SECONDS = 20.0


@dataclasses.dataclass
class Supervised:
    process: subprocess.Popen[str]
    grpc_port: int
    metrics_port: int
    worker_pids: set[int]
    lines: list[dict[str, Any]]  # every JSON log line so far, from the supervisor and its workers
    start: dict[str, Any]  # the supervisor's "serving" line
    # With TLS: what channels present on the gRPC port, and what trusts /metrics' certificate.
    credentials: grpc.ChannelCredentials | None = None
    metrics_tls: ssl.SSLContext | None = None

    def logged(self, message: str) -> list[dict[str, Any]]:
        return [line for line in list(self.lines) if line.get("message") == message]

    def metrics(self) -> str:
        scheme = "http" if self.metrics_tls is None else "https"
        url = f"{scheme}://127.0.0.1:{self.metrics_port}/metrics"  # the certificate names 127.0.0.1
        with urllib.request.urlopen(url, timeout=5, context=self.metrics_tls) as answer:
            body: bytes = answer.read()
            return body.decode()

    @contextlib.contextmanager
    def channel(self, credentials: grpc.ChannelCredentials | None = None) -> Iterator[grpc.Channel]:
        """A channel with a connection of its own, so the kernel picks its worker."""
        options = [("grpc.use_local_subchannel_pool", 1)]
        target = f"127.0.0.1:{self.grpc_port}"
        credentials = credentials or self.credentials
        if credentials is None:
            opened = grpc.insecure_channel(target, options=options)
        else:
            options.append(("grpc.ssl_target_name_override", SERVER_NAME))
            opened = grpc.secure_channel(target, credentials, options=options)
        with opened as channel:
            yield channel


def _collect(stream: IO[str], lines: list[dict[str, Any]]) -> None:
    for raw in stream:
        try:
            lines.append(json.loads(raw))
        except ValueError:
            lines.append({"message": raw.rstrip("\n")})


def eventually(probe: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while not (answer := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return answer


@contextlib.contextmanager
def supervised(tmp_path: Path, **variables: str) -> Iterator[Supervised]:
    """`python -m service` with WORKERS workers, local backend, TMPDIR in `tmp_path`; killed at the end
    if still running."""
    env = service_env(
        **{
            "WORKERS": str(WORKERS),
            "AGENTCORE_BACKEND": "local",
            "LOG_LEVEL": "INFO",
            "TMPDIR": str(tmp_path),
            **variables,
        }
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "service"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    lines: list[dict[str, Any]] = []
    threading.Thread(target=_collect, args=(process.stderr, lines), daemon=True).start()
    try:
        start = eventually(
            lambda: next((x for x in list(lines) if x.get("message") == f"serving {SERVICE_NAME}"), None),
            f"the supervisor's start line; log: {lines[-20:]}",
        )
        served = Supervised(
            process, start["grpcPort"], start["metricsPort"], set(start["workerPids"]), lines, start
        )
        assert len(served.worker_pids) == WORKERS
        assert start["pid"] == process.pid not in served.worker_pids
        assert {line["pid"] for line in served.logged("worker serving")} == served.worker_pids
        # The workers write on our pipe itself, not through the supervisor's capture of its fd 2.
        ours, supervisors = os.fstat(process.stderr.fileno()).st_ino, _pipe_of_fd_2(process.pid)
        for pid in served.worker_pids:
            held = {os.stat(path).st_ino for path in Path(f"/proc/{pid}/fd").iterdir()}
            assert ours in held and supervisors not in held
        yield served
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def _pipe_of_fd_2(pid: int) -> int:
    """The inode of what `pid` has as fd 2: the pipe of its capture (service/telemetry/stderr.py)."""
    return os.stat(f"/proc/{pid}/fd/2").st_ino


def sample(exposition: str, name: str, **labels: str) -> float:
    """The one sample `name` with `labels` (among others) in an exposition."""
    [value] = [
        s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    ]
    return value


def handled(exposition: str, method: str, code: str = "OK") -> float:
    return sample(
        exposition, "grpc_server_handled_total", grpc_service=SERVICE_NAME, grpc_method=method, grpc_code=code
    )


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its parent counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def get_on_a_new_connection(served: Supervised, record_id: str) -> pb.GetResponse:
    with served.channel() as channel:
        reply: pb.GetResponse = pb_grpc.MemoryRecordsServiceStub(channel).Get(
            pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=record_id), timeout=RPC_TIMEOUT_SECONDS
        )
        return reply


def create_one(served: Supervised, text: str) -> str:
    with served.channel() as channel:
        reply = pb_grpc.MemoryRecordsServiceStub(channel).BatchCreate(
            pb.BatchCreateRequest(memory_id=MEMORY_ID, records=[record_create(text)]),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    [created] = reply.successful_records
    return created.memory_record_id


def metrics_directories(tmp_path: Path) -> list[Path]:
    return sorted(tmp_path.glob("agentcore-metrics-*"))


# --- tests ------------------------------------------------------------------------------------------


def test_every_worker_answers_reads_what_another_wrote_and_metrics_add_up(tmp_path: Path) -> None:
    with supervised(tmp_path) as served:
        record_id = create_one(served, "written through one connection")
        for _ in range(CONNECTIONS):
            reply = get_on_a_new_connection(served, record_id)
            assert reply.memory_record.content.text == "written through one connection"
        for _ in range(4):
            with served.channel() as channel:
                health = health_pb2_grpc.HealthStub(channel)
                status = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5).status
                assert status == health_pb2.HealthCheckResponse.SERVING

        get_lines = eventually(
            lambda: (
                found
                if len(found := [x for x in served.logged("finished call") if x["method"].endswith("/Get")])
                == CONNECTIONS
                else None
            ),
            "an access-log line for every Get",
        )
        # Both workers answered, and each read the record the other may have written: one emulator.
        assert {line["pid"] for line in get_lines} == served.worker_pids
        exposition = served.metrics()
        assert handled(exposition, "Get") == CONNECTIONS
        assert handled(exposition, "BatchCreate") == 1
        assert sample(exposition, "agentcore_worker_restarts_total") == 0
        assert sample(exposition, "agentcore_build_info", backend="local") == 1

        # The multiprocess files live in a directory of the service's own, under TMPDIR.
        [directory] = metrics_directories(tmp_path)
        assert {int(f.stem.rsplit("_", 1)[1]) for f in directory.glob("counter_*.db")} == served.worker_pids

        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=WAIT_SECONDS) == 0, served.lines[-20:]
    assert {line["pid"] for line in served.logged("stopped")} == {served.process.pid, *served.worker_pids}
    assert not any(alive(pid) for pid in served.worker_pids)
    assert metrics_directories(tmp_path) == []


def test_with_tracing_each_worker_exports_its_own_spans_and_flushes_them_on_sigterm(tmp_path: Path) -> None:
    """A delay no test reaches: the spans leave only when each worker flushes them on SIGTERM, one
    connection per worker, every RPC's span once, and none from the supervisor."""
    with (
        receiving() as (endpoint, receiver),
        supervised(
            tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_BSP_SCHEDULE_DELAY="600000"
        ) as served,
    ):
        for _ in range(CONNECTIONS):
            with served.channel() as channel, pytest.raises(grpc.RpcError):
                pb_grpc.MemoryRecordsServiceStub(channel).Get(
                    pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=UNKNOWN_RECORD_ID),
                    timeout=RPC_TIMEOUT_SECONDS,
                )
        lines = eventually(
            lambda: found if len(found := served.logged("finished call")) == CONNECTIONS else None,
            "an access-log line for every Get",
        )
        assert receiver.by_peer == {}  # nothing exported yet: the batch waits for its delay
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=WAIT_SECONDS) == 0, served.lines[-20:]
    pid_of_trace = {line["traceId"]: line["pid"] for line in lines}
    assert len(pid_of_trace) == CONNECTIONS and set(pid_of_trace.values()) == served.worker_pids
    exported = [trace for traces in receiver.by_peer.values() for trace in traces]
    # Each Get's three spans (the RPC, its AWS call, its attempt), each once.
    assert collections.Counter(exported) == dict.fromkeys(pid_of_trace, 3)
    # One exporting connection per worker, each with that worker's spans only; the supervisor none.
    exporters = [{pid_of_trace[trace] for trace in traces} for traces in receiver.by_peer.values()]
    assert sorted(len(pids) for pids in exporters) == [1] * WORKERS
    assert set().union(*exporters) == served.worker_pids


def test_a_collector_that_never_answers_delays_a_clean_stop_by_the_flush_bound_at_most(
    tmp_path: Path,
) -> None:
    """Its port accepts connections and never says a word: each worker gives its last spans up after
    FLUSH_SECONDS, says so, and exits 0 (OTLP's own timeout, 10 s, would outlast the supervisor's)."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with supervised(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, SHUTDOWN_GRACE_SECONDS="0") as served:
            for _ in range(4):
                with served.channel() as channel, pytest.raises(grpc.RpcError):
                    pb_grpc.MemoryRecordsServiceStub(channel).Get(
                        pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=UNKNOWN_RECORD_ID),
                        timeout=RPC_TIMEOUT_SECONDS,
                    )
            stopping = time.monotonic()
            served.process.send_signal(signal.SIGTERM)
            assert served.process.wait(timeout=WAIT_SECONDS) == 0, served.lines[-20:]
            took = time.monotonic() - stopping
    assert took < tracing.FLUSH_SECONDS + workers.EXIT_MARGIN_SECONDS, took
    # Each worker that held spans said it dropped them.
    dropped = {
        line["pid"] for line in served.logged("the last spans were not exported in time; they are dropped")
    }
    assert dropped and dropped <= served.worker_pids


def test_sigterm_drains_the_rpcs_in_flight_on_every_worker(tmp_path: Path) -> None:
    """16 BatchCreates, each on its own connection, wait 1 s on the emulator when SIGTERM comes: every
    one of them succeeds, on both workers, and the supervisor exits 0."""
    calls = 16
    with supervised(tmp_path, LOCAL_FAULTS="latency=1", SHUTDOWN_GRACE_SECONDS="10") as served:
        with concurrent.futures.ThreadPoolExecutor(calls) as pool:
            creates = [pool.submit(create_one, served, f"in flight {i}") for i in range(calls)]
            eventually(
                lambda: (
                    sample(
                        served.metrics(),
                        "agentcore_grpc_server_requests_in_flight",
                        grpc_method="BatchCreate",
                    )
                    == calls
                ),
                "every BatchCreate in flight",
            )
            served.process.send_signal(signal.SIGTERM)
            assert all(future.result(timeout=WAIT_SECONDS) for future in creates)
        assert served.process.wait(timeout=WAIT_SECONDS) == 0, served.lines[-20:]
    answered_by = {x["pid"] for x in served.logged("finished call") if x["method"].endswith("/BatchCreate")}
    assert answered_by == served.worker_pids


def test_a_killed_worker_is_restarted_and_counted(tmp_path: Path) -> None:
    with supervised(tmp_path) as served:
        record_id = create_one(served, "before the kill")
        for _ in range(CONNECTIONS):
            get_on_a_new_connection(served, record_id)
        eventually(lambda: len(served.logged("finished call")) == 1 + CONNECTIONS, "every access-log line")
        victim = min(served.worker_pids)
        os.kill(victim, signal.SIGKILL)

        def replacement() -> int | None:
            pids = {line["pid"] for line in served.logged("worker serving")} - served.worker_pids
            return pids.pop() if pids else None

        new_pid = eventually(replacement, "a new worker")
        assert sample(served.metrics(), "agentcore_worker_restarts_total") == 1
        [died] = served.logged("worker died")
        assert died["workerPid"] == victim and died["exitCode"] == -signal.SIGKILL
        # The dead worker's counts stay in the sum; the new worker serves and counts on top.
        for _ in range(CONNECTIONS):
            get_on_a_new_connection(served, record_id)
        exposition = served.metrics()
        assert handled(exposition, "Get") == 2 * CONNECTIONS
        assert handled(exposition, "BatchCreate") == 1
        get_pids = {x["pid"] for x in served.logged("finished call") if x["method"].endswith("/Get")}
        assert new_pid in get_pids

        # A supervisor killed outright takes its workers with it: they see their stdin close.
        os.kill(served.process.pid, signal.SIGKILL)
        survivors = (served.worker_pids - {victim}) | {new_pid}
        eventually(lambda: not any(alive(pid) for pid in survivors), "the workers to stop")


def test_a_port_another_program_holds_fails_with_one_clear_line(tmp_path: Path) -> None:
    for shares_the_port in (False, True):
        with socket.socket() as holder:
            if shares_the_port:  # a program that itself uses SO_REUSEPORT is refused too
                holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
            env = service_env(WORKERS=str(WORKERS), GRPC_PORT=str(port), TMPDIR=str(tmp_path))
            done = subprocess.run(
                [sys.executable, "-m", "service"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=WAIT_SECONDS,
                check=False,
            )
        assert done.returncode == 1
        [line] = done.stderr.splitlines()  # one JSON line, like every line the process writes
        assert json.loads(line)["message"] == (
            f"cannot start: cannot listen for gRPC on 127.0.0.1:{port}: another program holds the port"
        )
        assert metrics_directories(tmp_path) == []


CHAT = "spiffe://cluster.local/ns/chat/sa/chat-api"


def test_mutual_tls_the_policy_health_port_and_https_metrics_with_workers(tmp_path: Path) -> None:
    """Every worker serves mutual TLS with its own credentials, applies the policy and answers health on
    the shared HEALTH_PORT; the supervisor serves /metrics over HTTPS on METRICS_HOST, with the workers'
    decisions and reloads and its own certificate series, read again after a rotation."""
    authority = Authority()
    cert, key, ca = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.crt"
    ca.write_bytes(authority.cert_pem)
    authority.issue(server=True, common_name="facade", days=10).write(cert, key)
    authority.issue(server=True, common_name="metrics").write(tmp_path / "m.crt", tmp_path / "m.key")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f'rules: [{{name: chat, principals: ["{CHAT}"], methods: ["*"], memories: ["{MEMORY_ID}"]}}]\n'
    )
    variables = {
        "TLS_CERT_FILE": str(cert),
        "TLS_KEY_FILE": str(key),
        "TLS_CLIENT_CA_FILE": str(ca),
        "METRICS_TLS_CERT_FILE": str(tmp_path / "m.crt"),
        "METRICS_TLS_KEY_FILE": str(tmp_path / "m.key"),
        "METRICS_HOST": "127.0.0.1",
        "HEALTH_PORT": "0",
        "AUTHZ_POLICY_FILE": str(policy),
    }
    with supervised(tmp_path, **variables) as served:
        start = served.start
        assert (start["transport"], start["metricsTransport"]) == ("mutual TLS", "https")
        assert start["authorization"] == str(policy)
        # Every worker listens on the one health port the supervisor reserved.
        health_port = start["healthPort"]
        assert health_port > 0
        assert [line["healthPort"] for line in served.logged("worker serving")] == [health_port] * WORKERS
        served.credentials = channel_credentials(authority, authority.issue(spiffe_id=CHAT))
        served.metrics_tls = ssl.create_default_context(cadata=authority.cert_pem.decode())

        record_id = create_one(served, "written over mutual TLS")
        for _ in range(CONNECTIONS):
            get_on_a_new_connection(served, record_id)
        stranger = channel_credentials(
            authority, authority.issue(spiffe_id="spiffe://cluster.local/ns/x/sa/y")
        )
        with served.channel(stranger) as channel:
            try:
                pb_grpc.MemoryRecordsServiceStub(channel).Get(
                    pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=record_id),
                    timeout=RPC_TIMEOUT_SECONDS,
                )
                raise AssertionError("a caller no rule allows was served")
            except grpc.RpcError as denied:
                assert denied.code() is grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
        with served.channel(grpc.local_channel_credentials()) as plaintext:
            refused = health_pb2_grpc.HealthStub(plaintext).Check
            try:
                refused(health_pb2.HealthCheckRequest(), timeout=5)
                raise AssertionError("the gRPC port answered without mutual TLS")
            except grpc.RpcError as refused_call:
                assert refused_call.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        for _ in range(4):
            options = [("grpc.use_local_subchannel_pool", 1)]
            with grpc.insecure_channel(f"127.0.0.1:{health_port}", options=options) as probe:
                status = (
                    health_pb2_grpc.HealthStub(probe).Check(health_pb2.HealthCheckRequest(), timeout=5).status
                )
                assert status == health_pb2.HealthCheckResponse.SERVING

        lines = eventually(
            lambda: found if len(found := served.logged("finished call")) == CONNECTIONS + 2 else None,
            "an access-log line for every call",
        )
        assert {line["pid"] for line in lines} == served.worker_pids
        assert {line["caller"] for line in lines if line["grpcCode"] == "OK"} == {CHAT}

        exposition = served.metrics()  # over HTTPS, from the supervisor
        families = [f.name for f in text_string_to_metric_families(exposition)]
        assert len(families) == len(set(families))  # the workers' and the supervisor's series joined
        assert sample(exposition, "agentcore_authz_decisions_total", decision="allow") == CONNECTIONS + 1
        assert sample(exposition, "agentcore_authz_decisions_total", decision="deny") == 1
        for config in ("tls", "authz_policy", "metrics_tls"):
            assert sample(exposition, "agentcore_config_last_reload_successful", config=config) == 1
        for listener in ("grpc", "metrics"):
            expiry = sample(exposition, "agentcore_tls_certificate_expiry_seconds", listener=listener)
            assert 9 * 86400 < expiry < 30 * 86400
        assert sample(exposition, "agentcore_worker_restarts_total") == 0

        # A rotation: the supervisor reports the new gRPC certificate from the files the workers serve.
        authority.issue(server=True, common_name="facade", days=2).write(cert, key)
        lifetime = sample(served.metrics(), "agentcore_tls_certificate_lifetime_seconds", listener="grpc")
        assert lifetime == 2 * 86400 + 3600
        get_on_a_new_connection(served, record_id)
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=WAIT_SECONDS) == 0, served.lines[-20:]


@pytest.mark.parametrize(("served", "exit_code"), [(False, EXIT_CONFIGURATION_ERROR), (True, None)])
def test_a_worker_finding_the_configuration_wrong_stops_the_start_and_later_backs_off(
    tmp_path: Path, served: bool, exit_code: int | None
) -> None:
    # Before the service first served, a configuration error ends the start (exit 2). Later (a file
    # rotated into something broken) the healthy workers keep serving and that one is restarted.
    supervisor = workers.Supervisor(Settings(workers=2), dict(os.environ), str(tmp_path))
    supervisor.served = served
    wrong = subprocess.Popen([sys.executable, "-c", f"raise SystemExit({EXIT_CONFIGURATION_ERROR})"])
    wrong.wait(timeout=30)
    slot = supervisor._workers[0]
    slot.process = wrong
    assert supervisor.tend() == exit_code
    assert (slot.restart_at is not None) is served
