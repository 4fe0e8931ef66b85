"""Builders of in-memory touchpoints (the codec's dict form) for the pure streams tests."""

from __future__ import annotations

import uuid
from typing import Any

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a window boundary
MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000


def eid(n: int) -> str:
    """Deterministic UUID text for event n."""
    return str(uuid.UUID(int=n))


def event(
    n: int,
    event_type: str,
    at: int,
    payload: dict[str, Any],
    *,
    customer: str | None = None,
    anon: str | None = None,
    channel: str = "web",
    context: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "event_id": eid(n),
        "event_type": event_type,
        "occurred_at": at,
        "customer_id": customer,
        "anonymous_id": anon,
        "channel": channel,
        "source": "test",
        "session_id": None,
        "context": context or {},
        "payload": payload,
    }


def ad_click(n: int, at: int, campaign: str = "spring", cost: int = 120, **kw: Any) -> dict[str, Any]:
    kw.setdefault("channel", "social")
    p = {"campaign_id": campaign, "ad_id": "ad-1", "platform": "meta", "placement": None, "cost_minor": cost, "currency": "EUR"}
    return event(n, "AD_CLICK", at, p, **kw)


def page_view(n: int, at: int, **kw: Any) -> dict[str, Any]:
    p = {"url": "/p/1", "page_type": "product", "title": None, "referrer": None, "product_id": "p1"}
    return event(n, "PAGE_VIEW", at, p, **kw)


def email(n: int, at: int, action: str = "opened", campaign: str = "news", **kw: Any) -> dict[str, Any]:
    kw.setdefault("channel", "email")
    p = {"campaign_id": campaign, "message_id": "m1", "action": action, "link_url": None}
    return event(n, "EMAIL_ENGAGEMENT", at, p, **kw)


def checkout(n: int, at: int, status: str = "completed", order: str = "o1", amount: int = 4999, currency: str = "EUR", **kw: Any) -> dict[str, Any]:
    p = {"order_id": order, "status": status, "amount_minor": amount, "currency": currency, "item_count": 1,
         "payment_method": "credit_card", "failure_reason": None}
    return event(n, "CHECKOUT", at, p, **kw)


def delivery(n: int, at: int, promised_by: int, status: str = "delivered", shipment: str = "s1", **kw: Any) -> dict[str, Any]:
    kw.setdefault("channel", "carrier")
    p = {"order_id": "o1", "shipment_id": shipment, "carrier": "dhl", "status": status, "promised_by": promised_by}
    return event(n, "DELIVERY_NOTICE", at, p, **kw)


def survey(n: int, at: int, kind: str = "NPS", score: int = 6, **kw: Any) -> dict[str, Any]:
    kw.setdefault("channel", "email")
    lo, hi = {"NPS": (0, 10), "CSAT": (1, 5), "CES": (1, 7)}[kind]
    p = {"survey_kind": kind, "score": score, "scale_min": lo, "scale_max": hi, "comment": None, "order_id": None,
         "rated_event_id": None}
    return event(n, "SURVEY_RESPONSE", at, p, **kw)


def support(n: int, at: int, action: str = "opened", ticket: str = "t1", **kw: Any) -> dict[str, Any]:
    kw.setdefault("channel", "chat")
    p = {"ticket_id": ticket, "kind": "chat", "action": action, "topic": "delivery", "order_id": None}
    return event(n, "SUPPORT_INTERACTION", at, p, **kw)


