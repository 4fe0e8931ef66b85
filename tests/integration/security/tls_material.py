"""Test certificates made with the `openssl` command: a CA, a broker certificate for 127.0.0.1/localhost signed
by it, a client certificate for mTLS, and a second, unrelated CA (the "unknown CA" case).

Keys are unencrypted PKCS#8 (what Kafka's PEM keystore reads). Nothing here is fit for production: short-lived,
throw-away material in a test's tmp dir.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {done.stderr.strip()}")


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", str(key), "-out", str(cert), cwd=directory)
    return key, cert


def _signed(directory: Path, name: str, ca: tuple[Path, Path], san: str | None) -> tuple[Path, Path]:
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.pem"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr),
             cwd=directory)
    ext = directory / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\n" if san else "extendedKeyUsage=clientAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[1]), "-CAkey", str(ca[0]), "-CAcreateserial",
             "-days", "2", "-out", str(cert), "-extfile", str(ext), cwd=directory)
    return key, cert


@dataclass(frozen=True)
class TlsMaterial:
    ca: Path            # the CA clients must trust (signed the broker and client certificates)
    broker_pem: Path    # broker key + certificate in one PEM file (Kafka's PEM keystore)
    client_cert: Path
    client_key: Path
    other_ca: Path      # a CA that signed nothing of this broker


def make_tls_material(directory: Path) -> TlsMaterial:
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca(directory, "test-ca")
    broker_key, broker_cert = _signed(directory, "broker", ca, "IP:127.0.0.1,DNS:localhost")
    client_key, client_cert = _signed(directory, "client", ca, None)
    _, other = _ca(directory, "other-ca")
    broker_pem = directory / "broker-keystore.pem"
    broker_pem.write_text(broker_key.read_text() + broker_cert.read_text())
    return TlsMaterial(ca=ca[1], broker_pem=broker_pem, client_cert=client_cert, client_key=client_key, other_ca=other)
