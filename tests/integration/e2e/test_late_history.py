"""Loading history with the DEFAULT settings ends with exact windows: late contributions reach their own minute as
correction rows, so every windowed figure (report totals_from_metrics, day and hour views) equals the raw one.

The real pipeline: `touchpoint worker` + `touchpoint sink` (embedded ClickHouse), `touchpoint produce` of a file,
`touchpoint report --json`. Expected figures come from the Olist CSV rows and from the simulator's truth.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.integration.e2e.helpers import TOUCHPOINT, full_env, namespace_env, sql, start, stop, wait_complete
from tests.olist import read_csv

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

# Components the raw touchpoints give per event (so per day and per hour too), as (column in the views, SQL over
# `touchpoints FINAL` computing it).
RAW_PER_PERIOD = {
    "touchpoints": "count()",
    "checkouts_started": "countIf(event_type = 'CHECKOUT' AND checkout_status = 'started')",
    "checkouts_completed": "countIf(event_type = 'CHECKOUT' AND checkout_status = 'completed')",
    "checkouts_failed": "countIf(event_type = 'CHECKOUT' AND checkout_status = 'failed')",
    "checkouts_abandoned": "countIf(event_type = 'CHECKOUT' AND checkout_status = 'abandoned')",
    "revenue_minor": "sumIf(amount_minor, event_type = 'CHECKOUT' AND checkout_status = 'completed')",
    "ad_clicks": "countIf(event_type = 'AD_CLICK')",
    "ad_spend_minor": "sumIf(cost_minor, event_type = 'AD_CLICK')",
    "deliveries_delivered": "countIf(event_type = 'DELIVERY_NOTICE' AND delivery_status = 'delivered')",
    "deliveries_on_time": "countIf(event_type = 'DELIVERY_NOTICE' AND delivery_status = 'delivered' AND occurred_at <= promised_by)",
    "deliveries_late": "countIf(event_type = 'DELIVERY_NOTICE' AND delivery_status = 'delivered' AND occurred_at > promised_by)",
    "csat_total": "countIf(survey_kind = 'CSAT')",
    "csat_satisfied": "countIf(survey_kind = 'CSAT' AND score >= 4)",
    "nps_promoters": "countIf(survey_kind = 'NPS' AND score >= 9)",
    "nps_detractors": "countIf(survey_kind = 'NPS' AND score <= 6)",
    "ces_sum": "sumIf(score, survey_kind = 'CES')",
    "emails_sent": "countIf(email_action = 'sent')",
    "emails_opened": "countIf(email_action = 'opened')",
}


@pytest.fixture
def pipeline(kafka_bootstrap: str, tmp_path: Path, unique: str) -> Iterator[dict[str, str]]:
    """Worker and sink of one namespace with the default allowed lateness (namespace_env's override removed)."""
    env = namespace_env(kafka_bootstrap, tmp_path / "data", unique)
    del env["TOUCHPOINT_ALLOWED_LATENESS_SECONDS"]
    created = subprocess.run([str(TOUCHPOINT), "topics", "create"], env=full_env(env), capture_output=True, text=True,
                             timeout=60)
    assert created.returncode == 0, created.stderr[-2000:]
    logs = [tmp_path / "worker.log", tmp_path / "sink.log"]
    procs = [start(["worker"], env, logs[0]), start(["sink"], env, logs[1])]
    env["_logs"] = json.dumps([str(p) for p in logs])
    try:
        yield env
    finally:
        for proc in procs:
            stop(proc)


def _procs_logs(env: dict[str, str]) -> list[Path]:
    return [Path(p) for p in json.loads(env["_logs"])]


def _clean(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith("_")}


def _produce(env: dict[str, str], path: Path) -> None:
    done = subprocess.run([str(TOUCHPOINT), "produce", str(path)], env=full_env(_clean(env)), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _report(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([str(TOUCHPOINT), "report", "--json"], env=full_env(_clean(env)), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def _per_period(env: dict[str, str], period: str) -> tuple[dict[Any, dict[str, int]], dict[Any, dict[str, int]]]:
    """(windowed, raw) components per day or hour: metrics_day / metrics_hour against raw touchpoints FINAL."""
    port, db = int(env["TOUCHPOINT_SINK_SQL_PORT"]), env["TOUCHPOINT_CLICKHOUSE_DATABASE"]
    view, key = ("metrics_day", "toDate(occurred_at)") if period == "day" else ("metrics_hour", "toStartOfHour(occurred_at)")
    names = list(RAW_PER_PERIOD)
    windowed = {r[period]: {n: int(r[n]) for n in names} for r in sql(port, f"""
        SELECT {period}, {", ".join(f"toInt64(sum({n})) AS {n}" for n in names)}
        FROM {db}.{view} GROUP BY {period}""")}
    raw = {r[period]: {n: int(r[n]) for n in names} for r in sql(port, f"""
        SELECT {key} AS {period}, {", ".join(f"toInt64(ifNull({expr}, 0)) AS {n}" for n, expr in RAW_PER_PERIOD.items())}
        FROM {db}.touchpoints FINAL GROUP BY {period}""")}
    return windowed, raw


def _assert_periods_equal(env: dict[str, str]) -> None:
    for period in ("day", "hour"):
        windowed, raw = _per_period(env, period)
        differ = {k: (windowed.get(k), raw.get(k)) for k in windowed.keys() | raw.keys() if windowed.get(k) != raw.get(k)}
        assert not differ, f"{len(differ)} {period}s differ (windowed, raw), e.g. {list(differ.items())[:2]}"


def _ms(olist_time: str) -> int:
    return int(dt.datetime.fromisoformat(olist_time).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


def _olist_expected() -> dict[str, int]:
    """The figures straight from the CSV rows (not from the touchpoint mapping)."""
    orders = read_csv("orders")
    ids = {o["order_id"] for o in orders}
    paid: Counter[str] = Counter()
    for row in read_csv("order_payments"):
        paid[row["order_id"]] += round(float(row["payment_value"]) * 100)
    completed = [o for o in orders if o["order_approved_at"] and o["order_status"] != "canceled"]
    delivered = [o for o in orders if o["order_delivered_customer_date"]]
    late = [o for o in delivered if o["order_delivered_customer_date"] > o["order_estimated_delivery_date"]]
    reviews = [r for r in read_csv("order_reviews") if r["order_id"] in ids]
    shipped = sum(1 for o in orders if o["order_delivered_carrier_date"])
    failed = sum(1 for o in orders if o["order_approved_at"] and o["order_status"] == "canceled")
    return {
        "touchpoints": len(orders) + len(completed) + failed + shipped + len(delivered) + len(reviews),
        "checkouts_started": len(orders),
        "checkouts_completed": len(completed),
        "checkouts_failed": failed,
        "revenue_minor": sum(paid[o["order_id"]] for o in completed),
        "deliveries_delivered": len(delivered),
        "deliveries_on_time": len(delivered) - len(late),
        "deliveries_late": len(late),
        "delivery_delay_ms_sum": sum(_ms(o["order_delivered_customer_date"]) - _ms(o["order_estimated_delivery_date"])
                                     for o in late),
        "csat_total": len(reviews),
        "csat_satisfied": sum(1 for r in reviews if int(r["review_score"]) >= 4),
    }


def test_olist_history_in_file_order_with_default_settings_gives_exact_windows(pipeline, tmp_path):
    from tests.olist import write_jsonl

    env = pipeline
    path = tmp_path / "olist.jsonl"
    lines = write_jsonl(path)
    expected = _olist_expected()
    assert expected["touchpoints"] == lines  # the CSV count and the file agree before anything runs
    started = time.monotonic()
    _produce(env, path)
    print(f"produced in {time.monotonic() - started:.0f}s")
    logs = _procs_logs(env)
    wait_complete(_clean(env), {"events": lines, "identity_merges": 0}, timeout=300, logs=logs)
    print(f"complete in {time.monotonic() - started:.0f}s")

    rep = _report(env)
    print(f"report in {time.monotonic() - started:.0f}s")
    from_metrics, raw = rep["totals_from_metrics"], rep["totals"]
    windowed_days, _ = _per_period(env, "day")
    windowed = {**from_metrics, "revenue_minor": sum(d["revenue_minor"] for d in windowed_days.values())}
    assert {k: windowed[k] for k in expected} == expected
    assert raw["revenue_minor"] == {"BRL": expected["revenue_minor"]}
    shared = [k for k in from_metrics if k in raw and isinstance(raw[k], int) and k != "tickets_resolved"]
    assert len(shared) > 20
    assert {k: from_metrics[k] for k in shared} == {k: raw[k] for k in shared}
    # most of the history was older than the allowed lateness when it arrived: counted late, added as corrections
    assert from_metrics["late_events"] > lines // 2
    _assert_periods_equal(env)

    from rich.console import Console

    from touchpoint.cli.query import render_report  # what `touchpoint report` prints for these numbers

    console = Console(record=True, width=200, file=io.StringIO())
    render_report(rep, console)
    assert f"{from_metrics['late_events']:,} late touchpoints were added as corrections" in console.export_text()


def test_history_shuffled_over_two_weeks_with_duplicates_equals_raw_and_truth(pipeline, tmp_path):
    from touchpoint.producers.simulator import SimulationConfig, simulate
    from touchpoint.schemas.json_shape import event_to_json

    seed = random.SystemRandom().randrange(1_000_000)
    print(f"seed={seed}")
    sim = simulate(SimulationConfig(customers=150, days=14, seed=seed))
    unique = list({e["event_id"]: e for e in sim.arrived}.values())
    rng = random.Random(seed)
    arrived = unique + rng.sample(unique, k=len(unique) * 3 // 100)  # 3 % duplicates
    rng.shuffle(arrived)  # any order across the two weeks
    path = tmp_path / "shuffled.jsonl"
    path.write_text("".join(json.dumps(event_to_json(e)) + "\n" for e in arrived))
    truth = sim.truth

    env = pipeline
    _produce(env, path)
    wait_complete(_clean(env), truth, timeout=300, logs=_procs_logs(env))

    windowed_days, _ = _per_period(env, "day")  # money is per currency, so not in totals_from_metrics
    m = {**_report(env)["totals_from_metrics"],
         **{k: sum(d[k] for d in windowed_days.values()) for k in ("ad_spend_minor", "revenue_minor")}}
    got = {
        "touchpoints": m["touchpoints"], "ad_clicks": m["ad_clicks"],
        "ad_spend_minor": m["ad_spend_minor"], "revenue_minor": m["revenue_minor"],
        "checkouts": {s: m[f"checkouts_{s}"] for s in ("started", "completed", "abandoned", "failed")},
        "deliveries": {k: m[f"deliveries_{k}"] for k in ("delivered", "on_time", "late", "failed")}
        | {"delay_ms_sum": m["delivery_delay_ms_sum"]},
        "nps": {k: m[f"nps_{k}"] for k in ("promoters", "passives", "detractors")},
        "csat": (m["csat_total"], m["csat_satisfied"]), "ces": (m["ces_count"], m["ces_sum"]),
        "support": (m["tickets_opened"], m["tickets_resolved"], m["resolution_ms_sum"]),
        "emails": {a: m[f"emails_{a}"] for a in ("sent", "opened", "clicked", "bounced", "unsubscribed")},
    }
    want = {
        "touchpoints": truth["events"], "ad_clicks": truth["ad_clicks"],
        "ad_spend_minor": sum(truth["ad_spend_minor"].values()), "revenue_minor": sum(truth["revenue_minor"].values()),
        "checkouts": {s: truth["checkouts"][s] for s in ("started", "completed", "abandoned", "failed")},
        "deliveries": {k: truth["deliveries"][k] for k in ("delivered", "on_time", "late", "failed", "delay_ms_sum")},
        "nps": {k: truth["nps"][k] for k in ("promoters", "passives", "detractors")},
        "csat": (truth["csat"]["responses"], truth["csat"]["satisfied"]), "ces": (truth["ces"]["responses"], truth["ces"]["sum"]),
        "support": (truth["support"]["opened"], truth["support"]["resolved"], truth["support"]["resolution_ms_sum"]),
        "emails": truth["emails"],
    }
    assert got == want, f"seed={seed}"
    assert m["late_events"] > 0, f"seed={seed}: the shuffle should make events late"
    # per day (and hour): the windows against the raw table, and touchpoints per day against the simulator's events
    _assert_periods_equal(env)
    per_day: defaultdict[dt.date, int] = defaultdict(int)
    for e in unique:
        per_day[dt.datetime.fromtimestamp(e["occurred_at"] / 1000, dt.timezone.utc).date()] += 1
    windowed, _ = _per_period(env, "day")
    assert {dt.date.fromisoformat(str(d)): c["touchpoints"] for d, c in windowed.items()} == dict(per_day), f"seed={seed}"
