"""Security settings -> librdkafka and aiokafka configuration (one conversion each), and the refusal messages."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from touchpoint.config import load_settings
from touchpoint.errors import ConfigError
from touchpoint.kafka_security import aiokafka_security, librdkafka_security, security_problem

CA_PEM = """-----BEGIN CERTIFICATE-----
MIIBdjCCAR2gAwIBAgIUZc3lz9pYk6Uo0t5Z4qS6bB2x1dAwCgYIKoZIzj0EAwIw
-----END CERTIFICATE-----
"""


@pytest.fixture
def pem_files(tmp_path: Path) -> dict[str, Path]:
    files = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    for path in files.values():
        path.write_text(CA_PEM)
    return files


def test_plaintext_is_the_default_and_adds_no_security_properties() -> None:
    conf = load_settings(kafka_bootstrap_servers="k:9092").kafka_config()
    assert conf == {"bootstrap.servers": "k:9092", "security.protocol": "PLAINTEXT"}


def test_sasl_ssl_with_ca_and_client_certificate_in_librdkafka_terms(pem_files: dict[str, Path]) -> None:
    s = load_settings(kafka_bootstrap_servers="k:9093", kafka_security_protocol="sasl_ssl",
                      kafka_sasl_username="app", kafka_sasl_password="s3cret",
                      kafka_ssl_ca_location=pem_files["ca"], kafka_ssl_certificate_location=pem_files["cert"],
                      kafka_ssl_key_location=pem_files["key"], kafka_ssl_key_password="keypw",
                      kafka_ssl_endpoint_identification=False)
    assert librdkafka_security(s) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "app",
        "sasl.password": "s3cret",
        "ssl.ca.location": str(pem_files["ca"]),
        "ssl.certificate.location": str(pem_files["cert"]),
        "ssl.key.location": str(pem_files["key"]),
        "ssl.key.password": "keypw",
        "ssl.endpoint.identification.algorithm": "none",
    }
    assert s.kafka_config(**{"group.id": "g"})["sasl.password"] == "s3cret"


def test_sasl_plaintext_in_aiokafka_terms_has_no_tls() -> None:
    s = load_settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="scram-sha-256",
                      kafka_sasl_username="app", kafka_sasl_password="s3cret")
    assert aiokafka_security(s) == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
                                    "sasl_plain_username": "app", "sasl_plain_password": "s3cret"}


def test_ssl_in_aiokafka_terms_checks_the_host_unless_disabled() -> None:
    on = aiokafka_security(load_settings(kafka_security_protocol="SSL"))
    off = aiokafka_security(load_settings(kafka_security_protocol="SSL", kafka_ssl_endpoint_identification=False))
    assert on["security_protocol"] == "SSL" and isinstance(on["ssl_context"], ssl.SSLContext)
    assert on["ssl_context"].check_hostname is True and off["ssl_context"].check_hostname is False
    assert on["ssl_context"].verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize("fields, names", [
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "app"}, "TOUCHPOINT_KAFKA_SASL_PASSWORD"),
    ({"kafka_security_protocol": "SSL", "kafka_ssl_certificate_location": "/etc/hosts"},
     "TOUCHPOINT_KAFKA_SSL_KEY_LOCATION"),
    ({"kafka_ssl_ca_location": "/etc/hosts"}, "TOUCHPOINT_KAFKA_SECURITY_PROTOCOL"),
    ({"kafka_security_protocol": "SSL", "kafka_ssl_ca_location": "/no/such/ca.pem"},
     "TOUCHPOINT_KAFKA_SSL_CA_LOCATION=/no/such/ca.pem"),
])
def test_settings_that_cannot_work_are_refused_before_connecting(fields: dict[str, str], names: str) -> None:
    s = load_settings(**fields)
    with pytest.raises(ConfigError, match=names):
        s.kafka_config()


def test_unknown_protocol_or_mechanism_is_a_config_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOUCHPOINT_KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(ConfigError, match="TOUCHPOINT_KAFKA_SECURITY_PROTOCOL.*SASL_SSL"):
        load_settings()
    monkeypatch.delenv("TOUCHPOINT_KAFKA_SECURITY_PROTOCOL")
    monkeypatch.setenv("TOUCHPOINT_KAFKA_SASL_MECHANISM", "GSSAPI")
    with pytest.raises(ConfigError, match="TOUCHPOINT_KAFKA_SASL_MECHANISM"):
        load_settings()


@pytest.mark.parametrize("text, variable", [
    ("sasl_ssl://k:9093/bootstrap: SASL authentication error: Authentication failed during authentication due to "
     "invalid credentials with SASL mechanism SCRAM-SHA-512", "TOUCHPOINT_KAFKA_SASL_PASSWORD"),
    ("sasl_ssl://k:9093/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: "
     "broker certificate could not be verified", "TOUCHPOINT_KAFKA_SSL_CA_LOCATION"),
    ("sasl_ssl://k:9093/bootstrap: Receive failed: error:0A000412:SSL routines::ssl/tls alert bad certificate: SSL "
     "alert number 42 (after 22ms in state APIVERSION_QUERY)", "TOUCHPOINT_KAFKA_SSL_CERTIFICATE_LOCATION"),
    ("FAIL [rdkafka#producer-1] k:9093/bootstrap: Disconnected: connection closed by peer: receive 0 after POLLIN "
     "(after 1ms in state APIVERSION_QUERY)", "TOUCHPOINT_KAFKA_SECURITY_PROTOCOL"),
])
def test_refusals_name_the_setting_to_fix_and_never_the_password(text: str, variable: str) -> None:
    s = load_settings(kafka_bootstrap_servers="k:9093", kafka_security_protocol="SASL_SSL",
                      kafka_sasl_username="app", kafka_sasl_password="s3cret")
    message = security_problem(s, text)
    assert message is not None and variable in message and "s3cret" not in message


def test_a_broker_that_is_simply_down_is_not_a_security_problem() -> None:
    s = load_settings()
    assert security_problem(s, "127.0.0.1:19092/bootstrap: Connect to ipv4#127.0.0.1:19092 failed: Connection "
                               "refused (after 0ms in state CONNECT)") is None
