"""The statement gate: the engine's own parser decides what a statement is (kind, SET/USE contents, FORMAT)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import clickhouse_connect
import pytest

from touchpoint.sinks.http_server import engine_connection_string
from touchpoint.sinks.readonly_engine import QueryError, ReadOnlyEngine

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(chdb_dsn: str) -> Iterator[ReadOnlyEngine]:
    client: Any = clickhouse_connect.get_client(dsn=chdb_dsn)
    try:
        yield ReadOnlyEngine(engine_connection_string(client))
    finally:
        client.close()


READS = [
    ("SELECT 1", "SelectWithUnionQuery", "SELECT 1"),
    ("select count() from touchpoints", "SelectWithUnionQuery", "SELECT count() FROM touchpoints"),
    ("  -- a comment\n  SELECT 1;", "SelectWithUnionQuery", "SELECT 1"),
    ("/* leading /* nested */ block */ SELECT 1 ;  ", "SelectWithUnionQuery", "SELECT 1"),
    ("(SELECT 1) UNION ALL (SELECT 2)", "SelectWithUnionQuery", "SELECT 1 UNION ALL SELECT 2"),
    ("WITH x AS (SELECT 1) SELECT * FROM x", "SelectWithUnionQuery", "WITH x AS (SELECT 1) SELECT * FROM x"),
    ("SHOW TABLES", "ShowTables", "SHOW TABLES"),
    ("DESC touchpoints", "DescribeQuery", "DESCRIBE TABLE touchpoints"),
    ("EXPLAIN SELECT 1", "Explain", "EXPLAIN SELECT 1"),
    ("EXPLAIN header = 1 SELECT 1", "Explain", "EXPLAIN header = 1 SELECT 1"),
    ("EXISTS TABLE touchpoints", "ExistsTableQuery", "EXISTS TABLE touchpoints"),
    ("SELECT 'a;b', \"c;d\", `e;f` FROM t", "SelectWithUnionQuery", "SELECT 'a;b', `c;d`, `e;f` FROM t"),
    ("SELECT 'it''s; DROP TABLE t'", "SelectWithUnionQuery", "SELECT 'it\\'s; DROP TABLE t'"),
    ("SELECT $$ ; DROP TABLE t $$", "SelectWithUnionQuery", "SELECT ' ; DROP TABLE t '"),
    ("SELECT 1 AS x$a$ -- $a$", "SelectWithUnionQuery", "SELECT 1 AS `x$a$`"),
    ("SELECT number FROM numbers(3) FORMAT JSON", "SelectWithUnionQuery", "SELECT number FROM numbers(3) FORMAT JSON"),
]


@pytest.mark.parametrize(("sql", "kind", "canonical"), READS)
def test_reads_pass_with_the_engines_kind_and_canonical_text(engine: ReadOnlyEngine, sql: str, kind: str,
                                                              canonical: str) -> None:
    statement = engine.classify(sql)
    assert (statement.kind, statement.canonical) == (kind, canonical)


def test_format_set_and_use_are_read_from_the_parse(engine: ReadOnlyEngine) -> None:
    assert engine.classify("SELECT 1 FORMAT JSONEachRow").fmt == "JSONEachRow"
    assert engine.classify("SELECT 'FORMAT CSV'").fmt is None
    statement = engine.classify("SET max_threads = 2, output_format_json_quote_64bit_integers=0, session_timezone='UTC'")
    assert statement.kind == "Set"
    assert statement.settings == {"max_threads": "2", "output_format_json_quote_64bit_integers": "0",
                                  "session_timezone": "'UTC'"}
    assert engine.classify("USE `touchpoint`").database == "touchpoint"
    assert engine.classify("use analytics").database == "analytics"


@pytest.mark.parametrize(("sql", "code"), [
    ("SELECT 1; DROP TABLE t", 62), ("SELECT 1; SELECT 2", 62), ("", 62), ("  ;  ", 62), ("-- only a comment", 62),
    ("SELEC 1", 62), ("INSERT INTO t VALUES (1)", 164), ("(DROP TABLE t)", 62), ("/* SELECT */ DROP TABLE t", 164),
    ("SET max_threads = 1, readonly = 0", 164),
])
def test_non_reads_get_the_engines_code(engine: ReadOnlyEngine, sql: str, code: int) -> None:
    with pytest.raises(QueryError) as err:
        engine.execute(sql)
    assert err.value.code == code, err.value.text
