"""The hostile corpus (``hostile.py``) through every analyst channel: raw HTTP (what curl sends: the statement in
the URL and in the body), clickhouse-connect's HTTP client, and `touchpoint query` (through the owner's port, and
on a store it opens directly). Every statement gets its code; no file is written, no table or setting changes.

One read-only port serves the whole corpus (module scope) to keep the runtime lean.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from tests.helpers import free_port
from tests.integration.analyst.hostile import CORPUS, KEPT, Target, target  # noqa: F401 - target is a fixture
from touchpoint.config import load_settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
STATUS = {164: 403, 62: 400}


@pytest.fixture(scope="module")
def unchanged(target: Target) -> Iterator[None]:
    """After every test of the module: the table, the tables, the out directory and the kept file are as before."""
    before = target.state()
    assert before[2] == [] and before[3] == KEPT
    yield
    assert target.state() == before


def _raw(target: Target, method: str, sql: str) -> tuple[int, str, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", target.server.port, timeout=30)
    try:
        if method == "GET":
            conn.request("GET", "/?" + urlencode({"query": sql}))
        else:
            conn.request("POST", "/", body=sql.encode())
        resp = conn.getresponse()
        return resp.status, resp.getheader("X-ClickHouse-Exception-Code") or "", resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize(("template", "code"), CORPUS, ids=[f"{i:03d}" for i in range(len(CORPUS))])
def test_raw_http_and_clickhouse_connect_refuse_with_the_code(target: Target, unchanged: None, template: str,
                                                              code: int) -> None:
    sql = target.sql(template)
    for method in ("GET", "POST"):
        status, got, body = _raw(target, method, sql)
        assert (status, got) == (STATUS[code], str(code)), (method, sql, body)
        assert body.startswith(f"Code: {code}. DB::Exception: ".encode()), body
    client = clickhouse_connect.get_client(host="127.0.0.1", port=target.server.port)
    try:
        with pytest.raises(DatabaseError) as err:
            client.raw_query(sql)
        assert err.value.code == code, (sql, str(err.value))
    finally:
        client.close()


def test_a_session_keeps_readonly_and_the_limits_after_every_attempt_to_lift_them(target: Target,
                                                                                  unchanged: None) -> None:
    session = {"session_id": uuid.uuid4().hex}
    for sql in ("SET readonly = 0", "SET max_threads = 1, readonly = 0", "SET max_execution_time = 0",
                "SET max_memory_usage = 0", "SET max_result_rows = 0", "SET allow_ddl = 1"):
        status, _, _ = _get(target, query=sql, **session)
        assert status == 403, sql
    status, _, body = _get(target, query="SELECT getSetting('readonly'), getSetting('max_execution_time'), "
                                          "getSetting('max_result_rows'), getSetting('max_threads')", **session)
    defaults = load_settings(sink_sql_port=0)
    assert status == 200, body
    readonly, max_time, max_rows, _ = body.decode().strip().split("\t")
    assert (readonly, float(max_time), int(max_rows)) == ("1", defaults.sink_sql_max_execution_seconds,
                                                          defaults.sink_sql_max_result_rows)
    # URL parameters cannot lift them either
    for name, value in (("readonly", "0"), ("readonly", "2"), ("max_execution_time", "0"),
                        ("max_execution_time", str(defaults.sink_sql_max_execution_seconds * 2)),
                        ("max_memory_usage", "0"), ("allow_ddl", "1")):
        status, headers, body = _get(target, query="SELECT 1", **{name: value})
        assert (status, headers) == (403, "164"), (name, value, body)


def _get(target: Target, **params: str) -> tuple[int, str, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", target.server.port, timeout=30)
    try:
        conn.request("GET", "/?" + urlencode(params))
        resp = conn.getresponse()
        return resp.status, resp.getheader("X-ClickHouse-Exception-Code") or "", resp.read()
    finally:
        conn.close()


# `touchpoint query` for every statement of the corpus in one process (the CLI's own main(), one call per
# statement); the route is chosen as for a user: the owner's port when it answers, else the store opened directly.
CLI_LOOP = """
import contextlib, io, json, sys
from touchpoint.cli.main import main
statements, own = sys.argv[1], sys.argv[2:]
if own:  # build a store of our own first (this process then opens it directly)
    import clickhouse_connect
    client = clickhouse_connect.get_client(dsn=own[0])
    client.command("CREATE DATABASE IF NOT EXISTS " + own[1])
    client.command("CREATE TABLE " + own[1] + ".t (a UInt8) ENGINE = MergeTree ORDER BY a")
    client.command("INSERT INTO " + own[1] + ".t VALUES (1), (2)")
results = []
for sql in json.load(open(statements)):
    err = io.StringIO()
    sys.argv = ["touchpoint", "query", "--", sql]  # "--": a statement may start with "--"
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code
    results.append([code, err.getvalue()])
if own:
    results.append(client.query("SELECT a FROM " + own[1] + ".t ORDER BY a").result_rows)
print(json.dumps(results))
"""


def _cli(target: Target, tmp_path: Path, dsn: str, database: str, port: int, own_store: bool) -> list[Any]:
    statements = tmp_path / "statements.json"
    statements.write_text(json.dumps([target.sql(t) for t, _ in CORPUS]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_") and k != "CLICKHOUSE_DSN"}
    env.update({"CLICKHOUSE_DSN": dsn, "TOUCHPOINT_CLICKHOUSE_DATABASE": database, "TOUCHPOINT_SINK_SQL_PORT": str(port),
                "TOUCHPOINT_CONFIG": os.devnull, "TOUCHPOINT_DATA_DIR": str(tmp_path),
                "COLUMNS": "400", "PYTHONPATH": str(REPO)})
    args = [sys.executable, "-c", CLI_LOOP, str(statements)] + ([dsn, database] if own_store else [])
    done = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return list(json.loads(done.stdout.splitlines()[-1]))


def _check_cli_results(results: list[Any], route: str) -> None:
    for (template, code), (exit_code, stderr) in zip(CORPUS, results):
        found = re.search(r"Code: (\d+)\. DB::Exception", stderr)
        assert exit_code == 1 and found is not None and int(found.group(1)) == code, (route, template, exit_code,
                                                                                     stderr[-500:])


@pytest.mark.slow
def test_touchpoint_query_refuses_the_corpus_through_the_port_and_on_a_store_it_opens(
        target: Target, unchanged: None, tmp_path: Path) -> None:
    _check_cli_results(_cli(target, tmp_path, target.dsn, target.database, target.server.port, own_store=False),
                       "port")
    own = tmp_path / "own"
    own.mkdir()
    results = _cli(target, own, f"chdb://{own / 'store'}", "hostile_own", free_port(), own_store=True)
    assert results[-1] == [[1], [2]]  # the store this process opened directly is unchanged
    _check_cli_results(results[:-1], "direct")
