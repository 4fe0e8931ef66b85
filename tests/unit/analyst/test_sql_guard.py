"""The statement guard of the read-only SQL interface (layer 2; layer 1 is ClickHouse's readonly=1)."""

from __future__ import annotations

import pytest

from touchpoint.sinks.sql_guard import READONLY, SYNTAX_ERROR, ReadOnlyViolation, check_read_only, setting_allowed

READS = [
    ("SELECT 1", "SELECT"),
    ("select count() from touchpoints", "SELECT"),
    ("  -- a comment\n  SELECT 1;", "SELECT"),
    ("/* leading block */ SELECT 1 ;  ", "SELECT"),
    ("(SELECT 1) UNION ALL (SELECT 2)", "SELECT"),
    ("WITH x AS (SELECT 1) SELECT * FROM x", "WITH"),
    ("SHOW TABLES", "SHOW"),
    ("DESCRIBE TABLE touchpoints", "DESCRIBE"),
    ("DESC touchpoints", "DESC"),
    ("EXPLAIN SELECT 1", "EXPLAIN"),
    ("EXISTS TABLE touchpoints", "EXISTS"),
    ("SELECT 'a;b', \"c;d\", `e;f` FROM t", "SELECT"),
    ("SELECT 'it''s; DROP TABLE t'", "SELECT"),
    ("SELECT $$ ; DROP TABLE t $$", "SELECT"),
    ("SELECT 1 FORMAT JSON", "SELECT"),
]


@pytest.mark.parametrize(("sql", "kind"), READS)
def test_reads_pass_with_their_kind(sql: str, kind: str) -> None:
    assert check_read_only(sql).kind == kind


WRITES = [
    "INSERT INTO t VALUES (1)",
    "insert into t select * from t",
    "CREATE TABLE x (a Int8) ENGINE = Memory",
    "CREATE TEMPORARY TABLE x (a Int8)",
    "DROP TABLE t",
    "ALTER TABLE t DELETE WHERE 1",
    "TRUNCATE TABLE t",
    "OPTIMIZE TABLE t FINAL",
    "SYSTEM FLUSH LOGS",
    "KILL QUERY WHERE 1",
    "RENAME TABLE t TO u",
    "GRANT SELECT ON *.* TO default",
    "DELETE FROM t WHERE 1",
    "ATTACH TABLE t",
    "DETACH TABLE t",
    "BACKUP TABLE t TO Disk('d', 'b')",
    "/* SELECT */ DROP TABLE t",
    "-- SELECT\nDROP TABLE t",
    "(DROP TABLE t)",
    "SELECT 1 INTO OUTFILE '/tmp/x.tsv'",
    "SET readonly = 0",
    "SET allow_ddl = 1",
    "SET max_threads = 1, readonly = 0",
]


@pytest.mark.parametrize("sql", WRITES)
def test_writes_are_refused_as_readonly(sql: str) -> None:
    with pytest.raises(ReadOnlyViolation) as err:
        check_read_only(sql)
    assert err.value.code == READONLY
    assert str(err.value).startswith("Code: 164. DB::Exception: ")
    assert str(err.value).endswith("(READONLY)")


@pytest.mark.parametrize("sql", ["SELECT 1; DROP TABLE t", "SELECT 1; SELECT 2", "", "  ;  ", "-- only a comment", "SELEC 1"])
def test_multi_statements_empty_and_unknown_are_syntax_errors(sql: str) -> None:
    with pytest.raises(ReadOnlyViolation) as err:
        check_read_only(sql)
    assert err.value.code == SYNTAX_ERROR


def test_set_of_whitelisted_settings_is_parsed() -> None:
    statement = check_read_only("SET max_threads = 2, output_format_json_quote_64bit_integers=0, session_timezone='UTC'")
    assert statement.kind == "SET"
    assert statement.settings == {"max_threads": "2", "output_format_json_quote_64bit_integers": "0",
                                  "session_timezone": "'UTC'"}


def test_use_names_the_database() -> None:
    assert check_read_only("USE `touchpoint`").database == "touchpoint"
    assert check_read_only("use analytics").database == "analytics"


def test_setting_whitelist() -> None:
    for name in ("max_threads", "max_execution_time", "output_format_json_quote_64bit_integers", "date_time_output_format",
                 "join_use_nulls", "final", "session_timezone", "result_overflow_mode"):
        assert setting_allowed(name), name
    for name in ("readonly", "allow_ddl", "allow_introspection_functions", "send_logs_level", "insert_deduplication_token",
                 "max_server_memory_usage", "async_insert"):
        assert not setting_allowed(name), name
