"""Certificates made by the tests: a CA, and server and client certificates with SPIFFE URI SANs, DNS
SANs or a CN alone, written as PEM files where a test wants them (trustme cannot put a URI in a SAN)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVER_NAME = "localhost"


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclasses.dataclass(frozen=True)
class Leaf:
    cert_pem: bytes
    key_pem: bytes
    serial: int

    def write(self, cert_file: Path, key_file: Path) -> None:
        """Replace both files, as a rotation does (each written whole, then renamed into place)."""
        for path, content in ((cert_file, self.cert_pem), (key_file, self.key_pem)):
            staged = path.with_suffix(".tmp")
            staged.write_bytes(content)
            staged.replace(path)


class Authority:
    """A CA that issues leaf certificates."""

    def __init__(self, name: str = "test CA") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_pem = self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        *,
        spiffe_id: str | None = None,
        uris: tuple[str, ...] = (),
        dns: tuple[str, ...] = (),
        common_name: str | None = "leaf",
        organization: str | None = None,
        server: bool = False,
        days: float = 10,
    ) -> Leaf:
        """A leaf with these SANs (`spiffe_id` first among the URIs) and a subject of `common_name`
        and `organization` (empty when both are None); names are written as given, control
        characters included."""
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
        for uri in (spiffe_id, *uris) if spiffe_id is not None else uris:
            names.append(x509.UniformResourceIdentifier(uri))
        if server:
            names += [x509.DNSName(SERVER_NAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        subject = [
            x509.NameAttribute(oid, value)
            for oid, value in ((NameOID.ORGANIZATION_NAME, organization), (NameOID.COMMON_NAME, common_name))
            if value is not None
        ]
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(subject))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=days))
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(self._key, hashes.SHA256())
        return Leaf(
            certificate.public_bytes(serialization.Encoding.PEM), _pem_key(key), certificate.serial_number
        )


def channel_credentials(authority: Authority, client: Leaf | None = None) -> grpc.ChannelCredentials:
    """Credentials that trust `authority`'s server certificates, presenting `client` when given."""
    if client is None:
        return grpc.ssl_channel_credentials(authority.cert_pem)
    return grpc.ssl_channel_credentials(authority.cert_pem, client.key_pem, client.cert_pem)


def secure_channel(port: int, credentials: grpc.ChannelCredentials) -> grpc.Channel:
    return grpc.secure_channel(
        f"127.0.0.1:{port}", credentials, options=[("grpc.ssl_target_name_override", SERVER_NAME)]
    )
