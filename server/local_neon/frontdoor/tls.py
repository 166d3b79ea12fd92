"""The front door's TLS: a self-signed certificate made at first start and kept in local Neon's home.

``<home>/front-door/server.crt`` (0644) and ``server.key`` (0600) hold an ECDSA P-256 certificate for ``localhost``,
``*.localhost``, 127.0.0.1 and ::1, valid for ten years; later starts reuse it, so clients that pinned it (``sslmode=
verify-ca`` with ``sslrootcert=<home>/front-door/server.crt``) keep working. ECDSA because a handshake costs a fraction
of an RSA one, and every new connection through the front door pays for one.

SCRAM channel binding (``SCRAM-SHA-256-PLUS``, what ``channel_binding=require`` asks for) binds the exchange to this
certificate: ``tls-server-end-point`` is the SHA-256 hash of its DER encoding (RFC 5929; SHA-256 because the
certificate is signed with ECDSA-SHA256). The certificate is made with ``cryptography``: Python's ``ssl`` module can
use certificates but not make them, and shelling out to ``openssl`` would tie local Neon to a binary and its flags.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ALPN", "Certificate", "ensure_certificate", "server_name"]

ALPN = "postgresql"
"""The ALPN protocol PostgreSQL 17's direct TLS negotiation (``sslnegotiation=direct``) requires."""

_VALID_DAYS = 3650
_SNI_ATTRIBUTE = "neon_server_name"


@dataclass(frozen=True)
class Certificate:
    """The front door's certificate and key files, and what channel binding needs of them."""

    cert_file: Path
    key_file: Path

    @property
    def end_point(self) -> bytes:
        """``tls-server-end-point`` channel binding data: SHA-256 of the certificate's DER encoding."""
        der = ssl.PEM_cert_to_DER_cert(self.cert_file.read_text(encoding="ascii"))
        return hashlib.sha256(der).digest()

    def server_context(self) -> ssl.SSLContext:
        """A server-side context with this certificate: TLS 1.2 or later, ALPN ``postgresql`` offered."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        context.set_alpn_protocols([ALPN])
        context.sni_callback = _record_server_name
        return context


def server_name(tls: ssl.SSLObject | ssl.SSLSocket) -> str | None:
    """The host name the client sent with SNI, if it sent one."""
    name = getattr(tls, _SNI_ATTRIBUTE, None)
    return name if isinstance(name, str) else None


def _record_server_name(tls: ssl.SSLObject | ssl.SSLSocket, name: str | None, context: ssl.SSLContext) -> None:
    setattr(tls, _SNI_ATTRIBUTE, name)


def ensure_certificate(directory: Path) -> Certificate:
    """The certificate in ``directory`` (made there, with the directory, on first use)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    found = Certificate(directory / "server.crt", directory / "server.key")
    if found.cert_file.exists() and found.key_file.exists():
        return found
    cert_pem, key_pem = _make()
    fd = os.open(found.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_pem)
    found.key_file.chmod(0o600)
    found.cert_file.write_bytes(cert_pem)
    found.cert_file.chmod(0o644)
    return found


def _make() -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "local Neon front door")])
    now = datetime.datetime.now(datetime.UTC)
    alternative = x509.SubjectAlternativeName(
        [
            x509.DNSName("localhost"),
            x509.DNSName("*.localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
        .add_extension(alternative, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
