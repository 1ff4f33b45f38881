"""A private CA and the certificates `lynx up --tls` signs with it (the `cryptography` package)."""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CA_FILE, CA_KEY_FILE = "ca.pem", "ca.key"
SERVER_CERT, SERVER_KEY = "server.pem", "server.key"
VALID_DAYS = 825


@dataclass(frozen=True)
class TlsFiles:
    """Where a generated CA and one certificate with its key were written."""

    ca: Path
    cert: Path
    key: Path


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _subject_alt_names(hosts: Iterable[str]):
    from cryptography import x509

    names, seen = [], set()
    for host in ["127.0.0.1", "localhost", *hosts]:
        if not host or host in seen or host in ("0.0.0.0", "::"):
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def ensure_ca(directory: Path, common_name: str = "Lynx private CA"):
    """The CA in `directory` (ca.pem, ca.key), created on first use; returns (certificate, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    cert_path, key_path = directory / CA_FILE, directory / CA_KEY_FILE
    if cert_path.is_file() and key_path.is_file():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        return cert, key
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _pem_key(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def issue(directory: Path, name: str, hosts: Iterable[str] = (), client: bool = False) -> TlsFiles:
    """Sign a certificate for `name` with the CA in `directory` (created if missing) and write
    `<name>.pem` / `<name>.key` there. Server certificates name 127.0.0.1, localhost and `hosts`
    as subject alternative names; client certificates (`client=True`, mutual TLS) carry `name`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = Path(directory)
    ca_cert, ca_key = ensure_ca(directory)
    key = _new_key()
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    builder = builder.add_extension(_subject_alt_names([name] if client else hosts), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    files = TlsFiles(directory / CA_FILE, directory / f"{name}.pem", directory / f"{name}.key")
    _write(files.key, _pem_key(key), private=True)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM))
    return files


def ensure_server_files(directory: Path, hosts: Iterable[str] = ()) -> TlsFiles:
    """The CA and a server certificate for `hosts` (plus 127.0.0.1 and localhost) in `directory`,
    reused when the existing certificate already names every host."""
    from cryptography import x509

    directory = Path(directory)
    files = TlsFiles(directory / CA_FILE, directory / SERVER_CERT, directory / SERVER_KEY)
    if files.cert.is_file() and files.key.is_file() and files.ca.is_file():
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
        have = {str(n.value) for n in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value}
        wanted = {str(n.value) for n in _subject_alt_names(hosts)}
        if wanted <= have:
            return files
    issued = issue(directory, "server", hosts)
    return TlsFiles(issued.ca, issued.cert, issued.key)


def main(argv: list[str] | None = None) -> None:
    """`python -m lynx_common.tls --dir DIR --host NAME ...`: write ca.pem and server.pem/server.key for
    the given names (plus 127.0.0.1 and localhost), reusing what is there; `--client NAME` adds a client
    certificate for mutual TLS."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lynx_common.tls", description=main.__doc__)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--host", action="append", default=[], help="a name or address of the servers")
    parser.add_argument("--client", action="append", default=[], help="a client certificate to issue")
    args = parser.parse_args(argv)
    files = ensure_server_files(args.dir, args.host)
    print(f"CA {files.ca}; server certificate {files.cert} for 127.0.0.1, localhost, {', '.join(args.host)}")
    for name in args.client:
        client = issue(args.dir, name, client=True)
        print(f"client certificate {client.cert} ({client.key})")


if __name__ == "__main__":
    main()
