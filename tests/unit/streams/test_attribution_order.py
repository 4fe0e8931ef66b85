"""Metric windows do not depend on arrival order: the final components per (window, dims) after absorbing every
contribution equal those of in-order processing, for every arrival order of the issue's case and for many
random orders of random multi-customer histories (anonymous clicks stitched later, several orders and campaigns,
repeated completions, shipments failing then delivered, tickets resolved before they were opened)."""

from __future__ import annotations

import itertools
import random
from typing import Any

from tests.unit.streams.journey_factory import (
    DAY, HOUR, MIN, T0, MiniPipeline, ad_click, checkout, delivery, email, page_view, support,
)  # fmt: skip
from touchpoint.streams import windows as w
from touchpoint.streams.journey import Contribution, JourneyConfig, apply
from touchpoint.streams.state_codec import dumps_journey, loads_journey

NO_LATENESS = 365 * DAY  # nothing is late: the order-independence promise holds within the allowed lateness
Cell = tuple[int, tuple[str, str, str, str]]


def cells(p: MiniPipeline) -> dict[Cell, dict[str, int]]:
    """Final components per (window_start, dims), zero components and all-zero cells left out."""
    out: dict[Cell, dict[str, int]] = {}
    for ws, window in p.windows.items():
        for dims, comps in window.cells.items():
            nonzero = {k: v for k, v in comps.items() if v}
            if nonzero:
                out[(ws, dims)] = nonzero
    return out


def run(events: list[dict[str, Any]], cfg: JourneyConfig | None = None, codec: bool = False) -> MiniPipeline:
    p = MiniPipeline(cfg=cfg, allowed_lateness_ms=NO_LATENESS, codec=codec)
    p.feed(*events)
    return p


def in_order(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda e: (e["occurred_at"], e["event_id"]))


# --- the issue's case: the click that earns the credit arrives after the checkout ----------------------------


def issue_case() -> list[dict[str, Any]]:
    return [
        ad_click(1, T0, campaign="summer", customer="c1"),
        checkout(2, T0 + 1 * MIN, order="o2", amount=2000, customer="c1"),  # → summer
        ad_click(3, T0 + 2 * MIN, campaign="spring", anon="a1"),  # anonymous, stitched by the login below
        page_view(4, T0 + 3 * MIN, anon="a1", customer="c1"),  # the login
        checkout(5, T0 + 5 * MIN, order="o1", amount=4999, customer="c1"),  # → spring (the stitched click)
        ad_click(6, T0 + 10 * MIN, campaign="winter", customer="c1"),  # after every order: no credit
    ]


ISSUE_EXPECTED: dict[Cell, dict[str, int]] = {
    (T0, ("AD_CLICK", "social", "summer", "EUR")): {"touchpoints": 1, "ad_clicks": 1, "ad_spend_minor": 120},
    (T0 + MIN, ("CHECKOUT", "web", "", "EUR")): {"touchpoints": 1},
    (T0 + MIN, ("CHECKOUT", "web", "summer", "EUR")): {
        "checkouts_completed": 1, "revenue_minor": 2000, "attributed_conversions": 1, "attributed_revenue_minor": 2000},
    (T0 + 2 * MIN, ("AD_CLICK", "social", "spring", "EUR")): {"touchpoints": 1, "ad_clicks": 1, "ad_spend_minor": 120},
    (T0 + 3 * MIN, ("PAGE_VIEW", "web", "", "")): {"touchpoints": 1},
    (T0 + 5 * MIN, ("CHECKOUT", "web", "", "EUR")): {"touchpoints": 1},
    (T0 + 5 * MIN, ("CHECKOUT", "web", "spring", "EUR")): {
        "checkouts_completed": 1, "revenue_minor": 4999, "attributed_conversions": 1, "attributed_revenue_minor": 4999},
    (T0 + 10 * MIN, ("AD_CLICK", "social", "winter", "EUR")): {"touchpoints": 1, "ad_clicks": 1, "ad_spend_minor": 120},
}  # fmt: skip


def test_issue_case_in_order_gives_the_hand_worked_windows() -> None:
    assert cells(run(issue_case())) == ISSUE_EXPECTED


def test_issue_case_every_arrival_order_gives_the_in_order_windows() -> None:
    for order in itertools.permutations(issue_case()):
        got = cells(run(list(order)))
        assert got == ISSUE_EXPECTED, [e["event_id"][-1] for e in order]


