"""Migrations: applied in order, recorded, re-running is a no-op, a failure names the file and the statement."""

from __future__ import annotations

import shutil

import pytest

from touchpoint.sinks.migrations import MIGRATIONS_DIR, MigrationError, load_migrations, migrate
from touchpoint.sinks.store import Store

from tests.helpers import run_cli


@pytest.fixture
def fresh(settings):
    store = Store.connect(settings)
    yield store
    store.command(f"DROP DATABASE IF EXISTS {settings.clickhouse_database}")
    store.close()


def test_migrate_applies_every_file_once_and_rerun_is_a_no_op(fresh, settings):
    names = [m.path.name for m in load_migrations()]
    assert migrate(fresh, settings) == names
    tables = {r[0] for r in fresh.query_rows(f"SHOW TABLES FROM {settings.clickhouse_database}")}
    assert {"touchpoints", "journeys", "metrics_minute", "identity_merges", "kpi_day", "journeys_current",
            "touchpoints_resolved", "schema_migrations"} <= tables
    assert migrate(fresh, settings) == []
    recorded = fresh.query_rows(f"SELECT version, name FROM {settings.clickhouse_database}.schema_migrations ORDER BY version")
    assert recorded == [(m.version, m.name) for m in load_migrations()]


def test_raw_ttl_days_becomes_a_table_ttl(fresh, settings):
    migrate(fresh, settings.model_copy(update={"raw_ttl_days": 90}))
    ddl = fresh.query_rows(f"SHOW CREATE TABLE {settings.clickhouse_database}.touchpoints")[0][0]
    assert "TTL toDateTime(occurred_at) + toIntervalDay(90)" in ddl


def test_failed_migration_stops_with_file_and_statement_and_resumes_after_fix(fresh, settings, tmp_path):
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    shipped = sorted(m.version for m in load_migrations())
    bad = directory / f"{shipped[-1] + 1:04d}_add_things.sql"  # the next number after the shipped files
    bad.write_text(
        "CREATE TABLE IF NOT EXISTS {database}.extra (x UInt8) ENGINE = MergeTree ORDER BY x;\n"
        "ALTER TABLE {database}.extra ADD COLUMN y NoSuchType;\n"
    )
    with pytest.raises(MigrationError) as failure:
        migrate(fresh, settings, directory)
    message = str(failure.value)
    assert bad.name in message and "statement 2" in message and "ALTER TABLE" in message
    versions = [r[0] for r in fresh.query_rows(f"SELECT version FROM {settings.clickhouse_database}.schema_migrations")]
    assert sorted(versions) == shipped  # the failed file is not recorded

    bad.write_text(bad.read_text().replace("NoSuchType", "UInt16").replace("ADD COLUMN y", "ADD COLUMN IF NOT EXISTS y"))
    assert migrate(fresh, settings, directory) == [bad.name]
    assert migrate(fresh, settings, directory) == []


def test_cli_sink_migrate(tmp_path):
    env = {"CLICKHOUSE_DSN": f"chdb://{tmp_path / 'chdb'}", "TOUCHPOINT_CLICKHOUSE_DATABASE": "cli_db"}
    first = run_cli("sink", "migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert f"applied {len(load_migrations())} migration(s) to cli_db" in first.stdout
    second = run_cli("sink", "migrate", env=env)
    assert second.returncode == 0 and "cli_db is up to date" in second.stdout
