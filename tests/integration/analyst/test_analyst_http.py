"""The read-only ClickHouse HTTP interface over the embedded store, driven by real clients.

clickhouse-connect's own HTTP client (``get_client(host, port)``) and plain HTTP requests (what curl and Grafana
send) against ``serve_readonly`` on the session's chdb path, while the owner keeps inserting.
"""

from __future__ import annotations

import datetime as dt
import gzip
import http.client
import json
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

pytestmark = pytest.mark.integration

TYPED_DDL = """
CREATE TABLE {db}.typed (
    id UInt64, name LowCardinality(String), at DateTime64(3, 'UTC'), attrs Map(LowCardinality(String), String),
    tags Array(String), score Nullable(Int16), amount Decimal(18, 2), uid UUID
) ENGINE = MergeTree ORDER BY id
"""
TYPED_ROWS = [
    (1, "web", dt.datetime(2026, 3, 2, 9, 0, 0, 123000, tzinfo=dt.timezone.utc), {"utm_source": "google"}, ["a", "b"], 9,
     Decimal("12.34"), uuid.UUID("6a1e2f3c-0000-4000-8000-000000000001")),
    (2, "app", dt.datetime(2026, 3, 2, 23, 59, 59, 999000, tzinfo=dt.timezone.utc), {}, [], None, Decimal("-0.50"),
     uuid.UUID("6a1e2f3c-0000-4000-8000-000000000002")),
    (3, "web", dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc), {"k": "v", "x": "ä"}, ["ü"], 0, Decimal("0.00"),
     uuid.UUID("6a1e2f3c-0000-4000-8000-000000000003")),
]
COLUMNS = ["id", "name", "at", "attrs", "tags", "score", "amount", "uid"]
# The row UUID of the CI flake (issue 10): its bytes hold a ';'; see test_analyst_write_shapes.py.
ROW_UUID = uuid.UUID("a5406838-bdd2-a62b-bfbf-40858d083e85")


def _typed_table(store: Any) -> None:
    store.client.command(TYPED_DDL.format(db=store.database))
    store.client.insert(f"{store.database}.typed", [list(r) for r in TYPED_ROWS], column_names=COLUMNS)