def test_late_click_moves_the_conversion_with_negative_corrections() -> None:
    cfg = JourneyConfig()
    a = apply(None, checkout(1, T0 + MIN, amount=4999, customer="c"), cfg=cfg, now_ms=T0)
    assert a.contributions == [
        Contribution(T0 + MIN, ("CHECKOUT", "web", "", "EUR"), {"touchpoints": 1, "checkouts_completed": 1, "revenue_minor": 4999}),
    ]  # fmt: skip
    b = apply(a.state, ad_click(2, T0, campaign="spring", customer="c"), cfg=cfg, now_ms=T0)
    assert b.contributions == [
        Contribution(T0, ("AD_CLICK", "social", "spring", "EUR"), {"touchpoints": 1, "ad_clicks": 1, "ad_spend_minor": 120}),
        Contribution(T0 + MIN, ("CHECKOUT", "web", "", "EUR"), {"checkouts_completed": -1, "revenue_minor": -4999}),
        Contribution(T0 + MIN, ("CHECKOUT", "web", "spring", "EUR"),
                     {"checkouts_completed": 1, "revenue_minor": 4999, "attributed_conversions": 1, "attributed_revenue_minor": 4999}),
    ]  # fmt: skip
    # a restitched click (booked under its anonymous id) still moves the credit: only the correction comes out
    c = apply(b.state, ad_click(3, T0 + 30_000, campaign="autumn", customer="c", anon="a"), restitched=True,
              cfg=cfg, now_ms=T0)
    assert c.contributions == [
        Contribution(T0 + MIN, ("CHECKOUT", "web", "spring", "EUR"),
                     {"checkouts_completed": -1, "revenue_minor": -4999, "attributed_conversions": -1, "attributed_revenue_minor": -4999}),
        Contribution(T0 + MIN, ("CHECKOUT", "web", "autumn", "EUR"),
                     {"checkouts_completed": 1, "revenue_minor": 4999, "attributed_conversions": 1, "attributed_revenue_minor": 4999}),
    ]  # fmt: skip
    # the state records what was booked, through the state codec too
    assert loads_journey(dumps_journey(c.state)).journeys[0].booked == c.state.journeys[0].booked


def test_all_contributions_of_one_offset_are_absorbed_and_a_replay_is_a_no_op() -> None:
    cfg = JourneyConfig()
    a = apply(None, checkout(1, T0 + 10_000, amount=500, customer="c"), cfg=cfg, now_ms=T0)
    b = apply(a.state, ad_click(2, T0, campaign="spring", customer="c"), cfg=cfg, now_ms=T0)
    window = None
    window = w.absorb(window, a.contributions, 0, window_start=T0)
    pl = w.plan(b.contributions, T0 + 10_000, allowed_lateness_ms=HOUR)
    assert len(pl.by_window[T0]) == 3  # click + retraction + booking: ONE call with offset 1
    window = w.absorb(window, pl.by_window[T0], 1)
    window = w.absorb(window, pl.by_window[T0], 1)  # replay: no-op
    assert window.cells[("CHECKOUT", "web", "", "EUR")] == {"touchpoints": 1, "checkouts_completed": 0, "revenue_minor": 0}
    assert window.cells[("CHECKOUT", "web", "spring", "EUR")] == {
        "checkouts_completed": 1, "revenue_minor": 500, "attributed_conversions": 1, "attributed_revenue_minor": 500}


def test_corrections_for_windows_beyond_the_allowed_lateness_become_correction_rows() -> None:
    cfg = JourneyConfig()
    a = apply(None, checkout(1, T0 + MIN, amount=500, customer="c"), cfg=cfg, now_ms=T0)
    b = apply(a.state, ad_click(2, T0, campaign="spring", customer="c"), cfg=cfg, now_ms=T0)
    pl = w.plan(b.contributions, T0 + 3 * HOUR, allowed_lateness_ms=HOUR)
    # the click counts as a late event in the watermark's window; the closed windows are left alone (they may be
    # deleted): the click and the order it now wins go to their own minutes as corrections
    assert pl.late == 1
    assert pl.by_window == {T0 + 3 * HOUR: [Contribution(T0 + 3 * HOUR, ("AD_CLICK", "social", "spring", "EUR"), {"late_events": 1})]}
    assert pl.corrections == {
        T0: [Contribution(T0, ("AD_CLICK", "social", "spring", "EUR"), {"touchpoints": 1, "ad_clicks": 1, "ad_spend_minor": 120})],
        T0 + MIN: [Contribution(T0 + MIN, ("CHECKOUT", "web", "", "EUR"), {"checkouts_completed": -1, "revenue_minor": -500}),
                   Contribution(T0 + MIN, ("CHECKOUT", "web", "spring", "EUR"), {
                       "checkouts_completed": 1, "revenue_minor": 500, "attributed_conversions": 1,
                       "attributed_revenue_minor": 500})],
    }


