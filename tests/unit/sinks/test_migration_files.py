"""Migration files: naming, order, statement splitting, placeholders."""

from __future__ import annotations

import pytest

from touchpoint.sinks.migrations import Migration, MigrationError, load_migrations, render


def test_shipped_migrations_are_numbered_from_one_without_gaps():
    versions = [m.version for m in load_migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_every_shipped_statement_is_idempotent():
    for migration in load_migrations():
        for statement in migration.statements():
            assert "IF NOT EXISTS" in statement.split("(")[0].split(" AS")[0], (migration.path.name, statement[:80])


def test_statements_split_at_line_ending_semicolons_and_drop_comments(tmp_path):
    m = Migration(1, "x", tmp_path / "0001_x.sql", "-- a comment; not a statement\nCREATE TABLE a (s String DEFAULT 'a;b');\n\nSELECT 1;\n")
    assert m.statements() == ["CREATE TABLE a (s String DEFAULT 'a;b')", "SELECT 1"]


def test_bad_names_and_duplicate_versions_are_refused(tmp_path):
    (tmp_path / "1_x.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_lower_snake"):
        load_migrations(tmp_path)
    (tmp_path / "1_x.sql").unlink()
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 2;")
    with pytest.raises(MigrationError, match="already used"):
        load_migrations(tmp_path)


def test_render_fills_database_and_ttl():
    sql = "CREATE TABLE {database}.t (x UInt8) ENGINE = MergeTree ORDER BY x {raw_ttl}"
    assert render(sql, "db", 0) == "CREATE TABLE db.t (x UInt8) ENGINE = MergeTree ORDER BY x "
    assert render(sql, "db", 30).endswith("TTL toDateTime(occurred_at) + INTERVAL 30 DAY")
