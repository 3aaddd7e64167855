"""The facade under grpc-health-probe, the probe Kubernetes users run as an exec probe (and the health
checker of many load balancers): grpc-go's client, as make builds it into var/tools/bin from
tools/go.mod. It must pass against the gRPC port in plaintext, against the gRPC port over mutual TLS
(the probe's own -tls flags), and against HEALTH_PORT, for the server as a whole and for
agentcore.memory.v1.MemoryRecordsService by name; it must fail, with the probe's NOT_SERVING exit
status, while the server drains after SIGTERM (SHUTDOWN_DRAIN_SECONDS), so that Kubernetes stops
sending traffic before the server stops. And the Watch that clients balancing by health keep open
ends after the drain, so that it does not hold the stop.

The probe's exit statuses (grpc-health-probe's main.go): 0 SERVING, 2 no connection, 3 the RPC failed
(an unknown service name is NOT_FOUND), 4 not SERVING. Without the binary these tests skip on a
developer's machine and fail in CI. Loopback only; nothing is downloaded.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.certs import SERVER_NAME, Authority
from tests.helpers import ROOT, read_json_line, require, service_process

PROBE = ROOT / "var" / "tools" / "bin" / "grpc-health-probe"
SERVICE = "agentcore.memory.v1.MemoryRecordsService"
SERVING, CONNECTION_FAILURE, RPC_FAILURE, NOT_SERVING = 0, 2, 3, 4
DRAIN_SECONDS = 5


def probe(port: int, *flags: str, connect_timeout: str = "3s") -> int:
    """The probe's exit status against 127.0.0.1:`port`."""
    result = subprocess.run(
        [
            str(PROBE),
            f"-addr=127.0.0.1:{port}",
            f"-connect-timeout={connect_timeout}",
            "-rpc-timeout=3s",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )
    return result.returncode


def require_probe() -> None:
    require(
        PROBE.is_file(), f"{PROBE.relative_to(ROOT)} is missing: make builds it (go install tool in tools/)"
    )


def test_the_probe_passes_on_the_grpc_port_and_on_health_port() -> None:
    require_probe()
    with service_process(AGENTCORE_BACKEND="local", HEALTH_PORT="0") as (_, start):
        grpc_port, health_port = int(str(start["grpcPort"])), int(str(start["healthPort"]))
        for port in (grpc_port, health_port):
            assert probe(port) == SERVING
            assert probe(port, f"-service={SERVICE}") == SERVING
            # A name the server does not serve is an error, not a pass: the probe checks what it is told.
            assert probe(port, "-service=no.such.Service") == RPC_FAILURE


def test_the_probe_passes_over_mutual_tls(tmp_path: Path) -> None:
    require_probe()
    authority = Authority()
    authority.issue(server=True, common_name="facade").write(tmp_path / "tls.crt", tmp_path / "tls.key")
    authority.issue(spiffe_id="spiffe://cluster.local/ns/probe/sa/kubelet").write(
        tmp_path / "client.crt", tmp_path / "client.key"
    )
    (tmp_path / "ca.crt").write_bytes(authority.cert_pem)
    tls = ("-tls", f"-tls-ca-cert={tmp_path / 'ca.crt'}")
    client = (f"-tls-client-cert={tmp_path / 'client.crt'}", f"-tls-client-key={tmp_path / 'client.key'}")
    with service_process(
        AGENTCORE_BACKEND="local",
        TLS_CERT_FILE=str(tmp_path / "tls.crt"),
        TLS_KEY_FILE=str(tmp_path / "tls.key"),
        TLS_CLIENT_CA_FILE=str(tmp_path / "ca.crt"),
        HEALTH_PORT="0",
    ) as (_, start):
        grpc_port, health_port = int(str(start["grpcPort"])), int(str(start["healthPort"]))
        # The server's certificate names 127.0.0.1 and localhost: either verifies.
        assert probe(grpc_port, *tls, *client) == SERVING
        assert (
            probe(grpc_port, *tls, *client, f"-tls-server-name={SERVER_NAME}", f"-service={SERVICE}")
            == SERVING
        )
        # Without a client certificate, or in plaintext, no health check gets through the gRPC port (the
        # handshake fails, and grpc-go retries it until the probe's connect timeout) ...
        refused = "1s"
        assert probe(grpc_port, *tls, connect_timeout=refused) == CONNECTION_FAILURE
        assert probe(grpc_port, connect_timeout=refused) == CONNECTION_FAILURE
        # ... nor with a server name its certificate does not carry: -tls-server-name is used.
        elsewhere = "-tls-server-name=elsewhere.example"
        assert probe(grpc_port, *tls, *client, elsewhere, connect_timeout=refused) == CONNECTION_FAILURE
        # HEALTH_PORT stays plaintext, for probes that cannot present a certificate.
        assert probe(health_port) == SERVING
        assert probe(health_port, f"-service={SERVICE}") == SERVING


def test_the_probe_fails_not_serving_while_the_server_drains() -> None:
    require_probe()
    with service_process(
        read_log=True,
        AGENTCORE_BACKEND="local",
        HEALTH_PORT="0",
        SHUTDOWN_DRAIN_SECONDS=str(DRAIN_SECONDS),
        SHUTDOWN_GRACE_SECONDS="1",
    ) as (process, start):
        grpc_port, health_port = int(str(start["grpcPort"])), int(str(start["healthPort"]))
        assert probe(grpc_port) == SERVING
        process.send_signal(signal.SIGTERM)
        assert process.stderr is not None
        read_json_line(process.stderr, "shutting down")
        draining_since = time.monotonic()
        # Health turns NOT_SERVING right after that line: give it a moment, boundedly.
        for _ in range(20):
            if probe(grpc_port) == NOT_SERVING:
                break
            time.sleep(0.05)
        for port in (grpc_port, health_port):
            assert probe(port) == NOT_SERVING
            assert probe(port, f"-service={SERVICE}") == NOT_SERVING
        # All of it within the drain: the server was still answering, and saying it should get no traffic.
        assert time.monotonic() - draining_since < DRAIN_SECONDS
        assert process.poll() is None


def test_an_open_watch_is_ended_after_the_drain_and_does_not_hold_the_stop() -> None:
    """A client that balances by health (deploy/clients/service-config.json's healthCheckConfig) keeps
    a Watch open on every backend: after SIGTERM it is told NOT_SERVING, and once the drain is over it
    is ended with OK, so the process stops within the drain and not after the whole grace (10 s here;
    before, an open Watch held the stop until the grace ran out)."""
    grace_seconds = 10
    with (
        service_process(
            AGENTCORE_BACKEND="local",
            SHUTDOWN_DRAIN_SECONDS="1",
            SHUTDOWN_GRACE_SECONDS=str(grace_seconds),
        ) as (process, start),
        grpc.insecure_channel(f"127.0.0.1:{start['grpcPort']}") as channel,
    ):
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=SERVICE), timeout=30
        )
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert list(watch) == []  # ended by the server, with OK
        assert watch.code() == grpc.StatusCode.OK
        exit_code = process.wait(timeout=grace_seconds + 5)
        stopped_in = time.monotonic() - signalled
    assert exit_code == 0
    assert stopped_in < grace_seconds / 2, f"stopped {stopped_in:.1f} s after SIGTERM"
