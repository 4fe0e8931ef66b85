"""The read-only ClickHouse HTTP interface over the embedded store, served by the process that owns it.

The embedded engine (chdb) belongs to one process, so analysts cannot open it while the sink writes. The owner
serves it instead, speaking enough of ClickHouse's HTTP protocol that ordinary clients work unchanged:
clickhouse-connect's ``get_client(host=..., port=...)``, ``curl 'http://127.0.0.1:8124/?query=SELECT+1'`` and
Grafana's ClickHouse data source (HTTP protocol).

Protocol subset: ``GET``/``POST`` on ``/`` with the SQL in the ``query`` parameter, the body, or both
(parameter first, then a newline, then the body, as ClickHouse does); ``multipart/form-data`` bodies
(``query`` and ``param_*`` fields); ``default_format`` (``TabSeparated`` by default, a ``FORMAT`` clause wins);
``database``; ``param_<name>`` query parameters; ``session_id`` / ``session_timeout``; any whitelisted setting as
a URL parameter; ``Content-Encoding`` of the request body (gzip, deflate, zstd, lz4); response compression
with ``enable_http_compression=1`` and ``Accept-Encoding`` (gzip, deflate, zstd, lz4); ``wait_end_of_query=1``
buffers the whole result, otherwise stream-safe formats stream with chunked encoding; ``/ping`` and ``GET /``
answer ``Ok.``. Response headers: ``X-ClickHouse-Query-Id``, ``-Format``, ``-Timezone``, ``-Summary``,
``-Server-Display-Name``; errors carry ``X-ClickHouse-Exception-Code`` and the exception text in the body with
ClickHouse's status mapping (400 syntax/bad arguments, 404 unknown table/database/function, 413 query too
large, 500 otherwise, including 159 time limit, 396 result limit, 241 memory limit and 202 too many queries) and
403 for everything refused as a write. The output bytes are the engine's own: nothing is re-encoded.

What a statement is, is decided by the engine's parser (``sql_statement.py``), and a write is refused from its
statement alone: a URL statement that parses as a write is refused before its body is read, and a body is
read only up to ``sink_sql_max_query_bytes`` decoded bytes. Per-query limits, the bound on concurrent queries
and cancellation of a query whose client went away: ``readonly_engine.py`` and ``sql_limits.py``.

Not supported (answered with a clear error): external data tables, ClickHouse-native block compression
(``compress=1``/``decompress=1``), inserts of any kind. Logins: ``port_auth.py`` (with no users configured,
credentials are ignored and the port binds to loopback only). HTTPS: ``port_tls.py`` (with
``sink_sql_tls_cert``/``_key`` set the port speaks HTTPS only; the handshake runs in the connection's thread).
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from touchpoint import metrics
from touchpoint.errors import ConfigError
from touchpoint.sinks.http_wire import BodyReader, DisconnectWatch, codec_available, encode_body, form_fields, http_status
from touchpoint.sinks.readonly_engine import QueryError, QueryOutput, ReadOnlyEngine, as_query_error, new_token
from touchpoint.sinks.sql_limits import QueryLimits
from touchpoint.sinks.port_auth import PortAccess, redact
from touchpoint.sinks.port_tls import handshake, server_context

log = logging.getLogger(__name__)

# URL parameters the HTTP layer consumes (or accepts and ignores); everything else is a ClickHouse setting.
TRANSPORT_PARAMS = frozenset({
    "query", "database", "default_format", "query_id", "session_id", "session_timeout", "session_check",
    "wait_end_of_query", "client_protocol_version", "send_progress_in_http_headers",
    "http_headers_progress_interval_ms", "enable_http_compression", "http_zlib_compression_level",
    "cancel_http_readonly_queries_on_client_close", "buffer_size", "user", "password", "quota_key", "role",
    "add_http_cors_header", "http_response_buffer_size", "http_wait_end_of_query", "compress", "decompress",
    "readonly", "max_query_size",
})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# How much of an oversized body is parsed to tell an INSERT (refused as a write) from a too-large query: an
# INSERT's statement comes first and is short; parsing more would only spend the sink's memory on a refusal.
_STATEMENT_HEAD_CHARS = 64 * 1024
REFUSAL_CODES = frozenset({164, 497})  # counted as "refused" on /metrics: writes and forbidden settings
_CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8", "TSV": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent", "CSVWithNames": "text/csv; charset=UTF-8; header=present",
    "JSON": "application/json; charset=UTF-8", "JSONCompact": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8", "Native": "application/octet-stream",
    "RowBinary": "application/octet-stream", "RowBinaryWithNamesAndTypes": "application/octet-stream",
    "Parquet": "application/octet-stream", "Arrow": "application/octet-stream",
}
class ReadOnlySQLServer(ThreadingHTTPServer):
    """Threaded HTTP server answering ClickHouse HTTP requests read-only; ``close()`` stops it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, engine: ReadOnlyEngine, host: str, port: int, access: PortAccess | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.engine = engine
        self.access = access or PortAccess({}, set)
        self.tls = tls  # None: plain HTTP; else HTTPS only
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = str(self.server_address[0])
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://[{host}]:{self.port}" if ":" in host else f"{scheme}://{host}:{self.port}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Serve one connection (in its own thread); over TLS, after a bounded handshake (``port_tls.handshake``),
        so a silent or plain-HTTP client holds up nobody else and is closed without a traceback."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        connection = handshake(self.tls, request, client_address)
        if connection is None:
            return
        try:
            super().finish_request(connection, client_address)
        finally:
            self.shutdown_request(connection)  # the caller's shutdown of ``request`` finds it detached

    def start(self) -> "ReadOnlySQLServer":
        self._thread = threading.Thread(target=self.serve_forever, name="touchpoint-sql-port", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "ReadOnlySQLServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def engine_connection_string(client: Any) -> str:
    """The chdb connection string a clickhouse-connect chdb client opened (handles must use the same spelling)."""
    backend = getattr(client, "_backend", None)
    connection_string = getattr(backend, "connection_string", None)
    if isinstance(connection_string, str) and connection_string:
        return connection_string
    path = getattr(client, "path", None)
    if isinstance(path, str) and path and not path.startswith(":memory:"):
        from clickhouse_connect.driver._chdbclient import build_connection_string

        return build_connection_string(path, None)
    raise ConfigError(
        "the read-only SQL port serves the embedded ClickHouse store (chdb:///path) only; a ClickHouse server "
        "has its own HTTP interface, query that instead"
    )


def serve_readonly(client: Any, host: str | int = "127.0.0.1", port: int | None = None, *, database: str | None = None,
                   settings: Any = None) -> ReadOnlySQLServer:
    """Start the read-only ClickHouse HTTP interface over the embedded store ``client`` uses; return the running
    server (``server.port``, ``server.url``, ``server.close()``).

    ``client`` is the owner's clickhouse-connect chdb client (or a sink ``Store`` holding one, or a zero-argument
    factory returning one); only its engine path is used: requests run on their own handles. ``port`` defaults
    to ``settings.sink_sql_port`` (0 picks a free port); ``database`` (the default database of requests that name
    none) to ``settings.clickhouse_database``; the per-query limits come from ``settings.sink_sql_*``. Binds to
    loopback only unless users are configured; HTTPS only when ``settings.sink_sql_tls_cert``/``_key`` are set.
    """
    if settings is None:
        from touchpoint.config import get_settings

        settings = get_settings()
    if isinstance(host, int):  # serve_readonly(client, port): the port given positionally
        port = host if port is None else port
        host = "127.0.0.1"
    if callable(client) and not hasattr(client, "query") and not hasattr(client, "client"):
        client = client()  # a zero-argument factory of the owner's client
    tls = server_context(settings)  # a TLS misconfiguration stops here, before anything binds
    access = PortAccess.from_settings(settings, lambda: _databases(engine))
    if host not in LOOPBACK_HOSTS and not access.enabled:
        raise ConfigError(f"the read-only SQL port has no users, so it binds to loopback only (127.0.0.1, ::1), not "
                          f"{host!r}: set TOUCHPOINT_SINK_SQL_USERS (sinks/port_auth.py) or a loopback "
                          "TOUCHPOINT_SINK_SQL_HOST")
    raw_client = getattr(client, "client", client)
    database = database or getattr(client, "database", None)
    if not database or database == "default":
        database = settings.clickhouse_database
    engine = ReadOnlyEngine(engine_connection_string(raw_client), database, limits=QueryLimits.from_settings(settings))
    try:
        server = ReadOnlySQLServer(engine, host, settings.sink_sql_port if port is None else port, access, tls)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve read-only SQL on {host}:{port if port is not None else settings.sink_sql_port}: {exc}; "
            "set TOUCHPOINT_SINK_SQL_PORT to a free port (0 disables the port)"
        ) from exc
    log.info("read-only ClickHouse HTTP interface on %s (database %s)", server.url, database)
    return server.start()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes: with Nagle on, the client's delayed ACK adds ~40 ms to every
    # keep-alive response (measured: a point query took 52 ms through the port, 5 ms direct).
    disable_nagle_algorithm = True
    timeout = 300  # an idle keep-alive connection gives its thread back after this many seconds
    server: ReadOnlySQLServer
    server_version = "touchpoint-readonly"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), redact(format % args))

    # ---- routing --------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch(with_body=False)

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch(with_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._send(200, b"", {"Content-Type": "text/html; charset=UTF-8"}, head_only=True)

    def _dispatch(self, with_body: bool) -> None:
        """One request, in order: route; read the statement (URL ``query``, then the body, bounded); run it
        read-only while watching for the client to go away; answer. Every refusal is a ClickHouse error."""
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        engine = self.server.engine
        try:
            body = BodyReader(self.rfile, self.headers, engine.limits.max_query_bytes) if with_body else None
        except QueryError as exc:
            self.close_connection = True
            self._send_error(exc)
            return
        if url.path in ("/ping", "/replicas_status") or (
                url.path == "/" and "query" not in params and (body is None or not body.has_body)):
            self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8",
                                       "X-Touchpoint-Store": engine.connection_string})
            self._discard(body)
            return
        if url.path != "/":
            self._send(404, f"There is no handle {url.path}\n".encode(), {"Content-Type": "text/plain; charset=UTF-8"})
            self._discard(body)
            return
        started = time.perf_counter()
        try:
            params, sql = self._statement(params, body)
            self._query(params, sql)
        except QueryError as exc:
            metrics.SINK_SQL_QUERIES.labels("refused" if exc.code in REFUSAL_CODES else "error").inc()
            self._answer_refusal(exc, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away; nothing to answer
        except Exception as exc:  # noqa: BLE001 - a bug or bad request detail: answered, logged, never silent
            log.exception("read-only SQL port: request failed")
            metrics.SINK_SQL_QUERIES.labels("error").inc()
            self._answer_refusal(QueryError(f"Code: 1001. DB::Exception: {type(exc).__name__}: {exc}. "
                                            "(STD_EXCEPTION)", 1001, "STD_EXCEPTION"), body)
        else:
            metrics.SINK_SQL_QUERIES.labels("ok").inc()
        finally:
            metrics.SINK_SQL_QUERY_SECONDS.observe(time.perf_counter() - started)

    def _discard(self, body: BodyReader | None) -> None:
        """Throw away a body the answer did not need; a body too long to discard quickly ends the connection."""
        if body is not None and body.has_body:
            body.discard()
            self.close_connection = self.close_connection or body.has_body

    def _answer_refusal(self, exc: QueryError, body: BodyReader | None) -> None:
        """The error answer; a body the request still carries is discarded (bounded) and the connection closed,
        so a client still sending rows (an insert) reads the refusal instead of a reset connection."""
        if body is not None and body.has_body:
            self.close_connection = True
        try:
            self._send_error(exc)
            if body is not None and body.has_body:
                body.discard()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # ---- the statement --------------------------------------------------------------------------
    def _statement(self, params: dict[str, str], body: BodyReader | None) -> tuple[dict[str, str], str]:
        """The request's parameters and its statement text, as ClickHouse forms it: the URL ``query``, then a
        newline, then the body (or the ``query`` field of a multipart form).

        A write is refused from its statement alone: a URL statement that the engine parses as a write is
        refused before one body byte is read (its body is an INSERT's rows), and a body is read at most
        ``max_query_bytes`` decoded bytes far; when it is longer, that head is judged (an INSERT's statement
        comes first, its rows after) and anything else is refused as too large (229), never read whole.
        """
        engine = self.server.engine
        query = params.get("query", "")
        if body is None or not body.has_body:
            return params, query
        if query:
            engine.refuse_if_write(query)
        head, complete = body.read()
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            if not complete:
                raise as_query_error(engine.limits.query_too_large(len(head) + 1))
            params = {**params, **form_fields(content_type, head)}
            return params, params.get("query", "")
        text = head.decode("utf-8", errors="replace")
        sql = f"{query}\n{text}" if query else text
        if not complete:
            engine.refuse_if_write(sql[:_STATEMENT_HEAD_CHARS])
            raise as_query_error(engine.limits.query_too_large(len(head) + 1))
        return params, sql

    # ---- queries --------------------------------------------------------------------------------
    def _query(self, params: dict[str, str], query: str) -> None:
        if any(name.endswith("_structure") or name.endswith("_types") for name in params):
            raise QueryError("Code: 48. DB::Exception: external data tables are not supported by this read-only "
                             "interface. (NOT_IMPLEMENTED)", 48, "NOT_IMPLEMENTED")
        if params.get("compress") == "1" or params.get("decompress") == "1":
            raise QueryError("Code: 48. DB::Exception: ClickHouse-native block compression (compress=1) is not "
                             "supported; use HTTP compression (enable_http_compression=1). (NOT_IMPLEMENTED)",
                             48, "NOT_IMPLEMENTED")
        if params.get("readonly") not in (None, "", "1"):
            raise QueryError("Code: 164. DB::Exception: Cannot modify 'readonly' setting in readonly mode. (READONLY)",
                             164, "READONLY")
        settings = {k: v for k, v in params.items() if k not in TRANSPORT_PARAMS and not k.startswith("param_")}
        bind = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        database = params.get("database") or self.headers.get("X-ClickHouse-Database") or None
        database = self.server.access.check(self.headers, params, query, database, self.server.engine.default_database)
        default_format = params.get("default_format") or self.headers.get("X-ClickHouse-Format") or "TabSeparated"
        session_timeout = float(params.get("session_timeout") or 60)
        query_id = params.get("query_id") or str(uuid.uuid4())
        buffered = params.get("wait_end_of_query") == "1" or params.get("enable_http_compression") == "1"
        token = new_token()
        with DisconnectWatch(self.connection, lambda: self.server.engine.cancel(token)):
            output = self.server.engine.execute(
                query, default_format=default_format, database=database, settings=settings, params=bind,
                session_id=params.get("session_id") or None, session_timeout=session_timeout, stream=not buffered,
                token=token,
            )
            headers = self._result_headers(output, query_id)
            if buffered:
                data = output.read_all()
                headers["X-ClickHouse-Summary"] = json.dumps(_summary(output, len(data)))
                encoding = self._response_encoding(params)
                if encoding and data:
                    data = encode_body(data, encoding)
                    headers["Content-Encoding"] = encoding
                self._send(200, data, headers)
            else:
                self._send_stream(output, headers)

    def _result_headers(self, output: QueryOutput, query_id: str) -> dict[str, str]:
        headers = {
            "Content-Type": _CONTENT_TYPES.get(output.fmt, "text/plain; charset=UTF-8"),
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.server.engine.timezone,
            "X-ClickHouse-Server-Display-Name": "touchpoint-readonly",
        }
        if output.returns_rows:
            headers["X-ClickHouse-Format"] = output.fmt
        return headers

    def _response_encoding(self, params: dict[str, str]) -> str | None:
        if params.get("enable_http_compression") != "1":
            return None
        accepted = [e.strip().split(";")[0] for e in (self.headers.get("Accept-Encoding") or "").lower().split(",")]
        for name in accepted:
            if name in ("gzip", "deflate") or (name in ("zstd", "lz4") and codec_available(name)):
                return name
        return None

    # ---- writing --------------------------------------------------------------------------------
    def _send(self, status: int, data: bytes, headers: dict[str, str], head_only: bool = False) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Keep-Alive", "timeout=10")
        self.end_headers()
        if not head_only:
            self.wfile.write(data)

    def _send_stream(self, output: QueryOutput, headers: dict[str, str]) -> None:
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in output.chunks:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except QueryError as exc:
            # Mid-stream failure: as ClickHouse does, append the exception text and break the stream, so the
            # client sees an incomplete response carrying the error rather than a short, silently valid one.
            text = (exc.text + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(text), text))
            self.close_connection = True
            return
        except (BrokenPipeError, ConnectionResetError):
            output.chunks.close() if hasattr(output.chunks, "close") else None
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")

    def _send_error(self, exc: QueryError) -> None:
        text = exc.text if "(version " in exc.text else f"{exc.text} (version {self.server.engine.version})"
        self._send(http_status(exc.code), (text + "\n").encode(), {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Exception-Code": str(exc.code),
            "X-ClickHouse-Server-Display-Name": "touchpoint-readonly",
        })


def _databases(engine: ReadOnlyEngine) -> set[str]:
    return set(engine.execute("SELECT name FROM system.databases", default_format="TabSeparated",
                              stream=False).read_all().decode().split())


def _summary(output: QueryOutput, result_bytes: int) -> dict[str, str]:
    return {"read_rows": output.summary.get("read_rows", "0"), "read_bytes": output.summary.get("read_bytes", "0"),
            "written_rows": "0", "written_bytes": "0", "total_rows_to_read": "0", "result_rows": "0",
            "result_bytes": str(result_bytes), "elapsed_ns": output.summary.get("elapsed_ns", "0")}

