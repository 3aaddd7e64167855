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
import functools
import hashlib
import logging
import re
import ssl
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import grpc
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from service.security import watched

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
        self._watched = watched.WatchedFiles(
            [path for path in self.files if path is not None],
            lambda: load_pair(cert_file, key_file, client_ca_file),  # TlsError stops the start
            refused=TlsError,
            on_reload=on_reload,
        )

    @property
    def current(self) -> KeyPair:
        """The pair in use: the last that loaded."""
        return self._watched.value

    def validity(self) -> tuple[float, float]:
        """When the certificate in use became valid and when it expires (epoch seconds)."""
        return self.current.not_before, self.current.not_after

    def refresh(self) -> KeyPair | None:
        """The new pair when the files changed and load; None when they did not change, or changed into
        something that does not load (logged once per change; the last good pair stays)."""
        outcome = self._watched.refresh()
        if outcome is None:
            return None
        if isinstance(outcome, Exception):
            if not self._quiet:
                log.error(
                    "certificate files changed but do not load; the last good certificate stays in use",
                    extra={
                        "listener": self.listener,
                        "problem": str(outcome),
                        "serial": f"{self.current.serial:x}",
                    },
                )
            return None
        previous, pair = outcome
        if pair == previous:
            return None
        if not self._quiet:
            log.info("certificate reloaded", extra={"listener": self.listener, "serial": f"{pair.serial:x}"})
        return pair


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


# The ErrorInfo reason of a call refused for its certificate's identity.
IDENTITY_INVALID = "CALLER_IDENTITY_INVALID"
# Why a certificate's identity is refused: the `reason` label of agentcore_caller_identity_refusals_total.
REFUSAL_REASONS = ("control_character", "several_spiffe_ids", "no_identity", "unreadable_certificate")
# Distinct client certificates whose identity is remembered: a fleet's workloads, a few rotations each.
IDENTITY_CACHE_SIZE = 512
_SPIFFE_SCHEME = "spiffe://"


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why the service refuses the identity a client certificate gives, never quoting it: `reason`
    (one of REFUSAL_REASONS), `problem` in words, and which certificate (its SHA-256, of the PEM when
    it does not parse, and serial number in hex, "" when unknown)."""

    reason: str
    problem: str
    sha256: str
    serial: str


class CallerIdentityError(Exception):
    """The caller's certificate names it in a way the service refuses (PERMISSION_DENIED, reason
    CALLER_IDENTITY_INVALID)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(f"the client certificate's identity is refused: {refusal.problem}")
        self.refusal = refusal


def identity_of(context: grpc.ServicerContext) -> str | Refusal:
    """Who is calling, read from the client certificate that mutual TLS verified (the auth context's
    `x509_pem_cert`): its SPIFFE ID (a URI SAN `spiffe://...`), else its first DNS SAN, else its first
    subject CN, else its whole subject; `anonymous` without a client certificate. Or why that identity
    is refused: a control character in any of them, more than one SPIFFE ID, nothing to name the
    caller, a certificate that does not parse. grpc core's own properties (`peer_uri`, `peer_dns`,
    `x509_common_name`) are not used: they end at a NUL byte."""
    # Each property holds a list of values; the stubs call them bytes.
    auth = cast(Mapping[str, Sequence[bytes]], context.auth_context())
    pem = auth.get("x509_pem_cert")
    return certificate_identity(pem[0]) if pem else ANONYMOUS


def caller_of(context: grpc.ServicerContext) -> str:
    """identity_of(context), or CallerIdentityError when it is refused."""
    return accepted(identity_of(context))


def accepted(identity: str | Refusal) -> str:
    """The caller `identity` names, or CallerIdentityError when it is a refusal."""
    if isinstance(identity, Refusal):
        raise CallerIdentityError(identity)
    return identity


@functools.lru_cache(maxsize=IDENTITY_CACHE_SIZE)
def certificate_identity(pem: bytes) -> str | Refusal:
    """The identity the PEM certificate `pem` gives, or why it is refused (see identity_of); each
    distinct certificate is parsed once."""
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except (ValueError, x509.InvalidVersion):
        return Refusal("unreadable_certificate", "the client certificate is not PEM X.509", _sha256(pem), "")
    sha256, serial = certificate.fingerprint(hashes.SHA256()).hex(), f"{certificate.serial_number:x}"
    try:
        names = _Names.of(certificate)
    except _UNREADABLE:
        return Refusal(
            "unreadable_certificate", "the client certificate's names do not parse", sha256, serial
        )
    identity = names.identity()
    return identity if isinstance(identity, str) else Refusal(*identity, sha256, serial)


# What cryptography raises for a name or extension it cannot decode: a duplicate extension, a SAN
# that is not DER, a string type that does not decode.
_UNREADABLE = (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)


@dataclasses.dataclass(frozen=True)
class _Names:
    """The names of a certificate that may name its caller, decoded."""

    spiffe_ids: list[str]
    dns_names: list[str]
    common_names: list[str]
    subject: x509.Name

    @classmethod
    def of(cls, certificate: x509.Certificate) -> _Names:
        try:
            extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            uris = extension.value.get_values_for_type(x509.UniformResourceIdentifier)
            dns_names = extension.value.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            uris, dns_names = [], []
        subject = certificate.subject
        return cls(
            spiffe_ids=[uri for uri in uris if uri.startswith(_SPIFFE_SCHEME)],
            dns_names=dns_names,
            common_names=[str(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)],
            subject=subject,
        )

    def identity(self) -> str | tuple[str, str]:
        """The caller these names give, or (reason, problem) when they are refused."""
        for what, values in (
            ("SPIFFE ID", self.spiffe_ids),
            ("DNS SAN", self.dns_names),
            ("subject CN", self.common_names),
        ):
            for value in values:
                control = _control_character(value)
                if control is not None:
                    return "control_character", f"a {what} holds the control character U+{control:04X}"
        if len(self.spiffe_ids) > 1:
            return "several_spiffe_ids", f"it carries {len(self.spiffe_ids)} SPIFFE IDs, not one"
        for values in (self.spiffe_ids, self.dns_names, self.common_names):
            if values:
                return values[0]
        for attribute in self.subject:
            control = _control_character(str(attribute.value))
            if control is not None:
                return "control_character", f"its subject holds the control character U+{control:04X}"
        whole = self.subject.rfc4514_string()
        return whole or ("no_identity", "it has no SPIFFE ID, DNS SAN or subject to name the caller")


def _control_character(text: str) -> int | None:
    """The first C0 control, DEL or C1 control in `text`, as a code point."""
    match = _CONTROL.search(text)
    return None if match is None else ord(match.group())


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
