"""`touchpoint sink migrate --cluster NAME`: every migration file rendered for a replicated, sharded cluster and
checked by ClickHouse's own parser (``formatQuerySingleLine`` in the embedded engine); no cluster can run here.

The tests iterate over every file in sinks/ddl/, so a new migration is covered without touching this file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from touchpoint.sinks.migrations import MigrationError, cluster_script, load_migrations, migrate, render
from touchpoint.sinks.store import Store

from tests.helpers import run_cli

CLUSTER = "two_shards"
DB = "touchpoint"


@pytest.fixture
def engine(settings):
    store = Store.connect(settings)
    yield store
    store.close()


def parsed(store: Store, sql: str) -> str:
    """The statement as ClickHouse's parser prints it back on one line (raises on a syntax error)."""
    return str(store.query_rows("SELECT formatQuerySingleLine({q:String})", {"q": sql})[0][0])


def clause(text: str, keyword: str) -> str:
    """The text of ``keyword`` (ORDER BY, PARTITION BY, TTL...) up to the next top-level clause, '' if absent."""
    found = re.search(rf"\b{keyword} (.*?)(?= (?:ORDER BY|PARTITION BY|PRIMARY KEY|TTL|SETTINGS|COMMENT) |$)", text)
    return found.group(1) if found else ""


def engine_of(text: str) -> tuple[str, str]:
    found = re.search(r"ENGINE = (\w+)(?:\((.*?)\))?(?= (?:ORDER BY|PARTITION BY|PRIMARY KEY|TTL|SETTINGS)|$)", text)
    assert found, text
    return found.group(1), found.group(2) or ""


def columns_of(text: str) -> str:
    start = text.index("(")
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i + 1]
    raise AssertionError(text)


def single_node(store: Store) -> dict[str, str]:
    """Every statement of the single-node DDL by object name, as the parser prints it."""
    out = {}
    for migration in load_migrations():
        for statement in migration.statements():
            text = parsed(store, render(statement, DB, 0))
            if not text.startswith("CREATE"):
                continue  # ALTERs of later migrations are checked on their own below
            name = re.search(r"(?:TABLE|VIEW|DATABASE)(?: IF NOT EXISTS)? (\S+)", text).group(1)
            out[name] = text
    return out


def test_every_migration_renders_for_the_cluster_and_the_engine_parses_it(engine):
    script = cluster_script(DB, CLUSTER, 0)
    assert [m.path.name for m, _ in script] == [m.path.name for m in load_migrations()]
    rendered = {}
    alters: dict[str, list[str]] = {}
    for migration, statements in script:
        assert statements, migration.path.name
        for sql in statements:
            text = parsed(engine, sql)  # a syntax error fails here, with the statement
            assert f"ON CLUSTER {CLUSTER}" in text, text
            name = re.search(r"(?:TABLE|VIEW|DATABASE)(?: IF NOT EXISTS)? (\S+) ON CLUSTER", text).group(1)
            if text.startswith("ALTER"):
                alters.setdefault(name, []).append(text)
                continue
            rendered[name] = text

    plain = single_node(engine)
    tables = {n: t for n, t in plain.items() if re.search(r"ENGINE = \w*MergeTree", t) and " VIEW " not in t}
    assert {f"{DB}.touchpoints", f"{DB}.journeys", f"{DB}.metrics_minute", f"{DB}.identity_merges"} <= set(tables)
    for name, text in tables.items():
        local = rendered[name + "_local"]
        kind, args = engine_of(text)
        rkind, rargs = engine_of(local)
        assert rkind == "Replicated" + kind, (name, rkind)
        short = name.split(".")[1]
        expected_args = f"'/clickhouse/tables/{{shard}}/{DB}/{short}_local', '{{replica}}'" + (f", {args}" if args else "")
        assert rargs == expected_args, name  # the version column kept
        for keyword in ("ORDER BY", "PARTITION BY", "PRIMARY KEY", "TTL"):
            assert clause(local, keyword) == clause(text, keyword), (name, keyword)
        assert columns_of(local.split(" ON CLUSTER ", 1)[1]) == columns_of(text.split(name, 1)[1]), name
        assert clause(local, "SETTINGS") == clause(text, "SETTINGS").replace("non_replicated_", "replicated_")
        sharding = ", kafka_partition" if re.search(r"`?kafka_partition`? Int32", text) else ""
        assert rendered[name] == (f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER {CLUSTER} AS {name}_local "
                                  f"ENGINE = Distributed({CLUSTER}, {DB}, {short}_local{sharding})")
    for name, texts in alters.items():
        if not name.endswith("_local") and name + "_local" in rendered:
            for text in texts:  # a Distributed table takes column changes only: no sorting key, TTL or settings
                assert "ORDER BY" not in text and "TTL" not in text and "SETTINGS" not in text, text
                assert re.search(r"\b(ADD|DROP|MODIFY|RENAME|COMMENT) COLUMN\b", text), text
    for name, text in plain.items():
        if " VIEW " in text and "MATERIALIZED" not in text:
            assert rendered[name].startswith(f"CREATE VIEW IF NOT EXISTS {name} ON CLUSTER {CLUSTER} AS "), name
            # reads the Distributed tables, joins and IN-subqueries made GLOBAL
            assert "_local" not in rendered[name], name
            for join in re.finditer(r"\bJOIN\b", rendered[name]):
                words = re.sub(r"\b(?:LEFT|RIGHT|INNER|FULL|CROSS|OUTER|ANY|ALL|SEMI|ANTI)\s*$", "",
                               rendered[name][:join.start()].rstrip()).split()
                while words and words[-1] in ("LEFT", "RIGHT", "INNER", "FULL", "CROSS", "OUTER", "ANY", "ALL"):
                    words.pop()
                assert words[-1] in ("GLOBAL", "ARRAY"), (name, rendered[name][:join.end()][-80:])
            assert not re.search(r"(?<!GLOBAL )\bIN \(SELECT", rendered[name]), name


