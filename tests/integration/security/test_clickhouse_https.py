"""CLICKHOUSE_DSN=https://... with a CA file and client certificates, through clickhouse-connect, against a real
ClickHouse HTTP interface (the sink's read-only port over the embedded engine) behind TLS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest

from tests.integration.security.tls_material import TlsMaterial, make_tls_material
from tests.integration.security.tls_proxy import TlsProxy
from touchpoint.config import Settings, load_settings
from touchpoint.sinks.store import Store


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("ch-tls"))


@pytest.fixture
def sql_port(settings: Settings) -> Iterator[int]:
    from touchpoint.sinks.http_server import serve_readonly

    store = Store.connect(settings)
    server = serve_readonly(store.client, port=0, database="system", settings=settings)
    try:
        yield int(server.port)
    finally:
        server.close()
        store.close()


def _https(settings: Settings, port: int, **fields: object) -> Settings:
    return load_settings(data_dir=settings.data_dir, clickhouse_database="system",
                         clickhouse_dsn=f"https://default:p%40ss@127.0.0.1:{port}/", **fields)


def test_https_dsn_with_the_ca_file_queries_the_server(settings: Settings, sql_port: int, tls: TlsMaterial) -> None:
    broker_key = tls.broker_pem.with_name("broker.key")
    with TlsProxy(sql_port, tls.broker_pem, broker_key) as proxy:
        client = clickhouse_connect.get_client(**_https(settings, proxy.port, clickhouse_ca_file=tls.ca).clickhouse_kwargs())
        try:
            assert client.query("SELECT 6 * 7").result_rows == [(42,)]
        finally:
            client.close()
        with pytest.raises(Exception, match="(?i)certificate verify failed"):
            clickhouse_connect.get_client(**_https(settings, proxy.port, clickhouse_ca_file=tls.other_ca).clickhouse_kwargs())


def test_https_dsn_with_a_client_certificate_passes_mutual_tls(settings: Settings, sql_port: int,
                                                               tls: TlsMaterial) -> None:
    broker_key = tls.broker_pem.with_name("broker.key")
    with TlsProxy(sql_port, tls.broker_pem, broker_key, client_ca=tls.ca) as proxy:
        with_cert = _https(settings, proxy.port, clickhouse_ca_file=tls.ca, clickhouse_client_cert=tls.client_cert,
                           clickhouse_client_key=tls.client_key)
        client = clickhouse_connect.get_client(**with_cert.clickhouse_kwargs())
        try:
            assert client.query("SELECT 1 + 1").result_rows == [(2,)]
        finally:
            client.close()
        with pytest.raises(Exception, match="(?i)ssl|certificate|reset|aborted"):  # the TLS stack words it variously
            clickhouse_connect.get_client(**_https(settings, proxy.port, clickhouse_ca_file=tls.ca).clickhouse_kwargs())
