"""A read-only port over a small table for a whole test module (``target``), and a corpus of hostile statements for the read-only SQL interface, each with the ClickHouse code it must get.

164 (READONLY): the statement parses and is refused (a write, KILL, INTO OUTFILE, a table function outside the
allow-list, file(), a SETTINGS clause, a setting an analyst may not change or a limit lifted).
62 (SYNTAX_ERROR): ClickHouse's parser does not read it as one statement (multi-statements, look-alike
characters). ``{out}`` is a directory that must stay empty; ``{kept}`` an existing file that must stay unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest

from touchpoint.config import load_settings

R, S = 164, 62
KEPT = b"kept line\n"

CORPUS: list[tuple[str, int]] = [
    # the `$`-identifier bypass: x$a$ is an identifier, not a heredoc opener
    ("SELECT 1 AS x$a$ INTO OUTFILE '{out}/a.tsv' -- $a$", R),
    ("SELECT 1 AS x$a$ INTO OUTFILE '{kept}' APPEND -- $a$", R),
    ("SELECT 1 AS x$a$ INTO OUTFILE '{out}/b.tsv' TRUNCATE -- $a$", R),
    ("SELECT 1 AS x$a$; SELECT 2 -- $a$", S),
    ("SELECT 1 AS x$a$; KILL QUERY WHERE 0 -- $a$", S),
    ("SELECT 1 AS x$a$; DROP TABLE t -- $a$", S),
    ("SELECT 1 AS x$a$; INSERT INTO t VALUES (1) -- $a$", S),
    ("SELECT x$a$ FROM (SELECT 1 AS x$a$) INTO OUTFILE '{out}/c.tsv' -- $a$", R),
    # heredocs
    ("SELECT $$; DROP TABLE t; $$ INTO OUTFILE '{out}/d.tsv'", R),
    ("SELECT $tag$ $$ $tag$; DROP TABLE t", S),
    ("SELECT $a$ -- $a$; DROP TABLE t", S),
    ("SELECT $a$x$a$ AS y INTO OUTFILE '{out}/e.tsv' APPEND", R),
    # comments, nested comments
    ("/* /* */ */ DROP TABLE t", R),
    ("-- SELECT 1\nDROP TABLE t", R),
    ("# SELECT 1\nINSERT INTO t VALUES (1)", R),
    ("/* SELECT */ INSERT INTO t VALUES (1)", R),
    ("SELECT 1 /* /* */ */; DROP TABLE t", S),
    ("SELECT 1 /* a */ INTO /* b */ OUTFILE /* c */ '{out}/f.tsv'", R),
    # unicode look-alikes
    ("ＳＥＬＥＣＴ 1 INTO OUTFILE '{out}/g.tsv'", S),
    ("SELECT 1 ＩＮＴＯ ＯＵＴＦＩＬＥ '{out}/h.tsv'", S),
    ("SELECT 1 INT\u041e OUTFILE '{out}/i.tsv'", S),  # Cyrillic O
    ("SELECT 1\u037e DROP TABLE t", S),  # Greek question mark, looks like ';'
    ("SELECT 1\uff1b DROP TABLE t", S),  # fullwidth semicolon
    ("SELECT 1 AS \u200bx INTO OUTFILE '{out}/j.tsv'", R),  # zero-width space inside an identifier
    # every dangerous table function, in every place a table can be named
    ("SELECT * FROM file('/etc/hostname', 'LineAsString')", R),
    ("SELECT * FROM FILE('/etc/hostname', 'LineAsString')", R),
    ("SELECT * FROM url('http://127.0.0.1:9/', 'CSV', 'a String')", R),
    ("SELECT * FROM urlCluster('default', 'http://127.0.0.1:9/', 'CSV', 'a String')", R),
    ("SELECT * FROM remote('127.0.0.1:9', system.one)", R),
    ("SELECT * FROM remoteSecure('127.0.0.1:9', system.one)", R),
    ("SELECT * FROM cluster('default', system.one)", R),
    ("SELECT * FROM clusterAllReplicas('default', system.one)", R),
    ("SELECT * FROM s3('http://127.0.0.1:9/b/k', 'CSV', 'a String')", R),
    ("SELECT * FROM s3Cluster('default', 'http://127.0.0.1:9/b/k', 'CSV', 'a String')", R),
    ("SELECT * FROM gcs('http://127.0.0.1:9/b/k', 'CSV', 'a String')", R),
    ("SELECT * FROM hdfs('hdfs://127.0.0.1:9/k', 'CSV', 'a String')", R),
    ("SELECT * FROM azureBlobStorage('http://127.0.0.1:9', 'c', 'k', 'CSV')", R),
    ("SELECT * FROM executable('touch {out}/proc', 'TSV', 'a String')", R),
    ("SELECT * FROM input('a String')", R),
    ("SELECT * FROM mysql('127.0.0.1:9', 'd', 't', 'u', 'p')", R),
    ("SELECT * FROM postgresql('127.0.0.1:9', 'd', 't', 'u', 'p')", R),
    ("SELECT * FROM sqlite('{out}/x.db', 't')", R),
    ("SELECT * FROM mongodb('127.0.0.1:9', 'd', 'c', 'u', 'p', 'a String')", R),
    ("SELECT * FROM redis('127.0.0.1:9', 'k', 'k String')", R),
    ("SELECT * FROM jdbc('jdbc:x', 't')", R),
    ("SELECT * FROM odbc('DSN=x', 't')", R),
    ("SELECT * FROM python(x)", R),
    ("SELECT * FROM iceberg('http://127.0.0.1:9/t')", R),
    ("SELECT * FROM deltaLake('http://127.0.0.1:9/t')", R),
    ("SELECT * FROM fileCluster('default', '/etc/hostname', 'LineAsString')", R),
    ("SELECT * FROM filesystem('/etc')", R),
    ("SELECT * FROM merge('system', '.*')", R),
    ("SELECT * FROM numbers(1) WHERE 1 IN (SELECT 1 FROM file('/etc/hostname', 'LineAsString'))", R),
    ("WITH x AS (SELECT * FROM url('http://127.0.0.1:9/', 'CSV', 'a String')) SELECT * FROM x", R),
    ("SELECT * FROM numbers(1) AS n JOIN file('/etc/hostname', 'LineAsString') AS f ON 1", R),
    ("SELECT * FROM view(SELECT * FROM file('/etc/hostname', 'LineAsString'))", R),
    ("DESCRIBE file('/etc/hostname', 'LineAsString')", R),
    ("EXPLAIN SELECT * FROM s3('http://127.0.0.1:9/b/k', 'CSV', 'a String')", R),
    ("SELECT file('/etc/hostname')", R),
    ("SELECT length(file('/etc/passwd')) AS n", R),
    # SETTINGS readonly = 0 (and lifted limits) in every position
    ("SELECT 1 SETTINGS readonly = 0", R),
    ("SELECT 1 FORMAT TSV SETTINGS readonly = 0", R),
    ("SELECT 1 SETTINGS readonly = 0 FORMAT TSV", R),
    ("SELECT * FROM (SELECT 1 SETTINGS readonly = 0)", R),
    ("WITH x AS (SELECT 1 SETTINGS readonly = 0) SELECT * FROM x", R),
    ("SELECT 1 UNION ALL SELECT 2 SETTINGS readonly = 0", R),
    ("(SELECT 1 SETTINGS readonly = 0) UNION ALL (SELECT 2)", R),
    ("SELECT 1 WHERE 1 IN (SELECT 1 SETTINGS readonly = 0)", R),
    ("EXPLAIN SELECT 1 SETTINGS readonly = 0", R),
    ("DESCRIBE (SELECT 1 SETTINGS readonly = 0)", R),
    ("SELECT 1 SETTINGS max_execution_time = 0", R),
    ("SELECT 1 SETTINGS max_memory_usage = 0", R),
    ("SET readonly = 0", R),
    ("SET max_threads = 1, readonly = 0", R),
    ("SET readonly = 2", R),
    ("SET allow_ddl = 1", R),
    ("SET max_execution_time = 0", R),
    ("SET max_result_rows = 0", R),
    ("SET format_template_row = '/etc/passwd'", R),
    # INTO OUTFILE after every read kind
    ("SELECT 1 INTO OUTFILE '{out}/k.tsv' AND STDOUT", R),
    ("SELECT 1 INTO OUTFILE '{out}/l.tsv.gz' COMPRESSION 'gzip'", R),
    ("SELECT 1 INTO OUTFILE '{out}/m.tsv' FORMAT CSV", R),
    ("SHOW TABLES INTO OUTFILE '{out}/n.tsv'", R),
    ("DESCRIBE system.one INTO OUTFILE '{out}/o.tsv'", R),
    ("EXPLAIN SELECT 1 INTO OUTFILE '{out}/p.tsv'", R),
    # writes, KILL and other non-reads
    ("KILL QUERY WHERE 1", R),
    ("KILL QUERY WHERE 0 SYNC", R),
    ("INSERT INTO t SELECT 1", R),
    ("INSERT INTO FUNCTION file('{out}/q.tsv', 'TSV', 'a UInt8') VALUES (1)", R),
    ("CREATE TABLE z (a Int8) ENGINE = Memory", R),
    ("CREATE TEMPORARY TABLE z (a Int8)", R),
    ("CREATE FUNCTION tp_f AS x -> x", R),
    ("DROP TABLE t", R),
    ("TRUNCATE TABLE t", R),
    ("ALTER TABLE t DELETE WHERE 1", R),
    ("DELETE FROM t WHERE 1", R),
    ("OPTIMIZE TABLE t FINAL", R),
    ("RENAME TABLE t TO u", R),
    ("EXCHANGE TABLES t AND u", R),
    ("SYSTEM FLUSH LOGS", R),
    ("SYSTEM SHUTDOWN", R),
    ("GRANT ALL ON *.* TO default", R),
    ("BACKUP TABLE t TO File('{out}/backup')", R),
    ("DETACH TABLE t", R),
    ("EXPLAIN AST INSERT INTO t VALUES (1)", R),
    ("EXPLAIN SYNTAX DROP TABLE t", S),
    ("EXPLAIN AST SYSTEM FLUSH LOGS", R),
    ("EXPLAIN AST KILL QUERY WHERE 1", R),
]


class Target:
    def __init__(self, server: Any, owner: Any, database: str, out: Path, kept: Path, dsn: str) -> None:
        self.server, self.owner, self.database, self.out, self.kept, self.dsn = server, owner, database, out, kept, dsn

    def sql(self, template: str) -> str:
        return template.replace("{out}", str(self.out)).replace("{kept}", str(self.kept))

    def state(self) -> tuple[Any, ...]:
        db = self.database
        return (self.owner.query(f"SELECT a FROM {db}.t ORDER BY a").result_rows,
                self.owner.query(f"SELECT name FROM system.tables WHERE database = '{db}' ORDER BY name").result_rows,
                sorted(p.name for p in self.out.iterdir()), self.kept.read_bytes())


@pytest.fixture(scope="module")
def target(chdb_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    from touchpoint.sinks.http_server import serve_readonly

    database = f"hostile_{uuid.uuid4().hex[:8]}"
    owner: Any = clickhouse_connect.get_client(dsn=chdb_dsn)
    owner.command(f"CREATE DATABASE {database}")
    owner.command(f"CREATE TABLE {database}.t (a UInt8, b String, c Float64) ENGINE = MergeTree ORDER BY a")
    owner.command(f"INSERT INTO {database}.t SELECT number, ['x', 'y$a$', 'it''s; --', 'ü'][number % 4 + 1], "
                  "number / 4 FROM numbers(20)")
    base = tmp_path_factory.mktemp("hostile")
    out, kept = base / "out", base / "kept.tsv"
    out.mkdir()
    kept.write_bytes(KEPT)
    server = serve_readonly(owner, port=0, database=database, settings=load_settings(sink_sql_port=0))
    try:
        yield Target(server, owner, database, out, kept, chdb_dsn)
    finally:
        server.close()
        owner.command(f"DROP DATABASE IF EXISTS {database}")
        owner.close()


