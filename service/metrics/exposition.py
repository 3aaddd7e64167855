"""The /metrics endpoint, and what it serves with one process or several.

Several worker processes (service/workers.py): each starts with PROMETHEUS_MULTIPROC_DIR set to one empty
directory; prometheus_client then keeps every value in per-process files and `merged_registry` merges
them (the in-flight gauge sums live processes, build info takes the max). The supervisor adds its own
series (worker restarts, certificates) to theirs.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import sys
import threading
import wsgiref.simple_server
from collections.abc import Callable, Iterator

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from service import listening

log = logging.getLogger("service.metrics")

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_mode() -> bool:
    """Whether prometheus_client keeps values in per-process files (it decides at import)."""
    return bool(os.environ.get(MULTIPROCESS_ENV))


def add_process_collectors(registry: CollectorRegistry) -> None:
    """What every Python exporter shows; prometheus_client cannot merge these across processes."""
    if not multiprocess_mode():
        prometheus_client.ProcessCollector(registry=registry)
        prometheus_client.PlatformCollector(registry=registry)
        prometheus_client.GCCollector(registry=registry)


def merged_registry(directory: str, own: CollectorRegistry | None = None) -> CollectorRegistry:
    """Every process's values in the multiprocess `directory`, merged at each scrape, with the series
    of `own` (the supervisor's) added to the families of the same name."""
    workers = CollectorRegistry()
    MultiProcessCollector(workers, path=directory)  # type: ignore[no-untyped-call]
    if own is None:
        return workers
    merged = CollectorRegistry()
    merged.register(_Joined(workers, own))
    return merged


class _Joined(Collector):
    """The families of two registries, one family per name: two families of one name would make the
    exposition invalid. The registries' series must not share labels (none is summed)."""

    def __init__(self, first: CollectorRegistry, second: CollectorRegistry) -> None:
        self._registries = (first, second)

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for registry in self._registries:
            for family in registry.collect():
                known = families.setdefault(family.name, family)
                if known is not family:
                    known.samples.extend(family.samples)
        yield from families.values()


def registry_to_serve(registry: CollectorRegistry) -> CollectorRegistry:
    """`registry`, or every worker process's values in multiprocess mode."""
    if not multiprocess_mode():
        return registry
    return merged_registry(os.environ[MULTIPROCESS_ENV])


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass  # a scrape every few seconds is not news


def start_http_server(
    registry: CollectorRegistry,
    host: str,
    port: int,
    *,
    tls: Callable[[], ssl.SSLContext] | None = None,
) -> tuple[int, Callable[[], None]]:
    """Serve `registry` at /metrics on host:port (port 0: any free port), over HTTPS when `tls` gives
    the context for each new connection; the bound port and a stop function."""

    class Server(prometheus_client.exposition.ThreadingWSGIServer):
        def handle_error(self, request: object, client_address: object) -> None:
            # A scanner's plaintext request on HTTPS, a failed handshake, a peer gone: one quiet line,
            # not socketserver's traceback on stderr.
            log.debug("metrics request failed", extra={"error": type(sys.exc_info()[1]).__name__})

        def get_request(self) -> tuple[socket.socket, object]:
            connection, peer = self.socket.accept()
            if tls is None:
                return connection, peer
            # The handshake happens on the request's own thread, at its first read, not in this loop.
            return tls().wrap_socket(connection, server_side=True, do_handshake_on_connect=False), peer

    failure: OSError | None = None
    for family, sockaddr in listening.addresses(host, port):
        Server.address_family = family
        try:
            httpd = wsgiref.simple_server.make_server(
                sockaddr[0],
                port,
                prometheus_client.make_wsgi_app(registry),
                Server,
                handler_class=_QuietHandler,
            )
            break
        except OSError as exc:
            failure = exc  # e.g. no IPv6 here: try the next address
    else:
        reason = failure.strerror or failure if failure is not None else "no address"
        raise OSError(f"cannot listen for metrics on {host}:{port}: {reason}") from failure
    thread = threading.Thread(target=httpd.serve_forever, name="metrics-http", daemon=True)
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)

    return httpd.server_port, stop
