"""create_server(settings, client) -> (server, port), and serve(settings) that runs it until a signal.

The server carries the MemoryRecordsService, gRPC health (grpc.health.v1) and server reflection
(unless GRPC_REFLECTION=false), behind the metrics and access-log interceptors, in plaintext or over
(mutual) TLS. serve() also serves Prometheus metrics on METRICS_HOST:METRICS_PORT (HTTPS when set),
unless it runs as one worker of several (`SharedServing`, service/workers.py), whose supervisor does;
and health alone in plaintext on HEALTH_PORT when set, for probes that cannot present a client
certificate (each worker on the port its supervisor reserved, as on the gRPC port).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from emulator import Emulator
from service import authz, aws, calls, logs, tls
from service.admission import Admission
from service.batches import Batches
from service.metrics import Metrics, exposition
from service.metrics.security import ConfigMetrics
from service.operations import SERVICE_NAME
from service.servicer import MemoryRecordsServicer
from service.settings import Backend, Settings
from service.thread_pools import ThreadPools

if TYPE_CHECKING:
    from mypy_boto3_bedrock_agentcore import BedrockAgentCoreClient

# Threads beyond the admitted RPCs, for the refusals of a burst.
RESERVED_THREADS = 8
# Go's and Java's clients send keepalive pings no more often than every 10 s; grpc's server answers
# faster ones, without calls in flight too, with GOAWAY `too_many_pings` unless told to accept them.
# Half that, so that a ping a little early (timers, scheduling) is not a strike.
MIN_CLIENT_PING_INTERVAL_MS = 5_000
# A connection lives at most this long (grpc adds +-10% jitter), then the client reconnects, through
# the Kubernetes Service, so that new pods get a share of long-lived callers; calls in flight get the grace.
MAX_CONNECTION_AGE_MS = 5 * 60 * 1000
MAX_CONNECTION_AGE_GRACE_MS = 30 * 1000

log = logging.getLogger("service")


def create_server(
    settings: Settings,
    client: BedrockAgentCoreClient,
    *,
    health_servicer: health.HealthServicer | None = None,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    metrics: Metrics | None = None,
    share_port: bool = False,
) -> tuple[grpc.Server, int]:
    """A server (not started) on `settings.grpc_host:grpc_port`, and the port it bound.

    Every RPC, and every AWS call `client` makes, is recorded in `metrics` (a fresh Metrics if none).
    `share_port`: bind with SO_REUSEPORT, beside the other workers of one supervisor.
    """
    metrics = metrics or Metrics(backend=settings.backend.value)
    metrics.aws_calls.instrument(client)
    admission = Admission(
        max_rpcs=settings.admitted_rpcs,
        max_bytes=settings.inflight_bytes,
        max_running=settings.max_workers,
        count_waiting=metrics.server.waiting.inc,
        stuck_after_seconds=settings.aws_attempt_timeout_seconds,
        report_stuck=metrics.aws_calls.turns_stuck.set,
    )
    # A thread for every admitted RPC, and a reserve for refusals; health checks and streams have
    # pools of their own (thread_pools.py).
    threads = settings.admitted_rpcs + RESERVED_THREADS
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc-handler"),
        interceptors=[
            # Outermost: it names the pool grpc runs the RPC on.
            ThreadPools(),
            # Next, so that they see the final code of every RPC.
            calls.Interceptor(metrics.server, logs.AccessLog()),
            *interceptors,
        ],
        options=[
            # Two servers silently sharing a port hide a deployment mistake; fail to bind instead.
            # Workers share theirs on purpose: their supervisor has checked that no one else holds it.
            ("grpc.so_reuseport", int(share_port)),
            # The largest batch MAX_BATCH_RECORDS allows must fit (gRPC's default is 4 MiB).
            ("grpc.max_receive_message_length", settings.max_request_bytes),
            # Without BDP probing each stream's window stays small, so that the bytes of RPCs not yet
            # admitted or refused wait in the client rather than in this process.
            ("grpc.http2.bdp_probe", 0),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", MIN_CLIENT_PING_INTERVAL_MS),
            ("grpc.max_connection_age_ms", MAX_CONNECTION_AGE_MS),
            ("grpc.max_connection_age_grace_ms", MAX_CONNECTION_AGE_GRACE_MS),
        ],
    )
    batches = Batches(
        client,
        admission,
        max_records=settings.max_batch_records,
        concurrency=settings.batch_concurrency,
        # The calls of large batches; each also waits for a turn, so more threads than turns would idle.
        executor=futures.ThreadPoolExecutor(
            max_workers=settings.max_workers, thread_name_prefix="batch-call"
        ),
    )
    MemoryRecordsServicer(
        admission,
        batches,
        default_deadline_seconds=settings.default_deadline_seconds,
        authorizer=authorizer(settings, metrics),
    ).add_to_server(server)
    health_servicer = health_servicer or health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    service_names: tuple[str, ...] = (SERVICE_NAME, HEALTH_SERVICE_NAME)
    if settings.grpc_reflection:
        service_names += (reflection.SERVICE_NAME,)
        reflection.enable_server_reflection(service_names, server)
    metrics.server.initialize(service_names)
    credentials = None
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        pair = tls.WatchedPair(
            settings.tls_cert_file,
            settings.tls_key_file,
            settings.tls_client_ca_file,
            listener="grpc",
            on_reload=metrics.security.reload_reporter("tls"),
        )
        metrics.security.watch_certificate("grpc", pair.validity)
        credentials = tls.grpc_credentials(pair)
    return server, _bind(server, f"{settings.grpc_host}:{settings.grpc_port}", credentials)


HEALTH_SERVICE_NAME: str = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


def _bind(server: grpc.Server, address: str, credentials: grpc.ServerCredentials | None) -> int:
    try:
        if credentials is None:
            return server.add_insecure_port(address)
        return server.add_secure_port(address, credentials)
    except RuntimeError as exc:  # grpc reports a failed bind this way
        raise OSError(f"cannot listen for gRPC on {address}: {exc}") from exc


def authorizer(settings: Settings, metrics: Metrics) -> authz.Authorizer:
    """The policy of AUTHZ_POLICY_FILE (PolicyError when it does not load), or none: all allowed."""
    if settings.authz_policy_file is None:
        return authz.Authorizer(None)
    policy_file = authz.PolicyFile(
        settings.authz_policy_file, on_reload=metrics.security.reload_reporter("authz_policy")
    )
    return authz.Authorizer(policy_file, count=metrics.security.count_decision)


def create_health_server(
    settings: Settings, health_servicer: health.HealthServicer, *, share_port: bool = False
) -> tuple[grpc.Server, int]:
    """A plaintext server (not started) on `settings.grpc_host:health_port` with grpc.health.v1 alone;
    `share_port` as create_server's. A worker's answers its own state, as its gRPC port does."""
    assert settings.health_port is not None
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="grpc-health"),
        options=[("grpc.so_reuseport", int(share_port))],
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    return server, _bind(server, f"{settings.grpc_host}:{settings.health_port}", None)


def local_emulator(settings: Settings) -> Emulator:
    """The embedded emulator of the local backend (not started)."""
    return Emulator(
        memory_ids=settings.local_memory_ids,
        db_path=settings.local_db_path,
        # The journal of request bodies serves tests; a served emulator keeps no record text.
        journal_size=0,
        faults=settings.local_faults,
    )


@dataclasses.dataclass(frozen=True)
class SharedServing:
    """How serve() runs as one worker of a supervisor (service/workers.py): on a port shared with the
    other workers, without /metrics of its own (the supervisor merges every worker's), and in local mode
    with the supervisor's emulator, so that every worker sees the same records."""

    emulator_url: str | None


def serve(
    settings: Settings,
    *,
    stop: threading.Event | None = None,
    on_serving: Callable[[int, int], None] | None = None,
    shared: SharedServing | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT (or `stop` is set), then drain in-flight RPCs and exit.
    `on_serving(grpc_port, metrics_port)` learns the ports bound (port 0 picks free ones; metrics port
    0 when `shared`)."""
    stop = stop or threading.Event()
    with contextlib.ExitStack() as resources:
        endpoint_url = None
        if settings.backend is Backend.LOCAL:
            if shared is None:
                endpoint_url = resources.enter_context(local_emulator(settings)).endpoint_url
            else:
                endpoint_url = shared.emulator_url
        client = aws.create_client(settings, endpoint_url=endpoint_url)
        metrics = Metrics(backend=settings.backend.value)
        metrics_port = 0
        if shared is None:
            # Bound first, so that a port clash fails the start before serving.
            metrics_port, stop_metrics = exposition.start_http_server(
                exposition.registry_to_serve(metrics.registry),
                settings.metrics_listen_host,
                settings.metrics_port,
                tls=metrics_tls(settings, metrics.security),
            )
            resources.callback(stop_metrics)
        health_servicer = health.HealthServicer()
        server, port = create_server(
            settings, client, health_servicer=health_servicer, metrics=metrics, share_port=shared is not None
        )
        health_port = None
        if settings.health_port is not None:
            health_server, health_port = create_health_server(
                settings, health_servicer, share_port=shared is not None
            )
            health_server.start()
            resources.callback(lambda: health_server.stop(None).wait())
        server.start()
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
        log.info(
            f"serving {SERVICE_NAME}" if shared is None else "worker serving",
            extra={
                "grpcPort": port,
                **({"healthPort": health_port} if health_port is not None else {}),
                **(
                    {"metricsPort": metrics_port, **security_fields(settings)}
                    if shared is None
                    else {"workerPid": os.getpid()}
                ),
                "backend": settings.backend.value,
                "awsEndpoint": client.meta.endpoint_url,
                "region": client.meta.region_name,
                **({"localMemoryIds": list(settings.local_memory_ids)} if endpoint_url else {}),
            },
        )
        if on_serving is not None:
            on_serving(port, metrics_port)
        stop.wait()
        log.info("shutting down", extra={"graceSeconds": settings.shutdown_grace_seconds})
        health_servicer.enter_graceful_shutdown()
        if settings.shutdown_drain_seconds:
            time.sleep(settings.shutdown_drain_seconds)  # still serving, while health says NOT_SERVING
        server.stop(settings.shutdown_grace_seconds).wait()
        log.info("stopped")


def metrics_tls(settings: Settings, config: ConfigMetrics) -> Callable[[], ssl.SSLContext] | None:
    """The TLS context source of /metrics, when METRICS_TLS_CERT_FILE is set."""
    if settings.metrics_tls_cert_file is None or settings.metrics_tls_key_file is None:
        return None
    pair = tls.WatchedPair(
        settings.metrics_tls_cert_file,
        settings.metrics_tls_key_file,
        listener="metrics",
        on_reload=config.reload_reporter("metrics_tls"),
    )
    config.watch_certificate("metrics", pair.validity)
    return tls.ssl_contexts(pair)


def security_fields(settings: Settings) -> dict[str, str]:
    """The "serving" line's account of the transports and the policy."""
    transport = "plaintext"
    if settings.tls_client_ca_file is not None:
        transport = "mutual TLS"
    elif settings.tls_cert_file is not None:
        transport = "TLS"
    return {
        "transport": transport,
        "metricsTransport": "https" if settings.metrics_tls_cert_file else "http",
        "authorization": settings.authz_policy_file or "none: every caller may call every method",
    }
