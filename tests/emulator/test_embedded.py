"""The Emulator class: lifecycle, configuration checks, endpoint URL."""

from __future__ import annotations

import http.client
import socket

import pytest

from emulator import Emulator
from tests.emulator.helpers import exchange


def test_lifecycle() -> None:
    emu = Emulator()
    with pytest.raises(RuntimeError):
        _ = emu.endpoint_url
    emu.start()
    try:
        with pytest.raises(RuntimeError):
            emu.start()
        assert emu.endpoint_url == f"http://127.0.0.1:{emu.port}"
        assert emu.port > 0
    finally:
        emu.stop()
    emu.stop()  # idempotent
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", emu.port), timeout=1):
        pass


def test_stop_disconnects_idle_keep_alive_clients() -> None:
    with Emulator() as emu:
        conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
        assert exchange(conn, "GET", "/")[0] == 404
    # The server closed the kept-alive connection, so reuse fails instead of hanging.
    with pytest.raises((http.client.HTTPException, OSError)):
        exchange(conn, "GET", "/")
    conn.close()


def test_invalid_configuration_is_rejected() -> None:
    with pytest.raises(ValueError, match="memory id"):
        Emulator(memory_ids=["not valid"])
    with pytest.raises(ValueError, match="at least one"):
        Emulator(memory_ids=[])
    with pytest.raises(ValueError, match="journal"):
        Emulator(journal_size=-1)


def test_ipv6_endpoint_url() -> None:
    try:
        emu = Emulator(host="::1").start()
    except OSError:
        pytest.skip("IPv6 loopback is not available")
    try:
        assert emu.endpoint_url == f"http://[::1]:{emu.port}"
        conn = http.client.HTTPConnection("::1", emu.port, timeout=5)
        try:
            assert exchange(conn, "GET", "/")[0] == 404
        finally:
            conn.close()
    finally:
        emu.stop()
