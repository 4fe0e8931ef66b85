"""HTTPS on the read-only SQL port: clickhouse-connect and curl-style clients trusting the test CA query it, logins
work over it (516 for a wrong password), a client not trusting the CA is refused, a plain-HTTP or silent client
neither crashes nor blocks the port, and a half or broken TLS configuration is one clear error at start."""

from __future__ import annotations

import base64
import http.client
import logging
import socket
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest
from pydantic import SecretStr

from tests.helpers import wait_until
from tests.integration.security.tls_material import TlsMaterial, make_tls_material
from touchpoint.config import Settings
from touchpoint.errors import ConfigError
from touchpoint.sinks.http_server import ReadOnlySQLServer, serve_readonly
from touchpoint.sinks.port_auth import pbkdf2_hash
from touchpoint.sinks.store import Store

ANALYST_PW = "analyst-pw-tls-4d1e"
KEY_PW = "key-pw-9b7c"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("port-tls"))


def _cert(tls: TlsMaterial) -> Path:
    return tls.broker_pem.with_name("broker.pem")  # for 127.0.0.1 and localhost, signed by tls.ca


def _key(tls: TlsMaterial) -> Path:
    return tls.broker_pem.with_name("broker.key")


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = Store.connect(settings)
    s.command(f"CREATE DATABASE IF NOT EXISTS {settings.clickhouse_database}")
    s.command(f"CREATE TABLE IF NOT EXISTS {settings.clickhouse_database}.t (x UInt8) ENGINE = MergeTree ORDER BY x")
    s.command(f"INSERT INTO {settings.clickhouse_database}.t VALUES (3), (5)")
    yield s
    s.close()


def _serve(settings: Settings, store: Store, **fields: object) -> ReadOnlySQLServer:
    return serve_readonly(store.client, port=0, database=settings.clickhouse_database,
                          settings=settings.model_copy(update=fields))


def _trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def _get(url: str, sql: str, context: ssl.SSLContext | None, auth: str | None = None,
         timeout: float = 20) -> tuple[int, str, str]:
    """(status, X-ClickHouse-Exception-Code or "", body) of a GET, as curl would send it."""
    request = urllib.request.Request(f"{url}/?{urllib.parse.urlencode({'query': sql})}")
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, "", response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("X-ClickHouse-Exception-Code") or "", exc.read().decode()


def test_clients_trusting_the_ca_query_over_https(settings: Settings, store: Store, tls: TlsMaterial,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="touchpoint.sinks.http_server"), \
            _serve(settings, store, sink_sql_tls_cert=_cert(tls), sink_sql_tls_key=_key(tls)) as server:
        assert server.url == f"https://127.0.0.1:{server.port}"
        assert f"https://127.0.0.1:{server.port}" in caplog.text
        client = clickhouse_connect.get_client(host="127.0.0.1", port=server.port, secure=True, verify=True,
                                               ca_cert=str(tls.ca))
        try:
            assert client.query("SELECT x FROM t ORDER BY x").result_rows == [(3,), (5,)]
        finally:
            client.close()
        assert _get(server.url, "SELECT sum(x) FROM t", _trusting(tls.ca)) == (200, "", "8\n")
        # Also by the certificate's DNS name, and the handshake is TLS 1.2 or later.
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw, \
                _trusting(tls.ca).wrap_socket(raw, server_hostname="localhost") as conn:
            assert conn.version() in ("TLSv1.2", "TLSv1.3")


def test_logins_work_over_tls_and_a_wrong_password_gets_516(settings: Settings, store: Store,
                                                            tls: TlsMaterial, tmp_path: Path) -> None:
    encrypted_key = tmp_path / "encrypted.key"  # and an encrypted key opened with its password
    subprocess.run(["openssl", "pkey", "-in", str(_key(tls)), "-aes256", "-passout", f"pass:{KEY_PW}",
                    "-out", str(encrypted_key)], check=True, capture_output=True)
    users = f"analyst:{pbkdf2_hash(ANALYST_PW, b'0123456789abcdef', 1000)}"
    with _serve(settings, store, sink_sql_users=SecretStr(users), sink_sql_tls_cert=_cert(tls),
                sink_sql_tls_key=encrypted_key, sink_sql_tls_key_password=SecretStr(KEY_PW)) as server:
        context = _trusting(tls.ca)
        assert _get(server.url, "SELECT sum(x) FROM t", context, f"analyst:{ANALYST_PW}") == (200, "", "8\n")
        status, code, body = _get(server.url, "SELECT sum(x) FROM t", context, "analyst:wrong")
        assert (status, code) == (403, "516") and "AUTHENTICATION_FAILED" in body
        client = clickhouse_connect.get_client(host="127.0.0.1", port=server.port, secure=True, ca_cert=str(tls.ca),
                                               username="analyst", password=ANALYST_PW)
        try:
            assert client.query("SELECT count() FROM t").result_rows == [(2,)]
        finally:
            client.close()
        with pytest.raises(Exception, match="516"):
            clickhouse_connect.get_client(host="127.0.0.1", port=server.port, secure=True, ca_cert=str(tls.ca),
                                          username="analyst", password="wrong")


