"""create_server(settings, client) -> (server, port), and serve(settings) that runs it until a signal.

The serving model: grpc's asyncio server, on an event loop thread of its own (`LoopServer`, driven from
synchronous code). The loop reads every request, answers health and refusals, and holds idle streams at
the cost of a coroutine; an admitted facade RPC gets one thread of a pool as large as admission allows
(servicer.py), since boto3 blocks. HEALTH_PORT's server runs on a second loop, so that a flood on one port
never makes the other's health checks wait. Every connection resource has a limit: streams per
connection, connections, the time to deliver a request message, and compressed requests' inflated size
(compression.py).

The server carries the MemoryRecordsService, gRPC health (grpc.health.v1) and server reflection
(unless GRPC_REFLECTION=false), behind the metrics and access-log interceptors, in plaintext or over
(mutual) TLS. serve() also serves Prometheus metrics on METRICS_HOST:METRICS_PORT (HTTPS when set),
unless it runs as one worker of several (`SharedServing`, service/runtime/workers.py), whose supervisor does;
and health alone in plaintext on HEALTH_PORT when set, for probes that cannot present a client
certificate (each worker on the port its supervisor reserved, as on the gRPC port).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent import futures
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from grpc_reflection.v1alpha import reflection

from service import caller_limits, calls, compression, rate_counters
from service.admission import Admission
from service.api import operations
from service.api.operations import SERVICE_NAME
from service.batches import AwsCalls
from service.runtime.health import HEALTH_SERVICE_NAME, Health
from service.security import authz, tls
from service.servicer import MemoryRecordsServicer
from service.settings import Backend, Settings, SettingsError
from service.telemetry import access_log, aws_hooks, tracing
from service.telemetry.metrics import Metrics, exposition
from service.telemetry.metrics.security import ConfigMetrics
from service.telemetry.tracing import Tracing
from service.upstream import aws, rate_limits

if TYPE_CHECKING:
    from mypy_boto3_bedrock_agentcore import BedrockAgentCoreClient

T = TypeVar("T")

# The only request encodings accepted (grpc's bitset of identity=0, deflate=1, gzip=2): gzip is what
# Go's, Java's and Node's clients offer, and compression.py inflates it within admission; deflate
# is answered UNIMPLEMENTED by grpc, before it costs anything.
ACCEPTED_ENCODINGS = 1 << 0 | 1 << 2
# HEALTH_PORT serves health alone: its requests are a service name.
HEALTH_MAX_REQUEST_BYTES = 4096
# Go's and Java's clients send keepalive pings no more often than every 10 s; grpc's server answers
# faster ones, without calls in flight too, with GOAWAY `too_many_pings` unless told to accept them.
# Half that, so that a ping a little early (timers, scheduling) is not a strike.
MIN_CLIENT_PING_INTERVAL_MS = 5_000
# A connection lives at most this long (grpc adds +-10% jitter), then the client reconnects, through
# the Kubernetes Service, so that new pods get a share of long-lived callers; calls in flight get the grace.
MAX_CONNECTION_AGE_MS = 5 * 60 * 1000
MAX_CONNECTION_AGE_GRACE_MS = 30 * 1000

log = logging.getLogger("service")


class LoopServer:
    """A grpc.aio server on an event loop thread of its own, driven from synchronous code as grpc's
    sync server is: start(), stop(grace).wait()."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()
        self.server: grpc.aio.Server | None = None
        self._before_stop: list[Callable[[], None]] = []
        self._on_stop: list[Callable[[], None]] = []

    def run(self, coroutine: Awaitable[T]) -> T:
        """Run `coroutine` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(_awaited(coroutine), self._loop).result()

    def build(self, make: Callable[[], grpc.aio.Server]) -> grpc.aio.Server:
        """Make the server on the loop (grpc.aio binds a server to the loop it is made on)."""

        async def made() -> grpc.aio.Server:
            return make()

        self.server = self.run(made())
        return self.server

    def before_stop(self, callback: Callable[[], None]) -> None:
        """Call `callback` as stop() begins."""
        self._before_stop.append(callback)

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the server has stopped (e.g. to shut the handler pool down)."""
        self._on_stop.append(callback)

    def start(self) -> None:
        assert self.server is not None
        self.run(self.server.start())

    def stop(self, grace: float | None) -> threading.Event:
        """Stop accepting RPCs; those in flight get `grace` seconds (None: none), then are cancelled.
        The Event is set once the server has stopped and its loop has ended."""
        stopped = threading.Event()
        for callback in self._before_stop:
            callback()
        if not self._thread.is_alive():
            stopped.set()
            return stopped
        server = self.server

        async def stop() -> None:
            if server is not None:
                await server.stop(grace)

        def finish(_: object) -> None:
            for callback in self._on_stop:
                callback()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            stopped.set()

        future = asyncio.run_coroutine_threadsafe(stop(), self._loop)
        future.add_done_callback(lambda done: threading.Thread(target=finish, args=(done,)).start())
        return stopped


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


