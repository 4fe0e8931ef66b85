"""The ``retention`` profile: one person's behaviour over many months (``touchpoint simulate --profile retention``).

The default profile simulates one buying journey per person; this one simulates a customer life, so churn,
lifecycle and cohorts have something to measure. Every person is one of:

- **loyal**: buys again every few weeks until the end of the span;
- **lapsing**: buys two to four times with growing gaps, then stops;
- **churning**: buys once or twice; the last order arrives late or fails, followed by a detractor answer and
  sometimes a ticket nobody resolves, then silence;
- **one-off**: buys once, maybe browses once more, then silence;
- **browser**: anonymous visitors who look and never buy (most never log in).

Subscribers get a monthly newsletter (opens, clicks, unsubscribes). The building blocks (ad clicks, browsing,
login, checkout, fulfilment, surveys, support) are the default profile's, so the events look the same. Each
person has its own random stream seeded from (seed, index), distinct from the default profile's.
"""

from __future__ import annotations

import random

from touchpoint.producers.simulation import catalog as cat
from touchpoint.producers.simulation.catalog import DAY_MS, HOUR_MS
from touchpoint.producers.simulation.customers import KNOWN, LOGS_IN, STAYS_ANONYMOUS, Event, Person, pick
from touchpoint.producers.simulation.journeys import fulfil, new_person, survey

SEGMENTS = (("loyal", 0.25), ("lapsing", 0.25), ("churning", 0.20), ("one_off", 0.30))


def _visit(p: Person, at: int, buy: bool, outcome: str = "completed") -> int | None:
    """One visit (an ad click or a direct visit, a browsing session, login when needed, maybe a purchase).
    Returns the purchase time when an order completed."""
    rng = p.rng
    utm = p.ad_click(at) if rng.random() < 0.35 else {"utm_source": "direct", "utm_medium": "none"}
    t_end, session_id, channel = p.browse(at + rng.randint(1_000, 60_000), utm, rng.randint(2, 7))
    if p.kind == LOGS_IN and not p.identified and (buy or rng.random() < 0.5):
        t_end += rng.randint(2_000, 30_000)
        p.login(t_end, session_id, channel)
    if not buy:
        return None
    order = p.checkout(t_end + rng.randint(5_000, 90_000), session_id, channel)
    if order is None:
        return None
    order_id, completed_at, amount, _ = order
    fulfil(p, order_id, completed_at, amount, outcome)
    return completed_at


def _newsletters(p: Person, start_ms: int, end_ms: int) -> None:
    """A monthly newsletter while subscribed (``Person.email`` unsubscribes some who open it)."""
    t = start_ms + p.rng.randint(1, 28) * DAY_MS + 9 * HOUR_MS
    while t < end_ms and p.email_subscriber:
        p.email(t, pick(p.rng, cat.EMAIL_CAMPAIGNS))
        t += 30 * DAY_MS


def retention_person_events(seed: int, index: int, start_ms: int, end_ms: int) -> list[Event]:
    """Every event person ``index`` causes in [start_ms, end_ms] under the retention profile."""
    p = new_person(seed, index)
    p.rng = rng = random.Random(f"touchpoint-retention:{seed}:{index}")
    span = end_ms - start_ms
    t = start_ms + int(rng.random() * span * 0.7)
    if p.kind == STAYS_ANONYMOUS:
        for _ in range(rng.randint(1, 3)):
            _visit(p, t, buy=False)
            t += rng.randint(2, 40) * DAY_MS
        return [e for e in p.events if e["occurred_at"] <= end_ms]
    segment = pick(rng, SEGMENTS)
    if p.kind == KNOWN and p.email_subscriber:
        _newsletters(p, t, end_ms)
    if segment == "loyal":
        while t < end_ms:
            _visit(p, t, buy=True)
            t += int(rng.lognormvariate(0, 0.35) * 28 * DAY_MS)
    elif segment == "lapsing":
        gap = 25 * DAY_MS
        for _ in range(rng.randint(2, 4)):
            _visit(p, t, buy=True)
            gap = int(gap * rng.uniform(1.4, 2.2))
            t += gap
    elif segment == "churning":
        for n in range(rng.randint(1, 2)):
            last = n == 1 or rng.random() < 0.5
            bought = _visit(p, t, buy=True, outcome=rng.choice(("late", "failed")) if last else "completed")
            if last and bought is not None:
                survey(p, bought + rng.randint(8, 20) * DAY_MS, "NPS", rng.randint(0, 4), None, channel="email")
                if rng.random() < 0.4:
                    # a complaint that is never resolved: opened and replied to, then nothing
                    _open_ticket(p, bought + rng.randint(21, 25) * DAY_MS)
                break
            t += rng.randint(20, 45) * DAY_MS
    else:
        _visit(p, t, buy=True)
        if rng.random() < 0.3:
            _visit(p, t + rng.randint(10, 60) * DAY_MS, buy=False)
    return [e for e in p.events if e["occurred_at"] <= end_ms]


def _open_ticket(p: Person, at: int) -> None:
    ticket_id = f"t-{p.uid()[:16]}"
    for action, t in (("opened", at), ("replied", at + 2 * HOUR_MS)):
        p.emit("SUPPORT_INTERACTION", t, "email", "helpdesk",
               {"ticket_id": ticket_id, "kind": "ticket", "action": action, "topic": "delivery", "order_id": None},
               ids="customer")

