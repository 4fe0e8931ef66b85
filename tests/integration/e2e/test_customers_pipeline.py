"""Customer figures after the real pipeline ran: eight simulated months of customer lives (the simulator's
``retention`` profile: loyal, lapsing, churning after bad experiences, one-off buyers, anonymous visitors who log in
later, duplicates and out-of-order arrival) produced to Kafka, processed by `touchpoint run` (worker + sink), then
read through the same queries and CLI an analyst uses. Every figure equals the simulator's truth, computed from the
generated events in plain Python (producers/simulation/truth_customers.py), not by the pipeline's code.

One pipeline run is shared by the module (it is the expensive part)."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import run_cli, wait_until
from tests.integration.e2e.helpers import namespace_env, progress, settings_of, start, stop
from touchpoint.producers.simulation.truth_customers import compute_customer_truth
from touchpoint.producers.simulator import SimulationConfig, produce, simulate
from touchpoint.sinks import customer_periods as cp
from touchpoint.sinks import customers as cq

pytestmark = pytest.mark.slow

SIM = SimulationConfig(customers=300, seed=5, days=240, profile="retention")


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str], Any]]:
    import clickhouse_connect

    sim = simulate(SIM)
    name = "cu" + uuid.uuid4().hex[:8]
    env = namespace_env(kafka_bootstrap, tmp_path_factory.mktemp("customers"), name)
    env["TOUCHPOINT_ALLOWED_LATENESS_SECONDS"] = str(SIM.replay_lateness_seconds)
    log = tmp_path_factory.mktemp("logs") / "run.log"
    run = start(["run"], env, log)
    try:
        produce(sim.arrived, settings_of(env))
        port, db = int(env["TOUCHPOINT_SINK_SQL_PORT"]), env["TOUCHPOINT_CLICKHOUSE_DATABASE"]
        seen: list[dict[str, int]] = []

        def stored() -> bool:
            assert run.poll() is None, log.read_text()[-3000:]
            now = progress(port, db)
            seen.append(now)
            complete = (now["raw"] == sim.truth["events"] and now["merges"] == sim.truth["identity_merges"]
                        and now["snapshots"] > 0)
            return complete and len(seen) >= 3 and seen[-3] == seen[-2] == now

        wait_until(stored, timeout=300, interval=1.0, what=f"{sim.truth['events']} events and "
                                                          f"{sim.truth['identity_merges']} merges stored in {db}")
        client = clickhouse_connect.get_client(host="127.0.0.1", port=port)
        yield client, env, sim
        client.close()
    finally:
        assert stop(run, signal.SIGTERM) == 0, log.read_text()[-3000:]


def test_churn_per_month_and_week_equal_the_truth(pipeline: Any) -> None:
    client, env, sim = pipeline
    db = env["TOUCHPOINT_CLICKHOUSE_DATABASE"]
    truth = sim.truth["retention"]
    months = {r["period_start"]: [r["active_at_start"], r["churned"], r["new_customers"]]
              for r in cp.churn(client, db, cq.CustomerParams())}
    assert months == truth["churn"]
    assert sum(churned for _, churned, _ in months.values()) > 50  # the profile does churn
    weeks = {r["period_start"]: [r["active_at_start"], r["churned"], r["new_customers"]]
             for r in cp.churn(client, db, cq.CustomerParams(period="week", inactivity_days=30))}
    assert weeks == compute_customer_truth(sim.arrived, period="week", inactivity_days=30)["churn"]


def test_lifecycle_equals_the_truth(pipeline: Any) -> None:
    client, env, sim = pipeline
    got = {r["period_start"]: [r[k] for k in ("new", "returning", "resurrecting", "dormant")]
           for r in cp.lifecycle(client, env["TOUCHPOINT_CLICKHOUSE_DATABASE"], cq.CustomerParams())}
    assert got == sim.truth["retention"]["lifecycle"]
    assert sum(v[2] for v in got.values()) > 0  # somebody came back


def test_cohorts_and_repeat_purchases_equal_the_truth(pipeline: Any) -> None:
    client, env, sim = pipeline
    c = cp.cohorts(client, env["TOUCHPOINT_CLICKHOUSE_DATABASE"], cq.CustomerParams())
    got = {x["cohort"]: {"customers": x["customers"], "repeat_customers": x["repeat_customers"],
                         "on": [e["on"] for e in x["retention"]], "on_or_after": [e["on_or_after"] for e in x["retention"]],
                         "revenue_minor": x["revenue_minor"]} for x in c["cohorts"]}
    truth = sim.truth["retention"]
    assert got == truth["cohorts"]
    assert c["repeat_purchase_rate"] == truth["repeat_purchase_rate"]


def test_sales_cycle_and_customers_equal_the_truth(pipeline: Any) -> None:
    client, env, sim = pipeline
    db = env["TOUCHPOINT_CLICKHOUSE_DATABASE"]
    truth = sim.truth["retention"]
    s = cq.sales_cycle(client, db, by="channel")
    level = s["customer_level"]
    assert (level["customers"], level["cycle_ms_sum"]) == (truth["sales_cycle"]["customers"], truth["sales_cycle"]["cycle_ms_sum"])
    assert level["median_ms"] == pytest.approx(truth["sales_cycle"]["median_ms"], abs=0.01)
    assert level["p90_ms"] == pytest.approx(truth["sales_cycle"]["p90_ms"], abs=0.01)
    assert {b["value"]: b["customers"] for b in s["breakdown"]} == truth["sales_cycle_by_channel"]
    assert s["journey_level"]["customers"] > 0  # the worker's converted journeys are there beside it
    summary = cq.customer_summary(client, db)
    assert {k: summary[k] for k in truth["summary"]} == truth["summary"]


def test_at_risk_through_the_cli_equals_the_truth(pipeline: Any) -> None:
    _, env, sim = pipeline
    done = run_cli("customers", "at-risk", "-f", "json", env=env)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert {r["customer_id"]: r["reason"] for r in rows} == sim.truth["retention"]["at_risk"]
    assert len(rows) >= 5
    revenue = [r["revenue_total_minor"] for r in rows]
    assert revenue == sorted(revenue, reverse=True)
