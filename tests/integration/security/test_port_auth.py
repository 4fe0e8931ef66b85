"""The read-only SQL port's logins: ClickHouse's conventions (basic auth, X-ClickHouse-User/Key, user/password
parameters) for clickhouse-connect and curl, code 516 for a wrong or missing password, 497 for a database the user
may not read, and no binding beyond loopback without users."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import clickhouse_connect
import pytest

from touchpoint.config import Settings
from touchpoint.errors import ConfigError
from touchpoint.sinks.http_server import serve_readonly
from touchpoint.sinks.port_auth import pbkdf2_hash
from touchpoint.sinks.store import Store

ANALYST_PW = "analyst-pw-7f3a"
ADMIN_PW = "admin-pw-91c2"


@dataclass
class Port:
    port: int
    db: str
    other: str


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = Store.connect(settings)
    yield s
    s.close()


@pytest.fixture
def port(settings: Settings, store: Store, unique: str) -> Iterator[Port]:
    db, other = settings.clickhouse_database, f"other_{unique}"
    for name, value in ((db, 1), (other, 2)):
        store.command(f"CREATE DATABASE IF NOT EXISTS {name}")
        store.command(f"CREATE TABLE IF NOT EXISTS {name}.t (x UInt8) ENGINE = MergeTree ORDER BY x")
        store.command(f"INSERT INTO {name}.t VALUES ({value})")
    admin = "sha256:" + hashlib.sha256(ADMIN_PW.encode()).hexdigest()
    users = f"analyst:{pbkdf2_hash(ANALYST_PW, b'0123456789abcdef', 1000)}:{db};admin:{admin}"
    with_users = settings.model_copy(update={"sink_sql_users": users})
    server = serve_readonly(store.client, host="0.0.0.0", port=0, database=db, settings=with_users)
    try:
        yield Port(server.port, db, other)
    finally:
        server.close()


def _curl(port: int, *args: str) -> tuple[int, str, str]:
    """(HTTP status, X-ClickHouse-Exception-Code or "", body) of curl against the port."""
    out = subprocess.run(["curl", "-s", "-D", "-", *args, f"http://127.0.0.1:{port}/"], capture_output=True,
                         timeout=30).stdout.decode()
    head, _, body = out.partition("\r\n\r\n")
    status = int(head.split()[1])
    code = next((line.split(":", 1)[1].strip() for line in head.splitlines()
                 if line.lower().startswith("x-clickhouse-exception-code")), "")
    return status, code, body


def test_the_right_user_logs_in_the_ways_clickhouse_clients_do(port: Port) -> None:
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port.port, username="analyst", password=ANALYST_PW)
    try:
        assert client.query("SELECT x FROM t").result_rows == [(1,)]
    finally:
        client.close()
    query = ["--data-urlencode", "query=SELECT x FROM t", "-G"]
    assert _curl(port.port, "-u", f"analyst:{ANALYST_PW}", *query)[::2] == (200, "1\n")
    assert _curl(port.port, "-H", "X-ClickHouse-User: analyst", "-H", f"X-ClickHouse-Key: {ANALYST_PW}", *query)[::2] \
        == (200, "1\n")
    assert _curl(port.port, "--data-urlencode", "user=analyst", "--data-urlencode", f"password={ANALYST_PW}",
                 *query)[::2] == (200, "1\n")


@pytest.mark.parametrize("auth", [[], ["-u", "analyst:wrong"], ["-u", f"nobody:{ANALYST_PW}"],
                                  ["-H", "X-ClickHouse-User: admin", "-H", "X-ClickHouse-Key: analyst-pw-7f3a"]],
                         ids=["no password", "wrong password", "unknown user", "another user's password"])
def test_a_missing_or_wrong_password_gets_code_516(port: Port, auth: list[str]) -> None:
    status, code, body = _curl(port.port, *auth, "--data-urlencode", "query=SELECT x FROM t", "-G")
    assert (status, code) == (403, "516") and "AUTHENTICATION_FAILED" in body
    assert "1\n" != body


def test_clickhouse_connect_sees_the_authentication_error(port: Port) -> None:
    with pytest.raises(Exception, match="516"):
        clickhouse_connect.get_client(host="127.0.0.1", port=port.port, username="analyst", password="wrong")


@pytest.mark.parametrize("query", ["SELECT x FROM {other}.t", "SELECT x FROM `{other}` . t", "SHOW TABLES FROM {other}",
                                   "SELECT * FROM merge('{other}', '.*')"])
def test_a_user_limited_to_one_database_cannot_read_another(port: Port, query: str) -> None:
    sql = query.format(other=port.other)
    status, code, body = _curl(port.port, "-u", f"analyst:{ANALYST_PW}", "--data-urlencode", f"query={sql}", "-G")
    assert (status, code) == (403, "497") and "ACCESS_DENIED" in body
    status, code, _ = _curl(port.port, "-u", f"analyst:{ANALYST_PW}", "--data-urlencode", "query=SELECT x FROM t",
                            "--data-urlencode", f"database={port.other}", "-G")
    assert (status, code) == (403, "497")
    # A user without a limit reads it.
    status, _, body = _curl(port.port, "-u", f"admin:{ADMIN_PW}", "--data-urlencode",
                            f"query=SELECT x FROM {port.other}.t", "-G")
    assert (status, body) == (200, "2\n")


def test_without_users_the_port_refuses_to_bind_beyond_loopback(settings: Settings, store: Store) -> None:
    with pytest.raises(ConfigError, match="TOUCHPOINT_SINK_SQL_USERS"):
        serve_readonly(store.client, host="0.0.0.0", port=0, settings=settings)
