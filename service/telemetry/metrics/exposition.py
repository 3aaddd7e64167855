"""The /metrics endpoint, and what it serves with one process or several.

Several worker processes (service/runtime/workers.py): each starts with PROMETHEUS_MULTIPROC_DIR set
to one empty directory; prometheus_client then keeps every value in per-process files and
`merged_registry` merges them (the in-flight gauge sums live processes, build info takes the max).
The supervisor adds its own series (worker restarts, certificates) to theirs.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Iterator

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from service.telemetry.metrics import http_server

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


def start_http_server(
    registry: CollectorRegistry,
    host: str,
    port: int,
    *,
    tls: Callable[[], ssl.SSLContext] | None = None,
    head_timeout: float = http_server.HEAD_TIMEOUT_SECONDS,
) -> tuple[int, Callable[[], None]]:
    """Serve `registry` at /metrics on host:port (port 0: any free port), over HTTPS when `tls` gives
    the context for each new connection; the bound port and a stop function. A connection has
    `head_timeout` seconds to deliver its request (see http_server)."""
    return http_server.start(
        prometheus_client.make_wsgi_app(registry), host, port, tls=tls, head_timeout=head_timeout
    )
