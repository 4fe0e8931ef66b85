"""`touchpoint customers ...` run as a user runs it (a separate process reading the store through the read-only port
of the process that owns it), on the hand-written history of test_customers_scenarios; and its usage errors."""

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

from tests.helpers import run_cli
from tests.integration.analyst.test_customers_scenarios import load

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def _cli(store: Any, server: Any, chdb_dsn: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_") and k != "CLICKHOUSE_DSN"}
    env.update({"CLICKHOUSE_DSN": chdb_dsn, "TOUCHPOINT_CLICKHOUSE_DATABASE": store.database,
                "TOUCHPOINT_SINK_SQL_PORT": str(server.port), "TOUCHPOINT_CONFIG": os.devnull,
                "TOUCHPOINT_DATA_DIR": str(tmp), "COLUMNS": "200", "PYTHONPATH": str(REPO)})
    code = "import sys; from touchpoint.cli.main import main; sys.argv = ['touchpoint', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, "customers", *args], env=env, cwd=tmp, capture_output=True,
                          text=True, timeout=120)


def test_customers_commands_print_the_typed_figures(store: Any, sql_server: Any, chdb_dsn: str, tmp_path: Path) -> None:
    load(store)
    risk = _cli(store, sql_server, chdb_dsn, tmp_path, "at-risk", "--as-of", "2026-06-30", "-f", "json")
    assert risk.returncode == 0, risk.stderr
    assert [(r["customer_id"], r["reason"], r["revenue_minor"]) for r in json.loads(risk.stdout)] == [
        ("B", "nps_detractor", {"EUR": 50000}), ("C", "ticket_unresolved", {"EUR": 900})]

    churn = _cli(store, sql_server, chdb_dsn, tmp_path, "churn", "--as-of", "2026-06-30", "-f", "csv")
    assert churn.returncode == 0, churn.stderr
    rows = {r["period_start"]: r for r in csv.DictReader(io.StringIO(churn.stdout))}
    assert (rows["2026-04-01"]["active_at_start"], rows["2026-04-01"]["churned"], rows["2026-04-01"]["churn_rate"]) == ("4", "2", "0.5")
    assert (rows["2026-06-01"]["active_at_start"], rows["2026-06-01"]["new_customers"]) == ("5", "1")
    # a 30-day window: R (Jan 5 -> Feb 4), S (Jan 22 -> Feb 21) and L (Jan 10 -> Feb 9: its next purchase is 31 days later)
    short = _cli(store, sql_server, chdb_dsn, tmp_path, "churn", "--as-of", "2026-06-30", "--inactivity-days", "30", "-f", "json")
    feb = next(r for r in json.loads(short.stdout) if r["period_start"] == "2026-02-01")
    assert (feb["active_at_start"], feb["churned"]) == (3, 3)

    life = _cli(store, sql_server, chdb_dsn, tmp_path, "lifecycle", "--as-of", "2026-06-30")
    assert life.returncode == 0 and "resurrecting" in life.stdout, life.stderr
    cycle = _cli(store, sql_server, chdb_dsn, tmp_path, "sales-cycle", "--by", "campaign")
    assert cycle.returncode == 0, cycle.stderr
    assert "2 d 12 h" in cycle.stdout and "winter" in cycle.stdout  # S: anonymous click Jan 20 -> Jan 22 12:00


@pytest.mark.parametrize("args, option, valid", [
    (["churn", "--period", "year"], "--period", "'month', 'week'"),
    (["cohorts", "--period", "quarter"], "--period", "'month', 'week'"),
    (["churn", "--inactivity-days", "0"], "--inactivity-days", "positive number of days"),
    (["at-risk", "--inactivity-days", "-5"], "--inactivity-days", "positive number of days"),
    (["sales-cycle", "--by", "country"], "--by", "'campaign', 'channel', 'platform'"),
    (["cohorts", "--cohort-by", "week"], "--cohort-by", "'purchase', 'touch'"),
    (["churn", "--activity", "login"], "--activity", "'any', 'purchase'"),
    (["at-risk", "--quiet-share", "1.5"], "--quiet-share", "(0, 1]"),
])
def test_bad_options_exit_2_naming_the_option_and_valid_values(args: list[str], option: str, valid: str) -> None:
    done = run_cli("customers", *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert option in done.stderr and valid in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
