"""Where a listener binds: the addresses of a host, as gRPC, the metrics endpoint and the worker
supervisor's port reservation all read them."""

from __future__ import annotations

import socket
from typing import Any


def addresses(host: str, port: int) -> list[tuple[socket.AddressFamily, Any]]:
    """The (family, address) pairs to try for host:port, in order. `host` may be bracketed (`[::]`);
    `::` is followed by `0.0.0.0`, as grpc falls back on a host without IPv6."""
    address = host.removeprefix("[").removesuffix("]")
    candidates = [address, "0.0.0.0"] if address == "::" else [address or None]
    return [
        (family, sockaddr)
        for candidate in candidates
        for family, _, _, _, sockaddr in socket.getaddrinfo(
            candidate, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    ]