def test_the_four_pipeline_tables_keep_their_keys(engine):
    text = {m.path.name: statements for m, statements in cluster_script(DB, CLUSTER, 0)}["0001_tables.sql"]
    locals_ = {re.search(r"TABLE IF NOT EXISTS (\S+)", parsed(engine, s)).group(1): parsed(engine, s) for s in text}
    assert clause(locals_[f"{DB}.touchpoints_local"], "ORDER BY") == "(identity_key, occurred_at, event_id)"
    assert engine_of(locals_[f"{DB}.journeys_local"]) == (
        "ReplicatedReplacingMergeTree", f"'/clickhouse/tables/{{shard}}/{DB}/journeys_local', '{{replica}}', version")
    assert clause(locals_[f"{DB}.metrics_minute_local"], "PARTITION BY") == "toYYYYMM(window_start)"
    assert engine_of(locals_[f"{DB}.identity_merges_local"])[1].endswith("merged_at")


def test_single_node_ddl_stays_the_default_and_unchanged():
    done = run_cli("sink", "migrate", "--print", env={"TOUCHPOINT_CLICKHOUSE_DATABASE": DB})
    assert done.returncode == 0, done.stderr
    expected = "".join(f"-- {m.path.name}\n" + "".join(render(s, DB, 0).rstrip() + ";\n\n" for s in m.statements())
                       for m in load_migrations())
    assert done.stdout == expected
    assert "ON CLUSTER" not in done.stdout and "Distributed" not in done.stdout
    clustered = run_cli("sink", "migrate", "--print", "--cluster", CLUSTER, env={"TOUCHPOINT_CLICKHOUSE_DATABASE": DB})
    statements = [s for m in load_migrations() for s in m.statements()]
    tables = [s for s in statements if s.startswith("CREATE TABLE") and "MergeTree" in s]
    assert clustered.returncode == 0, clustered.stderr
    # column ALTERs of a MergeTree table: local + Distributed too (every ALTER in the migrations targets one)
    column_alters = [s for s in statements if s.startswith("ALTER TABLE") and " COLUMN " in s]
    assert clustered.stdout.count(f"ON CLUSTER {CLUSTER}") == len(statements) + len(tables) + len(column_alters)


