"""tls.py: what a certificate file must be to load, the reload rules, and who the caller is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service import tls
from tests.certs import Authority


class AuthContext:
    def __init__(self, **properties: list[bytes]) -> None:
        self._properties = properties

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._properties


@pytest.mark.parametrize(
    ("properties", "caller"),
    [
        (
            {
                "peer_uri": [b"https://x", b"spiffe://td/ns/a/sa/b"],
                "peer_dns": [b"a"],
                "x509_common_name": [b"cn"],
            },
            "spiffe://td/ns/a/sa/b",
        ),
        (
            {"peer_uri": [b"https://x"], "peer_dns": [b"first", b"second"], "x509_common_name": [b"cn"]},
            "first",
        ),
        ({"x509_common_name": [b"cn"], "x509_subject": [b"CN=cn,O=o"]}, "cn"),
        ({"x509_subject": [b"O=o"]}, "O=o"),
        ({"transport_security_type": [b"ssl"]}, "anonymous"),  # TLS without a client certificate
        ({}, "anonymous"),  # plaintext
    ],
)
def test_the_caller_is_the_spiffe_id_else_first_dns_san_else_cn(
    properties: dict[str, Any], caller: str
) -> None:
    assert tls.caller_of(AuthContext(**properties)) == caller  # type: ignore[arg-type]


def test_what_does_not_load_is_named(tmp_path: Path) -> None:
    authority = Authority()
    leaf = authority.issue(server=True)
    cert, key, other_key, ca = (tmp_path / n for n in ("c.pem", "k.pem", "o.pem", "ca.pem"))
    leaf.write(cert, key)
    other_key.write_bytes(authority.issue().key_pem)
    ca.write_bytes(authority.cert_pem)
    assert tls.load_pair(str(cert), str(key), str(ca)).serial == leaf.serial
    cases = [
        ((str(tmp_path / "none.pem"), str(key)), "cannot read the certificate file"),
        ((str(key), str(key)), "not a PEM certificate"),
        ((str(cert), str(cert)), "not an unencrypted PEM private key"),
        ((str(cert), str(other_key)), "is not the key of the certificate"),
        ((str(cert), str(key), str(key)), "not PEM CA certificates"),
    ]
    for files, complaint in cases:
        with pytest.raises(tls.TlsError, match=complaint):
            tls.load_pair(*files)


def test_a_refresh_reads_only_changed_files_and_keeps_the_last_good_pair(tmp_path: Path) -> None:
    authority = Authority()
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    first = authority.issue(server=True)
    first.write(cert, key)
    reloads: list[bool] = []
    pair = tls.WatchedPair(str(cert), str(key), listener="grpc", on_reload=reloads.append)
    assert pair.refresh() is None and reloads == []
    cert.write_bytes(b"half written")
    assert pair.refresh() is None and pair.current.serial == first.serial
    assert pair.refresh() is None and reloads == [False]  # one report per change
    second = authority.issue(server=True)
    second.write(cert, key)
    fresh = pair.refresh()
    assert fresh is not None and fresh.serial == second.serial == pair.current.serial
    assert reloads == [False, True]
