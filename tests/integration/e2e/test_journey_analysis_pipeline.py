"""Journey analysis after the real pipeline ran: simulated traffic (duplicates, out-of-order arrivals, anonymous
visitors stitched at login) through Kafka, `touchpoint run` (worker + sink) and the embedded ClickHouse, then read
with the `touchpoint` commands through the sink's read-only port. Every figure equals the simulator's independent
truth (producers/simulation/truth_journeys.py). One pipeline run is shared by the module."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import run_cli
from tests.integration.e2e.helpers import namespace_env, settings_of, start, stop, wait_complete
from touchpoint.producers.simulation import truth_journeys as tj
from touchpoint.producers.simulator import SimulationConfig, produce, simulate

pytestmark = pytest.mark.slow

SEED = 47
DAY_MS = 86_400_000
FUNNEL = ["AD_CLICK", "PAGE_VIEW", "CHECKOUT:status=completed", "DELIVERY_NOTICE:status=delivered",
          "SURVEY_RESPONSE:survey_kind=NPS"]
TRUTH_FUNNEL = [tj.step("AD_CLICK"), tj.step("PAGE_VIEW"), tj.step("CHECKOUT", status="completed"),
                tj.step("DELIVERY_NOTICE", status="delivered"), tj.step("SURVEY_RESPONSE", survey_kind="NPS")]


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Any]]:
    sim = simulate(SimulationConfig(customers=500, seed=SEED))
    tmp = tmp_path_factory.mktemp("journeys")
    env = namespace_env(kafka_bootstrap, tmp / "data", f"ja{uuid.uuid4().hex[:8]}")
    log = tmp / "run.log"
    run = start(["run"], env, log)
    try:
        produce(sim.arrived, settings_of(env))
        wait_complete(env, sim.truth, procs=[run], logs=[log])
        yield env, sim
    finally:
        assert stop(run, signal.SIGTERM) == 0, log.read_text()[-3000:]


def cli_json(env: dict[str, str], *args: str) -> Any:
    done = run_cli(*args, env=env)
    assert done.returncode == 0, f"seed {SEED}: {args} failed: {done.stderr[-2000:]}"
    return json.loads(done.stdout)


@pytest.mark.parametrize("mode", ["sequential", "strict"])
def test_funnel_steps_and_times_equal_the_truth(pipeline: Any, mode: str) -> None:
    env, sim = pipeline
    args = [a for spec in FUNNEL for a in ("--step", spec)]
    got = cli_json(env, "funnel", *args, "--window-days", "14", "--mode", mode, "--format", "json")["rows"]
    truth = tj.funnel(sim.arrived, TRUTH_FUNNEL, 14 * DAY_MS, mode)
    assert [r["customers"] for r in got] == [t["customers"] for t in truth], f"seed {SEED}"
    assert [r["median_seconds_from_previous"] for r in got] == [
        None if t["median_ms"] is None else t["median_ms"] / 1000 for t in truth], f"seed {SEED}"
    if mode == "sequential":
        assert truth[4]["customers"] > 10  # the funnel reaches deep enough to be a real check


def test_funnel_by_first_touch_channel_equals_the_truth(pipeline: Any) -> None:
    env, sim = pipeline
    args = [a for spec in FUNNEL[:3] for a in ("--step", spec)]
    rows = cli_json(env, "funnel", *args, "--breakdown", "channel", "--format", "json")["rows"]
    got: dict[str, list[int]] = {}
    for r in rows:
        got.setdefault(r["breakdown"], []).append(r["customers"])
    truth = tj.funnel_by(sim.arrived, TRUTH_FUNNEL[:3], 14 * DAY_MS, "sequential", lambda e: e["channel"])
    assert got == {k: [s["customers"] for s in v] for k, v in truth.items()}, f"seed {SEED}"
    assert len(got) >= 2


def test_dropped_customers_are_listed(pipeline: Any) -> None:
    env, sim = pipeline
    args = [a for spec in FUNNEL[:3] for a in ("--step", spec)]
    got = cli_json(env, "funnel", *args, "--dropped-at", "3", "--format", "json")["customers"]
    reached = [t["customers"] for t in tj.funnel(sim.arrived, TRUTH_FUNNEL[:3], 14 * DAY_MS)]
    assert len(got) == reached[1] - reached[2] and got == sorted(got)


def test_stage_reach_and_stalls_equal_the_truth(pipeline: Any) -> None:
    env, sim = pipeline
    got = {r["stage"]: (r["reached"], r["stalled"], r["median_dwell_seconds"]) for r in cli_json(env, "stages", "--json")}
    truth = {s: (t["reached"], t["stalled"], None if t["median_dwell_ms"] is None else t["median_dwell_ms"] / 1000)
             for s, t in tj.stages(sim.arrived).items()}
    assert got == truth, f"seed {SEED}"


def test_feedback_by_delivery_outcome_equals_the_truth(pipeline: Any) -> None:
    env, sim = pipeline
    rows = cli_json(env, "pain-points", "--json")
    got = {r["value"]: r for r in rows if r["factor"] == "delivery"}
    truth = tj.feedback_by_delivery(sim.arrived, 30 * DAY_MS)
    fields = ("nps_promoters", "nps_passives", "nps_detractors", "csat_satisfied", "csat_total", "ces_sum", "ces_count")
    assert {k: {f: got[k][f] for f in fields} for k in got} == {k: {f: v.get(f, 0) for f in fields}
                                                              for k, v in truth.items()}, f"seed {SEED}"
    assert {"on_time", "late", "none"} <= got.keys()  # the split has substance


def test_attribution_credit_per_model_and_campaign_equals_the_truth(pipeline: Any) -> None:
    env, sim = pipeline
    rows = cli_json(env, "attribution", "--json")["rows"]
    is_touch = lambda e: e["event_type"] == "AD_CLICK" or (  # noqa: E731 - the documented default touches
        e["event_type"] == "EMAIL_ENGAGEMENT" and e["payload"]["action"] == "clicked")
    models = ("first_touch", "last_touch", "linear", "time_decay", "position_based")
    truth = tj.attribution(sim.arrived, is_touch, 30 * DAY_MS, 7 * DAY_MS, models)
    conversions = tj.conversions(sim.arrived)
    assert conversions > 50
    for model in models:
        mine = [r for r in rows if r["model"] == model]
        assert sum(r["credit_micro"] for r in mine) == conversions * 1_000_000  # exact, no rounding leak
        by_key: dict[str, float] = {}
        for r in mine:
            by_key[r["key"]] = by_key.get(r["key"], 0.0) + r["credit_micro"] / 1e6
        expected = {k: float(v) for k, v in truth[model].items()}
        assert by_key.keys() == expected.keys(), f"seed {SEED} {model}"
        for key, value in expected.items():
            # micro-credit rounding: at most a few millionths per conversion
            assert by_key[key] == pytest.approx(value, abs=2e-6 * conversions), f"seed {SEED} {model} {key}"
    spend = tj.ad_spend(sim.arrived)
    assert {(r["key"], r["currency"]): r["spend_minor"] for r in rows if r["spend_minor"]}.items() <= spend.items()
    for r in rows:
        if r["spend_minor"] and r["credit_micro"]:
            assert r["cost_per_conversion_minor"] == pytest.approx(r["spend_minor"] / (r["credit_micro"] / 1e6))
            assert r["roas"] == pytest.approx(r["attributed_revenue_minor"] / r["spend_minor"])


def test_attribution_by_channel_equals_the_truth(pipeline: Any) -> None:
    env, sim = pipeline
    rows = cli_json(env, "attribution", "--by", "channel", "--model", "linear", "--model", "position_based", "--json")["rows"]
    is_touch = lambda e: e["event_type"] == "AD_CLICK" or (  # noqa: E731
        e["event_type"] == "EMAIL_ENGAGEMENT" and e["payload"]["action"] == "clicked")
    truth = tj.attribution(sim.arrived, is_touch, 30 * DAY_MS, 7 * DAY_MS, ("linear", "position_based"),
                           key=lambda e: e["channel"])
    conversions = tj.conversions(sim.arrived)
    for model in ("linear", "position_based"):
        got: dict[str, float] = {}
        for r in rows:
            if r["model"] == model:
                got[r["key"]] = got.get(r["key"], 0.0) + r["conversions"]
        assert got.keys() == truth[model].keys()
        for key, value in truth[model].items():
            assert got[key] == pytest.approx(float(value), abs=2e-6 * conversions), f"seed {SEED} {model} {key}"


def test_report_json_has_the_sections_and_names_the_model(pipeline: Any) -> None:
    env, sim = pipeline
    rep = cli_json(env, "report", "--json")
    assert rep["journey_funnel"]["steps"][0] == "AD_CLICK"
    assert all("model" in r for r in rep["attribution"]["by_campaign"] + rep["attribution"]["by_channel"])
    assert {r["stage"] for r in rep["stages"]} >= {"awareness", "purchase", "service"}
    assert any(r["factor"] == "delivery" and r["value"] == "late" for r in rep["pain_points"])
