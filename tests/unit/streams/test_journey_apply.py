"""journey.apply: derived fields, order independence, dedup, segmentation, contributions."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.unit.streams.journey_factory import (
    DAY, HOUR, MIN, T0, MiniPipeline, ad_click, checkout, delivery, email, event, page_view, support, survey,
)  # fmt: skip
from touchpoint.streams.identity import merge_marker
from touchpoint.streams.journey import Contribution, JourneyConfig, apply, snapshots_of
from touchpoint.streams.state_codec import dumps_journey

CFG = JourneyConfig()


def rich_journey(customer: str = "c9", base: int = 0) -> list[dict[str, Any]]:
    T = T0
    kw = {"customer": customer}
    return [
        email(base + 1, T, action="opened", campaign="news", **kw),
        ad_click(base + 2, T + HOUR, campaign="summer", cost=120, **kw),
        page_view(base + 3, T + 2 * HOUR, context={"utm_campaign": "retarget"}, **kw),
        page_view(base + 4, T + 3 * HOUR, channel="app", **kw),
        checkout(base + 5, T + 4 * HOUR, status="started", order="o1", amount=5000, **kw),
        checkout(base + 6, T + 5 * HOUR, status="completed", order="o1", amount=5000, **kw),
        checkout(base + 7, T + 5 * HOUR + 1000, status="completed", order="o1", amount=5000, **kw),
        checkout(base + 8, T + 6 * HOUR, status="completed", order="o2", amount=700, currency="USD", channel="app", **kw),
        delivery(base + 9, T + DAY, promised_by=T + 2 * DAY, status="failed_attempt", shipment="s1", **kw),
        delivery(base + 10, T + DAY + HOUR, promised_by=T + 2 * DAY, status="delivered", shipment="s1", **kw),
        delivery(base + 11, T + 2 * DAY, promised_by=T + 2 * DAY, status="returned", shipment="s2", **kw),
        support(base + 12, T + 2 * DAY + HOUR, action="opened", ticket="t1", **kw),
        support(base + 13, T + 2 * DAY + 3 * HOUR, action="resolved", ticket="t1", **kw),
        survey(base + 14, T + 3 * DAY, kind="NPS", score=9, **kw),
        survey(base + 15, T + 3 * DAY + HOUR, kind="NPS", score=3, **kw),
        survey(base + 16, T + 3 * DAY + 2 * HOUR, kind="CSAT", score=4, **kw),
        survey(base + 17, T + 3 * DAY + 3 * HOUR, kind="CES", score=2, **kw),
        page_view(base + 18, T + 3 * DAY + 4 * HOUR, **kw),
    ]


def rich_expected(customer: str = "c9") -> dict[str, Any]:
    events = rich_journey(customer)
    return {
        "journey_id": f"{customer}:{T0}",
        "customer_id": customer,
        "is_anonymous": False,
        "merged_into": None,
        "first_touch_at": T0,
        "last_touch_at": T0 + 3 * DAY + 4 * HOUR,
        "anonymous_ids": [],
        "path": [{"event_type": e["event_type"], "channel": e["channel"], "occurred_at": e["occurred_at"]} for e in events],
        "path_truncated": 0,
        "event_count": 18,
        "counts_by_type": {"EMAIL_ENGAGEMENT": 1, "AD_CLICK": 1, "PAGE_VIEW": 3, "CHECKOUT": 4, "DELIVERY_NOTICE": 3,
                           "SUPPORT_INTERACTION": 2, "SURVEY_RESPONSE": 4},
        "stage": "feedback",
        "service_contacted": True,
        "first_touch_campaign": "news",
        "first_touch_channel": "email",
        "last_touch_campaign": "retarget",  # utm_campaign of the last page view before the first completed checkout
        "last_touch_channel": "web",  # the started checkout, the touch right before conversion
        "converted": True,
        "converted_at": T0 + 5 * HOUR,
        "time_to_convert_ms": 5 * HOUR,
        "orders": 2,
        "revenue_minor": 5000,  # the USD order counts as an order, not in EUR revenue
        "currency": "EUR",
        "deliveries_on_time": 1,  # s1: failed attempt, then delivered before promised_by
        "deliveries_late": 0,
        "deliveries_failed": 1,  # s2 returned
        "delivery_delay_ms_sum": 0,
        "nps_score": 3,
        "csat_score": 4,
        "ces_score": 2,
        "support_tickets_opened": 1,
        "support_tickets_resolved": 1,
        "resolution_ms_sum": 2 * HOUR,
    }  # fmt: skip


def run(events: list[dict[str, Any]], cfg: JourneyConfig = CFG, now: int = T0 + 10 * DAY) -> tuple[Any, list[Any]]:
    state, results = None, []
    for i, ev in enumerate(events):
        res = apply(state, ev, restitched=False, offset_partition=0, cfg=cfg, now_ms=now + i)
        state = res.state
        results.append(res)
    return state, results


def strip(snap: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in snap.items() if k not in ("version", "updated_at")}


def test_rich_journey_in_order_gives_the_exact_snapshot() -> None:
    state, results = run(rich_journey())
    assert strip(results[-1].snapshot) == rich_expected()
    assert [r.snapshot["version"] for r in results] == list(range(1, 19))
    assert all(not r.superseded for r in results)


@pytest.mark.parametrize("path_limit", [100, 5])
def test_rich_journey_is_the_same_in_any_arrival_order(path_limit: int) -> None:
    cfg = JourneyConfig(path_limit=path_limit)
    expected = rich_expected()
    if path_limit == 5:
        expected["path"] = expected["path"][:5]
        expected["path_truncated"] = 13
    rng = random.Random(7)
    events = rich_journey()
    orders = [events, list(reversed(events))] + [rng.sample(events, len(events)) for _ in range(150)]
    for order in orders:
        state, results = run(order, cfg)
        assert len(state.journeys) == 1
        assert strip(results[-1].snapshot) == expected, [e["event_id"][-2:] for e in order]
        assert results[-1].snapshot["version"] == 18


def test_rich_journey_metric_totals() -> None:
    p = MiniPipeline()
    p.feed(*rich_journey())
    assert p.late == 0
    assert p.totals() == {
        "touchpoints": 18, "emails_opened": 1, "ad_clicks": 1, "ad_spend_minor": 120,
        "checkouts_started": 1, "checkouts_completed": 2, "revenue_minor": 5700,  # second o1 completion not counted
        "attributed_conversions": 2, "attributed_revenue_minor": 5700,
        "deliveries_failed": 2, "deliveries_delivered": 1, "deliveries_on_time": 1,  # s1 failed then delivered, s2
        "tickets_opened": 1, "tickets_resolved": 1, "resolution_ms_sum": 2 * HOUR,
        "nps_promoters": 1, "nps_detractors": 1, "csat_total": 1, "csat_satisfied": 1, "ces_sum": 2, "ces_count": 1,
    }  # fmt: skip
    # attribution goes to the last campaign touch before each checkout: the utm_campaign of the page view
    attributed = [r for r in p.metric_rows() if r["attributed_conversions"]]
    assert [(r["campaign_id"], r["currency"], r["attributed_revenue_minor"]) for r in attributed] == [
        ("retarget", "EUR", 5000),
        ("retarget", "USD", 700),
    ]


def test_two_customers_interleaved_stay_apart() -> None:
    a, b = rich_journey("alice", base=0), rich_journey("bob", base=100)
    mixed = [ev for pair in zip(a, b) for ev in pair]
    p = MiniPipeline()
    p.feed(*mixed)
    live = p.live()
    assert sorted(live) == [f"alice:{T0}", f"bob:{T0}"]
    assert strip(live[f"alice:{T0}"]) == rich_expected("alice")
    assert strip(live[f"bob:{T0}"]) == rich_expected("bob")
    assert p.totals()["touchpoints"] == 36
    assert p.totals()["attributed_conversions"] == 4


def test_duplicate_changes_nothing() -> None:
    events = rich_journey()
    state, _ = run(events)
    before = dumps_journey(state)
    res = apply(state, events[5], restitched=False, cfg=CFG, now_ms=T0 + 11 * DAY)
    assert res.duplicate is True
    assert res.snapshot is None and res.contributions == [] and res.superseded == []
    assert dumps_journey(res.state) == before


def test_event_ids_are_forgotten_after_the_dedup_horizon() -> None:
    cfg = JourneyConfig(dedup_horizon_ms=DAY)
    ev = page_view(1, T0, customer="c")
    state = apply(None, ev, cfg=cfg, now_ms=T0).state
    assert apply(state, ev, cfg=cfg, now_ms=T0 + DAY - 1).duplicate is True
    # a later event triggers the prune; the id absorbed more than a horizon ago is gone
    state = apply(state, page_view(2, T0 + 1, customer="c"), cfg=cfg, now_ms=T0 + 2 * DAY).state
    assert set(state.seen) == {page_view(2, 0)["event_id"]}
    res = apply(state, ev, cfg=cfg, now_ms=T0 + 2 * DAY + 1)
    assert res.duplicate is False


def test_inactivity_gap_opens_a_new_journey() -> None:
    cfg = JourneyConfig(inactivity_gap_ms=30 * DAY)
    first = page_view(1, T0, customer="c")
    within = page_view(2, T0 + 30 * DAY, customer="c")  # exactly the gap: same journey
    beyond = page_view(3, T0 + 60 * DAY + 1, customer="c")  # more than the gap after the last touch
    state, results = run([first, within, beyond], cfg)
    assert [r.snapshot["journey_id"] for r in results] == [f"c:{T0}", f"c:{T0}", f"c:{T0 + 60 * DAY + 1}"]
    assert results[2].snapshot["event_count"] == 1 and results[2].snapshot["version"] == 1
    assert [s["event_count"] for s in snapshots_of(state, cfg, 0)] == [2, 1]


def test_out_of_order_event_before_the_start_within_the_gap_renames_the_journey() -> None:
    state, results = run([page_view(1, T0 + 10 * DAY, customer="c"), ad_click(2, T0, customer="c")])
    res = results[1]
    assert res.snapshot["journey_id"] == f"c:{T0}"
    assert res.snapshot["first_touch_campaign"] == "spring"
    assert res.snapshot["version"] == 2
    assert [(s["journey_id"], s["merged_into"], s["version"]) for s in res.superseded] == [
        (f"c:{T0 + 10 * DAY}", "c", 2)
    ]


def test_a_duplicate_re_sends_the_superseded_snapshot_exactly_as_first_sent() -> None:
    """The worker may die after storing the state and before sending the superseded snapshot; the replayed event
    is then a duplicate, and the snapshots it re-sends must mark the old id superseded again, unchanged."""
    rename = ad_click(2, T0, customer="c")
    state, results = run([page_view(1, T0 + 10 * DAY, customer="c"), rename])
    sent = results[1].superseded[0]
    more = apply(state, page_view(3, T0 + 11 * DAY, customer="c"), cfg=CFG, now_ms=T0 + 12 * DAY)  # later changes
    dup = apply(more.state, rename, cfg=CFG, now_ms=T0 + 13 * DAY)
    assert dup.duplicate
    resent = {s["journey_id"]: s for s in snapshots_of(dup.state, CFG, T0 + 13 * DAY)}
    assert resent[f"c:{T0 + 10 * DAY}"] == sent  # same record, path and version included
    assert resent[f"c:{T0}"]["merged_into"] is None and resent[f"c:{T0}"]["event_count"] == 3
    # and it survives the state's bytes round trip
    from touchpoint.streams.state_codec import loads_journey

    assert snapshots_of(loads_journey(dumps_journey(dup.state)), CFG, T0 + 13 * DAY)[-1] == sent


def test_event_bridging_two_journeys_fuses_them() -> None:
    events = [page_view(1, T0, customer="c"), page_view(2, T0 + 40 * DAY, customer="c"), page_view(3, T0 + 20 * DAY, customer="c")]
    state, results = run(events)
    assert len(state.journeys) == 1
    res = results[2]
    assert res.snapshot["journey_id"] == f"c:{T0}"
    assert res.snapshot["event_count"] == 3
    assert [s["journey_id"] for s in res.superseded] == [f"c:{T0 + 40 * DAY}"]
    assert res.superseded[0]["merged_into"] == "c"
    # versions: journey 1 had 1, journey 2 had 1 -> fused to 2, +1 for the event
    assert res.snapshot["version"] == 3 and res.superseded[0]["version"] == 3
    # same segmentation as in event-time order
    _, in_order = run(sorted(events, key=lambda e: e["occurred_at"]))
    assert strip(in_order[-1].snapshot) == strip(res.snapshot)


def test_path_keeps_the_earliest_touches_and_counts_the_rest() -> None:
    cfg = JourneyConfig(path_limit=3)
    events = [page_view(i, T0 + i * MIN, customer="c") for i in range(1, 6)]
    earliest = ad_click(9, T0, customer="c")
    _, results = run(events + [earliest], cfg)
    snap = results[-1].snapshot
    assert [s["occurred_at"] for s in snap["path"]] == [T0, T0 + MIN, T0 + 2 * MIN]
    assert snap["path"][0]["event_type"] == "AD_CLICK"
    assert snap["path_truncated"] == 3 and snap["event_count"] == 6


def test_stage_and_service_rules() -> None:
    def stage_of(*evs: dict[str, Any]) -> tuple[str, bool]:
        snap = run(list(evs))[1][-1].snapshot
        return snap["stage"], snap["service_contacted"]

    assert stage_of(support(1, T0, customer="c")) == ("awareness", True)
    assert stage_of(email(1, T0, customer="c")) == ("awareness", False)
    assert stage_of(page_view(1, T0, customer="c"), ad_click(2, T0 + 1, customer="c")) == ("consideration", False)
    assert stage_of(checkout(1, T0, status="abandoned", customer="c")) == ("purchase", False)
    assert stage_of(delivery(1, T0, T0, status="shipped", customer="c")) == ("fulfilment", False)
    assert stage_of(survey(1, T0, customer="c"), support(2, T0, customer="c")) == ("feedback", True)


def test_unconverted_journey_reports_touches_so_far() -> None:
    _, results = run([ad_click(1, T0, campaign="a", customer="c"), email(2, T0 + MIN, campaign="b", customer="c"),
                      page_view(3, T0 + 2 * MIN, channel="app", customer="c")])  # fmt: skip
    snap = results[-1].snapshot
    assert (snap["first_touch_campaign"], snap["first_touch_channel"]) == ("a", "social")
    assert (snap["last_touch_campaign"], snap["last_touch_channel"]) == ("b", "app")
    assert (snap["converted"], snap["converted_at"], snap["time_to_convert_ms"], snap["currency"]) == (False, None, None, None)


def _contribs(*evs: dict[str, Any]) -> list[list[Contribution]]:
    return [r.contributions for r in run(list(evs))[1]]


def test_contributions_per_event_type() -> None:
    ws = T0
    got = _contribs(
        email(1, T0, action="sent", customer="c"),
        email(2, T0 + 1, action="bounced", customer="c"),
        email(3, T0 + 2, action="unsubscribed", customer="c"),
        email(4, T0 + 3, action="clicked", customer="c"),
        checkout(5, T0 + 4, status="payment_submitted", customer="c"),
        checkout(6, T0 + 5, status="failed", customer="c"),
        checkout(7, T0 + 6, status="abandoned", order="o9", customer="c"),
        survey(8, T0 + 7, kind="NPS", score=7, customer="c"),
        survey(9, T0 + 8, kind="NPS", score=10, customer="c"),
        survey(10, T0 + 9, kind="CSAT", score=3, customer="c"),
        survey(11, T0 + 10, kind="CES", score=6, customer="c"),
        delivery(12, T0 + 11, promised_by=T0 + 11, customer="c"),
        delivery(13, T0 + 12, promised_by=T0, status="delivered", customer="c"),  # s1 again: already delivered
        checkout(14, T0 + 13, status="completed", order="o3", amount=10, customer="c"),  # last campaign: the emails
    )
    assert got == [
        [Contribution(ws, ("EMAIL_ENGAGEMENT", "email", "", ""), {"touchpoints": 1, "emails_sent": 1})],
        [Contribution(ws, ("EMAIL_ENGAGEMENT", "email", "", ""), {"touchpoints": 1, "emails_bounced": 1})],
        [Contribution(ws, ("EMAIL_ENGAGEMENT", "email", "", ""), {"touchpoints": 1, "emails_unsubscribed": 1})],
        [Contribution(ws, ("EMAIL_ENGAGEMENT", "email", "", ""), {"touchpoints": 1, "emails_clicked": 1})],
        [Contribution(ws, ("CHECKOUT", "web", "", "EUR"), {"touchpoints": 1})],
        [Contribution(ws, ("CHECKOUT", "web", "", "EUR"), {"touchpoints": 1, "checkouts_failed": 1})],
        [Contribution(ws, ("CHECKOUT", "web", "", "EUR"), {"touchpoints": 1, "checkouts_abandoned": 1})],
        [Contribution(ws, ("SURVEY_RESPONSE", "email", "", ""), {"touchpoints": 1, "nps_passives": 1})],
        [Contribution(ws, ("SURVEY_RESPONSE", "email", "", ""), {"touchpoints": 1, "nps_promoters": 1})],
        [Contribution(ws, ("SURVEY_RESPONSE", "email", "", ""), {"touchpoints": 1, "csat_total": 1})],
        [Contribution(ws, ("SURVEY_RESPONSE", "email", "", ""), {"touchpoints": 1, "ces_sum": 6, "ces_count": 1})],
        [Contribution(ws, ("DELIVERY_NOTICE", "carrier", "", ""), {"touchpoints": 1, "deliveries_delivered": 1, "deliveries_on_time": 1})],
        [Contribution(ws, ("DELIVERY_NOTICE", "carrier", "", ""), {"touchpoints": 1})],
        # the checkout's own touchpoint under campaign ""; the order's components under its attributed campaign
        [Contribution(ws, ("CHECKOUT", "web", "", "EUR"), {"touchpoints": 1}),
         Contribution(ws, ("CHECKOUT", "web", "news", "EUR"), {"checkouts_completed": 1, "revenue_minor": 10,
                                                             "attributed_conversions": 1, "attributed_revenue_minor": 10})],
    ]  # fmt: skip


def test_conversion_without_a_campaign_touch_is_not_attributed() -> None:
    later_click = ad_click(2, T0 + MIN, customer="c")  # after the checkout: does not count for it
    assert _contribs(page_view(1, T0, customer="c"), checkout(3, T0 + 1, customer="c"), later_click)[1] == [
        Contribution(T0, ("CHECKOUT", "web", "", "EUR"), {"touchpoints": 1, "checkouts_completed": 1, "revenue_minor": 4999})
    ]


def test_resolution_time_is_counted_once_whichever_end_arrives_first() -> None:
    opened = support(1, T0 + 5 * MIN + 7, action="opened", customer="c")
    resolved = support(2, T0 + 65 * MIN, action="resolved", customer="c", channel="phone")
    assert _contribs(opened, resolved) == [
        [Contribution(T0 + 5 * MIN, ("SUPPORT_INTERACTION", "chat", "", ""), {"touchpoints": 1, "tickets_opened": 1})],
        [Contribution(T0 + 65 * MIN, ("SUPPORT_INTERACTION", "phone", "", ""),
                      {"touchpoints": 1, "tickets_resolved": 1, "resolution_ms_sum": HOUR - 7})],
    ]  # fmt: skip
    assert _contribs(resolved, opened) == [
        [Contribution(T0 + 65 * MIN, ("SUPPORT_INTERACTION", "phone", "", ""), {"touchpoints": 1, "tickets_resolved": 1})],
        [Contribution(T0 + 5 * MIN, ("SUPPORT_INTERACTION", "chat", "", ""), {"touchpoints": 1, "tickets_opened": 1}),
         Contribution(T0 + 65 * MIN, ("SUPPORT_INTERACTION", "phone", "", ""), {"resolution_ms_sum": HOUR - 7})],
    ]  # fmt: skip


def test_restitched_events_update_the_journey_but_contribute_nothing() -> None:
    ev = ad_click(1, T0, customer="c", anon="a")
    res = apply(None, ev, restitched=True, cfg=CFG, now_ms=T0)
    assert res.contributions == []
    assert res.snapshot["event_count"] == 1 and res.snapshot["anonymous_ids"] == ["a"]


def test_merge_marker_closes_the_anonymous_journey_once() -> None:
    anon_click = ad_click(1, T0, anon="a")
    login = page_view(2, T0 + MIN, anon="a", customer="c")
    marker = merge_marker("a", "c", login)
    assert apply(None, marker, cfg=CFG, now_ms=T0) == (None, None, [], False, [])
    state = apply(None, anon_click, cfg=CFG, now_ms=T0).state
    res = apply(state, marker, cfg=CFG, now_ms=T0 + 1)
    assert res.contributions == [] and not res.duplicate
    assert (res.snapshot["customer_id"], res.snapshot["is_anonymous"], res.snapshot["merged_into"]) == ("a", True, "c")
    assert res.snapshot["version"] == 2
    again = apply(res.state, marker, cfg=CFG, now_ms=T0 + 2)
    assert again.duplicate is True and again.snapshot is None


def test_anonymous_owner_without_customer() -> None:
    res = apply(None, page_view(1, T0, anon="a"), cfg=CFG, now_ms=T0)
    assert (res.snapshot["journey_id"], res.snapshot["is_anonymous"], res.snapshot["anonymous_ids"]) == (f"a:{T0}", True, [])


def test_event_factory_sanity() -> None:
    # the generic builder keeps the codec's in-memory shape (times as int ms, payload dict)
    ev = event(1, "PAGE_VIEW", T0, {"url": "/"}, customer="c")
    assert isinstance(ev["occurred_at"], int) and ev["context"] == {}


def test_only_the_newest_journeys_are_kept_but_never_the_one_just_updated() -> None:
    cfg = JourneyConfig(inactivity_gap_ms=DAY, max_journeys=2)
    events = [page_view(i, T0 + i * 10 * DAY, customer="c") for i in (1, 2, 3)]
    state, results = run(events, cfg)
    assert [s["first_touch_at"] for s in snapshots_of(state, cfg, 0)] == [T0 + 20 * DAY, T0 + 30 * DAY]
    old = apply(state, page_view(9, T0, customer="c"), cfg=cfg, now_ms=T0 + 99 * DAY)
    assert old.snapshot["journey_id"] == f"c:{T0}"
    assert [s["first_touch_at"] for s in snapshots_of(old.state, cfg, 0)] == [T0, T0 + 30 * DAY]


def test_config_from_settings() -> None:
    from touchpoint.config import load_settings

    cfg = JourneyConfig.from_settings(load_settings(journey_inactivity_days=2, journey_path_limit=7, dedup_horizon_days=0.5))
    assert (cfg.inactivity_gap_ms, cfg.path_limit, cfg.dedup_horizon_ms) == (2 * DAY, 7, DAY // 2)
