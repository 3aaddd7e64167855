"""tls.py: what a certificate file must be to load, the reload rules, and who the caller is."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from service.security import tls
from tests.certs import Authority


class AuthContext:
    """A ServicerContext's auth_context(), as grpc fills it under mutual TLS: its own properties, cut
    at a NUL byte as grpc core cuts them, beside the certificate itself."""

    def __init__(self, cert_pem: bytes | None = None, **properties: list[bytes]) -> None:
        self._properties = dict(properties)
        if cert_pem is not None:
            self._properties["x509_pem_cert"] = [cert_pem]

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._properties


AUTHORITY = Authority()


def caller(leaf: dict[str, Any]) -> str:
    """The caller a client certificate issued with `leaf`'s names is served as."""
    return tls.caller_of(AuthContext(AUTHORITY.issue(**leaf).cert_pem))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("leaf", "identity"),
    [
        (
            {"uris": ("https://x", "spiffe://td/ns/a/sa/b"), "dns": ("a",), "common_name": "cn"},
            "spiffe://td/ns/a/sa/b",
        ),
        ({"uris": ("https://x",), "dns": ("first", "second"), "common_name": "cn"}, "first"),
        ({"common_name": "cn", "organization": "o"}, "cn"),
        ({"common_name": None, "organization": "o"}, "O=o"),
        # Not control characters: printable Unicode is taken as it is.
        ({"common_name": "caf\u00e9 \u00a0x"}, "caf\u00e9 \u00a0x"),
    ],
)
def test_the_caller_is_the_spiffe_id_else_first_dns_san_else_cn_else_the_subject(
    leaf: dict[str, Any], identity: str
) -> None:
    assert caller(leaf) == identity


@pytest.mark.parametrize(
    "properties",
    [{"transport_security_type": [b"ssl"]}, {}],  # TLS without a client certificate; plaintext
)
def test_without_a_client_certificate_the_caller_is_anonymous(properties: dict[str, list[bytes]]) -> None:
    assert tls.caller_of(AuthContext(**properties)) == "anonymous"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("leaf", "reason", "problem"),
    [
        (
            {"spiffe_id": "spiffe://example.org/alice\x00evil"},
            "control_character",
            "a SPIFFE ID holds the control character U+0000",
        ),
        (
            {"dns": ("alice\x01.example",)},
            "control_character",
            "a DNS SAN holds the control character U+0001",
        ),
        # A DNS SAN that would not be the identity is refused too: no name of a refused kind is let by.
        (
            {"spiffe_id": "spiffe://example.org/alice", "dns": ("ok.example", "evil\x7f.example")},
            "control_character",
            "a DNS SAN holds the control character U+007F",
        ),
        (
            {"common_name": "alice\x1bevil"},
            "control_character",
            "a subject CN holds the control character U+001B",
        ),
        (
            {"common_name": "alice\x85evil"},
            "control_character",
            "a subject CN holds the control character U+0085",
        ),
        (
            {"common_name": "alice\x00evil"},
            "control_character",
            "a subject CN holds the control character U+0000",
        ),
        (
            {"common_name": None, "organization": "alice\nevil"},
            "control_character",
            "its subject holds the control character U+000A",
        ),
        (
            {"spiffe_id": "spiffe://example.org/alice", "uris": ("spiffe://example.org/bob",)},
            "several_spiffe_ids",
            "it carries 2 SPIFFE IDs, not one",
        ),
        ({"common_name": None}, "no_identity", "it has no SPIFFE ID, DNS SAN or subject to name the caller"),
    ],
)
def test_a_certificate_naming_its_caller_ambiguously_is_refused_without_quoting_it(
    leaf: dict[str, Any], reason: str, problem: str
) -> None:
    issued = AUTHORITY.issue(**leaf)
    # grpc core's properties, as it cut them: what the service served as the caller before.
    context = AuthContext(issued.cert_pem, peer_uri=[b"spiffe://example.org/alice"], peer_dns=[b"alice"])
    with pytest.raises(tls.CallerIdentityError) as refused:
        tls.caller_of(context)  # type: ignore[arg-type]
    refusal = refused.value.refusal
    assert (refusal.reason, refusal.problem) == (reason, problem)
    assert reason in tls.REFUSAL_REASONS
    assert refusal.serial == f"{issued.serial:x}"
    assert (
        refusal.sha256 == x509.load_pem_x509_certificate(issued.cert_pem).fingerprint(hashes.SHA256()).hex()
    )
    assert "evil" not in str(refused.value) and "bob" not in str(refused.value)


def test_a_certificate_that_does_not_parse_is_refused() -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
    identity = tls.identity_of(AuthContext(pem))  # type: ignore[arg-type]
    assert isinstance(identity, tls.Refusal)
    assert (identity.reason, identity.serial) == ("unreadable_certificate", "")
    assert identity.sha256 == hashlib.sha256(pem).hexdigest()


def test_each_distinct_certificate_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[bytes] = []
    load = x509.load_pem_x509_certificate

    def counting(pem: bytes) -> x509.Certificate:
        parsed.append(pem)
        return load(pem)

    monkeypatch.setattr(tls.x509, "load_pem_x509_certificate", counting)
    tls.certificate_identity.cache_clear()
    alice, bob = (
        AUTHORITY.issue(spiffe_id=f"spiffe://example.org/{name}").cert_pem for name in ("alice", "bob")
    )
    for _ in range(3):
        for pem in (alice, bob):
            # A new bytes object at each call, as grpc gives one per RPC.
            assert tls.caller_of(AuthContext(bytes(bytearray(pem)))).startswith("spiffe://")  # type: ignore[arg-type]
    assert parsed == [alice, bob]
    assert tls.certificate_identity.cache_info().maxsize == tls.IDENTITY_CACHE_SIZE


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