def test_a_client_not_trusting_the_ca_is_refused(settings: Settings, store: Store, tls: TlsMaterial) -> None:
    with _serve(settings, store, sink_sql_tls_cert=_cert(tls), sink_sql_tls_key=_key(tls)) as server:
        with pytest.raises(Exception, match="(?i)certificate verify failed"):
            clickhouse_connect.get_client(host="127.0.0.1", port=server.port, secure=True, verify=True,
                                          ca_cert=str(tls.other_ca))
        with pytest.raises(urllib.error.URLError, match="(?i)certificate verify failed"):
            _get(server.url, "SELECT 1", _trusting(tls.other_ca))
        assert _get(server.url, "SELECT 1", _trusting(tls.ca)) == (200, "", "1\n")


def test_plain_http_and_silent_clients_neither_crash_nor_block_the_port(settings: Settings, store: Store,
                                                                        tls: TlsMaterial) -> None:
    with _serve(settings, store, sink_sql_tls_cert=_cert(tls), sink_sql_tls_key=_key(tls)) as server:
        # Connected, never says a word: its handshake waits in its own thread, nobody else's.
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as silent:
            plain = f"http://127.0.0.1:{server.port}"
            for _ in range(3):
                with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
                    _get(plain, "SELECT 1", None)
            # Well within the handshake deadline (10 s) the silent client still holds its connection.
            assert _get(server.url, "SELECT sum(x) FROM t", _trusting(tls.ca), timeout=5) == (200, "", "8\n")
            silent.setblocking(False)  # a peek that answers now (a socket with a timeout would wait for data)
            with pytest.raises(BlockingIOError):  # open, nothing sent: the server has not closed it
                silent.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        assert _get(server.url, "SELECT count() FROM t", _trusting(tls.ca)) == (200, "", "2\n")


def test_a_query_whose_tls_client_leaves_is_cancelled(settings: Settings, store: Store, tls: TlsMaterial) -> None:
    def running() -> int:
        return int(store.client.command(
            "SELECT count() FROM system.processes WHERE position(query, 'touchpoint-query:') > 0 "
            "AND position(query, 'AS tls_abandoned') > 0 AND position(query, 'system.processes') = 0"))

    with _serve(settings, store, sink_sql_tls_cert=_cert(tls), sink_sql_tls_key=_key(tls)) as server:
        sql = urllib.parse.urlencode({"query": "SELECT count() FROM numbers(100000000000) AS tls_abandoned"})
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        conn = _trusting(tls.ca).wrap_socket(raw, server_hostname="127.0.0.1")
        conn.sendall(f"GET /?{sql} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        wait_until(lambda: running() == 1, timeout=10, what="the heavy query runs")
        conn.close()  # gone without a word, as a killed client
        wait_until(lambda: running() == 0, timeout=5, what="the abandoned query is cancelled")


def test_tls_does_not_replace_users_beyond_loopback(settings: Settings, store: Store, tls: TlsMaterial) -> None:
    with pytest.raises(ConfigError, match="TOUCHPOINT_SINK_SQL_USERS"):
        serve_readonly(store.client, host="0.0.0.0", port=0, settings=settings.model_copy(
            update={"sink_sql_tls_cert": _cert(tls), "sink_sql_tls_key": _key(tls)}))


@pytest.mark.parametrize("case, expected", [
    ("cert only", r"^TOUCHPOINT_SINK_SQL_TLS_CERT is set but TOUCHPOINT_SINK_SQL_TLS_KEY is not: set both"),
    ("key only", r"^TOUCHPOINT_SINK_SQL_TLS_KEY is set but TOUCHPOINT_SINK_SQL_TLS_CERT is not: set both"),
    ("missing cert file", r"^TOUCHPOINT_SINK_SQL_TLS_CERT=\S*absent.pem cannot be read \(No such file"),
    ("key of another certificate", r"are not a PEM certificate and its matching private key \(KEY_VALUES_MISMATCH\)"),
    ("not PEM", r"are not a PEM certificate and its matching private key .*TOUCHPOINT_SINK_SQL_TLS_KEY_PASSWORD"),
])
def test_a_half_or_broken_tls_configuration_is_one_clear_error(settings: Settings, store: Store, tls: TlsMaterial,
                                                               tmp_path: Path, case: str, expected: str) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    fields: dict[str, dict[str, Path]] = {
        "cert only": {"sink_sql_tls_cert": _cert(tls)},
        "key only": {"sink_sql_tls_key": _key(tls)},
        "missing cert file": {"sink_sql_tls_cert": tmp_path / "absent.pem", "sink_sql_tls_key": _key(tls)},
        "key of another certificate": {"sink_sql_tls_cert": _cert(tls), "sink_sql_tls_key": tls.client_key},
        "not PEM": {"sink_sql_tls_cert": garbage, "sink_sql_tls_key": garbage},
    }
    with pytest.raises(ConfigError, match=expected) as caught:
        _serve(settings, store, **fields[case])
    assert "\n" not in str(caught.value)
