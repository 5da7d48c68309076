"""TLS material generated at every start: a throw-away CA, a server certificate it signs, and a CA
bundle (our CA + certifi's) that can be exported as `REQUESTS_CA_BUNDLE` without breaking any other
HTTPS the process does."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
import shutil
import ssl
import tempfile
from pathlib import Path
from typing import Optional

import certifi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=30)
CA_VALIDITY = datetime.timedelta(days=3650)  # a shared CA outlives many runs
# Clients compare notBefore with their own clock; back-date a little so a skewed clock still works.
BACKDATE = datetime.timedelta(hours=1)


@dataclasses.dataclass
class TLSFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    ca_bundle: Path  # our CA + the public CAs from certifi

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.server_cert), str(self.server_key))
        return ctx


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dropbox-emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _new_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    now = datetime.datetime.now(datetime.timezone.utc)
    # EC P-256 keys: generated in milliseconds, unlike RSA, so start-up stays fast.
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("dropbox-emulator local CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return ca_key, ca_cert


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def shared_ca(ca_dir: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The CA kept in `ca_dir` (created on first use), so that several emulators, or restarts,
    share one CA and a single `REQUESTS_CA_BUNDLE` trusts them all.

    Concurrent first uses race safely: each builds a CA in its own directory and renames it to
    `ca_dir/root`; the losers of the rename use the winner's.
    """
    root = ca_dir / "root"
    if not (root / "ca.pem").exists():
        ca_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".ca-", dir=str(ca_dir)))
        key, cert = _new_ca()
        _write_private(staging / "ca-key.pem", _pem_key(key))
        (staging / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        try:
            os.rename(staging, root)
        except OSError:  # another emulator won
            shutil.rmtree(staging, ignore_errors=True)
    loaded = serialization.load_pem_private_key((root / "ca-key.pem").read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{root / 'ca-key.pem'} is not an EC key made by dropbox-emulator")
    return loaded, x509.load_pem_x509_certificate((root / "ca.pem").read_bytes())


def generate(
    directory: Path,
    hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
    ca_dir: Optional[Path] = None,
) -> TLSFiles:
    """Write a server certificate for `hosts`, its CA and the CA bundle into `directory`.

    The CA is fresh unless `ca_dir` names a shared one (see `shared_ca`).
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, ca_cert = shared_ca(ca_dir) if ca_dir is not None else _new_ca()
    ca_name = ca_cert.subject

    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    files = TLSFiles(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        ca_bundle=directory / "ca-bundle.pem",
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    files.ca_cert.write_bytes(ca_pem)
    files.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(files.server_key, _pem_key(key))  # private to this user
    public_cas = Path(certifi.where()).read_bytes()
    files.ca_bundle.write_bytes(ca_pem + b"\n" + public_cas)
    return files
