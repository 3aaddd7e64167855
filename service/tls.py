"""TLS for the gRPC port and /metrics: certificate files read at start and re-read when they change on
disk (cert-manager and SPIFFE helpers rotate them in place), and the caller's identity from its
certificate.

gRPC asks for the server's certificate configuration at each new handshake
(`grpc.dynamic_ssl_server_credentials`), so a rotation reaches new connections without a restart and
leaves open ones alone. A file is re-read only when its stat (inode, size, mtime) changes, so a handshake
costs a few stat calls. A replacement that does not load (half written, a key that does not match) keeps
the last good pair in force, with a log line and a metric; at start the same failure stops the process.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import grpc
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

ANONYMOUS = "anonymous"

log = logging.getLogger(__name__)


class TlsError(Exception):
    """A certificate, key or CA file is missing or unusable; the message names the file."""


@dataclasses.dataclass(frozen=True)
class KeyPair:
    """A certificate chain, its key and (for mutual TLS) the CA that signs clients, as validated bytes."""

    cert_pem: bytes
    key_pem: bytes
    client_ca_pem: bytes | None
    serial: int
    not_before: float  # epoch seconds
    not_after: float


def load_pair(cert_file: str, key_file: str, client_ca_file: str | None = None) -> KeyPair:
    """Read and check the files: a PEM chain, a PEM key that matches its first certificate, and CA
    certificates. TlsError says what is wrong with which file."""
    cert_pem, key_pem = _read(cert_file, "certificate"), _read(key_file, "key")
    client_ca_pem = _read(client_ca_file, "client CA") if client_ca_file is not None else None
    try:
        certificate = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError as exc:
        raise TlsError(f"{cert_file}: not a PEM certificate ({exc})") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise TlsError(f"{key_file}: not an unencrypted PEM private key ({exc})") from None
    try:
        matches = _public_bytes(key.public_key()) == _public_bytes(certificate.public_key())
    except UnsupportedAlgorithm as exc:
        raise TlsError(f"{cert_file}: a key type this service cannot use ({exc})") from None
    if not matches:
        raise TlsError(f"{key_file} is not the key of the certificate in {cert_file}")
    if client_ca_pem is not None:
        try:
            x509.load_pem_x509_certificates(client_ca_pem)
        except ValueError as exc:
            raise TlsError(f"{client_ca_file}: not PEM CA certificates ({exc})") from None
    return KeyPair(
        cert_pem=cert_pem,
        key_pem=key_pem,
        client_ca_pem=client_ca_pem,
        serial=certificate.serial_number,
        not_before=certificate.not_valid_before_utc.timestamp(),
        not_after=certificate.not_valid_after_utc.timestamp(),
    )


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise TlsError(f"cannot read the {what} file {path}: {exc.strerror}") from None


def _public_bytes(public_key: Any) -> bytes:
    encoded: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return encoded


class WatchedPair:
    """The certificate files of one listener, and the last pair of them that loaded.

    `refresh()` is safe to call from any thread (gRPC calls it at every handshake). `on_reload(ok)` is
    told of every reload attempt after the start, for the metrics. `quiet`: a reader of files that other
    processes serve and log about (the supervisor of workers) logs nothing itself.
    """

    def __init__(
        self,
        cert_file: str,
        key_file: str,
        client_ca_file: str | None = None,
        *,
        listener: str,
        on_reload: Callable[[bool], None] = lambda ok: None,
        quiet: bool = False,
    ) -> None:
        self.files = (cert_file, key_file, client_ca_file)
        self.listener = listener
        self._quiet = quiet
        self._on_reload = on_reload
        self._lock = threading.Lock()
        self._signature = self._stat()
        self.current = load_pair(cert_file, key_file, client_ca_file)  # TlsError stops the start

    def _stat(self) -> tuple[object, ...]:
        signature: list[object] = []
        for path in self.files:
            if path is None:
                continue
            try:
                # Follows symlinks: Kubernetes swaps a `..data` link when a Secret changes.
                found = os.stat(path)
                signature.append((found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns))
            except OSError:
                signature.append(None)
        return tuple(signature)

    def validity(self) -> tuple[float, float]:
        """When the certificate in use became valid and when it expires (epoch seconds)."""
        return self.current.not_before, self.current.not_after

    def refresh(self) -> KeyPair | None:
        """The new pair when the files changed and load; None when they did not change, or changed into
        something that does not load (logged once per change; the last good pair stays)."""
        with self._lock:
            signature = self._stat()
            if signature == self._signature:
                return None
            self._signature = signature
            try:
                pair = load_pair(*self.files[:2], self.files[2])
            except TlsError as exc:
                if not self._quiet:
                    log.error(
                        "certificate files changed but do not load; the last good certificate stays in use",
                        extra={
                            "listener": self.listener,
                            "problem": str(exc),
                            "serial": f"{self.current.serial:x}",
                        },
                    )
                self._on_reload(False)
                return None
            changed = pair != self.current
            self.current = pair
            # Inside the lock, as the failure above: a later failed reload's gauge must not be overwritten.
            self._on_reload(True)
        if changed and not self._quiet:
            log.info("certificate reloaded", extra={"listener": self.listener, "serial": f"{pair.serial:x}"})
        return pair if changed else None


def grpc_credentials(pair: WatchedPair) -> grpc.ServerCredentials:
    """Server credentials that re-read `pair` at each handshake; client certificates are required
    (mutual TLS) when the pair has a client CA."""

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        fresh = pair.refresh()
        return None if fresh is None else _certificate_configuration(fresh)

    return grpc.dynamic_ssl_server_credentials(
        _certificate_configuration(pair.current),
        fetch,  # type: ignore[arg-type]  # grpc takes None as "no change"; the stubs do not say so
        require_client_authentication=pair.current.client_ca_pem is not None,
    )


def _certificate_configuration(pair: KeyPair) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(pair.key_pem, pair.cert_pem)], root_certificates=pair.client_ca_pem
    )


def ssl_contexts(pair: WatchedPair) -> Callable[[], ssl.SSLContext]:
    """The server context (TLS 1.2 or later) for each new connection to /metrics: built anew when
    `pair`'s files changed and load."""
    context = _ssl_context(pair)

    def current() -> ssl.SSLContext:
        nonlocal context
        if pair.refresh() is not None:
            try:
                context = _ssl_context(pair)
            except TlsError as exc:  # changed again since refresh() read them
                log.error(
                    "certificate files do not load", extra={"listener": pair.listener, "problem": str(exc)}
                )
        return context

    return current


def _ssl_context(pair: WatchedPair) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    cert_file, key_file, _ = pair.files
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"{cert_file}, {key_file}: {exc}") from None
    return context


def caller_of(context: grpc.ServicerContext) -> str:
    """Who is calling, from the client certificate that mutual TLS verified: its SPIFFE ID (a URI SAN
    `spiffe://...`), else its first DNS SAN, else its subject CN (else its whole subject). Without a
    client certificate: `anonymous`."""
    # Each property holds a list of values; the stubs call them bytes.
    auth = cast(Mapping[str, Sequence[bytes]], context.auth_context())
    for uri in auth.get("peer_uri", ()):
        if uri.startswith(b"spiffe://"):
            return _text(uri)
    for name in ("peer_dns", "x509_common_name", "x509_subject"):
        values = auth.get(name)
        if values:
            return _text(values[0])
    return ANONYMOUS


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")