class MiniPipeline:
    """The app's use of the pure API, without Kafka: route → apply → watermark → plan → absorb, one partition.

    Keeps what the sink would keep: the highest version per journey_id and per metric window key, and it checks
    that versions never go back in emission order. ``codec=True`` round-trips every state through state_codec.
    """

    def __init__(self, cfg: Any = None, allowed_lateness_ms: int = HOUR, codec: bool = False) -> None:
        from touchpoint.streams.journey import JourneyConfig

        self.cfg = cfg or JourneyConfig()
        self.lateness = allowed_lateness_ms
        self.codec = codec
        self.aliases: dict[str, Any] = {}
        self.journeys: dict[str, Any] = {}
        self.windows: dict[int, Any] = {}
        self.corrections: dict[tuple[int, str], Any] = {}  # (window_start, correction_id) -> correction window
        self.watermark: int | None = None
        self.offset = -1
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.emitted: dict[tuple[str, int], dict[str, Any]] = {}
        self.replaying = False
        self.merges: list[dict[str, Any]] = []
        self.late = 0
        self.duplicates = 0
        self.now = T0 + 10 * DAY

    def _roundtrip(self, value: Any, kind: str) -> Any:
        if not self.codec or value is None:
            return value
        from touchpoint.streams import state_codec as sc

        return getattr(sc, f"loads_{kind}")(getattr(sc, f"dumps_{kind}")(value))

    def feed(self, *events: dict[str, Any]) -> None:
        from touchpoint.streams.identity import identity_key, route

        for ev in events:
            self.now += 1
            key = identity_key(ev)
            r = route(self._roundtrip(self.aliases.get(key), "alias"), ev, self.now)
            if r.changed:
                self.aliases[key] = r.alias
            if r.merge is not None:
                self.merges.append(r.merge)
            for out in r.outputs:
                self.journey_step(out.journey_key, out.event, out.restitched)

    def journey_step(self, key: str, ev: dict[str, Any], restitched: bool) -> None:
        from touchpoint.streams import windows as w
        from touchpoint.streams.journey import apply

        self.offset += 1
        state = self._roundtrip(self.journeys.get(key), "journey")
        a = apply(state, ev, restitched=restitched, offset_partition=0, cfg=self.cfg, now_ms=self.now)
        if a.duplicate:
            self.duplicates += 1
        if a.state is not None:
            self.journeys[key] = a.state
        for snap in [*a.superseded, *([a.snapshot] if a.snapshot else [])]:
            old = self.snapshots.get(snap["journey_id"])
            version = snap["version"]
            if old is not None:
                # versions grow; only a replay after a crash repeats versions, and then with the same content
                assert self.replaying or version > old["version"], (snap["journey_id"], version)
                seen = self.emitted.get((snap["journey_id"], version))
                assert seen is None or {**snap, "updated_at": 0} == {**seen, "updated_at": 0}
            self.emitted[(snap["journey_id"], version)] = snap
            if old is None or version > old["version"]:  # the sink keeps the highest version
                self.snapshots[snap["journey_id"]] = snap
        self.watermark = w.advance_watermark(self.watermark, ev["occurred_at"])
        pl = w.plan(a.contributions, self.watermark, allowed_lateness_ms=self.lateness)
        self.late += pl.late
        for ws, cs in pl.by_window.items():
            win = self._roundtrip(self.windows.get(ws), "window")
            self.windows[ws] = w.absorb(win, cs, self.offset, window_start=ws, partition=0)
        for ws, cs in pl.corrections.items():
            cid = w.correction_id(ev["event_id"], self.offset)
            win = self._roundtrip(self.corrections.get((ws, cid)), "window")
            self.corrections[(ws, cid)] = w.absorb(win, cs, self.offset, window_start=ws, partition=0, correction_id=cid)

    def live(self) -> dict[str, dict[str, Any]]:
        """Journeys not superseded, by journey_id."""
        return {k: v for k, v in self.snapshots.items() if v["merged_into"] is None}

    def metric_rows(self) -> list[dict[str, Any]]:
        from touchpoint.streams import windows as w

        rows = []
        for ws in sorted(self.windows):
            rows.extend(w.snapshots(self.windows[ws], emitted_at=self.now))
        return rows

    def correction_rows(self) -> list[dict[str, Any]]:
        from touchpoint.streams import windows as w

        rows = []
        for key in sorted(self.corrections):
            rows.extend(w.snapshots(self.corrections[key], emitted_at=self.now))
        return rows

    def totals(self) -> dict[str, int]:
        from touchpoint.streams.windows import COMPONENTS

        out = dict.fromkeys(COMPONENTS, 0)
        for row in self.metric_rows():
            for name in COMPONENTS:
                out[name] += row[name]
        return {k: v for k, v in out.items() if v}
