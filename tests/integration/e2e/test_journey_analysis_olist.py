"""Real data: the Olist sample (read from ../shared, never copied) sent with `touchpoint produce` through Kafka and
`touchpoint sink` into the embedded ClickHouse. The funnel checkout completed → delivered → reviewed and CSAT by
delivery on time vs late, read with `touchpoint funnel` / `touchpoint pain-points`, equal a direct computation from
the CSV files here (raw touchpoints, not metric windows)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from tests import olist
from tests.helpers import run_cli, wait_until
from tests.integration.e2e.helpers import namespace_env, settings_of, sql, start, stop

pytestmark = pytest.mark.slow

DAY = dt.timedelta(days=1)


def t(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")


@pytest.fixture(scope="module")
def stored(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    from touchpoint.kafka_admin import create_topics

    tmp = tmp_path_factory.mktemp("olist")
    env = namespace_env(kafka_bootstrap, tmp / "data", f"ol{uuid.uuid4().hex[:8]}")
    create_topics(settings_of(env))
    assert run_cli("sink", "migrate", env=env).returncode == 0
    log = tmp / "sink.log"
    sink = start(["sink"], env, log)
    try:
        path = tmp / "olist.jsonl"
        olist.write_jsonl(path)
        # in time order, as a live feed sends them: the sink starts a new insert whenever the month changes
        # (one part per partition key), and the file's order-by-order layout would change it on most lines
        lines = sorted(path.read_text().splitlines(), key=lambda line: json.loads(line)["occurred_at"])
        path.write_text("\n".join(lines) + "\n")
        ids = {json.loads(line)["event_id"] for line in lines}
        done = run_cli("produce", str(path), env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        port, db = int(env["TOUCHPOINT_SINK_SQL_PORT"]), env["TOUCHPOINT_CLICKHOUSE_DATABASE"]
        wait_until(lambda: int(sql(port, f"SELECT uniqExact(event_id) AS n FROM {db}.touchpoints")[0]["n"]) == len(ids),
                   timeout=180, what=f"{len(ids)} Olist touchpoints stored")
        yield env
    finally:
        assert stop(sink) == 0, log.read_text()[-3000:]


def cli_json(env: dict[str, str], *args: str) -> Any:
    done = run_cli(*args, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def per_person() -> dict[str, dict[str, list[Any]]]:
    """Straight from the CSV files: per customer_unique_id, approval times of non-canceled orders, deliveries
    (time, estimated time), review answers (time, score)."""
    person = {r["customer_id"]: r["customer_unique_id"] for r in olist.read_csv("customers")}
    order_person: dict[str, str] = {}
    out: dict[str, dict[str, list[Any]]] = defaultdict(lambda: {"completed": [], "delivered": [], "reviews": []})
    for o in olist.read_csv("orders"):
        p = person[o["customer_id"]]
        order_person[o["order_id"]] = p
        if o["order_approved_at"] and o["order_status"] != "canceled":
            out[p]["completed"].append(t(o["order_approved_at"]))
        if o["order_delivered_customer_date"]:
            out[p]["delivered"].append((t(o["order_delivered_customer_date"]), t(o["order_estimated_delivery_date"])))
    for r in olist.read_csv("order_reviews"):
        if r["order_id"] in order_person:
            out[order_person[r["order_id"]]]["reviews"].append((t(r["review_answer_timestamp"]), int(r["review_score"])))
    return out


def test_funnel_completed_delivered_reviewed_equals_the_csv(stored: dict[str, str]) -> None:
    window = 30
    got = cli_json(stored, "funnel", "--step", "CHECKOUT:status=completed", "--step", "DELIVERY_NOTICE:status=delivered",
                   "--step", "SURVEY_RESPONSE", "--window-days", str(window), "--format", "json")["rows"]
    reached = [0, 0, 0]
    for p in per_person().values():
        best = 0
        for c in p["completed"]:  # each approval may start the chain; next steps: the earliest later one in the window
            level = 1
            d = min((x for x, _ in p["delivered"] if c < x <= c + window * DAY), default=None)
            if d is not None:
                level = 2
                if any(d < r <= c + window * DAY for r, _ in p["reviews"]):
                    level = 3
            best = max(best, level)
        for k in range(best):
            reached[k] += 1
    assert [r["customers"] for r in got] == reached
    assert reached[2] > 500  # most orders were delivered and reviewed within the month


def test_csat_by_delivery_on_time_vs_late_equals_the_csv(stored: dict[str, str]) -> None:
    rows = cli_json(stored, "pain-points", "--json")
    got = {r["value"]: (r["csat_satisfied"], r["csat_total"]) for r in rows if r["factor"] == "delivery"}
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for p in per_person().values():
        for answered, score in p["reviews"]:
            before = [(x, est) for x, est in p["delivered"] if answered - 30 * DAY <= x < answered]
            outcome = "none" if not before else ("on_time" if max(before)[0] <= max(before)[1] else "late")
            expected[outcome][0] += score >= 4
            expected[outcome][1] += 1
    assert got == {k: tuple(v) for k, v in expected.items()}
    on_time, late = got["on_time"], got["late"]
    assert on_time[0] / on_time[1] > late[0] / late[1]  # late parcels, fewer satisfied customers


def test_the_report_funnel_starts_at_checkout_when_there_are_no_ad_clicks(stored: dict[str, str]) -> None:
    rep = cli_json(stored, "report", "--json")
    assert rep["journey_funnel"]["steps"] == ["CHECKOUT:status=started", "CHECKOUT:status=completed",
                                              "DELIVERY_NOTICE:status=delivered", "SURVEY_RESPONSE"]
    ordered = {o["customer_id"] for o in olist.read_csv("orders")}
    people = len({r["customer_unique_id"] for r in olist.read_csv("customers") if r["customer_id"] in ordered})
    assert rep["journey_funnel"]["rows"][0]["customers"] == people
    assert all(r["customers"] > 0 for r in rep["journey_funnel"]["rows"])
