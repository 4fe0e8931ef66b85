"""Customers, churn, lifecycle, cohorts, at risk and sales cycle on a small hand-written history whose answers are
typed in below (worked out by hand from the event list, N = 90 days, as of 2026-06-30 00:00 UTC).

People (every purchase is one completed checkout; activity = customer-initiated touchpoints):
- L  loyal: ad click (spring, google) Jan 8, buys on the 10th of every month Jan..Jun (1000 EUR each)
- O  bought once, Mar 2 (120 days before as-of): churned May 31
- R  bought Jan 5, comes back Apr 15 (100 days later): churned Apr 5, resurrecting in April
- S  anonymous ad click (winter, meta) Jan 20, logs in Jan 21, buys Jan 22 12:00: the anonymous click is S's first touch
- B  buys Apr 20 (50000 EUR), late delivery May 1, NPS 2 on May 3, then silence: at risk (detractor)
- C  buys Apr 28 (900 EUR), opens a ticket May 5 that is never resolved: at risk (unresolved ticket)
- G  buys Apr 25, NPS 10 on May 2, unsubscribes May 2: quiet too, but the last experience was good
- Nw first purchase Jun 5: a new customer of June (not in June's denominator)
A replay re-inserts L's March purchase and B's NPS answer (same event ids): they count once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from tests.integration.analyst import dataset as d
from touchpoint.sinks import customer_periods as cp
from touchpoint.sinks import customers as cq
from touchpoint.sinks import rows

pytestmark = pytest.mark.integration

DAY = 86_400_000


def at(month: int, day: int, hour: int = 0) -> int:
    return int(dt.datetime(2026, month, day, hour, tzinfo=dt.timezone.utc).timestamp() * 1000)


AS_OF = at(6, 30)


def buy(when: int, who: str, order: str, amount: int) -> dict[str, Any]:
    return d.checkout(when, who, order, "completed", amount, "EUR")


def history() -> list[dict[str, Any]]:
    ev = [d.ad(at(1, 8), "spring", 50, "EUR", customer="L")]
    ev += [buy(at(m, 10), "L", f"oL{m}", 1000) for m in range(1, 7)]
    ev += [buy(at(3, 2), "O", "oO", 2000)]
    ev += [buy(at(1, 5), "R", "oR1", 1500), buy(at(4, 15), "R", "oR2", 1500)]
    s_click = d.ad(at(1, 20), "winter", 70, "EUR", anonymous="aS")
    s_click["payload"]["platform"] = "meta"
    ev += [s_click, d.view(at(1, 21), customer="S", anonymous="aS"), buy(at(1, 22, 12), "S", "oS", 3000)]
    ev += [buy(at(4, 20), "B", "oB", 50000), d.delivery(at(5, 1), "B", "oB", "delivered", promised_by=at(4, 28)),
           d.survey(at(5, 3), "B", "NPS", 2)]
    ev += [buy(at(4, 28), "C", "oC", 900), d.support(at(5, 5), "C", "tC", "opened")]
    ev += [buy(at(4, 25), "G", "oG", 700), d.survey(at(5, 2, 10), "G", "NPS", 10),
           d.email(at(5, 2, 9), "G", "mG", "sent"), d.email(at(5, 2, 11), "G", "mG", "unsubscribed")]
    ev += [buy(at(6, 5), "Nw", "oNw", 400)]
    return ev


@pytest.fixture
def scenario(store: Any) -> Any:
    return load(store)


def load(store: Any) -> Any:
    """Insert the history into ``store`` (a migrated sink Store) as the sink would, plus a replay and the merge."""
    ev = history()
    cols = rows.TOUCHPOINT_COLUMNS
    # arrival out of order (newest first), then a replay of two events in a second insert
    store.insert("touchpoints", list(zip(*[rows.touchpoint_row(e, "events", 0, i) for i, e in enumerate(reversed(ev))])), cols)
    replayed = [e for e in ev if e["payload"].get("order_id") == "oL3" or (e["customer_id"] == "B" and e["event_type"] == "SURVEY_RESPONSE")]
    assert len(replayed) == 2
    store.insert("touchpoints", list(zip(*[rows.touchpoint_row(e, "events", 1, 100 + i) for i, e in enumerate(replayed)])), cols)
    merge = {"anonymous_id": "aS", "customer_id": "S", "merged_at": at(1, 21), "event_id": str(uuid.uuid4()),
             "event_occurred_at": at(1, 21), "events_moved": 1}
    store.insert("identity_merges", list(zip(rows.merge_row(merge, "merges", 0, 0))), rows.MERGE_COLUMNS)
    return store


def params(**kw: Any) -> cq.CustomerParams:
    return cq.CustomerParams(**{"as_of_ms": AS_OF, **kw})


def test_churn_per_month_excludes_new_customers_from_the_denominator(scenario: Any) -> None:
    got = {r["period_start"]: r for r in cp.churn(scenario.client, scenario.database, params())}
    assert list(got) == ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01", "2026-05-01", "2026-06-01"]
    table = {k: (r["active_at_start"], r["churned"], r["new_customers"], r["unsubscribed"]) for k, r in got.items()}
    assert table == {
        "2026-01-01": (0, 0, 3, 0),   # L, R, S are new
        "2026-02-01": (3, 0, 0, 0),
        "2026-03-01": (3, 0, 1, 0),   # O new
        "2026-04-01": (4, 2, 3, 0),   # R (Apr 5) and S (Apr 22) churn; B, C, G new
        "2026-05-01": (6, 1, 0, 1),   # O churns May 31 (bought once, 120 days before as-of); G unsubscribes
        "2026-06-01": (5, 0, 1, 0),   # Nw is new in June: not among the 5 (L, R, B, C, G)
    }
    assert got["2026-04-01"]["churn_rate"] == 0.5 and got["2026-04-01"]["retention_rate"] == 0.5
    assert got["2026-01-01"]["churn_rate"] is None
    assert got["2026-06-01"]["complete"] is False and got["2026-05-01"]["complete"] is True


def test_churn_per_week(scenario: Any) -> None:
    weeks = {r["period_start"]: r for r in cp.churn(scenario.client, scenario.database, params(period="week"))}
    # week of Monday May 25: L, O, R, B, C, G active at its start; O's 90 days end on Sunday May 31
    assert (weeks["2026-05-25"]["active_at_start"], weeks["2026-05-25"]["churned"]) == (6, 1)
    assert all(dt.date.fromisoformat(k).weekday() == 0 for k in weeks)


def test_lifecycle_new_returning_resurrecting_dormant(scenario: Any) -> None:
    got = {r["period_start"]: tuple(r[k] for k in ("new", "returning", "resurrecting", "dormant"))
           for r in cp.lifecycle(scenario.client, scenario.database, params())}
    assert got == {
        "2026-01-01": (3, 0, 0, 0),
        "2026-02-01": (0, 1, 0, 2),   # R and S silent in February
        "2026-03-01": (1, 1, 0, 0),
        "2026-04-01": (3, 1, 1, 1),   # R comes back after 100 days: resurrecting; O dormant
        "2026-05-01": (0, 4, 0, 1),
        "2026-06-01": (1, 1, 0, 3),
    }


def test_cohorts_by_first_purchase_month(scenario: Any) -> None:
    c = cp.cohorts(scenario.client, scenario.database, params())
    by = {x["cohort"]: x for x in c["cohorts"]}
    assert {k: v["customers"] for k, v in by.items()} == {"2026-01-01": 3, "2026-03-01": 1, "2026-04-01": 3, "2026-06-01": 1}
    jan = by["2026-01-01"]
    assert [e["on"] for e in jan["retention"]] == [3, 1, 1, 2, 1, 1]
    assert [e["on_or_after"] for e in jan["retention"]] == [3, 2, 2, 2, 1, 1]
    assert jan["retention"][3]["on_rate"] == 2 / 3
    assert (jan["repeat_customers"], jan["repeat_purchase_rate"]) == (2, 2 / 3)
    assert jan["revenue_minor"][0] == {"EUR": 5500} and jan["revenue_minor"][3] == {"EUR": 2500}
    assert jan["revenue_minor"][2] == {"EUR": 1000}  # L's March purchase, replayed, counts once
    assert (c["repeat_customers"], c["buyers"], c["repeat_purchase_rate"]) == (2, 8, 0.25)
    assert [e["on"] for e in by["2026-06-01"]["retention"]] == [1]


def test_sales_cycle_starts_at_the_anonymous_first_touch(scenario: Any) -> None:
    s = cq.sales_cycle(scenario.client, scenario.database, by="campaign")
    # L 2 days (ad click Jan 8 -> Jan 10), S 2.5 days (anonymous click Jan 20 -> Jan 22 12:00), 6 others 0
    level = s["customer_level"]
    assert (level["customers"], level["cycle_ms_sum"]) == (8, int(4.5 * DAY))
    assert level["avg_ms"] == 4.5 * DAY / 8
    assert level["median_ms"] == 0
    assert level["p90_ms"] == pytest.approx(2.15 * DAY)  # 0.9 x 7 = 6.3: between 2 d and 2.5 d
    by = {b["value"]: b for b in s["breakdown"]}
    assert (by["spring"]["customers"], by["spring"]["avg_ms"]) == (1, 2 * DAY)
    assert (by["winter"]["customers"], by["winter"]["avg_ms"]) == (1, 2.5 * DAY)
    assert (by[""]["customers"], by[""]["cycle_ms_sum"]) == (6, 0)
    assert {b["bucket"]: b["customers"] for b in s["distribution"]}["1 - 7 d"] == 2
    channels = {b["value"]: b["customers"] for b in cq.sales_cycle(scenario.client, scenario.database, by="channel")["breakdown"]}
    assert channels == {"social": 2, "web": 6}


def test_at_risk_lists_bad_last_experiences_after_silence_by_revenue(scenario: Any) -> None:
    risk = cq.at_risk(scenario.client, scenario.database, params())
    assert [(r["customer_id"], r["reason"], r["reason_at"][:10]) for r in risk] == [
        ("B", "nps_detractor", "2026-05-03"), ("C", "ticket_unresolved", "2026-05-05")]
    assert [round(r["quiet_days"]) for r in risk] == [58, 56]
    assert risk[0]["revenue_minor"] == {"EUR": 50000}
    # counting purchases only, their last activity is the purchase
    by_purchase = cq.at_risk(scenario.client, scenario.database, params(activity="purchase"))
    assert [(r["customer_id"], r["last_active_at"][:10]) for r in by_purchase] == [("B", "2026-04-20"), ("C", "2026-04-28")]
    # a quiet share of 0.9 (81 days) leaves nobody
    assert cq.at_risk(scenario.client, scenario.database, params(quiet_share=0.9)) == []


def test_customers_view_one_row_per_resolved_customer(scenario: Any) -> None:
    got = {r["customer_id"]: r for r in cq.customer_list(scenario.client, scenario.database)}
    assert sorted(got) == ["B", "C", "G", "L", "Nw", "O", "R", "S"]  # aS is S
    assert list(got)[0] == "B"  # highest revenue first
    assert (got["L"]["orders"], got["L"]["revenue_minor"]) == (6, {"EUR": 6000})
    assert got["S"]["first_touch_at"][:10] == "2026-01-20" and got["S"]["first_touch_campaign"] == "winter"
    assert (got["B"]["last_nps_score"], got["G"]["unsubscribed"], got["C"]["support_tickets"]) == (2, True, 1)
    summary = cq.customer_summary(scenario.client, scenario.database)
    assert (summary["customers"], summary["buyers"], summary["repeat_buyers"], summary["unsubscribed"]) == (8, 8, 2, 1)


def test_the_churn_sql_in_sinks_readme_gives_the_same_answers(scenario: Any) -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "sinks" / "README.md").read_text(encoding="utf-8")
    sql = re.findall(r"```sql\n(.*?)```", readme.split("## Customers:", 1)[1], re.S)[0]
    rows = scenario.client.query(sql.replace("touchpoint.", f"{scenario.database}.")).result_rows
    # as of the newest touchpoint (Jun 10): the same counts as the typed table of the first test
    assert [(str(r[0]), r[1], r[2]) for r in rows] == [
        ("2026-02-01", 3, 0), ("2026-03-01", 3, 0), ("2026-04-01", 4, 2), ("2026-05-01", 6, 1), ("2026-06-01", 5, 0)]


def test_cohorts_by_first_touch_coming_back_with_any_activity(scenario: Any) -> None:
    c = cp.cohorts(scenario.client, scenario.database, params(), cohort_by="touch", returning="any")
    by = {x["cohort"]: x for x in c["cohorts"]}
    # April's first-timers B, C, G all came back in May (an NPS answer, a ticket, an answer and an unsubscribe),
    # though none of them bought again; S's cohort is January: the anonymous click on Jan 20 is S's first touch
    assert [e["on"] for e in by["2026-04-01"]["retention"]] == [3, 3, 0]
    assert [e["on_or_after"] for e in by["2026-04-01"]["retention"]] == [3, 3, 0]
    assert by["2026-01-01"]["customers"] == 3
    weekly = cp.cohorts(scenario.client, scenario.database, params(period="week"))
    assert sum(x["customers"] for x in weekly["cohorts"]) == 8
    assert all(dt.date.fromisoformat(x["cohort"]).weekday() == 0 for x in weekly["cohorts"])
