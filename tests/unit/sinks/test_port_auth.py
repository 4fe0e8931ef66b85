"""Users of the read-only SQL port: parsing, hashes verified in constant time, redaction."""

from __future__ import annotations

import base64
import hashlib

import pytest

from touchpoint.errors import ConfigError
from touchpoint.sinks.port_auth import PortAccess, parse_users, pbkdf2_hash, redact


def test_sha256_and_pbkdf2_users_with_and_without_database_limits() -> None:
    sha = hashlib.sha256(b"pw-one").hexdigest()
    users = parse_users(f"a:sha256:{sha}; b:{pbkdf2_hash('pw-two', b'salt-bytes', 1000)}:db1,db2")
    assert users["a"].verify("pw-one") and not users["a"].verify("pw-two")
    assert users["b"].verify("pw-two") and not users["b"].verify("pw-one")
    assert users["a"].databases is None and users["b"].databases == frozenset({"db1", "db2"})
    assert users["b"].may_read("db1") and users["b"].may_read("system") and not users["b"].may_read("db3")


def test_a_malformed_entry_names_its_user_never_its_hash() -> None:
    with pytest.raises(ConfigError, match="user 'bob'") as failure:
        parse_users("bob:md5:abcdef")
    assert "abcdef" not in str(failure.value)


def test_credentials_are_read_as_clickhouse_reads_them() -> None:
    basic = {"Authorization": "Basic " + base64.b64encode(b"ann:pa:ss").decode()}
    assert PortAccess.credentials(basic, {}) == ("ann", "pa:ss")
    assert PortAccess.credentials({"X-ClickHouse-User": "ann", "X-ClickHouse-Key": "k"}, {}) == ("ann", "k")
    assert PortAccess.credentials({}, {"user": "ann", "password": "p"}) == ("ann", "p")
    assert PortAccess.credentials({}, {}) is None


def test_request_lines_in_logs_lose_their_password() -> None:
    assert redact('"GET /?user=a&password=s3cret&query=SELECT HTTP/1.1"') == '"GET /?user=a&password=***&query=SELECT HTTP/1.1"'
