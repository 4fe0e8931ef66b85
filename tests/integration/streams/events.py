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
