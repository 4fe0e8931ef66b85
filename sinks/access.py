"""How an analyst command reaches the store named by settings, read-only.

- ``http(s)://`` DSN (a ClickHouse server): clickhouse-connect's HTTP client.
- ``chdb:///path`` (embedded): the engine belongs to one process at a time. If a sink/run process owns it, its
  read-only SQL port (``settings.sink_sql_port``) answers ``/ping`` naming that store, and we go through it with
  clickhouse-connect's HTTP client. Otherwise the path is opened directly in this process, read-only
  (``ReadOnlyEngine``: the engine's parser judges the statement, then ClickHouse ``readonly = 1`` and limits).

The embedded routes share one path (``ReadOnlyEngine``, also behind the port). On a ClickHouse server the
statement is judged by the same gate (``sql_statement.StatementGate``, ClickHouse's parser in an in-memory
embedded engine) and its canonical text runs with ``readonly = 1``.
"""

from __future__ import annotations

import http.client
import re
from pathlib import Path
from typing import Any

from touchpoint.errors import ConfigError, PermanentError, StoreUnavailableError
from touchpoint.sinks.readonly_engine import QueryError, ReadOnlyEngine, as_query_error, parser_gate
from touchpoint.sinks.sql_guard import ReadOnlyViolation
from touchpoint.sinks.sql_limits import QueryLimits
from touchpoint.sinks.sql_statement import StatementGate

_SERVER_RESPONSE = re.compile(r"server response: (.*?)(?: \(for url [^)]*\))?$", re.DOTALL)


class StoreMissingError(PermanentError):
    """There is no store (or no pipeline database in it) where settings point."""


def _missing(what: str) -> StoreMissingError:
    return StoreMissingError(
        f"{what}. Create it with `touchpoint sink migrate` (empty tables) or run `touchpoint demo` "
        "(the whole pipeline with simulated customers), or point CLICKHOUSE_DSN at an existing store."
    )


class AnalystAccess:
    """A read-only route to the store: ``raw(sql, fmt)`` returns the engine's bytes; ``client`` is a
    clickhouse-connect client for library code such as ``report.build_report``; ``via`` says which route."""

    def __init__(self, via: str, database: str, client: Any = None, engine: ReadOnlyEngine | None = None,
                 gate: StatementGate | None = None) -> None:
        self.via = via
        self.database = database
        self.client = client
        self._engine = engine
        self._gate = gate

    def raw(self, sql: str, fmt: str = "TabSeparated") -> bytes:
        """Run one read-only statement; its output in ``fmt`` (a FORMAT clause in ``sql`` wins). Raises QueryError."""
        if self._engine is not None:
            return self._engine.execute(sql, default_format=fmt, database=self.database).read_all()
        settings: dict[str, Any] = {}
        if self._gate is not None:  # a ClickHouse server: judged here, run read-only there
            try:
                sql = self._gate.classify(sql).canonical
            except ReadOnlyViolation as exc:
                raise as_query_error(exc) from exc
            settings = {"readonly": 1}
        try:
            # The format goes as the default (a header), not appended to the statement: a FORMAT clause in the
            # statement wins, and the statement the port or server judges is the one the analyst wrote.
            return bytes(self.client.raw_query(sql, settings=settings or None,
                                               transport_settings={"X-ClickHouse-Format": fmt}))
        except Exception as exc:  # noqa: BLE001 - turned into the server's own message
            raise client_error(exc) from exc

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    def __enter__(self) -> "AnalystAccess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def client_error(exc: BaseException) -> QueryError | StoreUnavailableError:
    """A clickhouse-connect exception as the server's own ``Code: N. DB::Exception: ...`` text."""
    from clickhouse_connect.driver.exceptions import OperationalError

    if isinstance(exc, OperationalError):
        return StoreUnavailableError(f"ClickHouse is not reachable: {exc}")
    text = str(exc)
    found = _SERVER_RESPONSE.search(text)
    return as_query_error(RuntimeError(found.group(1).strip() if found else text))


def owner_port_answers(port: int, connection_string: str, timeout: float = 1.0) -> bool:
    """True when 127.0.0.1:``port`` is the read-only SQL port of the process owning ``connection_string``."""
    if not port:
        return False
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/ping")
        response = conn.getresponse()
        response.read()
        return response.status == 200 and response.getheader("X-Touchpoint-Store") == connection_string
    except OSError:
        return False
    finally:
        conn.close()


def _chdb_path(dsn: str) -> str:
    path = dsn[len("chdb://"):]
    if not path or path.startswith(":memory:"):
        raise ConfigError(f"CLICKHOUSE_DSN={dsn} is an in-memory store: nothing persists there to query")
    return path


def _lock_holder(path: Path) -> str:
    try:
        for line in (path / "status").read_text().splitlines():
            if line.startswith("PID:"):
                return f"process {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return "another process"


def open_access(settings: Any) -> AnalystAccess:
    """The read-only route to the store ``settings`` name (see the module docstring). Raises StoreMissingError
    when there is no store or no pipeline database, StoreUnavailableError when a server does not answer."""
    import clickhouse_connect

    dsn: str = settings.dsn
    database: str = settings.clickhouse_database
    if not dsn.startswith("chdb:"):
        try:
            client = clickhouse_connect.get_client(**{**settings.clickhouse_kwargs(), "database": database})
        except Exception as exc:  # noqa: BLE001 - classified below
            err = client_error(exc)
            if isinstance(err, QueryError) and err.code == 81:
                raise _missing(f"database {database} does not exist on {settings.redacted()['clickhouse_dsn']}") from exc
            raise err from exc
        return AnalystAccess(settings.redacted()["clickhouse_dsn"], database, client=client, gate=parser_gate())

    from clickhouse_connect.driver._chdbclient import build_connection_string

    path = _chdb_path(dsn)
    connection_string = build_connection_string(path, None)
    port = settings.sink_sql_port
    if owner_port_answers(port, connection_string):
        try:
            client = clickhouse_connect.get_client(host="127.0.0.1", port=port, username="default", password="",
                                                   database=database)
        except Exception as exc:  # noqa: BLE001 - classified below
            err = client_error(exc)
            if isinstance(err, QueryError) and err.code == 81:
                raise _missing(f"database {database} does not exist in the store at {path}") from exc
            raise err from exc
        return AnalystAccess(f"http://127.0.0.1:{port} (read-only port of the process that owns {dsn})",
                             database, client=client)
    store = Path(connection_string)
    if not (store / "metadata").is_dir():
        raise _missing(f"there is no ClickHouse store at {store}")
    try:
        engine = ReadOnlyEngine(connection_string, database, limits=QueryLimits.from_settings(settings))
    except QueryError as exc:
        raise StoreUnavailableError(
            f"the store at {store} is in use by {_lock_holder(store)}, and no read-only SQL port answers on "
            f"127.0.0.1:{port}; query it through that process's port (TOUCHPOINT_SINK_SQL_PORT) or stop it "
            f"({exc.text.splitlines()[0]})"
        ) from exc
    exists = engine.execute("SELECT count() FROM system.databases WHERE name = {db:String}", database="system",
                            params={"db": database}).read_all().strip()
    if exists != b"1":
        raise _missing(f"database {database} does not exist in the store at {store}")
    client = clickhouse_connect.get_client(dsn=dsn, database=database)
    return AnalystAccess(f"{dsn} (opened directly, read-only)", database, client=client, engine=engine)
