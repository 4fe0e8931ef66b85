"""A whole person's life in the simulated span: which phases they reach and what happens in each.

Outcomes drive later behaviour the way they do in practice: a late or failed delivery makes a detractor
and a support ticket likely; a slow ticket makes a poor CSAT; a failed payment makes checkout feel harder.
"""

from __future__ import annotations

import random

from touchpoint.producers.simulation import catalog as cat
from touchpoint.producers.simulation.catalog import DAY_MS, HOUR_MS, MINUTE_MS
from touchpoint.producers.simulation.customers import (
    KNOWN, LOGS_IN, PERSON_KINDS, STAYS_ANONYMOUS, Event, Person, lognormal_ms, pick,
)

NPS_COMMENTS = {
    "detractor": ("Arrived late and nobody told me.", "Parcel never came, still waiting for a refund.",
                  "Product fine, delivery terrible."),
    "passive": ("OK, nothing special.", "Took a while but it arrived.", "Fine."),
    "promoter": ("Arrived well before the promised date!", "Great service, will buy again.", "Recomendo a todos."),
}


def new_person(seed: int, index: int) -> Person:
    rng = random.Random(f"touchpoint-sim:{seed}:{index}")
    kind = pick(rng, PERSON_KINDS)
    market = pick(rng, tuple((m, m.share) for m in cat.MARKETS))
    country, locale = rng.choice(market.countries)
    device = pick(rng, (("desktop", 0.45), ("android", 0.35), ("ios", 0.20)))
    return Person(
        rng=rng, index=index, kind=kind, market=market, country=country, locale=locale, device=device,
        customer_id=f"c-{seed % 10_000:04d}-{index:07d}",
        anonymous_id=None if kind == KNOWN else f"a-{rng.getrandbits(64):016x}",
        email_subscriber=kind == KNOWN and rng.random() < 0.7,
    )


def person_events(seed: int, index: int, start_ms: int, end_ms: int) -> list[Event]:
    """Every event person `index` causes from start_ms on, cut at end_ms (events after it have not happened yet)."""
    p = new_person(seed, index)
    rng = p.rng
    span = end_ms - start_ms
    t0 = start_ms + int(rng.random() * span)

    # Awareness: entry points into a browsing session (ad clicks, e-mail clicks, direct visits).
    entries: list[tuple[int, dict[str, str] | None]] = []
    for _ in range(pick(rng, ((0, 0.30), (1, 0.45), (2, 0.18), (3, 0.07)))):
        t = t0 + int(rng.random() * 3 * DAY_MS)
        entries.append((t, None))  # placeholder: the click itself is emitted in time order below
    if p.email_subscriber:
        for n in range(pick(rng, ((1, 0.5), (2, 0.3), (3, 0.2)))):
            t = t0 + n * rng.randint(2, 7) * DAY_MS + rng.randint(6, 11) * HOUR_MS
            clicked = p.email(t, pick(rng, cat.EMAIL_CAMPAIGNS))
            if clicked is not None:
                entries.append((clicked, {"utm_source": "newsletter", "utm_medium": "email"}))
    if not entries or rng.random() < 0.4:
        entries.append((t0 + int(rng.random() * 2 * DAY_MS), {"utm_source": "direct", "utm_medium": "none"}))
    entries.sort(key=lambda e: e[0])

    buys = p.kind != STAYS_ANONYMOUS and rng.random() < (0.42 if p.kind == KNOWN else 0.50)
    session = None
    for n, (t, utm) in enumerate(entries):
        if utm is None:
            utm = p.ad_click(t)
        last = n == len(entries) - 1
        pages = rng.randint(1, 4) if not last else rng.randint(3, 9)
        t_end, session_id, channel = p.browse(t, utm, pages)
        session = (t_end, session_id, channel)

    assert session is not None
    t, session_id, channel = session
    if p.kind == LOGS_IN and (buys or rng.random() < 0.6):
        t += rng.randint(2_000, 30_000)
        p.login(t, session_id, channel)
    if buys:
        order = p.checkout(t + rng.randint(5_000, 90_000), session_id, channel)
        if order is not None:
            fulfil(p, *order)
            if rng.random() < 0.12:  # a repeat purchase a few weeks later
                again = order[1] + rng.randint(5, 25) * DAY_MS
                t_end, session_id, channel = p.browse(again, {"utm_source": "direct", "utm_medium": "none"}, rng.randint(2, 6))
                repeat = p.checkout(t_end, session_id, channel)
                if repeat is not None:
                    fulfil(p, *repeat)
        if p.payment_failed_at is not None and order is None and rng.random() < 0.2:
            support(p, p.payment_failed_at + rng.randint(1, 30) * MINUTE_MS, "billing", None)
    elif p.kind != STAYS_ANONYMOUS and (p.identified or p.anonymous_id is None) and rng.random() < 0.04:
        # a question before buying (product, account)
        support(p, t + rng.randint(1, 48) * HOUR_MS, rng.choice(("product", "account")), None)
    return [e for e in p.events if e["occurred_at"] <= end_ms]