def server_options(settings: Settings, *, share_port: bool) -> list[tuple[str, Any]]:
    """The channel arguments of the gRPC port: every limit it puts on a connection."""
    return [
        # Two servers silently sharing a port hide a deployment mistake; fail to bind instead.
        # Workers share theirs on purpose: their supervisor has checked that no one else holds it.
        ("grpc.so_reuseport", int(share_port)),
        # The largest batch MAX_BATCH_RECORDS allows must fit (gRPC's default is 4 MiB); with grpc's
        # decompression off it bounds the bytes as sent, and compression.py the inflated ones.
        ("grpc.max_receive_message_length", settings.max_request_bytes),
        ("grpc.per_message_decompression", 0),
        ("grpc.compression_enabled_algorithms_bitset", ACCEPTED_ENCODINGS),
        # Advertised as SETTINGS_MAX_CONCURRENT_STREAMS: a client queues its RPCs beyond it.
        ("grpc.max_concurrent_streams", settings.max_concurrent_streams),
        ("grpc.max_allowed_incoming_connections", settings.max_connections),
        # Without BDP probing each stream's window stays small, so that the bytes of RPCs not yet
        # read wait in the client rather than in this process.
        ("grpc.http2.bdp_probe", 0),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", MIN_CLIENT_PING_INTERVAL_MS),
        ("grpc.max_connection_age_ms", MAX_CONNECTION_AGE_MS),
        ("grpc.max_connection_age_grace_ms", MAX_CONNECTION_AGE_GRACE_MS),
    ]


def create_server(
    settings: Settings,
    client: BedrockAgentCoreClient,
    *,
    health_servicer: Health | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    metrics: Metrics | None = None,
    tracing: Tracing | None = None,
    share_port: bool = False,
) -> tuple[LoopServer, int]:
    """A server (not started) on `settings.grpc_host:grpc_port`, and the port it bound.

    Every RPC, and every AWS call `client` makes, is recorded in `metrics` (a fresh Metrics if none),
    and each of the facade's RPCs is a span of `tracing` when it is given.
    `share_port`: bind with SO_REUSEPORT, beside the other workers of one supervisor.
    """
    metrics = metrics or Metrics(backend=settings.backend.value)
    counters = rate_counters.Counters(
        rate_counters.open_storage(settings.rate_limit_storage_uri),
        fail_open=settings.rate_limit_storage_failure == "open",
        report_storage=metrics.limits.report_storage,
    )
    try:
        upstream_rates = rate_limits.parse(
            settings.upstream_rate_limits, {operation.aws_operation for operation in operations.OPERATIONS}
        )
    except ValueError as exc:
        raise SettingsError(f"UPSTREAM_RATE_LIMITS: {exc}") from None
    rate_limits.UpstreamRateLimits(upstream_rates, counters).instrument(client)
    aws_hooks.AwsCallRecorder(metrics.aws_calls).instrument(client)
    if tracing is not None:
        tracing.aws_spans.instrument(client)
    admission = Admission(
        max_rpcs=settings.admitted_rpcs,
        max_bytes=settings.inflight_bytes,
        max_running=settings.max_workers,
        count_waiting=metrics.server.waiting.inc,
        stuck_after_seconds=settings.aws_attempt_timeout_seconds,
        report_stuck=metrics.aws_calls.turns_stuck.set,
    )
    # A thread for every admitted RPC: it waits for its turn, then blocks in boto3.
    handlers = futures.ThreadPoolExecutor(max_workers=settings.admitted_rpcs, thread_name_prefix="rpc")
    served = LoopServer("grpc-loop")
    # Kubernetes probes every few seconds, and a probe that gave up (or a flood of reset streams) is no
    # news either: a line each would be a log flood anyone can cause.
    quiet_health = access_log.quieter(HEALTH_SERVICE_NAME, (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED))
    reporters: list[calls.Reporter] = [metrics.server, access_log.AccessLog(quiet_health)]
    if tracing is not None:
        # First, so that the span exists before the other reporters and the RPC's log lines; its ids
        # stay readable once it has ended, for the access log told after it.
        reporters.insert(0, tracing.reporter)
    reporting = calls.Interceptor(*reporters)
    served.before_stop(lambda: setattr(reporting, "stopping", True))
    server = served.build(
        lambda: grpc.aio.server(
            interceptors=[reporting, *interceptors],
            options=server_options(settings, share_port=share_port),
            # Admission bounds the RPCs in flight; grpc need not count them again.
            maximum_concurrent_rpcs=None,
        )
    )
    served.on_stop(lambda: handlers.shutdown(wait=False, cancel_futures=True))
    authorized = authorizer(settings, metrics)
    limited = caller_limits.CallerLimits(
        authorized.policy_file,  # the same file: its `limits` beside its `rules`
        counters,
        count_limited=metrics.limits.count_limited,
    )
    aws_calls = AwsCalls(
        client,
        admission,
        max_records=settings.max_batch_records,
        concurrency=settings.batch_concurrency,
        # The calls of large batches; each also waits for a turn, so more threads than turns would idle.
        executor=futures.ThreadPoolExecutor(
            max_workers=settings.max_workers, thread_name_prefix="batch-call"
        ),
        caller_limits=limited,
    )
    MemoryRecordsServicer(
        admission,
        aws_calls,
        executor=handlers,
        default_deadline_seconds=settings.default_deadline_seconds,
        request_read_timeout_seconds=settings.request_read_timeout_seconds,
        max_request_bytes=settings.max_request_bytes,
        max_inflated_bytes=compression.inflated_limit(settings.max_request_bytes, settings.inflight_bytes),
        authorizer=authorized,
        caller_limits=limited,
        count_read_timeout=metrics.server.count_read_timeout,
    ).add_to_server(server)
    health_servicer = health_servicer or Health((SERVICE_NAME,))
    health_servicer.add_to_server(server, read_timeout_seconds=settings.request_read_timeout_seconds)
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
    return served, _bind(served, f"{settings.grpc_host}:{settings.grpc_port}", credentials)