def test_failed_then_delivered_and_resolved_before_opened_do_not_depend_on_arrival() -> None:
    evs = [
        delivery(1, T0 + 10 * MIN, promised_by=T0, status="failed_attempt", customer="c"),
        delivery(2, T0 + 20 * MIN, promised_by=T0 + 30 * MIN, customer="c"),  # on time
        delivery(3, T0 + 40 * MIN, promised_by=T0, status="returned", customer="c"),  # after delivery: no
        delivery(4, T0 + 25 * MIN, promised_by=T0, status="delivered", shipment="s2", customer="c"),  # late
        delivery(5, T0 + 35 * MIN, promised_by=T0, status="failed_attempt", shipment="s2", customer="c"),  # no
        support(6, T0 + 2 * MIN, action="resolved", customer="c"),
        support(7, T0 + 1 * MIN, action="opened", customer="c", channel="phone"),
        support(8, T0 + 4 * MIN, action="resolved", customer="c"),  # a second resolution: not counted again
    ]
    expected = {
        (T0 + 10 * MIN, ("DELIVERY_NOTICE", "carrier", "", "")): {"touchpoints": 1, "deliveries_failed": 1},
        (T0 + 20 * MIN, ("DELIVERY_NOTICE", "carrier", "", "")): {"touchpoints": 1, "deliveries_delivered": 1, "deliveries_on_time": 1},
        (T0 + 25 * MIN, ("DELIVERY_NOTICE", "carrier", "", "")): {
            "touchpoints": 1, "deliveries_delivered": 1, "deliveries_late": 1, "delivery_delay_ms_sum": 25 * MIN},
        (T0 + 35 * MIN, ("DELIVERY_NOTICE", "carrier", "", "")): {"touchpoints": 1},
        (T0 + 40 * MIN, ("DELIVERY_NOTICE", "carrier", "", "")): {"touchpoints": 1},
        (T0 + MIN, ("SUPPORT_INTERACTION", "phone", "", "")): {"touchpoints": 1, "tickets_opened": 1},
        (T0 + 2 * MIN, ("SUPPORT_INTERACTION", "chat", "", "")): {"touchpoints": 1, "tickets_resolved": 1, "resolution_ms_sum": MIN},
        (T0 + 4 * MIN, ("SUPPORT_INTERACTION", "chat", "", "")): {"touchpoints": 1},
    }  # fmt: skip
    assert cells(run(in_order(evs))) == expected
    rng = random.Random(7)
    for _ in range(300):
        order = rng.sample(evs, len(evs))
        assert cells(run(order)) == expected, [e["event_id"][-1] for e in order]


# --- random histories -----------------------------------------------------------------------------------------


def history(rng: random.Random, customers: int = 3) -> list[dict[str, Any]]:
    """Several customers over ~8 hours (the 2-hour inactivity gap below splits and, out of order, fuses
    journeys). Anonymous events are clicks and page views (anonymous checkouts: see the README's remaining
    order-dependence); each anonymous id logs in once."""
    evs: list[dict[str, Any]] = []
    n = 0

    def nxt() -> int:
        nonlocal n
        n += 1
        return n

    for c in range(customers):
        cust, anon = f"c{c}", f"a{c}"
        login_at = T0 + rng.randrange(0, 8 * HOUR)
        evs.append(page_view(nxt(), login_at, customer=cust, anon=anon))
        for _ in range(rng.randrange(8, 14)):
            at = T0 + rng.randrange(0, 8 * HOUR)
            roll = rng.random()
            who: dict[str, Any] = {"anon": anon} if roll < 0.3 else {"customer": cust}
            kind = rng.random()
            if kind < 0.3:
                evs.append(ad_click(nxt(), at, campaign=rng.choice(["spring", "summer", "autumn"]), **who))
            elif kind < 0.4:
                evs.append(page_view(nxt(), at, context={"utm_campaign": "utm-x"}, **who))
            elif kind < 0.5:
                evs.append(email(nxt(), at, action="clicked", campaign="news", customer=cust))
            elif kind < 0.75:
                status = rng.choice(["completed", "completed", "started", "abandoned"])
                evs.append(checkout(nxt(), at, status=status, order=f"o{c}-{rng.randrange(3)}",
                                    amount=rng.choice([1000, 2500]), currency=rng.choice(["EUR", "EUR", "USD"]),
                                    customer=cust))
            elif kind < 0.88:
                status = rng.choice(["delivered", "failed_attempt", "returned"])
                evs.append(delivery(nxt(), at, promised_by=T0 + 4 * HOUR, status=status,
                                    shipment=f"s{c}-{rng.randrange(2)}", customer=cust))
            else:
                evs.append(support(nxt(), at, action=rng.choice(["opened", "resolved"]),
                                   ticket=f"t{c}-{rng.randrange(2)}", customer=cust, channel=rng.choice(["chat", "phone"])))
    return evs


def test_random_histories_give_the_in_order_windows_in_any_arrival_order() -> None:
    cfg = JourneyConfig(inactivity_gap_ms=2 * HOUR, max_journeys=50)
    rng = random.Random(2026)
    attributed = 0
    for case in range(12):
        evs = history(rng)
        expected = cells(run(in_order(evs), cfg))
        attributed += sum(c.get("attributed_conversions", 0) for c in expected.values())
        for i in range(40):
            order = rng.sample(evs, len(evs))
            assert cells(run(order, cfg, codec=i % 10 == 0)) == expected, (case, i)
    assert attributed > 10  # the histories do exercise attribution
