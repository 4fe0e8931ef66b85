"""A private Kafka broker with a SASL_SSL listener (SCRAM-SHA-512 user, TLS from a test CA), once per module.

The broker's PLAINTEXT listener exists too (the broker uses it itself); tests connect to the secured one only.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import free_port, free_port_pair
from tests.integration.security.tls_material import TlsMaterial, make_tls_material
from touchpoint.local_broker import LocalBroker

USER = "touchpoint-app"


@dataclass(frozen=True)
class SecureBroker:
    bootstrap: str      # the SASL_SSL listener
    user: str
    password: str
    tls: TlsMaterial

    def env(self) -> dict[str, str]:
        """The settings a client needs, as environment variables (the documented way)."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "TOUCHPOINT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "TOUCHPOINT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "TOUCHPOINT_KAFKA_SASL_USERNAME": self.user,
            "TOUCHPOINT_KAFKA_SASL_PASSWORD": self.password,
            "TOUCHPOINT_KAFKA_SSL_CA_LOCATION": str(self.tls.ca),
        }

    def fields(self) -> dict[str, object]:
        """The same as Settings fields."""
        return {"kafka_bootstrap_servers": self.bootstrap, "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_sasl_username": self.user,
                "kafka_sasl_password": self.password, "kafka_ssl_ca_location": self.tls.ca}


def _secure_broker(base: Path, *, mutual_tls: bool) -> Iterator[SecureBroker]:
    tls = make_tls_material(base / "tls")
    password = "pw-" + uuid.uuid4().hex  # distinctive: the leak test greps for it
    broker = LocalBroker(base / "kafka", free_port_pair(), secure_port=free_port())
    broker.secure_dir.mkdir(parents=True)
    shutil.copy(tls.broker_pem, broker.secure_dir / "broker.pem")
    if mutual_tls:
        shutil.copy(tls.ca, broker.secure_dir / "client-ca.pem")
    (broker.secure_dir / "scram-users").write_text(f"{USER} {password}\n")
    try:
        broker.start(timeout=180)
        yield SecureBroker(broker.secure_bootstrap, USER, password, tls)
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    yield from _secure_broker(tmp_path_factory.mktemp("secure-kafka"), mutual_tls=False)


@pytest.fixture(scope="module")
def mtls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """The same, and the listener requires a client certificate signed by the test CA (mTLS)."""
    yield from _secure_broker(tmp_path_factory.mktemp("mtls-kafka"), mutual_tls=True)