EXTRA = """
CREATE TABLE IF NOT EXISTS {database}.daily (day Date, n UInt64) ENGINE = SummingMergeTree(n) ORDER BY day;
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.daily_mv TO {database}.daily AS
SELECT toDate(occurred_at) AS day, count() AS n FROM {database}.touchpoints GROUP BY day;
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.by_type
ENGINE = AggregatingMergeTree ORDER BY event_type AS
SELECT event_type, uniqState(event_id) AS events FROM {database}.touchpoints GROUP BY event_type;
ALTER TABLE {database}.touchpoints ADD COLUMN IF NOT EXISTS locale String;
ALTER TABLE {database}.journeys MODIFY TTL toDateTime(updated_at) + INTERVAL 400 DAY;
CREATE VIEW IF NOT EXISTS {database}.v AS SELECT a.x FROM {database}.daily AS a ARRAY JOIN [1, 2] AS x
WHERE a.day IN (SELECT day FROM {database}.daily);
"""


def test_materialized_views_alters_and_array_joins_follow_the_rules(engine, tmp_path: Path):
    for migration in load_migrations():
        (tmp_path / migration.path.name).write_text(migration.sql)
    (tmp_path / "0999_extra.sql").write_text(EXTRA)
    extra = [s for m, s in cluster_script(DB, CLUSTER, 0, tmp_path) if m.version == 999][0]
    texts = [parsed(engine, s) for s in extra]
    on = f"ON CLUSTER {CLUSTER}"
    assert texts[1] == f"CREATE TABLE IF NOT EXISTS {DB}.daily {on} AS {DB}.daily_local ENGINE = Distributed({CLUSTER}, {DB}, daily_local)"
    assert texts[2].startswith(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {DB}.daily_mv {on} TO {DB}.daily_local ")
    assert f"FROM {DB}.touchpoints_local " in texts[2]
    assert texts[3].startswith(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {DB}.by_type_local {on} ")
    assert "ReplicatedAggregatingMergeTree" in texts[3] and f"FROM {DB}.touchpoints_local " in texts[3]
    assert texts[4] == f"CREATE TABLE IF NOT EXISTS {DB}.by_type {on} AS {DB}.by_type_local ENGINE = Distributed({CLUSTER}, {DB}, by_type_local)"
    assert texts[5] == f"ALTER TABLE {DB}.touchpoints_local {on} (ADD COLUMN IF NOT EXISTS `locale` String)"
    assert texts[6] == f"ALTER TABLE {DB}.touchpoints {on} (ADD COLUMN IF NOT EXISTS `locale` String)"
    assert texts[7].startswith(f"ALTER TABLE {DB}.journeys_local {on} (MODIFY TTL")  # not a column: local only
    assert len(texts) == 9 and "ARRAY JOIN" in texts[8] and "GLOBAL IN (SELECT" in texts[8]


def test_a_statement_without_a_rule_is_refused_naming_the_file(tmp_path: Path):
    (tmp_path / "0001_bad.sql").write_text("INSERT INTO {database}.t VALUES (1);\n")
    with pytest.raises(MigrationError, match=r"0001_bad.sql, statement 1: no cluster rule"):
        cluster_script(DB, CLUSTER, 0, tmp_path)


class Recorder:
    """Stands in for a cluster's client: records what migrate sends (no cluster can run here)."""

    database = DB

    def __init__(self) -> None:
        self.sent: list[str] = []

    def command(self, sql: str) -> None:
        self.sent.append(sql)

    def query_rows(self, _sql: str) -> list:
        return []


def test_migrate_on_a_cluster_sends_bookkeeping_then_every_file_on_cluster(settings):
    recorder = Recorder()
    applied = migrate(recorder, settings.model_copy(update={"clickhouse_database": DB}), cluster=CLUSTER)  # type: ignore[arg-type]
    assert applied == [m.path.name for m in load_migrations()]
    assert recorder.sent[0] == f"CREATE DATABASE IF NOT EXISTS {DB} ON CLUSTER {CLUSTER}"
    assert "ReplicatedMergeTree('/clickhouse/tables/all/" in recorder.sent[1]
    ddl = [s for s in recorder.sent if not s.startswith("INSERT INTO")]
    assert all(f"ON CLUSTER {CLUSTER}" in s for s in ddl)
    assert sum(s.startswith(f"INSERT INTO {DB}.schema_migrations") for s in recorder.sent) == len(applied)
