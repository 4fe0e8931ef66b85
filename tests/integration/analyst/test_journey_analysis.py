"""Journey analysis on hand-written scenarios whose answers are typed in: attribution models, funnels, stage drop-off
and pain points, read through the real tables/views (the sink's migrations and row builders) on the embedded engine.
Every scenario also stores some rows twice (a replay at other offsets): the answers must not change."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.analyst.dataset import D1, H, M, ad, checkout, delivery, email, support, survey, view
from touchpoint.sinks import rows

DAY = 24 * H


def insert(store: Any, events: list[dict[str, Any]], replay: bool = True) -> None:
    data = [rows.touchpoint_row(e, "events", 0, i) for i, e in enumerate(events)]
    if replay:  # every event again, as a replay after a crash would store it
        data += [rows.touchpoint_row(e, "events", 1, i) for i, e in enumerate(events)]
    store.client.insert(f"{store.database}.touchpoints", [list(c) for c in zip(*data)],
                        column_names=list(rows.TOUCHPOINT_COLUMNS), column_oriented=True)


def credit(store: Any, model: str, by: str = "campaign", lookback_days: float = 30, **kw: Any) -> dict[str, int]:
    from touchpoint.sinks.attribution import parse_touches, run_attribution

    out: dict[str, int] = {}
    for c in run_attribution(store.client, store.database, touches=parse_touches("AD_CLICK;EMAIL_ENGAGEMENT:action=clicked"),
                             models=[model], by=by, lookback_days=lookback_days, **kw):
        assert c.model == model
        out[c.key] = out.get(c.key, 0) + c.credit_micro
    return out


# ---- attribution ------------------------------------------------------------------------------------------

@pytest.fixture
def abc(store: Any) -> Any:
    """x: A, B, C one day apart, then a 30.00 EUR order; y: A 40 days before a 10.00 EUR order (outside the lookback)."""
    insert(store, [
        ad(D1, "A", 100, "EUR", customer="x"), ad(D1 + DAY, "B", 200, "EUR", customer="x"),
        ad(D1 + 2 * DAY, "C", 300, "EUR", customer="x"), checkout(D1 + 3 * DAY, "x", "o1", "completed", 3000, "EUR"),
        ad(D1, "A", 100, "EUR", customer="y"), checkout(D1 + 40 * DAY, "y", "o2", "completed", 1000, "EUR"),
    ])
    return store


def test_linear_gives_each_of_three_touches_a_third_and_the_sum_is_exact(abc: Any) -> None:
    got = credit(abc, "linear")
    assert sorted(got.values()) == [333_333, 333_333, 333_334, 1_000_000]
    assert got["(none)"] == 1_000_000  # y's only touch is 40 days before: no touch credit
    assert sum(got.values()) == 2_000_000  # two conversions, exactly


def test_position_based_is_40_20_40_first_last_and_time_decay(abc: Any) -> None:
    assert credit(abc, "position_based") == {"A": 400_000, "B": 200_000, "C": 400_000, "(none)": 1_000_000}
    assert credit(abc, "first_touch") == {"A": 1_000_000, "(none)": 1_000_000}
    assert credit(abc, "last_touch") == {"C": 1_000_000, "(none)": 1_000_000}
    # half-life 7 d, ages 3, 2, 1 days: weights 2^(-3/7), 2^(-2/7), 2^(-1/7), normalised
    w = [2 ** (-3 / 7), 2 ** (-2 / 7), 2 ** (-1 / 7)]
    decay = credit(abc, "time_decay")
    for key, weight in zip("ABC", w):
        assert decay[key] == pytest.approx(weight / sum(w) * 1e6, abs=2)
    assert sum(decay.values()) == 2_000_000
    # a half-life of 1 day favours the last touch more: 2^-3, 2^-2, 2^-1 over 7/8 = 1/7, 2/7, 4/7
    fast = credit(abc, "time_decay", half_life_days=1)
    assert [fast[k] for k in "ABC"] == [pytest.approx(1e6 / 7, abs=2), pytest.approx(2e6 / 7, abs=2),
                                        pytest.approx(4e6 / 7, abs=2)]


def test_lookback_decides_which_touches_count(abc: Any) -> None:
    # 41 days: y's ad (40 days before its order) now counts
    assert credit(abc, "first_touch", lookback_days=41) == {"A": 2_000_000}
    # 1.5 days: only C (1 day before) is inside for x
    assert credit(abc, "linear", lookback_days=1.5) == {"C": 1_000_000, "(none)": 1_000_000}


def test_spend_cost_per_conversion_and_roas_per_model(abc: Any) -> None:
    from touchpoint.sinks.attribution import parse_touches, run_attribution

    rows_ = run_attribution(abc.client, abc.database, touches=parse_touches("AD_CLICK"), models=["last_touch", "linear"])
    by = {(c.model, c.key): c for c in rows_}
    c = by[("last_touch", "C")]
    assert (c.spend_minor, c.revenue_minor, c.cost_per_conversion_minor, c.roas) == (300, 3000.0, 300.0, 10.0)
    a = by[("linear", "A")]  # A: two clicks (x and y) = 200; credit 1/3 (+ the remainder micro-credit)
    assert a.spend_minor == 200
    assert a.revenue_minor == pytest.approx(1000.0, abs=0.01)
    assert a.cost_per_conversion_minor == pytest.approx(600.0, rel=1e-5)


def test_attribution_by_channel_and_email_clicks_count_as_touches(store: Any) -> None:
    insert(store, [
        email(D1, "z", "m1", "sent"), email(D1 + H, "z", "m1", "opened"), email(D1 + 2 * H, "z", "m1", "clicked"),
        ad(D1 + 3 * H, "S", 50, "EUR", customer="z"), checkout(D1 + 4 * H, "z", "o3", "completed", 500, "EUR"),
    ])
    assert credit(store, "linear", by="channel") == {"email": 500_000, "social": 500_000}
    assert credit(store, "first_touch") == {"newsletter": 1_000_000}


# ---- funnels ----------------------------------------------------------------------------------------------

@pytest.fixture
def shoppers(store: Any) -> Any:
    """p1: ad → view → started → completed (fast); p2: ad → started, completed 20 days later; p3: ad → view → (a
    support contact) → started; p4: view only; anonymous v1: ad only."""
    insert(store, [
        ad(D1, "A", 10, "EUR", customer="p1"), view(D1 + M, customer="p1"),
        checkout(D1 + 2 * M, "p1", "o1", "started", 100, "EUR"), checkout(D1 + 5 * M, "p1", "o1", "completed", 100, "EUR"),
        ad(D1, "B", 10, "EUR", customer="p2"), checkout(D1 + H, "p2", "o2", "started", 100, "EUR"),
        checkout(D1 + 20 * DAY, "p2", "o2", "completed", 100, "EUR"),
        ad(D1, "A", 10, "EUR", customer="p3"), view(D1 + M, customer="p3"), support(D1 + 2 * M, "p3", "t1", "opened"),
        checkout(D1 + 3 * M, "p3", "o3", "started", 100, "EUR"),
        view(D1, customer="p4"),
        ad(D1, "B", 10, "EUR", anonymous="v1"),
    ])
    return store


def funnel(store: Any, specs: list[str], window: float = 14, mode: str = "sequential",
           breakdown: str | None = None) -> dict[str, list[tuple[int, int | None]]]:
    from touchpoint.sinks.funnels import parse_steps, run_funnel

    out = run_funnel(store.client, store.database, parse_steps(specs), window, mode, breakdown)
    return {bd: [(s.customers, s.median_ms_from_previous) for s in steps] for bd, steps in out.items()}


def test_funnel_counts_window_and_median_time(shoppers: Any) -> None:
    steps = ["AD_CLICK", "CHECKOUT:status=started", "CHECKOUT:status=completed"]
    # started after: p1 2 min, p2 60 min, p3 3 min → lower median 3 min; completed within 14 d: p1 only (3 min)
    assert funnel(shoppers, steps) == {"": [(4, None), (3, 3 * M), (1, 3 * M)]}
    # a 30-day window lets p2 complete too: times 3 min and 20 d - 1 h → lower median 3 min
    assert funnel(shoppers, steps, window=30) == {"": [(4, None), (3, 3 * M), (2, 3 * M)]}


def test_strict_order_needs_the_very_next_touchpoint(shoppers: Any) -> None:
    steps = ["AD_CLICK", "PAGE_VIEW", "CHECKOUT:status=started"]
    assert funnel(shoppers, steps) == {"": [(4, None), (2, M), (2, M)]}
    # p3's support contact comes between the view and the checkout
    assert funnel(shoppers, steps, mode="strict") == {"": [(4, None), (2, M), (1, M)]}


def test_breakdown_by_first_touch_campaign_and_dropped_customers(shoppers: Any) -> None:
    from touchpoint.sinks.funnels import dropped_at, parse_steps

    steps = ["AD_CLICK", "CHECKOUT:status=started", "CHECKOUT:status=completed"]
    assert funnel(shoppers, steps, breakdown="campaign") == {
        "A": [(2, None), (2, 2 * M), (1, 3 * M)], "B": [(2, None), (1, H), (0, None)]}
    # platform: only ad clicks carry one (all "google" here); context.utm_medium: nobody has it
    assert funnel(shoppers, steps, breakdown="platform") == {"google": [(4, None), (3, 3 * M), (1, 3 * M)]}
    assert funnel(shoppers, steps, breakdown="context.utm_medium") == {"(none)": [(4, None), (3, 3 * M), (1, 3 * M)]}
    parsed = parse_steps(steps)
    assert dropped_at(shoppers.client, shoppers.database, parsed, 14, 2) == ["v1"]
    assert dropped_at(shoppers.client, shoppers.database, parsed, 14, 3) == ["p2", "p3"]


def test_filters_on_payload_fields_context_and_numbers(store: Any) -> None:
    insert(store, [
        survey(D1, "s1", "NPS", 3), survey(D1 + H, "s1", "CSAT", 5),
        survey(D1, "s2", "NPS", 10), survey(D1 + H, "s2", "CSAT", 2),
    ])
    steps = ["SURVEY_RESPONSE:survey_kind=NPS,score<=6", "SURVEY_RESPONSE:survey_kind=CSAT,score>=4"]
    assert funnel(store, steps) == {"": [(1, None), (1, H)]}
    assert funnel(store, ["SURVEY_RESPONSE:survey_kind=NPS|CES,channel=email", "SURVEY_RESPONSE:survey_kind!=NPS"]) == {
        "": [(2, None), (2, H)]}


def test_the_default_funnel_keeps_the_steps_the_data_holds(store: Any) -> None:
    from touchpoint.sinks.report_journeys import journey_sections

    insert(store, [
        checkout(D1, "q1", "o1", "started", 100, "BRL"), checkout(D1 + H, "q1", "o1", "completed", 100, "BRL"),
        delivery(D1 + 3 * DAY, "q1", "o1", "delivered", D1 + 5 * DAY), survey(D1 + 4 * DAY, "q1", "CSAT", 5),
        checkout(D1, "q2", "o2", "started", 100, "BRL"), checkout(D1 + H, "q2", "o2", "completed", 100, "BRL"),
    ])
    f = journey_sections(store.client, store.database)["journey_funnel"]
    assert f["steps"] == ["CHECKOUT:status=started", "CHECKOUT:status=completed", "DELIVERY_NOTICE:status=delivered",
                          "SURVEY_RESPONSE"]
    assert [r["customers"] for r in f["rows"]] == [2, 2, 1, 1]


# ---- pain points and stages -------------------------------------------------------------------------------

def test_pain_points_split_answers_by_what_preceded_them(store: Any) -> None:
    from touchpoint.sinks.pain_points import by_factor, run_pain_points

    insert(store, [
        # late parcel, a support ticket resolved in 2 h, then a detractor
        delivery(D1 + 3 * DAY, "l1", "o1", "delivered", D1 + 2 * DAY), support(D1 + 3 * DAY + H, "l1", "t1", "opened"),
        support(D1 + 3 * DAY + 3 * H, "l1", "t1", "resolved"), survey(D1 + 4 * DAY, "l1", "NPS", 2),
        # on-time parcel, then a promoter and a satisfied CSAT
        delivery(D1 + DAY, "n1", "o2", "delivered", D1 + 2 * DAY), survey(D1 + 2 * DAY, "n1", "NPS", 9),
        survey(D1 + 2 * DAY + H, "n1", "CSAT", 4),
        # an abandoned checkout, then a hard CES (2 on 1-7) and a passive; the parcel of 40 days ago is too old
        delivery(D1, "a1", "o0", "delivered", D1 + DAY),
        checkout(D1 + 40 * DAY, "a1", "o3", "abandoned", 100, "EUR"), survey(D1 + 40 * DAY + H, "a1", "CES", 2),
        survey(D1 + 40 * DAY + 2 * H, "a1", "NPS", 8),
    ])
    rows_ = run_pain_points(store.client, store.database)
    d = by_factor(rows_, "delivery")
    assert (d["late"]["responses"], d["late"]["nps_detractors"], d["late"]["bad"]) == (1, 1, 1)
    assert (d["on_time"]["nps_promoters"], d["on_time"]["csat_satisfied"], d["on_time"]["bad"]) == (1, 1, 0)
    assert (d["none"]["responses"], d["none"]["ces_sum"], d["none"]["bad"]) == (2, 2, 1)
    assert by_factor(rows_, "support")["resolved 1-24 h"]["responses"] == 1
    assert by_factor(rows_, "checkout")["abandoned"]["responses"] == 2
    base = by_factor(rows_, "all")[""]
    assert (base["responses"], base["bad"]) == (5, 2)
    # lift of a late delivery: 100 % bad vs 40 % overall = +60 pp, ranked first after the base row (tied with the
    # 2-hour ticket of the same answer; ties go by factor name)
    assert d["late"]["lift_pp"] == pytest.approx(60.0)
    assert [(r["factor"], r["value"]) for r in rows_[:3]] == [("all", ""), ("delivery", "late"),
                                                               ("support", "resolved 1-24 h")]


def _journey(jid: str, stage: str, steps: list[tuple[str, int]], service: bool = False) -> dict[str, Any]:
    path = [{"event_type": t, "channel": "web", "occurred_at": at} for t, at in steps]
    return {"journey_id": jid, "customer_id": jid, "is_anonymous": False, "merged_into": None, "version": 1,
            "updated_at": steps[-1][1], "first_touch_at": steps[0][1], "last_touch_at": steps[-1][1],
            "anonymous_ids": [], "path": path, "path_truncated": 0, "event_count": len(steps), "counts_by_type": {},
            "stage": stage, "service_contacted": service, "converted": False, "converted_at": None,
            "time_to_convert_ms": None, "orders": 0, "revenue_minor": 0, "currency": None, "deliveries_on_time": 0,
            "deliveries_late": 0, "deliveries_failed": 0, "delivery_delay_ms_sum": 0, "nps_score": None,
            "csat_score": None, "ces_score": None, "support_tickets_opened": 0, "support_tickets_resolved": 0,
            "resolution_ms_sum": 0}


def test_stage_drop_off_reached_stalled_dwell_and_last_touchpoints(store: Any) -> None:
    from touchpoint.sinks.stages import run_stages

    old = D1 - 60 * DAY  # closed: more than the 30-day gap before the newest touch
    snaps = [
        _journey("j1", "consideration", [("AD_CLICK", D1), ("PAGE_VIEW", D1 + H), ("PAGE_VIEW", D1 + 3 * H)]),
        _journey("j2", "consideration", [("PAGE_VIEW", old), ("PAGE_VIEW", old + H)]),
        _journey("j3", "purchase", [("PAGE_VIEW", D1), ("CHECKOUT", D1 + 2 * H), ("SUPPORT_INTERACTION", D1 + 5 * H)],
                 service=True),
        _journey("j4", "feedback", [("CHECKOUT", D1), ("DELIVERY_NOTICE", D1 + DAY), ("SURVEY_RESPONSE", D1 + 2 * DAY)]),
    ]
    snaps.append({**snaps[0], "version": 0, "stage": "awareness"})  # an older snapshot of j1: replaced
    data = [rows.journey_row(j, "journeys", 0, i) for i, j in enumerate(snaps)]
    store.client.insert(f"{store.database}.journeys", [list(c) for c in zip(*data)],
                        column_names=list(rows.JOURNEY_COLUMNS), column_oriented=True)
    got = {r["stage"]: r for r in run_stages(store.client, store.database, gap_days=30)}
    assert {s: (r["reached"], r["stalled"], r["still_open"]) for s, r in got.items()} == {
        "awareness": (4, 0, 0), "consideration": (4, 2, 1), "purchase": (2, 1, 1), "fulfilment": (1, 0, 0),
        "feedback": (1, 1, 1), "service": (1, 1, 1)}
    # consideration dwell: j1 3 h - 1 h = 2 h, j2 1 h → lower median 1 h; purchase: j3 5 h - 2 h = 3 h
    assert got["consideration"]["median_dwell_seconds"] == 3600
    assert got["purchase"]["median_dwell_seconds"] == 3 * 3600
    assert got["consideration"]["last_touchpoints"] == [{"touchpoint": "PAGE_VIEW (web)", "journeys": 2}]
    assert got["purchase"]["last_touchpoints"] == [{"touchpoint": "SUPPORT_INTERACTION (web)", "journeys": 1}]


# ---- the SQL examples of sinks/README.md ------------------------------------------------------------------

def readme_journey_sql() -> list[str]:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "sinks" / "README.md").read_text()
    block = re.findall(r"```sql\n(.*?)```", text[text.index("## Journey analysis"):], re.S)[0]
    return [q for q in block.split(";") if "SELECT" in q]


def test_readme_examples_run_and_agree_with_the_commands(loaded: Any) -> None:
    from touchpoint.sinks.pain_points import by_factor, run_pain_points

    nps_sql, linear_sql, stages_sql = (q.replace("touchpoint.", f"{loaded.database}.") for q in readme_journey_sql())
    nps = {r[0]: r[4] for r in loaded.client.query(nps_sql).result_rows}
    delivery = by_factor(run_pain_points(loaded.client, loaded.database), "delivery")
    assert nps == {k: v["nps"] for k, v in delivery.items() if v["nps_responses"]}
    linear = {r[0]: r[1] for r in loaded.client.query(linear_sql).result_rows}
    assert linear == {k: pytest.approx(v / 1e6) for k, v in credit(loaded, "linear").items()}
    assert sum(linear.values()) == pytest.approx(3)  # c1, c2 and a USD order without touches
    assert loaded.client.query(stages_sql).result_rows == [("purchase", 4, 0)]


def test_report_sections_in_json_terminal_and_html_name_the_model(loaded: Any) -> None:
    import io
    import re

    from rich.console import Console

    from touchpoint.cli.query import render_report
    from touchpoint.sinks.report import build_report
    from touchpoint.sinks.report_html import render_html

    rep = build_report(loaded.client, loaded.database)
    assert {r["model"] for r in rep["attribution"]["by_campaign"]} == {
        "first_touch", "last_touch", "linear", "time_decay", "position_based"}
    buf = io.StringIO()
    render_report(rep, Console(file=buf, width=250))
    text = buf.getvalue()
    for title in ("funnel from the data", "journey stages", "pain points", "attribution by campaign",
                  "attribution by channel"):
        assert title in text
    # every attributed number sits on a row that names its model
    credit_rows = [line for line in text.splitlines() if "spring" in line and "EUR" in line and "│" in line]
    assert credit_rows and all(re.search(r"first_touch|last_touch|linear|time_decay|position_based|^│ spring", line)
                               for line in credit_rows)
    page = render_html(rep)
    for title in ("Journey stages", "Pain points", "Attribution by campaign", "Attribution by channel"):
        assert title in page
    rows_ = [re.findall(r"<td[^>]*>(.*?)</td>", row)
             for row in re.findall(r"<tr>(.*?)</tr>", page[page.index("Attribution by campaign"):])]
    assert len([cells for cells in rows_ if cells]) == len(rep["attribution"]["by_campaign"] + rep["attribution"]["by_channel"])
    for cells in filter(None, rows_):
        assert cells[0] in ("first_touch", "last_touch", "linear", "time_decay", "position_based")
