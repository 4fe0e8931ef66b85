"""Users of the read-only SQL port: who may log in, and which databases each may read.

ClickHouse's own conventions, so clickhouse-connect, curl and Grafana log in as they do against a server: HTTP
basic auth, the ``X-ClickHouse-User`` / ``X-ClickHouse-Key`` headers, or the ``user`` / ``password`` URL
parameters. Refusals carry ClickHouse's codes: 516 ``AUTHENTICATION_FAILED`` (HTTP 403; with no credentials at all
also ``WWW-Authenticate``), 497 ``ACCESS_DENIED`` for a database the user may not read.

Users come from ``TOUCHPOINT_SINK_SQL_USERS`` (or its ``_FILE``): entries separated by ``;``, each
``name:hash[:db1,db2]`` where hash is ``sha256:<hex>`` (ClickHouse's ``password_sha256_hex``) or
``pbkdf2:<iterations>:<salt hex>:<hex>`` (PBKDF2-HMAC-SHA256; preferred: slow to brute-force), and the optional
list limits the user to those databases (``system`` and ``INFORMATION_SCHEMA`` stay readable: clients list
tables through them). Passwords are compared as hashes in constant time (``hmac.compare_digest``) and never kept.

Without users the port serves loopback only (``serve_readonly`` refuses another address with a message naming
this setting). The database limit looks at the request's default database and at every ``db.table`` in the SQL
naming an existing database; table functions that reach other databases or hosts are refused for limited users.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from touchpoint.errors import ConfigError
from touchpoint.sinks.readonly_engine import QueryError

ALWAYS_READABLE = frozenset({"system", "information_schema"})
# Table functions that read a database named in their arguments, or another host: not for database-limited users.
_CROSS_DATABASE_FUNCTIONS = re.compile(
    r"\b(merge|remote|remoteSecure|cluster|clusterAllReplicas|url|s3|file|mysql|postgresql|jdbc|odbc|dictionary)\s*\(",
    re.IGNORECASE)
_SCOPE = re.compile(r'\b(USE|FROM|IN)\s+(`[^`]+`|"[^"]+"|[A-Za-z_][A-Za-z0-9_]*)', re.IGNORECASE)
_QUALIFIED = re.compile(r'(`[^`]+`|"[^"]+"|\b[A-Za-z_][A-Za-z0-9_]*)\s*\.\s*(?=[`"A-Za-z_])')


@dataclass(frozen=True)
class PortUser:
    name: str
    password_hash: str
    databases: frozenset[str] | None  # None: every database

    def verify(self, password: str) -> bool:
        kind, _, rest = self.password_hash.partition(":")
        if kind == "sha256":
            computed = hashlib.sha256(password.encode("utf-8")).hexdigest()
            return hmac.compare_digest(computed, rest.lower())
        if kind == "pbkdf2":
            iterations, salt, expected = rest.split(":")
            computed = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), bytes.fromhex(salt),
                                           int(iterations)).hex()
            return hmac.compare_digest(computed, expected.lower())
        return False

    def may_read(self, database: str) -> bool:
        return self.databases is None or database in self.databases or database.lower() in ALWAYS_READABLE


def pbkdf2_hash(password: str, salt: bytes, iterations: int = 200_000) -> str:
    """The ``pbkdf2:`` form of a password for ``TOUCHPOINT_SINK_SQL_USERS``."""
    return f"pbkdf2:{iterations}:{salt.hex()}:{hashlib.pbkdf2_hmac('sha256', password.encode(), salt, iterations).hex()}"


def parse_users(spec: str) -> dict[str, PortUser]:
    """``name:hash[:db1,db2];...`` -> users; ConfigError naming the bad entry by its user (never a hash)."""
    users: dict[str, PortUser] = {}
    for entry in (e.strip() for e in spec.split(";")):
        if not entry:
            continue
        name, _, rest = entry.partition(":")
        kind = rest.split(":", 1)[0]
        fields = 2 if kind == "sha256" else 4 if kind == "pbkdf2" else 0
        parts = rest.split(":")
        if not name or fields == 0 or len(parts) < fields or len(parts) > fields + 1:
            raise ConfigError(f"TOUCHPOINT_SINK_SQL_USERS: the entry of user {name or '?'!r} is not "
                              "name:sha256:<hex>[:db,...] or name:pbkdf2:<iterations>:<salt hex>:<hex>[:db,...]")
        databases = parts[fields] if len(parts) > fields else ""
        users[name] = PortUser(name, ":".join(parts[:fields]),
                               frozenset(d.strip() for d in databases.split(",") if d.strip()) or None)
    return users


def redact(text: str) -> str:
    """A request line without the value of a ``password=`` parameter (for logs)."""
    return re.sub(r"((?:^|[?&])password=)[^&\s]*", r"\1***", text)


def _failed(name: str) -> QueryError:
    return QueryError(f"Code: 516. DB::Exception: {name}: Authentication failed: password is incorrect, or there is "
                      "no user with such name. (AUTHENTICATION_FAILED)", 516, "AUTHENTICATION_FAILED")


def _denied(name: str, database: str) -> QueryError:
    return QueryError(f"Code: 497. DB::Exception: {name}: Not enough privileges. To execute this query, it's necessary "
                      f"to have the grant SELECT ON {database}.*. (ACCESS_DENIED)", 497, "ACCESS_DENIED")


class PortAccess:
    """Authenticates a request and checks its databases; ``check`` is the one call the HTTP handler makes."""

    def __init__(self, users: Mapping[str, PortUser], databases: Callable[[], set[str]]) -> None:
        """``databases``: the databases that exist now (to tell ``db.table`` from ``alias.column``)."""
        self.users = dict(users)
        self._databases = databases

    @classmethod
    def from_settings(cls, settings: Any, databases: Callable[[], set[str]]) -> PortAccess:
        raw = getattr(settings, "sink_sql_users", None)
        spec = raw.get_secret_value() if raw is not None and hasattr(raw, "get_secret_value") else (raw or "")
        return cls(parse_users(spec), databases)

    @property
    def enabled(self) -> bool:
        return bool(self.users)

    @staticmethod
    def credentials(headers: Any, params: Mapping[str, str]) -> tuple[str, str] | None:
        """(user, password) as ClickHouse reads them: basic auth, X-ClickHouse-User/-Key, user/password params."""
        auth = headers.get("Authorization") or ""
        if auth[:6].lower() == "basic ":
            try:
                user, _, password = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
                return user, password
            except (ValueError, UnicodeDecodeError):
                return "", ""
        if headers.get("X-ClickHouse-User") is not None:
            return headers.get("X-ClickHouse-User") or "", headers.get("X-ClickHouse-Key") or ""
        if "user" in params:
            return params.get("user") or "", params.get("password") or ""
        return None

    def check(self, headers: Any, params: Mapping[str, str], query: str,
              database: str | None, default_database: str) -> str | None:
        """Raise QueryError 516 (who) or 497 (what); else return the database the request runs in (None: as given).

        A user limited to databases that do not include the server's default runs in the first of its own."""
        if not self.enabled:
            return database
        given = self.credentials(headers, params)
        name, password = given if given is not None else ("default", "")
        user = self.users.get(name)
        # Verify even for an unknown name (same work, so timing does not tell which names exist).
        probe = user or PortUser(name, "sha256:" + "0" * 64, None)
        if not probe.verify(password) or user is None:
            raise _failed(name)
        if user.databases is None:
            return database
        run_in = database or (default_database if user.may_read(default_database) else sorted(user.databases)[0])
        if not user.may_read(run_in):
            raise _denied(name, run_in)
        if _CROSS_DATABASE_FUNCTIONS.search(query):
            raise _denied(name, "*")
        existing = {d.lower() for d in self._databases()}
        for match in _SCOPE.finditer(query):  # USE db / SHOW TABLES FROM db / ... IN db
            word = match.group(2).strip('`"')
            if word.lower() in existing and not user.may_read(word):
                raise _denied(name, word)
        for match in _QUALIFIED.finditer(query):
            word = match.group(1).strip('`"')
            if word.lower() in existing and not user.may_read(word):
                raise _denied(name, word)
        return run_in
