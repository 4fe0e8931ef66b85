"""Read-only SQL over the embedded (chdb) store, returning the engine's own output bytes in any format.

Used by the read-only HTTP interface (``http_server.py``) in the process that owns the store, and by
``touchpoint query`` when no process owns it: one path for both. Layers, in the order a statement meets them:

1. ``sql_statement.StatementGate``: the engine's own parser decides what the statement is (one statement, a
   read kind, allowed table functions only, no SETTINGS clause, no INTO OUTFILE); the engine's canonical text
   of the statement is what runs.
2. ClickHouse's own ``readonly = 1`` on the handle, with ``ENGINE_GUARDS`` (the Python table function off, ...),
   so whatever layer 1 might miss the engine refuses.
3. Per-query limits (``sql_limits.QueryLimits``) set on the handle: time, result rows/bytes, memory; at most
   ``max_concurrent`` queries at once, one more is answered at once with code 202.

Each statement runs on a fresh chdb connection handle (measured: ~1 ms to open, set and close). A handle is the
unit of session state in chdb, and ``readonly = 1`` cannot be lifted on a handle once set, so a fresh one per
statement is both the simplest and the only correct way to apply an analyst's whitelisted settings first. chdb
runs handles of one engine concurrently (measured: 3 query threads plus an insert thread, no errors).

A running statement carries a marker comment (``/* touchpoint-query:<token> */``) so ``cancel(token)`` can stop
it from another thread (``KILL QUERY``) when its client goes away.

HTTP sessions (``session_id``) are emulated: a session remembers its whitelisted ``SET`` values and its ``USE``
database and replays them on each statement's fresh handle.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from touchpoint.errors import PermanentError
from touchpoint.sinks.sql_guard import READONLY, ReadOnlyViolation, refuse_setting, setting_allowed
from touchpoint.sinks.native_header import native_header
from touchpoint.sinks.sql_limits import QueryLimits
from touchpoint.sinks.sql_statement import READ_ROOTS, SESSION_ROOTS, Statement, StatementGate, kind_name, readonly_refusal

# Formats whose per-block outputs concatenate into one valid stream (chdb emits one encoding per block).
STREAM_SAFE_FORMATS = frozenset({"Native", "TabSeparated", "TSV", "CSV", "RowBinary", "JSONEachRow", "JSONCompactEachRow"})
_CODE_RE = re.compile(r"Code: (\d+)")
_NAME_RE = re.compile(r"\(([A-Z_]+)\)(?: \(version [^)]*\))?\.?\s*$")
_TRAILING_FORMAT_RE = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_MARKER = "touchpoint-query:"
# Engine-side guards set with readonly = 1 on every analyst handle (those this engine version knows): the Python
# table function (chdb's window on this process's objects) and the experimental eval/ytsaurus table functions
# off, no directories made for INTO OUTFILE, no introspection functions. Layer 2 behind the statement gate.
ENGINE_GUARDS = {
    "allow_python_table_function": "0", "allow_experimental_eval_table_function": "0",
    "allow_experimental_ytsaurus_table_function": "0", "into_outfile_create_parent_directories": "0",
    "allow_introspection_functions": "0",
}
_SETTING_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class QueryError(PermanentError):
    """The engine refused or failed a statement; ``code`` and ``name`` are ClickHouse's, ``text`` its message."""

    def __init__(self, text: str, code: int, name: str = "") -> None:
        self.text = text
        self.code = code
        self.name = name
        super().__init__(text)


@dataclass
class QueryOutput:
    """A statement's result: ``chunks`` yields the body in ``fmt`` (already produced, or streamed)."""

    fmt: str
    chunks: Iterator[bytes]
    returns_rows: bool
    summary: dict[str, str] = field(default_factory=dict)

    def read_all(self) -> bytes:
        return b"".join(self.chunks)


@dataclass
class _Session:
    settings: dict[str, str] = field(default_factory=dict)
    database: str | None = None
    last_used: float = field(default_factory=time.monotonic)
    timeout: float = 60.0


