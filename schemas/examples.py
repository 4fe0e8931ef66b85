"""One valid in-memory touchpoint per event type (for tests, benchmarks and docs of every stage)."""

from __future__ import annotations

import uuid
from typing import Any

# 2026-11-25T10:00:00Z
BASE_MILLIS = 1_795_600_800_000

_PAYLOADS: dict[str, tuple[str, dict[str, Any]]] = {
    "AD_CLICK": ("web", {"campaign_id": "bf-2026", "ad_id": "ad-17", "platform": "google", "placement": "search",
                         "cost_minor": 85, "currency": "EUR"}),
    "PAGE_VIEW": ("web", {"url": "https://shop.example/p/42", "page_type": "product", "title": "Kettle",
                          "referrer": None, "product_id": "p-42"}),
    "EMAIL_ENGAGEMENT": ("email", {"campaign_id": "bf-2026", "message_id": "m-991", "action": "clicked",
                                   "link_url": "https://shop.example/bf"}),
    "CHECKOUT": ("web", {"order_id": "o-1001", "status": "completed", "amount_minor": 12990, "currency": "EUR",
                         "item_count": 2, "payment_method": "credit_card", "failure_reason": None}),
    "DELIVERY_NOTICE": ("carrier", {"order_id": "o-1001", "shipment_id": "s-77", "carrier": "dhl",
                                    "status": "delivered", "promised_by": BASE_MILLIS + 3 * 86_400_000}),
    "SURVEY_RESPONSE": ("email", {"survey_kind": "NPS", "score": 9, "scale_min": 0, "scale_max": 10,
                                  "comment": "fast delivery", "order_id": "o-1001", "rated_event_id": None}),
    "SUPPORT_INTERACTION": ("chat", {"ticket_id": "t-5", "kind": "chat", "action": "resolved", "topic": "delivery",
                                     "order_id": "o-1001"}),
}

EVENT_TYPES: tuple[str, ...] = tuple(_PAYLOADS)


def example_event(event_type: str, *, i: int = 0, customer_id: str | None = "c-1",
                  anonymous_id: str | None = "a-1") -> dict[str, Any]:
    """A valid touchpoint of ``event_type`` (every field present, as ``AvroCodec.decode`` returns it)."""
    channel, payload = _PAYLOADS[event_type]
    return {
        "event_id": str(uuid.UUID(int=(EVENT_TYPES.index(event_type) + 1) << 64 | i, version=4)),
        "event_type": event_type,
        "occurred_at": BASE_MILLIS + i,
        "customer_id": customer_id,
        "anonymous_id": anonymous_id,
        "channel": channel,
        "source": "examples",
        "session_id": "sess-1",
        "context": {"utm_campaign": "bf-2026", "country": "DE"},
        "payload": dict(payload),
    }


def example_events() -> list[dict[str, Any]]:
    """One example per event type, in schema order."""
    return [example_event(t) for t in EVENT_TYPES]


def example_journey_snapshot() -> dict[str, Any]:
    """A valid JourneySnapshot (a converted, delivered, rated journey)."""
    return {
        "journey_id": f"c-1:{BASE_MILLIS}", "customer_id": "c-1", "is_anonymous": False, "merged_into": None,
        "version": 4, "updated_at": BASE_MILLIS + 5000, "first_touch_at": BASE_MILLIS,
        "last_touch_at": BASE_MILLIS + 4000, "anonymous_ids": ["a-1"],
        "path": [{"event_type": "AD_CLICK", "channel": "web", "occurred_at": BASE_MILLIS},
                 {"event_type": "CHECKOUT", "channel": "web", "occurred_at": BASE_MILLIS + 4000}],
        "path_truncated": 0, "event_count": 2, "counts_by_type": {"AD_CLICK": 1, "CHECKOUT": 1},
        "stage": "purchase", "service_contacted": False, "first_touch_campaign": "bf-2026",
        "first_touch_channel": "web", "last_touch_campaign": "bf-2026", "last_touch_channel": "web",
        "converted": True, "converted_at": BASE_MILLIS + 4000, "time_to_convert_ms": 4000, "orders": 1,
        "revenue_minor": 12990, "currency": "EUR", "deliveries_on_time": 0, "deliveries_late": 0,
        "deliveries_failed": 0, "delivery_delay_ms_sum": 0, "nps_score": None, "csat_score": None,
        "ces_score": None, "support_tickets_opened": 0, "support_tickets_resolved": 0, "resolution_ms_sum": 0,
    }


def example_metric_window() -> dict[str, Any]:
    """A valid MetricWindow (every counter present)."""
    from touchpoint.schemas.registry import get_registry

    counters = {f["name"]: f["default"] for f in get_registry().latest("metric_window").raw["fields"] if "default" in f}
    return {
        "window_start": BASE_MILLIS, "window_seconds": 60, "partition": 0, "event_type": "CHECKOUT",
        "channel": "web", "campaign_id": "bf-2026", "currency": "EUR", "version": 1, "emitted_at": BASE_MILLIS + 61_000,
        **counters, "touchpoints": 3, "checkouts_completed": 1, "revenue_minor": 12990,
    }


def example_identity_merge() -> dict[str, Any]:
    """A valid IdentityMerge."""
    return {"anonymous_id": "a-1", "customer_id": "c-1", "merged_at": BASE_MILLIS + 1000,
            "event_id": str(uuid.UUID(int=1, version=4)), "event_occurred_at": BASE_MILLIS, "events_moved": 2}