def _bind(served: LoopServer, address: str, credentials: grpc.ServerCredentials | None) -> int:
    server = served.server
    assert server is not None

    async def bind() -> int:
        if credentials is None:
            return server.add_insecure_port(address)
        return server.add_secure_port(address, credentials)

    try:
        return served.run(bind())
    except RuntimeError as exc:  # grpc reports a failed bind this way
        served.stop(None).wait(5)
        raise OSError(f"cannot listen for gRPC on {address}: {exc}") from exc


def authorizer(settings: Settings, metrics: Metrics) -> authz.Authorizer:
    """The policy of AUTHZ_POLICY_FILE (PolicyError when it does not load), or none: all allowed."""
    count_identity_refusal = metrics.security.count_identity_refusal
    if settings.authz_policy_file is None:
        return authz.Authorizer(None, count_identity_refusal=count_identity_refusal)
    policy_file = authz.PolicyFile(
        settings.authz_policy_file, on_reload=metrics.security.reload_reporter("authz_policy")
    )
    return authz.Authorizer(
        policy_file, count=metrics.security.count_decision, count_identity_refusal=count_identity_refusal
    )


def create_health_server(
    settings: Settings, health_servicer: Health, *, share_port: bool = False
) -> tuple[LoopServer, int]:
    """A plaintext server (not started) on `settings.grpc_host:health_port` with grpc.health.v1 alone,
    on a loop of its own; `share_port` as create_server's. A worker's answers its own state, as its
    gRPC port does."""
    assert settings.health_port is not None
    served = LoopServer("health-loop")
    server = served.build(
        lambda: grpc.aio.server(
            options=[
                ("grpc.so_reuseport", int(share_port)),
                ("grpc.max_receive_message_length", HEALTH_MAX_REQUEST_BYTES),
                ("grpc.max_concurrent_streams", settings.max_concurrent_streams),
                ("grpc.max_allowed_incoming_connections", settings.max_connections),
            ]
        )
    )
    health_servicer.add_to_server(server, read_timeout_seconds=settings.request_read_timeout_seconds)
    return served, _bind(served, f"{settings.grpc_host}:{settings.health_port}", None)


@dataclasses.dataclass(frozen=True)
class SharedServing:
    """How serve() runs as one worker of a supervisor (service/runtime/workers.py): on a port shared with the
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
        local_fields: dict[str, object] = {}
        if settings.backend is Backend.LOCAL:
            from service.runtime import local  # the emulator is loaded in local mode only

            local_fields = local.start_fields(settings)
            if shared is None:
                endpoint_url = resources.enter_context(local.emulator(settings)).endpoint_url
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
        health_servicer = Health((SERVICE_NAME,))
        traces = tracing.from_env()  # each worker exports its own; the supervisor never gets here
        if traces is not None:
            resources.callback(traces.shutdown)  # the last spans exported, after the server stopped
        server, port = create_server(
            settings,
            client,
            health_servicer=health_servicer,
            metrics=metrics,
            tracing=traces,
            share_port=shared is not None,
        )
        resources.callback(lambda: server.stop(None).wait(5))  # a start that fails after this
        health_port = None
        if settings.health_port is not None:
            health_server, health_port = create_health_server(
                settings, health_servicer, share_port=shared is not None
            )
            health_server.start()
            resources.callback(lambda: health_server.stop(None).wait(5))
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
                **local_fields,
            },
        )
        if on_serving is not None:
            on_serving(port, metrics_port)
        stop.wait()
        log.info("shutting down", extra={"graceSeconds": settings.shutdown_grace_seconds})
        health_servicer.enter_graceful_shutdown()
        if settings.shutdown_drain_seconds:
            time.sleep(settings.shutdown_drain_seconds)  # still serving, while health says NOT_SERVING
        health_servicer.end_watches()  # an open Watch would hold the stop for its whole grace
        server.stop(settings.shutdown_grace_seconds).wait(settings.shutdown_grace_seconds + 5)
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