def _http(server: Any, method: str, path: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _get(server: Any, **params: str) -> tuple[int, dict[str, str], bytes]:
    return _http(server, "GET", "/?" + urlencode(params))


# ---- clickhouse-connect's HTTP client -------------------------------------------------------------------

def test_clickhouse_connect_http_client_reads_every_type_like_the_embedded_client(store: Any, sql_server: Any) -> None:
    _typed_table(store)
    analyst = clickhouse_connect.get_client(host="127.0.0.1", port=sql_server.port, username="default", password="")
    try:
        assert analyst.server_version == store.client.server_version
        sql = "SELECT id, name, at, attrs, tags, score, amount, uid FROM typed ORDER BY id"
        over_http = analyst.query(sql)
        direct = store.client.query(f"SELECT id, name, at, attrs, tags, score, amount, uid FROM {store.database}.typed ORDER BY id")
        assert over_http.column_names == tuple(COLUMNS)
        assert [t.name for t in over_http.column_types] == [t.name for t in direct.column_types]
        assert over_http.column_types[1].name == "LowCardinality(String)"
        assert over_http.column_types[2].name == "DateTime64(3, 'UTC')"
        assert over_http.result_rows == direct.result_rows
        first = over_http.result_rows[0]
        assert first[0] == 1 and first[1] == "web" and first[3] == {"utm_source": "google"} and first[4] == ["a", "b"]
        assert first[2].replace(tzinfo=dt.timezone.utc) == TYPED_ROWS[0][2]
        assert (first[5], first[6], first[7]) == (9, Decimal("12.34"), TYPED_ROWS[0][7])
        assert over_http.result_rows[1][5] is None
        # empty result: the column names and types still arrive
        empty = analyst.query("SELECT id, name FROM typed WHERE id > 100")
        assert empty.column_names == ("id", "name") and empty.result_rows == []
        # server-side parameters, commands, streaming, dataframe-free raw formats
        assert analyst.query("SELECT name FROM typed WHERE id = {i:UInt64}", parameters={"i": 3}).result_rows == [("web",)]
        assert analyst.command("SELECT count() FROM typed") == 3
        with analyst.query_row_block_stream("SELECT number FROM numbers(200000)") as stream:
            assert sum(len(block) for block in stream) == 200000
        lines = analyst.raw_query("SELECT id, tags FROM typed ORDER BY id", fmt="JSONEachRow").splitlines()
        assert json.loads(lines[2]) == {"id": 3, "tags": ["ü"]}
    finally:
        analyst.close()


def test_queries_stay_correct_while_the_owner_inserts(store: Any, sql_server: Any) -> None:
    store.client.command(f"CREATE TABLE {store.database}.stream (n UInt64, batch UInt32) ENGINE = MergeTree ORDER BY n")
    batches, size = 40, 500
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for b in range(batches):
                store.client.insert(f"{store.database}.stream", [[b * size + i for i in range(size)], [b] * size],
                                    column_names=["n", "batch"], column_oriented=True)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    analysts = [clickhouse_connect.get_client(host="127.0.0.1", port=sql_server.port) for _ in range(2)]
    seen: list[list[int]] = [[], []]

    def reader(k: int) -> None:
        try:
            while thread.is_alive():
                count, total = analysts[k].query("SELECT count(), sum(n) FROM stream").result_rows[0]
                seen[k].append(count)
                # inserts are atomic per batch: a reader sees whole batches 0..m, never a torn one
                assert count % size == 0
                assert total == sum(range(count))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    readers = [threading.Thread(target=reader, args=(k,)) for k in range(2)]
    for r in readers:
        r.start()
    thread.join(timeout=120)
    for r in readers:
        r.join(timeout=60)
    try:
        assert not errors, errors
        assert all(s == sorted(s) for s in seen), "counts went backwards"
        assert sum(len(s) for s in seen) >= 4, seen
        assert analysts[0].command("SELECT count() FROM stream") == batches * size
    finally:
        for a in analysts:
            a.close()


# ---- plain HTTP (curl, Grafana) -------------------------------------------------------------------------

def test_plain_http_requests(store: Any, sql_server: Any) -> None:
    _typed_table(store)
    assert _http(sql_server, "GET", "/ping")[2] == b"Ok.\n"
    assert _http(sql_server, "GET", "/")[2] == b"Ok.\n"
    status, headers, body = _get(sql_server, query="SELECT 1")
    assert (status, body) == (200, b"1\n")
    assert headers["content-type"].startswith("text/tab-separated-values")
    assert headers["x-clickhouse-format"] == "TabSeparated" and headers["x-clickhouse-timezone"]
    status, _, body = _http(sql_server, "POST", "/", b"SELECT id, name FROM typed ORDER BY id FORMAT CSV")
    assert (status, body) == (200, b'1,"web"\n2,"app"\n3,"web"\n')
    # query parameter + body are concatenated, as ClickHouse does
    status, _, body = _http(sql_server, "POST", "/?" + urlencode({"query": "SELECT id FROM typed"}), b"WHERE id = 2")
    assert (status, body) == (200, b"2\n")
    status, headers, body = _get(sql_server, query="SELECT id, tags FROM typed WHERE id = {i:UInt8}", param_i="1",
                                 default_format="JSONCompact")
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert json.loads(body)["data"] == [[1, ["a", "b"]]]
    status, _, body = _get(sql_server, query="SELECT currentDatabase()", database="system")
    assert body == b"system\n"
    status, _, body = _get(sql_server, query="SELECT getSetting('max_threads')", max_threads="1",
                           wait_end_of_query="1")
    assert (status, body) == (200, b"1\n")
    # compressed request body and compressed response
    status, headers, body = _http(
        sql_server, "POST", "/?enable_http_compression=1", gzip.compress(b"SELECT count() FROM typed"),
        {"Content-Encoding": "gzip", "Accept-Encoding": "gzip"})
    assert (status, headers["content-encoding"], gzip.decompress(body)) == (200, "gzip", b"3\n")
    # a session remembers SET and USE
    session = {"session_id": uuid.uuid4().hex}
    assert _get(sql_server, query="SET max_threads = 1", **session)[0] == 200
    assert _get(sql_server, query="USE system", **session)[0] == 200
    assert _get(sql_server, query="SELECT currentDatabase(), getSetting('max_threads')", **session)[2] == b"system\t1\n"


@pytest.mark.parametrize(("sql", "status", "code", "text"), [
    ("SELECT * FROM no_such_table", 404, "60", "UNKNOWN_TABLE"),
    ("SELECT no_such_column FROM typed", 404, "47", "UNKNOWN_IDENTIFIER"),
    ("SELECT (1, 2", 400, "62", "Syntax error"),
    ("SELECT throwIf(1)", 500, "395", "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO"),
])
def test_errors_come_back_as_clickhouse_returns_them(store: Any, sql_server: Any, sql: str, status: int, code: str,
                                                     text: str) -> None:
    _typed_table(store)
    got, headers, body = _get(sql_server, query=sql)
    assert got == status
    assert headers["x-clickhouse-exception-code"] == code
    assert body.startswith(f"Code: {code}. DB::Exception: ".encode()) and text.encode() in body
    analyst = clickhouse_connect.get_client(host="127.0.0.1", port=sql_server.port)
    try:
        with pytest.raises(DatabaseError) as err:
            analyst.query(sql)
        assert err.value.code == int(code)
    finally:
        analyst.close()


def test_an_error_in_the_middle_of_a_streamed_result_reaches_the_client(store: Any, sql_server: Any) -> None:
    analyst = clickhouse_connect.get_client(host="127.0.0.1", port=sql_server.port)
    try:
        with pytest.raises(Exception) as err:  # clickhouse-connect's StreamFailureError
            with analyst.query_row_block_stream("SELECT number, throwIf(number = 150000) FROM numbers(200000)") as stream:
                for _ in stream:
                    pass
        assert "Code: 395" in str(err.value)
        assert analyst.query("SELECT 1").result_rows == [(1,)]  # the client recovers on a new connection
    finally:
        analyst.close()


# ---- writes are refused ---------------------------------------------------------------------------------

WRITES = [
    "INSERT INTO typed (id, name) VALUES (99, 'x')",
    "INSERT INTO typed (id) SELECT number + 100 FROM numbers(5)",
    "CREATE TABLE made_here (a Int8) ENGINE = Memory",
    "DROP TABLE typed",
    "ALTER TABLE typed DELETE WHERE 1",
    "ALTER TABLE typed ADD COLUMN extra String",
    "TRUNCATE TABLE typed",
    "OPTIMIZE TABLE typed FINAL",
    "SYSTEM STOP MERGES",
    "RENAME TABLE typed TO renamed",
    "KILL QUERY WHERE 1",
    "SET readonly = 0",
    "SELECT 1 INTO OUTFILE '{outfile}'",
    "SELECT * FROM file('/etc/hostname', 'LineAsString')",
    "SELECT 1; DROP TABLE typed",
]


def _state(store: Any) -> tuple[Any, ...]:
    db = store.database
    return (store.client.query(f"SELECT id, name, tags FROM {db}.typed ORDER BY id").result_rows,
            store.client.query(f"SELECT name FROM system.tables WHERE database = '{db}' ORDER BY name").result_rows,
            store.client.query(f"SELECT name, type FROM system.columns WHERE database = '{db}' AND table = 'typed'").result_rows)


@pytest.mark.parametrize("via", ["query_param", "post_body", "param_and_body"])
def test_writes_are_refused_and_change_nothing(store: Any, sql_server: Any, tmp_path: Path, via: str) -> None:
    _typed_table(store)
    before = _state(store)
    outfile = tmp_path / "out.tsv"
    for template in WRITES:
        sql = template.format(outfile=outfile)
        if via == "query_param":
            status, headers, body = _http(sql_server, "POST", "/?" + urlencode({"query": sql}))
        elif via == "post_body":
            status, headers, body = _http(sql_server, "POST", "/", sql.encode())
        else:  # statement in the URL, data in the body, the way inserts are sent
            status, headers, body = _http(sql_server, "POST", "/?" + urlencode({"query": sql}), b"(5, 'five')")
        code = headers.get("x-clickhouse-exception-code")
        assert status in (400, 403), (sql, status, body)
        if code == "164":
            assert status == 403 and b"readonly" in body.lower(), (sql, body)
        else:
            assert code == "62", (sql, code, body)  # multi-statement / data after the statement: a syntax error
    assert _state(store) == before
    assert not outfile.exists()


@pytest.mark.parametrize("data", [b"(5, 'five');", b"\x05\x00;\x27\x22\x60/*", b"1\tx;\n"])
def test_insert_data_bytes_never_change_the_refusal(store: Any, sql_server: Any, data: bytes) -> None:
    """Rows in the body are data: a ``;`` or a quote byte among them still gets the READONLY answer (164)."""
    _typed_table(store)
    before = _state(store)
    for fmt in ("Values", "Native", "TabSeparated"):
        sql = f"INSERT INTO typed (id, name) FORMAT {fmt}"
        status, headers, body = _http(sql_server, "POST", "/?" + urlencode({"query": sql}), data)
        assert (status, headers.get("x-clickhouse-exception-code")) == (403, "164"), (fmt, data, body)
        assert b"readonly" in body.lower()
    assert _state(store) == before


def test_clickhouse_connect_writes_are_refused(store: Any, sql_server: Any) -> None:
    from touchpoint.metrics import REGISTRY

    def refused() -> float:
        return REGISTRY.get_sample_value("touchpoint_sink_sql_queries_total", {"outcome": "refused"}) or 0.0

    _typed_table(store)
    before, refused_before = _state(store), refused()
    analyst = clickhouse_connect.get_client(host="127.0.0.1", port=sql_server.port)
    try:
        with pytest.raises(DatabaseError) as err:
            analyst.insert("typed", [[50, "x", dt.datetime(2026, 1, 1), {}, [], None, Decimal("1"), ROW_UUID]],
                           column_names=COLUMNS)
        assert err.value.code == 164
        for sql in ("DROP TABLE typed", "CREATE TABLE x (a Int8) ENGINE = Memory", "OPTIMIZE TABLE typed FINAL"):
            with pytest.raises(DatabaseError) as err:
                analyst.command(sql)
            assert err.value.code == 164 and "readonly" in str(err.value).lower()
    finally:
        analyst.close()
    assert _state(store) == before
    assert refused() == refused_before + 4  # the insert and the three commands, counted on the sink's /metrics


def test_non_whitelisted_url_settings_are_refused(store: Any, sql_server: Any) -> None:
    for name, value in (("readonly", "0"), ("allow_ddl", "1"), ("allow_introspection_functions", "1")):
        status, headers, body = _get(sql_server, query="SELECT 1", **{name: value})
        assert status == 403 and headers["x-clickhouse-exception-code"] == "164", (name, body)
        assert f"'{name}'".encode() in body


def test_engine_readonly_refuses_writes_the_guard_would_let_through(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine layer on its own: with the statement gate waving everything through, ClickHouse's readonly=1
    still refuses writes."""
    from touchpoint.sinks import readonly_engine
    from touchpoint.sinks.http_server import engine_connection_string
    from touchpoint.sinks.sql_statement import Statement, StatementGate

    _typed_table(store)
    before = _state(store)
    monkeypatch.setattr(StatementGate, "classify",
                        lambda self, sql, params=None: Statement("SelectWithUnionQuery", sql))
    engine = readonly_engine.ReadOnlyEngine(engine_connection_string(store.client), store.database)
    for sql in ("INSERT INTO typed (id, name) VALUES (77, 'x')", "DROP TABLE typed", "CREATE TABLE z (a Int8) ENGINE = Memory",
                "ALTER TABLE typed DELETE WHERE 1", "OPTIMIZE TABLE typed", "SYSTEM FLUSH LOGS",
                "SELECT * FROM file('/etc/hostname', 'LineAsString')"):
        with pytest.raises(readonly_engine.QueryError) as err:
            engine.execute(sql)
        assert err.value.code == 164, (sql, err.value.text)
        assert "readonly mode" in err.value.text
    with pytest.raises(readonly_engine.QueryError) as err:  # chdb's window on this process's Python objects
        engine.execute("SELECT * FROM python(ENGINE_GUARDS)")
    assert err.value.code == 446 and "allow_python_table_function" in err.value.text, err.value.text
    assert _state(store) == before


def test_binds_loopback_only(store: Any, ch_settings: Any) -> None:
    from touchpoint.errors import ConfigError
    from touchpoint.sinks.http_server import serve_readonly

    with pytest.raises(ConfigError, match="loopback"):
        serve_readonly(store.client, host="0.0.0.0", port=0, settings=ch_settings)


def test_concurrent_http_queries_overlap(store: Any, sql_server: Any) -> None:
    """Two slow queries on two connections take about as long as one: requests do not queue behind a lock."""
    sql = "SELECT sleep(1) FORMAT TSV"
    start = time.monotonic()
    threads = [threading.Thread(target=_get, args=(sql_server,), kwargs={"query": sql}) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start < 1.9
