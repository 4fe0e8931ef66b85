"""Real data: the Olist sample (../shared/data/olist-sample, never copied in) mapped to touchpoints by tests/olist.py,
sent with `touchpoint produce` through `touchpoint run` on DEFAULT settings, then read through the customer queries.
Cohorts by first-purchase month, the repeat-purchase rate and the sales cycle each equal a direct computation from
the CSV rows here (a purchase = an approved order that was not canceled; the person = customer_unique_id; first
touch = the earliest timestamp of the person's orders and reviews; amounts = the order's payments)."""

from __future__ import annotations

import datetime as dt
import json
import signal
import uuid
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests import olist
from tests.helpers import run_cli, wait_until
from tests.integration.e2e.helpers import namespace_env, progress, settings_of, start, stop
from touchpoint.kafka_admin import create_topics
from touchpoint.sinks import customer_periods as cp
from touchpoint.sinks import customers as cq

pytestmark = pytest.mark.slow


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


def _month(text: str) -> str:
    return text[:7] + "-01"


def _months_between(a: str, b: str) -> int:
    return (int(b[:4]) - int(a[:4])) * 12 + int(b[5:7]) - int(a[5:7])


def _interpolated(values: list[int], q: float) -> float:
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = int(pos)
    return xs[lo] + (xs[min(lo + 1, len(xs) - 1)] - xs[lo]) * (pos - lo)


def expected_from_csv() -> dict[str, Any]:
    person = {r["customer_id"]: r["customer_unique_id"] for r in olist.read_csv("customers")}
    paid: dict[str, Decimal] = defaultdict(Decimal)
    for r in olist.read_csv("order_payments"):
        paid[r["order_id"]] += Decimal(r["payment_value"])
    times: list[str] = []
    touched: dict[str, list[str]] = defaultdict(list)  # every time something happened to the person's orders
    bought: dict[str, list[tuple[str, int]]] = defaultdict(list)
    owner: dict[str, str] = {}
    for r in olist.read_csv("orders"):
        who = owner[r["order_id"]] = person[r["customer_id"]]
        stamps = [r[k] for k in ("order_purchase_timestamp", "order_approved_at", "order_delivered_carrier_date",
                                 "order_delivered_customer_date") if r[k]]
        times += stamps
        touched[who] += stamps
        if r["order_approved_at"] and r["order_status"] != "canceled":
            bought[who].append((r["order_approved_at"], int(paid[r["order_id"]] * 100)))
    for r in olist.read_csv("order_reviews"):
        times.append(r["review_answer_timestamp"])
        touched[owner[r["order_id"]]].append(r["review_answer_timestamp"])
    last_month = _month(max(times))
    cohorts: dict[str, dict[str, Any]] = {}
    for who, buys in bought.items():
        cohort = _month(min(t for t, _ in buys))
        n = _months_between(cohort, last_month) + 1
        c = cohorts.setdefault(cohort, {"customers": 0, "repeat": 0, "on": [0] * n, "revenue": [0] * n})
        c["customers"] += 1
        c["repeat"] += len(buys) >= 2
        for k in {_months_between(cohort, _month(t)) for t, _ in buys}:
            c["on"][k] += 1
        for t, cents in buys:
            c["revenue"][_months_between(cohort, _month(t))] += cents
    # first touch = the person's earliest event of any kind (Olist has carrier hand-overs dated before the purchase)
    cycles = [_ms(min(buys)[0].replace(" ", "T")) - _ms(min(touched[who]).replace(" ", "T")) for who, buys in bought.items()]
    return {"cohorts": dict(sorted(cohorts.items())), "buyers": len(bought),
            "repeat_buyers": sum(1 for b in bought.values() if len(b) >= 2), "cycles": cycles}


@pytest.fixture(scope="module")
def olist_store(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    import clickhouse_connect

    tmp = tmp_path_factory.mktemp("olist")
    env = namespace_env(kafka_bootstrap, tmp / "data", "ol" + uuid.uuid4().hex[:8])
    env.pop("TOUCHPOINT_ALLOWED_LATENESS_SECONDS")  # default settings: raw touchpoints must be exact anyway
    lines = olist.write_jsonl(tmp / "olist.jsonl")
    # Sent in the order things happened, as a live feed would: the file jumps between years order by order, and the
    # sink cuts a batch at every change of month (one part per batch), which makes file order ~10x slower to load.
    path = tmp / "olist.jsonl"
    path.write_text("".join(sorted(path.read_text().splitlines(keepends=True), key=lambda l: json.loads(l)["occurred_at"])))
    log = tmp / "run.log"
    create_topics(settings_of(env))
    run = start(["run"], env, log)
    try:
        produced = run_cli("produce", str(tmp / "olist.jsonl"), env=env)
        assert produced.returncode == 0, produced.stderr
        port, db = int(env["TOUCHPOINT_SINK_SQL_PORT"]), env["TOUCHPOINT_CLICKHOUSE_DATABASE"]

        def stored() -> bool:
            assert run.poll() is None, log.read_text()[-3000:]
            return progress(port, db)["raw"] == lines

        wait_until(stored, timeout=300, interval=1.0, what=f"{lines} Olist touchpoints stored in {db}")
        client = clickhouse_connect.get_client(host="127.0.0.1", port=port)
        yield client, db
        client.close()
    finally:
        assert stop(run, signal.SIGTERM) == 0, log.read_text()[-3000:]


def test_cohorts_by_first_purchase_month_equal_the_csv(olist_store: Any) -> None:
    client, db = olist_store
    want = expected_from_csv()
    got = cp.cohorts(client, db, cq.CustomerParams())
    assert {x["cohort"]: x["customers"] for x in got["cohorts"]} == {k: v["customers"] for k, v in want["cohorts"].items()}
    assert {x["cohort"]: [e["on"] for e in x["retention"]] for x in got["cohorts"]} == {k: v["on"] for k, v in want["cohorts"].items()}
    assert {x["cohort"]: [sum(r.values()) for r in x["revenue_minor"]] for x in got["cohorts"]} == {
        k: v["revenue"] for k, v in want["cohorts"].items()}
    assert {x["cohort"]: x["repeat_customers"] for x in got["cohorts"]} == {k: v["repeat"] for k, v in want["cohorts"].items()}
    assert len(got["cohorts"]) >= 12


def test_repeat_purchase_rate_equals_the_csv(olist_store: Any) -> None:
    client, db = olist_store
    want = expected_from_csv()
    got = cp.cohorts(client, db, cq.CustomerParams())
    assert (got["repeat_customers"], got["buyers"]) == (want["repeat_buyers"], want["buyers"])
    assert got["repeat_purchase_rate"] == want["repeat_buyers"] / want["buyers"]
    assert want["repeat_buyers"] > 0


def test_sales_cycle_equals_the_csv(olist_store: Any) -> None:
    client, db = olist_store
    cycles = expected_from_csv()["cycles"]
    level = cq.sales_cycle(client, db)["customer_level"]
    assert (level["customers"], level["cycle_ms_sum"]) == (len(cycles), sum(cycles))
    assert level["avg_ms"] == sum(cycles) / len(cycles)
    assert level["median_ms"] == pytest.approx(_interpolated(cycles, 0.5), abs=0.01)
    assert level["p90_ms"] == pytest.approx(_interpolated(cycles, 0.9), abs=0.01)
    assert client.query(f"SELECT countIf(cycle_ms < 0) FROM {db}.sales_cycles").result_rows[0][0] == 0