def quote_literal(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def as_query_error(exc: BaseException) -> QueryError:
    """A chdb exception as ClickHouse would report it over HTTP (``Code: N. DB::Exception: ...``)."""
    if isinstance(exc, QueryError):
        return exc
    if isinstance(exc, ReadOnlyViolation):
        return QueryError(str(exc), exc.code, exc.name)
    text = str(exc).strip()
    start = text.find("Code: ")
    if start > 0:
        text = text[start:]
    found = _CODE_RE.search(text)
    code = int(found.group(1)) if found else 1001  # STD_EXCEPTION
    if not found:
        text = f"Code: 1001. DB::Exception: {text}. (STD_EXCEPTION)"
    name = _NAME_RE.search(text)
    return QueryError(text, code, name.group(1) if name else "")


class ReadOnlyEngine:
    """Runs analyst SQL read-only on the chdb engine at ``connection_string`` (the owner's exact path string),
    within ``limits``."""

    def __init__(self, connection_string: str, default_database: str = "default",
                 limits: QueryLimits | None = None) -> None:
        import chdb

        self._chdb = chdb
        self.connection_string = connection_string
        self.default_database = default_database
        self.limits = limits or QueryLimits()
        self._slots = threading.BoundedSemaphore(self.limits.max_concurrent)
        self._sessions: dict[str, _Session] = {}
        self._sessions_lock = threading.Lock()
        probe = self._connect()
        try:
            version, tz = probe.query("SELECT version(), timezone()", "TabSeparated").bytes().decode().strip().split("\t")
            names = probe.query("SELECT lower(name) FROM system.table_functions", "TabSeparatedRaw").bytes().decode()
            known = probe.query("SELECT name FROM system.settings WHERE name IN ({names:Array(String)})",
                                "TabSeparatedRaw", params={"names": str(list(ENGINE_GUARDS))}).bytes().decode()
        finally:
            probe.close()
        self.version: str = version
        self.timezone: str = tz
        self._table_functions = frozenset(names.split())
        self._guards = {name: value for name, value in ENGINE_GUARDS.items() if name in known.split()}

    def _connect(self) -> Any:
        try:
            return self._chdb.connect(self.connection_string)
        except Exception as exc:  # noqa: BLE001 - becomes the ClickHouse-style error the caller reports
            raise as_query_error(exc) from exc

    def _gate(self, conn: Any) -> StatementGate:
        def run(sql: str, params: Mapping[str, str]) -> str:
            return bytes(_run(conn, sql, "TabSeparatedRaw", params).bytes() or b"").decode("utf-8", errors="replace")

        return StatementGate(run, self._table_functions)

    def classify(self, sql: str, params: Mapping[str, str] | None = None) -> Statement:
        """What the engine's parser makes of ``sql`` (see ``StatementGate.classify``), on a fresh handle;
        raises ``QueryError`` with the refusal's or the parser's code."""
        self._check_size(sql)
        conn = self._connect()
        try:
            _run(conn, f"SET max_query_size = {self.limits.max_query_bytes + 256}")
            return self._gate(conn).classify(sql, params)
        except ReadOnlyViolation as exc:
            raise as_query_error(exc) from exc
        finally:
            conn.close()

    def refuse_if_write(self, sql: str) -> None:
        """Raise the READONLY refusal when the engine parses ``sql`` (a statement head: a URL ``query`` whose
        request has a body) as anything but a read. A head that does not parse on its own says nothing (the body
        may complete it) and passes; the whole statement is judged again by ``execute``. Only the statement is
        parsed: the data of ``INSERT ... FORMAT x`` is never part of it."""
        self._check_size(sql)
        conn = self._connect()
        try:
            _run(conn, f"SET max_query_size = {self.limits.max_query_bytes + 64}")
            try:
                kind = self._gate(conn).kind(sql)
            except (QueryError, ReadOnlyViolation):
                return
        finally:
            conn.close()
        if kind not in READ_ROOTS and kind not in SESSION_ROOTS:
            raise as_query_error(readonly_refusal(f"{kind_name(kind)} is not allowed"))

    def cancel(self, token: str) -> None:
        """Stop the statement ``execute`` runs under ``token`` (no-op when it has finished)."""
        if not re.fullmatch(r"[0-9a-f]{32}", token):
            return
        conn = self._connect()
        try:
            # The marker is split in the KILL statement's own text so that it never matches itself.
            _run(conn, f"KILL QUERY WHERE position(query, concat('{_MARKER}', '{token}')) > 0 SYNC")
        finally:
            conn.close()

    def _check_size(self, sql: str) -> None:
        size = len(sql.encode("utf-8", errors="replace"))
        if size > self.limits.max_query_bytes:
            raise as_query_error(self.limits.query_too_large(size))

    # ---- sessions -------------------------------------------------------------------------------
    def _session(self, session_id: str | None, timeout: float) -> _Session | None:
        if not session_id:
            return None
        now = time.monotonic()
        with self._sessions_lock:
            for key in [k for k, s in self._sessions.items() if now - s.last_used > s.timeout]:
                del self._sessions[key]
            session = self._sessions.get(session_id)
            if session is None:
                if len(self._sessions) >= 10_000:  # bound memory: forget the least recently used
                    oldest = min(self._sessions, key=lambda k: self._sessions[k].last_used)
                    del self._sessions[oldest]
                session = self._sessions[session_id] = _Session(timeout=timeout)
            session.last_used = now
            session.timeout = timeout
            return session

    # ---- execution ------------------------------------------------------------------------------
    def execute(
        self,
        sql: str,
        *,
        default_format: str = "TabSeparated",
        database: str | None = None,
        settings: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        session_id: str | None = None,
        session_timeout: float = 60.0,
        stream: bool = False,
        token: str | None = None,
    ) -> QueryOutput:
        """Run one read-only statement and return its output in ``default_format`` (unless the SQL has a
        ``FORMAT`` clause, which wins, as over ClickHouse HTTP). Raises ``QueryError``.

        Steps, in order: refuse an oversized statement (229); take a query slot or answer 202 at once; on a
        fresh handle: let the engine classify the statement (``StatementGate``), apply session + request
        settings (whitelist checked), run a ``SET``/``USE`` statement against the session instead of the
        query, set the limits (an analyst's own lower values kept, higher ones refused), set ``readonly = 1``,
        select the database, run the engine's canonical text of the statement under ``token``'s marker
        (streamed for stream-safe formats when ``stream``), close the handle, free the slot.
        """
        self._check_size(sql)
        for name in settings or {}:
            if not _SETTING_NAME_RE.match(name) or not setting_allowed(name):
                raise as_query_error(refuse_setting(name))
        if not self._slots.acquire(blocking=False):
            raise as_query_error(self.limits.too_many_queries())
        conn = None
        handed_to_stream = False
        try:
            conn = self._connect()
            _run(conn, f"SET max_query_size = {self.limits.max_query_bytes + 256}")
            try:
                statement = self._gate(conn).classify(sql, params)
            except ReadOnlyViolation as exc:
                raise as_query_error(exc) from exc
            session = self._session(session_id, session_timeout)
            applied = {**(session.settings if session else {}),
                       **{k: quote_literal(v) for k, v in (settings or {}).items()}}
            db = database or (session.database if session else None) or self.default_database
            fmt = statement.fmt or default_format
            _set(conn, applied)
            if statement.kind == "Set":
                for name in statement.settings:
                    if not setting_allowed(name):
                        raise as_query_error(refuse_setting(name))
                _set(conn, statement.settings)  # the engine validates the values
                self._limit(conn, set(applied) | set(statement.settings))
                if session is not None:
                    session.settings.update(statement.settings)
                return QueryOutput(fmt, iter(()), False)
            self._limit(conn, set(applied), then={**self._guards, "readonly": "1"})
            if statement.kind == "UseQuery":
                _run(conn, f"USE {quote_identifier(statement.database or '')}")
                if session is not None:
                    session.database = statement.database
                return QueryOutput(fmt, iter(()), False)
            if db:
                _run(conn, f"USE {quote_identifier(db)}")
            text = f"/* {_MARKER}{token} */ {statement.canonical}" if token else statement.canonical
            if stream and fmt in STREAM_SAFE_FORMATS:
                out = self._stream(conn, text, fmt, params, statement.returns_rows)
                handed_to_stream = True  # the stream closes the handle and frees the slot when done
                return QueryOutput(fmt, out, statement.returns_rows)
            result = _run(conn, text, fmt, params)
            body = result.bytes() or b""
            if not body and fmt == "Native" and statement.returns_rows:
                body = _native_header(conn, statement.canonical, params)
            return QueryOutput(fmt, iter((body,)) if body else iter(()), statement.returns_rows, _summary(result))
        finally:
            if not handed_to_stream:
                if conn is not None:
                    conn.close()
                self._slots.release()

    def _limit(self, conn: Any, set_by_analyst: set[str], then: Mapping[str, str] | None = None) -> None:
        """Set the limit ceilings on ``conn`` (and the settings ``then``, in the same statement): the values in
        force are read back from the engine, so a limit an analyst lifted in any spelling the engine accepts is
        seen and refused."""
        names = list(self.limits.ceilings())
        row = _run(conn, "SELECT " + ", ".join(f"toFloat64(getSetting('{n}'))" for n in names),
                   "TabSeparatedRaw").bytes().decode().strip().split("\t")
        try:
            apply = self.limits.settings_to_apply(dict(zip(names, map(float, row))), set_by_analyst)
        except ReadOnlyViolation as exc:
            raise as_query_error(exc) from exc
        _set(conn, {**{name: str(int(value) if float(value).is_integer() else value) for name, value in apply.items()},
                    **(then or {})})

    def _stream(self, conn: Any, sql: str, fmt: str, params: Mapping[str, str] | None,
                returns_rows: bool) -> Iterator[bytes]:
        """Start a streaming query and return its chunks; the first chunk is pulled now so that an error at
        the start still becomes a proper error response. Closing the iterator early cancels the query."""
        try:
            stream = conn.send_query(sql, fmt, params=dict(params or {}))
            first = next(stream, None)
        except Exception as exc:  # noqa: BLE001 - reported as ClickHouse reports it (the caller closes the handle)
            raise as_query_error(exc) from exc

        def chunks() -> Iterator[bytes]:
            finished = False
            try:
                if first is not None:
                    yield first.bytes()
                elif fmt == "Native" and returns_rows:
                    header = _native_header(conn, _unmarked(sql), params)
                    if header:
                        yield header
                for chunk in stream:
                    data = chunk.bytes()
                    if data:
                        yield data
                finished = True
            except Exception as exc:  # noqa: BLE001 - mid-stream failure: the caller appends it to the body
                raise as_query_error(exc) from exc
            finally:
                try:
                    if not finished:
                        stream.cancel()  # the client went away (or failed): stop the query's work now
                    stream.close()
                finally:
                    conn.close()
                    self._slots.release()

        return chunks()


def parser_gate() -> StatementGate:
    """A statement gate over an in-memory embedded engine: ClickHouse's parser for statements bound for a
    ClickHouse server (nothing is stored or run there; the process must hold no other embedded engine)."""
    import chdb

    conn = chdb.connect(":memory:")
    names = conn.query("SELECT lower(name) FROM system.table_functions", "TabSeparatedRaw").bytes().decode()
    lock = threading.Lock()

    def run(sql: str, params: Mapping[str, str]) -> str:
        with lock:
            return bytes(_run(conn, sql, "TabSeparatedRaw", params).bytes() or b"").decode("utf-8", errors="replace")

    return StatementGate(run, frozenset(names.split()))


def new_token() -> str:
    """A token for ``ReadOnlyEngine.execute``/``cancel``."""
    return uuid.uuid4().hex


def _unmarked(sql: str) -> str:
    return sql.split(" */ ", 1)[1] if sql.startswith(f"/* {_MARKER}") else sql


def _set(conn: Any, settings: Mapping[str, str]) -> None:
    """One SET statement for all of ``settings`` (name -> SQL literal): one engine round trip, not one each."""
    if settings:
        _run(conn, "SET " + ", ".join(f"{name} = {literal}" for name, literal in settings.items()))


def _run(conn: Any, sql: str, fmt: str = "TabSeparated", params: Mapping[str, str] | None = None) -> Any:
    try:
        return conn.query(sql, fmt, params=dict(params or {}))
    except Exception as exc:  # noqa: BLE001 - reported as ClickHouse reports it
        raise as_query_error(exc) from exc


def _summary(result: Any) -> dict[str, str]:
    try:
        return {"read_rows": str(result.rows_read()), "read_bytes": str(result.bytes_read()),
                "elapsed_ns": str(int(result.elapsed() * 1e9))}
    except Exception:  # noqa: BLE001 - statistics are optional
        return {}


def _native_header(conn: Any, sql: str, params: Mapping[str, str] | None) -> bytes:
    """The 0-row Native block ClickHouse sends for an empty result (chdb sends nothing), so clients still see
    the column names and types; they come from the same statement in RowBinaryWithNamesAndTypes."""
    stripped = _TRAILING_FORMAT_RE.sub("", sql.rstrip().rstrip(";"))
    return native_header(_run(conn, stripped, "RowBinaryWithNamesAndTypes", params).bytes() or b"")


__all__ = ["QueryError", "QueryOutput", "ReadOnlyEngine", "STREAM_SAFE_FORMATS", "as_query_error", "new_token", "parser_gate", "READONLY"]
