"""The metrics server's TLS: a certificate from ``--metrics-cert-dir``, else a self-signed one.

As controller-runtime does without a certificate: scrapers then skip verification or pin
it, but the bearer token they send is still never in clear on the network.
"""
from __future__ import annotations

import datetime
import socket
import ssl
import tempfile
from pathlib import Path

CERT_FILE, KEY_FILE = "tls.crt", "tls.key"
SELF_SIGNED_DAYS = 365


def self_signed(hosts: list[str]) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for ``hosts`` (DNS names or IPs), valid one year."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(cert_dir: str | None) -> ssl.SSLContext:
    """TLS 1.2+ server context from ``cert_dir`` (tls.crt, tls.key), else self-signed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_dir:
        context.load_cert_chain(str(Path(cert_dir) / CERT_FILE), str(Path(cert_dir) / KEY_FILE))
        return context
    cert, key = self_signed([socket.gethostname(), "localhost", "127.0.0.1"])
    with tempfile.TemporaryDirectory() as scratch:  # ssl loads only from files; gone at once
        cert_path, key_path = Path(scratch) / CERT_FILE, Path(scratch) / KEY_FILE
        cert_path.write_bytes(cert)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key)
        context.load_cert_chain(str(cert_path), str(key_path))
    return context