def fulfil(p: Person, order_id: str, completed_at: int, amount: int, _outcome: str) -> None:
    """Post-purchase: confirmation e-mail, the parcel's carrier notices, feedback, and support when it went wrong."""
    rng, market = p.rng, p.market
    p.email(completed_at + rng.randint(10_000, 120_000), cat.EMAIL_ORDER_CONFIRMATION, marketing=False)
    if rng.random() < 0.2:  # CES right after checkout: a failed payment on the way makes it feel harder
        harder = 2 if p.payment_failed_at is not None else 0
        score = max(1, min(7, round(rng.gauss(5.6 - harder, 1.1))))
        survey(p, completed_at + rng.randint(30_000, 600_000), "CES", score, order_id, channel="web")

    promised = completed_at + int(rng.lognormvariate(0, market.promise_days[1]) * market.promise_days[0] * DAY_MS)
    shipment_id = f"sh-{p.uid()[:16]}"
    carrier = rng.choice(cat.CARRIERS[market.currency])

    def notice(status: str, t: int) -> None:
        p.emit("DELIVERY_NOTICE", t, "carrier", f"carrier-{carrier}",
               {"order_id": order_id, "shipment_id": shipment_id, "carrier": carrier, "status": status,
                "promised_by": promised}, ids="customer")

    label = completed_at + lognormal_ms(rng, 360, 0.8)
    notice("label_created", label)
    # Olist: approval to carrier hand-over took a median of 1.75 days (p90 6.0).
    shipped = max(label + HOUR_MS, completed_at + int(rng.lognormvariate(0, 0.9) * 1.75 * DAY_MS))
    notice("shipped", shipped)
    draw = rng.random()
    if _outcome in ("late", "failed"):  # forced by the retention profile (bad experiences before silence)
        draw = 0.0 if _outcome == "failed" else 0.03
    if draw < 0.03:
        outcome = "failed"
        delivered_at = max(shipped + DAY_MS, promised - rng.randint(0, 2) * DAY_MS)
    elif draw < 0.03 + market.late_share:
        outcome = "late"
        # Olist: late parcels were late by a median of 6.7 days, p90 23.5 (lognormal sigma ~1).
        delivered_at = max(promised, shipped) + int(rng.lognormvariate(0, 1.0) * market.late_delay_days_median * DAY_MS)
        if rng.random() < 0.6:
            notice("delayed", max(shipped + HOUR_MS, promised - rng.randint(1, 12) * HOUR_MS))
    else:
        outcome = "on_time"
        room = promised - shipped - 6 * HOUR_MS
        # Olist: on-time parcels arrived a median of 12.4 days before a 23.5-day promise (~57 % of the room).
        delivered_at = max(shipped + 6 * HOUR_MS, promised - int(max(0, room) * rng.betavariate(2.3, 1.7)))
    notice("out_for_delivery", max(shipped + HOUR_MS, delivered_at - rng.randint(1, 8) * HOUR_MS))
    if outcome == "failed":
        notice("failed_attempt", delivered_at)
        if rng.random() < 0.5:
            delivered_at += DAY_MS + rng.randint(0, 6) * HOUR_MS
            notice("delivered", delivered_at)
            outcome = "late" if delivered_at > promised else "on_time"
        else:
            notice("failed_attempt", delivered_at + DAY_MS)
            delivered_at += rng.randint(3, 6) * DAY_MS
            notice("returned", delivered_at)
    else:
        notice("delivered", delivered_at)

    # Feedback: a review request, an NPS answer whose score follows what happened (Olist review mix).
    ask = delivered_at + rng.randint(1, 3) * DAY_MS
    p.email(ask, cat.EMAIL_REVIEW_REQUEST, marketing=False)
    if rng.random() < 0.38:
        mix = {"on_time": cat.REVIEW_MIX_ON_TIME, "late": cat.REVIEW_MIX_LATE}.get(outcome, cat.REVIEW_MIX_FAILED)
        score = rng.choice(cat.REVIEW_TO_NPS[pick(rng, mix)])
        survey(p, ask + lognormal_ms(rng, 240, 1.0), "NPS", score, order_id, channel="email")

    contact = {"on_time": 0.05, "late": 0.35, "failed": 0.70}[outcome]
    if rng.random() < contact:
        support(p, max(promised, delivered_at) + rng.randint(1, 36) * HOUR_MS, "delivery", order_id)


