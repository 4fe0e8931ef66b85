"""Simulated events stored as the sink stores them (embedded ClickHouse, the real migrations): the report's raw totals
equal the simulator's truth figure by figure, and the README's SQL examples run against the real views and agree."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.unit.deploy.readme_tables import README
from touchpoint.cli.demo_check import compare
from touchpoint.config import load_settings
from touchpoint.producers.simulator import SimulationConfig, simulate


@pytest.fixture(scope="module")
def loaded(chdb_dsn):
    from touchpoint.sinks.migrations import migrate
    from touchpoint.sinks.rows import TOUCHPOINT_COLUMNS, touchpoint_row
    from touchpoint.sinks.store import Store

    settings = load_settings(clickhouse_dsn=chdb_dsn, clickhouse_database=f"e2e_{uuid.uuid4().hex[:8]}")
    sim = simulate(SimulationConfig(customers=1_500, seed=21))
    store = Store.connect(settings)
    migrate(store, settings)
    # every arrival, duplicates included, as the sink would insert them (each copy at its own offset)
    rows = [touchpoint_row(e, "events", 0, offset) for offset, e in enumerate(sim.arrived)]
    store.insert("touchpoints", list(zip(*rows)), TOUCHPOINT_COLUMNS)
    yield store, settings, sim
    store.command(f"DROP DATABASE IF EXISTS {settings.clickhouse_database}")


def test_report_raw_totals_equal_the_truth(loaded):
    from touchpoint.sinks.report import build_report

    store, settings, sim = loaded
    report = build_report(store.client, settings.clickhouse_database)
    checks = [c for c in compare(report, sim.truth) if c.source == "raw events" and c.name != "identity merges"]
    assert len(checks) > 30
    differ = [(c.name, c.expected, c.actual) for c in checks if not c.ok]
    assert not differ, differ
    # and the comparison can fail: a wrong truth is caught
    wrong = {**sim.truth, "nps": {**sim.truth["nps"], "promoters": sim.truth["nps"]["promoters"] + 1}}
    assert any(not c.ok and c.name == "NPS promoters" for c in compare(report, wrong))


def readme_sql() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", README.read_text(), re.S)


def test_readme_has_funnel_nps_and_path_examples():
    blocks = readme_sql()
    assert len(blocks) >= 4
    text = " ".join(blocks)
    assert "windowFunnel" in text and "nps" in text and "journey_paths" in text


@pytest.mark.parametrize("index", range(5))
def test_readme_sql_runs_against_the_real_views(loaded, index):
    store, settings, sim = loaded
    blocks = readme_sql()
    if index >= len(blocks):
        pytest.fail(f"README has {len(blocks)} SQL examples; this test expects 5")
    sql = blocks[index].replace("touchpoint.", f"{settings.clickhouse_database}.")
    result = store.client.query(sql)
    rows = [dict(zip(result.column_names, r)) for r in result.result_rows]
    truth = sim.truth
    if "windowFunnel" in sql:
        levels = {int(r["level"]): int(r["customers"]) for r in rows}
        assert levels and max(levels) >= 3
    elif "survey_kind = 'NPS'" in sql and "JOIN" not in sql:
        assert rows == [{"nps": pytest.approx(truth["nps"]["score"], abs=0.01), "responses": truth["nps"]["responses"]}]
    elif "JOIN" in sql:
        by = {r["delivery"]: r for r in rows}
        assert by["late"]["avg_score"] < by["on time"]["avg_score"]  # late parcels, lower scores
    else:
        assert isinstance(rows, list)  # kpi_day / journey_paths: worker output, empty without a worker
