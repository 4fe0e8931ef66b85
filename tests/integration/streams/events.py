"""Touchpoint builders for the stream tests (plain dicts in the codec's in-memory form)."""

from __future__ import annotations

import uuid
from typing import Any

T0 = 1_764_000_000_000 - 1_764_000_000_000 % 60_000  # a minute boundary (2025-11-24)
MIN = 60_000


def _base(event_type: str, at: int, *, customer: str | None, anon: str | None, channel: str,
          event_id: str | None = None, context: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "occurred_at": at,
        "customer_id": customer,
        "anonymous_id": anon,
        "channel": channel,
        "source": "tests",
        "session_id": None,
        "context": context or {},
    }


def ad_click(at: int, *, anon: str | None = None, customer: str | None = None, campaign: str = "camp-1",
             cost: int = 120, **kw: Any) -> dict[str, Any]:
    e = _base("AD_CLICK", at, customer=customer, anon=anon, channel=kw.pop("channel", "social"), **kw)
    e["payload"] = {"campaign_id": campaign, "ad_id": "ad-1", "platform": "meta", "placement": None,
                    "cost_minor": cost, "currency": "EUR"}
    return e


def page_view(at: int, *, anon: str | None = None, customer: str | None = None, **kw: Any) -> dict[str, Any]:
    e = _base("PAGE_VIEW", at, customer=customer, anon=anon, channel=kw.pop("channel", "web"), **kw)
    e["payload"] = {"url": "https://shop.example/p/1", "page_type": "product", "title": None, "referrer": None,
                    "product_id": "p-1"}
    return e


def checkout(at: int, *, customer: str, anon: str | None = None, order: str = "o-1", status: str = "completed",
             amount: int = 4999, **kw: Any) -> dict[str, Any]:
    e = _base("CHECKOUT", at, customer=customer, anon=anon, channel=kw.pop("channel", "web"), **kw)
    e["payload"] = {"order_id": order, "status": status, "amount_minor": amount, "currency": "EUR", "item_count": 1,
                    "payment_method": "credit_card", "failure_reason": None}
    return e


def delivery(at: int, *, customer: str, promised_by: int, order: str = "o-1", shipment: str = "s-1",
             status: str = "delivered", **kw: Any) -> dict[str, Any]:
    e = _base("DELIVERY_NOTICE", at, customer=customer, anon=None, channel="carrier", **kw)
    e["payload"] = {"order_id": order, "shipment_id": shipment, "carrier": "dhl", "status": status,
                    "promised_by": promised_by}
    return e


def nps(at: int, *, customer: str, score: int, **kw: Any) -> dict[str, Any]:
    e = _base("SURVEY_RESPONSE", at, customer=customer, anon=None, channel=kw.pop("channel", "email"), **kw)
    e["payload"] = {"survey_kind": "NPS", "score": score, "scale_min": 0, "scale_max": 10, "comment": None,
                    "order_id": "o-1", "rated_event_id": None}
    return e


def support(at: int, *, customer: str, ticket: str, action: str, **kw: Any) -> dict[str, Any]:
    e = _base("SUPPORT_INTERACTION", at, customer=customer, anon=None, channel=kw.pop("channel", "chat"), **kw)
    e["payload"] = {"ticket_id": ticket, "kind": "chat", "action": action, "topic": "delivery", "order_id": None}
    return e


def email(at: int, *, customer: str, action: str, campaign: str = "newsletter", **kw: Any) -> dict[str, Any]:
    e = _base("EMAIL_ENGAGEMENT", at, customer=customer, anon=None, channel="email", **kw)
    e["payload"] = {"campaign_id": campaign, "message_id": f"m-{customer}", "action": action, "link_url": None}
    return e


def population(persons: int, seed: int) -> list[list[dict[str, Any]]]:
    """Per person, in event-time order: anonymous ad clicks and page views, a login at checkout, then a delivery,
    an NPS answer, a support ticket and emails (customer only). All within ~20 minutes: nothing is late.

    Arrival-order-sensitive facts are made deterministic by sending each person's events in order to one
    partition: the anonymous touches then precede their login in the identity partition of the anonymous id.
    """
    import random

    rnd = random.Random(seed)
    people = []
    for i in range(persons):
        cust, anon = f"cust-{i}", (f"anon-{i}" if i % 3 else None)
        t = T0 + rnd.randrange(0, 10 * MIN, 1000)
        evs: list[dict[str, Any]] = []
        if anon:
            for j in range(rnd.randint(1, 3)):
                evs.append(ad_click(t + j * 2000, anon=anon, campaign=f"camp-{rnd.randint(1, 4)}", cost=rnd.randint(10, 300),
                                    event_id=str(uuid.UUID(int=rnd.getrandbits(128), version=4))))
            for j in range(rnd.randint(1, 4)):
                evs.append(page_view(t + 10_000 + j * 1000, anon=anon, event_id=str(uuid.UUID(int=rnd.getrandbits(128), version=4))))
        def eid() -> str:
            return str(uuid.UUID(int=rnd.getrandbits(128), version=4))
        evs.append(checkout(t + MIN, customer=cust, anon=anon, order=f"o-{i}", amount=rnd.randint(100, 20_000), event_id=eid()))
        evs.append(delivery(t + 2 * MIN, customer=cust, order=f"o-{i}", shipment=f"s-{i}",
                            promised_by=t + 2 * MIN + rnd.choice([-30_000, 30_000]), event_id=eid()))
        evs.append(nps(t + 3 * MIN, customer=cust, score=rnd.randint(0, 10), event_id=eid()))
        if i % 2:
            evs.append(support(t + 4 * MIN, customer=cust, ticket=f"tk-{i}", action="opened", event_id=eid()))
            evs.append(support(t + 6 * MIN, customer=cust, ticket=f"tk-{i}", action="resolved", event_id=eid()))
        evs.append(email(t + 7 * MIN, customer=cust, action=rnd.choice(["sent", "opened", "clicked"]), event_id=eid()))
        people.append(evs)
    return people


def interleave(people: list[list[dict[str, Any]]], seed: int) -> list[dict[str, Any]]:
    """One arrival sequence that keeps each person's order."""
    import random

    rnd = random.Random(seed)
    queues = [list(p) for p in people]
    out = []
    while queues:
        q = rnd.choice(queues)
        out.append(q.pop(0))
        if not q:
            queues.remove(q)
    return out


def person_partition(event: dict[str, Any], partitions: int) -> int:
    import zlib

    person = (event.get("customer_id") or event["anonymous_id"]).split("-", 1)[1]
    return zlib.crc32(person.encode()) % partitions