def survey(p: Person, at: int, kind: str, score: int, order_id: str | None, channel: str,
           rated_event_id: str | None = None) -> None:
    low, high = {"NPS": (0, 10), "CSAT": (1, 5), "CES": (1, 7)}[kind]
    band = "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
    if kind != "NPS":
        band = "promoter" if score >= high - 1 else "passive" if score > low + 1 else "detractor"
    comment = p.rng.choice(NPS_COMMENTS[band]) if p.rng.random() < cat.SURVEY_COMMENT_SHARE else None
    p.emit("SURVEY_RESPONSE", at, channel, "survey-tool",
           {"survey_kind": kind, "score": score, "scale_min": low, "scale_max": high, "comment": comment,
            "order_id": order_id, "rated_event_id": rated_event_id}, ids="customer")


def support(p: Person, at: int, topic: str, order_id: str | None) -> None:
    """A support contact: opened, first reply, resolved (most), then a CSAT answer that follows its speed."""
    rng = p.rng
    kind, channel, _ = pick(rng, tuple(((k, c, w), w) for k, c, w in cat.SUPPORT_KINDS))
    ticket_id = f"t-{p.uid()[:16]}"

    def step(action: str, t: int) -> Event:
        return p.emit("SUPPORT_INTERACTION", t, channel, "helpdesk",
                      {"ticket_id": ticket_id, "kind": kind, "action": action, "topic": topic, "order_id": order_id},
                      ids="customer")

    opened = step("opened", at)
    reply_med, reply_sigma = cat.SUPPORT_REPLY_MIN[kind]
    step("replied", at + lognormal_ms(rng, reply_med, reply_sigma))
    if rng.random() < 0.05:
        return  # still open
    resolve_med, resolve_sigma = cat.SUPPORT_RESOLVE_MIN[kind]
    took = lognormal_ms(rng, resolve_med, resolve_sigma)
    step("resolved", at + took)
    if rng.random() < 0.55:
        fast = took <= resolve_med * MINUTE_MS
        score = pick(rng, ((5, 0.55), (4, 0.30), (3, 0.10), (2, 0.03), (1, 0.02)) if fast
                     else ((5, 0.20), (4, 0.30), (3, 0.25), (2, 0.15), (1, 0.10)))
        survey(p, at + took + lognormal_ms(rng, 30, 1.0), "CSAT", score, order_id, channel="email",
               rated_event_id=opened["event_id"])
