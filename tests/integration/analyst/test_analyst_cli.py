"""`touchpoint query` and `touchpoint report`, run as a user runs them (a separate process).

Routes: through the read-only port of the process owning the store (here: the pytest process), and directly on an
embedded store nobody owns (a store built by a helper process on its own path).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port
from touchpoint.sinks.report import build_report

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
TOUCHPOINT = [sys.executable, "-m", "touchpoint.cli.main"]
SQL = "SELECT event_type, count() AS n, max(occurred_at) AS last FROM touchpoints GROUP BY event_type ORDER BY event_type"
SQL_JSON = ("SELECT event_type, count() AS n, max(occurred_at) AS last, [toInt64(1), 2] AS arr FROM touchpoints "
            "GROUP BY event_type ORDER BY event_type")
EXPECTED = [("AD_CLICK", 4), ("CHECKOUT", 10), ("DELIVERY_NOTICE", 3), ("EMAIL_ENGAGEMENT", 6), ("PAGE_VIEW", 2),
            ("SUPPORT_INTERACTION", 5), ("SURVEY_RESPONSE", 9)]


def _env(dsn: str, database: str, port: int, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_") and k != "CLICKHOUSE_DSN"}
    env.update({"CLICKHOUSE_DSN": dsn, "TOUCHPOINT_CLICKHOUSE_DATABASE": database, "TOUCHPOINT_SINK_SQL_PORT": str(port),
                "TOUCHPOINT_CONFIG": os.devnull, "TOUCHPOINT_DATA_DIR": str(tmp), "COLUMNS": "200",
                "PYTHONPATH": str(REPO)})
    return env


def _run(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # main() is the console script's entry point
    code = "import sys; from touchpoint.cli.main import main; sys.argv = ['touchpoint', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def _check_formats(env: dict[str, str], tmp: Path, every_format: bool = True) -> None:
    out = _run(env, "query", SQL, cwd=tmp)
    assert out.returncode == 0, out.stderr
    for event_type, n in EXPECTED:
        assert event_type in out.stdout and f" {n} " in out.stdout
    assert "LowCardinality(String)" in out.stdout and "7 rows" in out.stderr

    if every_format:
        _check_csv_tsv(env, tmp)
    out = _run(env, "query", "-f", "json", SQL_JSON, cwd=tmp)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [(r["event_type"], r["n"]) for r in data] == EXPECTED  # 64-bit counts are JSON numbers
    assert data[0]["arr"] == [1, 2] and data[0]["last"] == "2026-03-03 08:00:00.000"

    out = _run(env, "query", "SELECT no_such_column FROM touchpoints", cwd=tmp)
    assert out.returncode == 1
    assert "Code: 47. DB::Exception" in out.stderr and "no_such_column" in out.stderr
    out = _run(env, "query", "DROP TABLE touchpoints", cwd=tmp)
    assert out.returncode == 1 and "Code: 164" in out.stderr and "read-only" in out.stderr


def _check_csv_tsv(env: dict[str, str], tmp: Path) -> None:
    out = _run(env, "query", "--format", "csv", SQL, cwd=tmp)
    assert out.returncode == 0, out.stderr
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert rows[0] == ["event_type", "n", "last"]
    assert [(r[0], int(r[1])) for r in rows[1:]] == EXPECTED
    assert rows[1][2] == "2026-03-03 08:00:00.000"

    out = _run(env, "query", "-f", "tsv", SQL, cwd=tmp)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "event_type\tn\tlast" and [tuple(line.split("\t")[:2]) for line in lines[1:]] == \
        [(e, str(n)) for e, n in EXPECTED]


def test_query_through_the_owners_read_only_port(loaded: Any, sql_server: Any, chdb_dsn: str, tmp_path: Path) -> None:
    env = _env(chdb_dsn, loaded.database, sql_server.port, tmp_path)
    _check_formats(env, tmp_path)
    out = _run(env, "report", "--json", "--html", str(tmp_path / "r.html"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    reported = json.loads(out.stdout)
    expected = build_report(loaded.client, loaded.database)
    reported.pop("generated_at"), expected.pop("generated_at")
    reported.pop("dead_letters"), reported.pop("late_touchpoints")  # the CLI's data-quality section (Kafka + metrics)
    assert reported == json.loads(json.dumps(expected))
    assert (tmp_path / "r.html").read_text().count("<svg") >= 5
    out = _run(env, "report", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "NPS" in out.stdout and "25.0" in out.stdout and "Checkout started" in out.stdout


def test_store_owned_by_another_process_without_a_port_is_explained(loaded: Any, chdb_dsn: str, tmp_path: Path) -> None:
    out = _run(_env(chdb_dsn, loaded.database, free_port(), tmp_path), "query", "SELECT 1", cwd=tmp_path)
    assert out.returncode == 1
    assert "in use by process" in out.stderr and "TOUCHPOINT_SINK_SQL_PORT" in out.stderr


BUILD_STORE = """
import sys
from touchpoint.config import load_settings
from touchpoint.sinks.migrations import migrate
from touchpoint.sinks.store import Store
from tests.integration.analyst import dataset
settings = load_settings(clickhouse_dsn=sys.argv[1], clickhouse_database=sys.argv[2], sink_sql_port=0)
store = Store.connect(settings)
migrate(store, settings)
dataset.load(store.client, settings.clickhouse_database)
store.close()
"""


def test_query_opens_an_unowned_store_directly(unique: str, tmp_path: Path) -> None:
    dsn, database = f"chdb://{tmp_path / 'store'}", f"tp_{unique}"
    env = _env(dsn, database, free_port(), tmp_path)
    built = subprocess.run([sys.executable, "-c", BUILD_STORE, dsn, database], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    _check_formats(env, tmp_path, every_format=False)
    out = _run(env, "report", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["totals"]["nps"] == 25.0
    # the store is unchanged by everything above, and the direct route refuses writes too
    out = _run(env, "query", "-f", "tsv", "SELECT count() FROM touchpoints", cwd=tmp_path)
    assert out.stdout.splitlines()[1] == "39"  # 38 events + the replayed copy (stored, collapsed by FINAL)
    out = _run(env, "query", "SELECT * FROM file('/etc/hostname', 'LineAsString')", cwd=tmp_path)
    assert out.returncode == 1 and "Code: 164" in out.stderr


def test_missing_store_says_how_to_create_it(unique: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    out = _run(_env(f"chdb://{missing}", f"tp_{unique}", free_port(), tmp_path), "query", "SELECT 1", cwd=tmp_path)
    assert out.returncode == 1
    assert "no ClickHouse store" in out.stderr and "touchpoint sink migrate" in out.stderr and "touchpoint demo" in out.stderr
    assert not missing.exists()


def test_missing_database_says_how_to_create_it(loaded: Any, sql_server: Any, chdb_dsn: str, tmp_path: Path) -> None:
    out = _run(_env(chdb_dsn, "no_such_db", sql_server.port, tmp_path), "query", "SELECT 1", cwd=tmp_path)
    assert out.returncode == 1
    assert "no_such_db" in out.stderr and "touchpoint sink migrate" in out.stderr
