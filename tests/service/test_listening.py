"""listening.py: the addresses a listener tries for a host, in order: `[::]` and then 0.0.0.0, a literal
address alone, bracketed or not."""

from __future__ import annotations

import socket

import pytest

from service import listening


def test_an_ipv4_address_is_tried_alone() -> None:
    assert listening.addresses("127.0.0.1", 8443) == [(socket.AF_INET, ("127.0.0.1", 8443))]


def test_all_ipv4_interfaces_are_tried_alone_without_an_ipv6_fallback() -> None:
    assert listening.addresses("0.0.0.0", 50051) == [(socket.AF_INET, ("0.0.0.0", 50051))]


@pytest.mark.parametrize("host", ["::1", "[::1]"], ids=["bare", "bracketed"])
def test_an_ipv6_address_is_tried_bracketed_or_not(host: str) -> None:
    tried = listening.addresses(host, 8443)
    assert [(family, sockaddr[:2]) for family, sockaddr in tried] == [(socket.AF_INET6, ("::1", 8443))]


@pytest.mark.parametrize("host", ["::", "[::]"], ids=["bare", "bracketed"])
def test_all_interfaces_are_tried_as_ipv6_then_as_ipv4(host: str) -> None:
    tried = listening.addresses(host, 9090)
    assert [(family, sockaddr[:2]) for family, sockaddr in tried] == [
        (socket.AF_INET6, ("::", 9090)),
        (socket.AF_INET, ("0.0.0.0", 9090)),
    ]


def test_an_empty_host_is_every_interface() -> None:
    tried = listening.addresses("", 9090)
    assert tried
    assert {sockaddr[0] for _, sockaddr in tried} <= {"0.0.0.0", "::"}
    assert all(sockaddr[1] == 9090 for _, sockaddr in tried)


def test_port_zero_is_kept_for_the_system_to_choose() -> None:
    assert listening.addresses("127.0.0.1", 0) == [(socket.AF_INET, ("127.0.0.1", 0))]


def test_each_family_is_tried_once_per_address() -> None:
    tried = listening.addresses("[::]", 0)
    assert len(tried) == len(set(tried))


def test_what_is_tried_can_be_bound_as_given() -> None:
    """The pairs fit socket.socket and bind as they are: the loopback address, on a port the system picks."""
    [(family, sockaddr)] = listening.addresses("127.0.0.1", 0)
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind(sockaddr)
        host, port = listener.getsockname()
    assert host == "127.0.0.1"
    assert port > 0
