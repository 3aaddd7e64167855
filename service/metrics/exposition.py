"""The /metrics endpoint, and what it serves with one process or several.

Several worker processes (service/workers.py): each starts with PROMETHEUS_MULTIPROC_DIR set to one empty
directory; prometheus_client then keeps every value in per-process files and `merged_registry` merges
them (the in-flight gauge sums live processes, build info takes the max).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

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


def merged_registry(directory: str) -> CollectorRegistry:
    """Every process's values in the multiprocess `directory`, merged at each scrape."""
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
    return merged


def registry_to_serve(registry: CollectorRegistry) -> CollectorRegistry:
    """`registry`, or every worker process's values in multiprocess mode."""
    if not multiprocess_mode():
        return registry
    return merged_registry(os.environ[MULTIPROCESS_ENV])


def start_http_server(registry: CollectorRegistry, host: str, port: int) -> tuple[int, Callable[[], None]]:
    """Serve `registry` at /metrics on host:port (port 0: any free port); the bound port and a stop
    function."""
    httpd, thread = prometheus_client.start_http_server(
        port, addr=host.removeprefix("[").removesuffix("]"), registry=registry
    )

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)

    return httpd.server_port, stop
