"""CLICKHOUSE_DSN and the TLS settings -> clickhouse_connect.get_client arguments (the one conversion)."""

from __future__ import annotations

from pathlib import Path

import pytest

from touchpoint.config import load_settings
from touchpoint.errors import ConfigError


@pytest.fixture
def pems(tmp_path: Path) -> dict[str, Path]:
    out = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    for path in out.values():
        path.write_text("-----BEGIN CERTIFICATE-----\n")
    return out


def test_https_dsn_with_ca_and_client_certificate(pems: dict[str, Path]) -> None:
    s = load_settings(clickhouse_dsn="https://analyst:p%40ss@ch.internal:8443/touchpoint",
                      clickhouse_ca_file=pems["ca"], clickhouse_client_cert=pems["cert"],
                      clickhouse_client_key=pems["key"])
    assert s.clickhouse_kwargs() == {
        "dsn": "https://analyst:p%40ss@ch.internal:8443/touchpoint",
        "interface": "https",
        "verify": True,
        "ca_cert": str(pems["ca"]),
        "client_cert": str(pems["cert"]),
        "client_cert_key": str(pems["key"]),
    }
    assert "p%40ss" not in str(s.redacted())


def test_the_scheme_decides_tls_not_the_port() -> None:
    # clickhouse-connect alone would speak plain http to https://...:8123 (it looks at the port only).
    assert load_settings(clickhouse_dsn="https://ch:8123").clickhouse_kwargs()["interface"] == "https"
    assert load_settings(clickhouse_dsn="http://ch:8443").clickhouse_kwargs()["interface"] == "http"


def test_plain_and_embedded_dsns_pass_through(tmp_path: Path) -> None:
    assert load_settings(clickhouse_dsn="http://u:pw@ch:8123").clickhouse_kwargs() == {"dsn": "http://u:pw@ch:8123",
                                                                                      "interface": "http"}
    assert load_settings(clickhouse_dsn=f"chdb://{tmp_path}").clickhouse_kwargs() == {"dsn": f"chdb://{tmp_path}"}


def test_https_verification_can_be_disabled_for_a_test_bench() -> None:
    assert load_settings(clickhouse_dsn="https://ch:8443", clickhouse_verify=False).clickhouse_kwargs() == {
        "dsn": "https://ch:8443", "interface": "https", "verify": False}


def test_tls_options_without_https_or_with_missing_files_name_the_variable(pems: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="ca_cert.*not https"):
        load_settings(clickhouse_dsn="http://ch:8123", clickhouse_ca_file=pems["ca"]).clickhouse_kwargs()
    with pytest.raises(ConfigError, match="TOUCHPOINT_CLICKHOUSE_CA_FILE=/no/ca.pem"):
        load_settings(clickhouse_dsn="https://ch:8443", clickhouse_ca_file="/no/ca.pem").clickhouse_kwargs()


def test_a_password_query_parameter_is_redacted_too() -> None:
    s = load_settings(clickhouse_dsn="https://ch:8443/?user=analyst&password=qs-s3cret")
    assert s.redacted()["clickhouse_dsn"] == "https://ch:8443/?user=analyst&password=***"
