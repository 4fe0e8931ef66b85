"""Metric contributions: the additive ``metric_window`` components one new event adds, judged by its journey.

``journey.apply`` asks for them only for new, non-restitched events (a restitched event was counted when it first
arrived under its anonymous id), with the journey's knowledge at the event's arrival, before the event is absorbed.
Documented choices:

* Attribution: last-touch. A completed checkout of an order not completed before in the journey counts one
  ``attributed_conversions`` (and its amount as ``attributed_revenue_minor``) under the campaign of the latest
  campaign-carrying touch strictly before it in the journey; without such a touch it is not attributed.
* Deliveries: the first ``delivered`` notice of a shipment counts (on time, or late with delay = occurred_at -
  promised_by), and the first failure (``failed_attempt`` / ``returned``) of a shipment that was not delivered yet
  when the failure arrived (so "failed, then delivered" counts one of each).
* Support: the first ``opened`` and the first ``resolved`` of a ticket count; the resolution time (>= 0) is booked
  as soon as both ends are known, in the window of the resolution.

The journey keeps two "counted" flags for these rules (a shipment's failure, a ticket's resolution time), which
this module sets; everything else it only reads.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Any, NamedTuple

from touchpoint.streams import stages as st

if TYPE_CHECKING:  # journey imports this module at runtime
    from touchpoint.streams.journey import Journey

# (event_type, channel, campaign_id or "", currency or "")
Dims = tuple[str, str, str, str]


class Contribution(NamedTuple):
    """Additive metric components of one event for one window and dimension combination."""

    window_start: int
    dims: Dims  # (event_type, channel, campaign_id or "", currency or "")
    components: dict[str, int]


def contributions(j: Journey, event: dict[str, Any], window_ms: int) -> list[Contribution]:
    """Metric components of a new event, judged against the journey as it was before the event."""
    etype = event["event_type"]
    channel = event.get("channel") or "other"
    occurred_at = int(event["occurred_at"])
    ws = occurred_at - occurred_at % window_ms
    p = event.get("payload") or {}
    comps: dict[str, int] = {"touchpoints": 1}
    campaign = currency = ""
    extra: list[Contribution] = []
    if etype == st.AD_CLICK:
        comps["ad_clicks"] = 1
        comps["ad_spend_minor"] = int(p.get("cost_minor", 0))
        campaign, currency = p.get("campaign_id") or "", p.get("currency") or ""
    elif etype == st.EMAIL_ENGAGEMENT:
        name = st.EMAIL_COMPONENT.get(p.get("action", ""))
        if name:
            comps[name] = 1
    elif etype == st.CHECKOUT:
        status = p["status"]
        currency = p.get("currency") or ""
        if status == "completed":
            if p["order_id"] not in j.orders:
                amount = int(p["amount_minor"])
                comps["checkouts_completed"] = 1
                comps["revenue_minor"] = amount
                campaign = last_campaign_before(j, (occurred_at, event["event_id"])) or ""
                if campaign:
                    comps["attributed_conversions"] = 1
                    comps["attributed_revenue_minor"] = amount
        elif status in st.CHECKOUT_COMPONENT:
            comps[st.CHECKOUT_COMPONENT[status]] = 1
    elif etype == st.DELIVERY_NOTICE:
        status = p["status"]
        ship = j.shipments.get(p["shipment_id"])
        if status == st.DELIVERED and (ship is None or ship[0] is None):
            promised = int(p["promised_by"])
            comps["deliveries_delivered"] = 1
            if occurred_at <= promised:
                comps["deliveries_on_time"] = 1
            else:
                comps["deliveries_late"] = 1
                comps["delivery_delay_ms_sum"] = occurred_at - promised
        elif status in st.DELIVERY_FAILED_STATUSES and (ship is None or (ship[0] is None and not ship[2])):
            comps["deliveries_failed"] = 1
            j.shipments.setdefault(p["shipment_id"], [None, False, False])[2] = True
    elif etype == st.SURVEY_RESPONSE:
        kind, score = p["survey_kind"], int(p["score"])
        if kind == "NPS":
            comps[st.nps_bucket(score)] = 1
        elif kind == "CSAT":
            comps["csat_total"] = 1
            if st.csat_satisfied(score, int(p.get("scale_max", 5))):
                comps["csat_satisfied"] = 1
        elif kind == "CES":
            comps["ces_sum"] = score
            comps["ces_count"] = 1
    elif etype == st.SUPPORT_INTERACTION:
        action = p["action"]
        ticket = j.tickets.get(p["ticket_id"]) or [None, None, None, None, False]
        if action == "opened" and ticket[0] is None:
            comps["tickets_opened"] = 1
            if ticket[2] is not None and not ticket[4]:
                # The resolution arrived first: book the resolution time in the resolution's window.
                ticket[4] = True
                rws = ticket[2] - ticket[2] % window_ms
                extra.append(Contribution(rws, (etype, ticket[3], "", ""), {"resolution_ms_sum": max(0, ticket[2] - occurred_at)}))
        elif action == "resolved" and ticket[2] is None:
            comps["tickets_resolved"] = 1
            if ticket[0] is not None:
                ticket[4] = True
                comps["resolution_ms_sum"] = max(0, occurred_at - ticket[0])
    main = Contribution(ws, (etype, channel, campaign, currency), comps)
    return [main, *extra] if extra else [main]


def last_campaign_before(j: Journey, key: tuple[int, str]) -> str | None:
    """Campaign of the latest campaign-carrying touch strictly before ``key`` (occurred_at, event_id)."""
    campaigns = j.campaign_touches()
    pos = bisect_left(campaigns, key)  # (t, id) sorts before every (t, id, campaign)
    return campaigns[pos - 1][2] if pos else None
