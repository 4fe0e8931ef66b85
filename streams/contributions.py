"""Metric contributions: the additive ``metric_window`` components of the events of a journey.

Two kinds, so that the final windows depend only on the set of events, not on their arrival order:

* **Event components** (``contributions``), booked once per new, non-restitched event at its arrival, with dims
  taken from the event alone: touchpoints 1 and AD_CLICK clicks/spend (campaign + currency dims), EMAIL one
  component per action, CHECKOUT started/abandoned/failed (campaign dim ""), SURVEY buckets. A restitched event
  was booked when it first arrived under its anonymous id.
* **Facts** (``corrections``), judged on the journey as it is NOW and re-judged after every change: per order,
  shipment and ticket the journey records what it booked (``Journey.booked``); when the fact's components
  change (an earlier ad click arrived, a restitched anonymous click joined, a fusion, an earlier notice), the
  old booking is retracted (negative amounts) and the new one booked. Definitions (the in-order result):

  - Order (one per order_id, its earliest completed checkout c): ``checkouts_completed`` 1 and
    ``revenue_minor`` in c's window under (CHECKOUT, c's channel, campaign, c's currency); last-touch
    attribution: campaign = campaign of the latest campaign-carrying touch strictly before c in the journey,
    and then also ``attributed_conversions`` 1 and ``attributed_revenue_minor``; none → campaign "".
  - Shipment: its earliest ``delivered`` notice counts delivered + on time, or late with delay =
    occurred_at - promised_by; its earliest failure (``failed_attempt``/``returned``) counts ``deliveries_failed``
    when it is earlier than the earliest delivered notice (so "failed, then delivered" counts one of each).
  - Ticket: earliest ``opened`` counts tickets_opened; earliest ``resolved`` counts tickets_resolved and, when
    an opening is known, ``resolution_ms_sum`` += max(0, resolved - opened), in the resolution's window.

  Each fact is booked under its event's own window and dims (channel from the journey's touch summaries).
  A fact first seen through a restitched event (e.g. an anonymous checkout) was booked by the anonymous
  journey; it is marked foreign (``booked[key] = None``) and never booked again here.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Any, NamedTuple

from touchpoint.streams import stages as st

if TYPE_CHECKING:  # journey imports this module at runtime
    from touchpoint.streams.journey import Journey

# (event_type, channel, campaign_id or "", currency or "")
Dims = tuple[str, str, str, str]
# What a fact booked: ((window_start, dims, ((component, amount), ...)), ...)
Comps = tuple[tuple[str, int], ...]
Booking = tuple[tuple[int, Dims, Comps], ...]


class Contribution(NamedTuple):
    """Additive metric components of one event for one window and dimension combination."""

    window_start: int
    dims: Dims  # (event_type, channel, campaign_id or "", currency or "")
    components: dict[str, int]


def contributions(j: Journey, event: dict[str, Any], window_ms: int) -> list[Contribution]:
    """Event components of a new event (dims from the event alone; ``j`` is not consulted)."""
    etype = event["event_type"]
    channel = event.get("channel") or "other"
    occurred_at = int(event["occurred_at"])
    ws = occurred_at - occurred_at % window_ms
    p = event.get("payload") or {}
    comps: dict[str, int] = {"touchpoints": 1}
    campaign = currency = ""
    if etype == st.AD_CLICK:
        comps["ad_clicks"] = 1
        comps["ad_spend_minor"] = int(p.get("cost_minor", 0))
        campaign, currency = p.get("campaign_id") or "", p.get("currency") or ""
    elif etype == st.EMAIL_ENGAGEMENT:
        name = st.EMAIL_COMPONENT.get(p.get("action", ""))
        if name:
            comps[name] = 1
    elif etype == st.CHECKOUT:
        currency = p.get("currency") or ""
        if p["status"] != "completed" and p["status"] in st.CHECKOUT_COMPONENT:
            comps[st.CHECKOUT_COMPONENT[p["status"]]] = 1
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
    return [Contribution(ws, (etype, channel, campaign, currency), comps)]


def fact_key(event: dict[str, Any]) -> str | None:
    """The fact an event can change: ``o:<order>`` (completed checkout), ``s:<shipment>``, ``t:<ticket>``."""
    etype = event["event_type"]
    p = event.get("payload") or {}
    if etype == st.CHECKOUT:
        return "o:" + p["order_id"] if p["status"] == "completed" else None
    if etype == st.DELIVERY_NOTICE:
        status = p["status"]
        return "s:" + p["shipment_id"] if status == st.DELIVERED or status in st.DELIVERY_FAILED_STATUSES else None
    if etype == st.SUPPORT_INTERACTION:
        return "t:" + p["ticket_id"] if p["action"] in ("opened", "resolved") else None
    return None


def all_fact_keys(j: Journey) -> list[str]:
    return [*("o:" + k for k in j.orders), *("s:" + k for k in j.shipments), *("t:" + k for k in j.tickets)]


def corrections(j: Journey, keys: list[str], window_ms: int) -> list[Contribution]:
    """Re-judge the facts ``keys`` of ``j``; return -old/+new contributions of those whose booking changed and
    record the new bookings in ``j.booked``."""
    out: list[Contribution] = []
    booked = j.booked
    for key in keys:
        old = booked.get(key, ())
        if old is None:  # foreign: booked by the anonymous journey it came from
            continue
        new = booking(j, key, window_ms)
        if new == old:
            continue
        delta: dict[tuple[int, Dims], dict[str, int]] = {}
        for ws, dims, comps in old:
            cell = delta.setdefault((ws, dims), {})
            for name, amount in comps:
                cell[name] = cell.get(name, 0) - amount
        for ws, dims, comps in new:
            cell = delta.setdefault((ws, dims), {})
            for name, amount in comps:
                cell[name] = cell.get(name, 0) + amount
        for (ws, dims), cell in delta.items():
            cell = {name: amount for name, amount in cell.items() if amount}
            if cell:
                out.append(Contribution(ws, dims, cell))
        if new:
            booked[key] = new
        else:
            booked.pop(key, None)
    return out


def booking(j: Journey, key: str, window_ms: int) -> Booking:
    """What fact ``key`` contributes, judged on the journey as it is now."""
    kind, ident = key[0], key[2:]
    if kind == "o":
        order = j.orders.get(ident)
        if order is None:
            return ()
        t, eid, amount, currency = order[:4]
        campaign = last_campaign_before(j, (t, eid)) or ""
        comps: Comps = (("checkouts_completed", 1), ("revenue_minor", amount))
        if campaign:
            comps += (("attributed_conversions", 1), ("attributed_revenue_minor", amount))
        return ((t - t % window_ms, (st.CHECKOUT, channel_at(j, t, eid), campaign, currency), comps),)
    if kind == "s":
        ship = j.shipments.get(ident)
        if ship is None:
            return ()
        delivered, failure = ship[0], ship[1]
        out: list[tuple[int, Dims, Comps]] = []
        if failure is not None and (delivered is None or failure[:2] < delivered[:2]):
            t, eid = failure[0], failure[1]
            out.append((t - t % window_ms, (st.DELIVERY_NOTICE, channel_at(j, t, eid), "", ""), (("deliveries_failed", 1),)))
        if delivered is not None:
            t, eid, promised = delivered[:3]
            if t <= promised:
                comps = (("deliveries_delivered", 1), ("deliveries_on_time", 1))
            else:
                comps = (("deliveries_delivered", 1), ("deliveries_late", 1), ("delivery_delay_ms_sum", t - promised))
            out.append((t - t % window_ms, (st.DELIVERY_NOTICE, channel_at(j, t, eid), "", ""), comps))
        return tuple(out)
    ticket = j.tickets.get(ident)
    if ticket is None:
        return ()
    opened, resolved = ticket[0], ticket[2]
    out = []
    if opened is not None:
        t, eid = opened
        out.append((t - t % window_ms, (st.SUPPORT_INTERACTION, channel_at(j, t, eid), "", ""), (("tickets_opened", 1),)))
    if resolved is not None:
        t, eid = resolved
        comps = (("tickets_resolved", 1),)
        if opened is not None and t > opened[0]:
            comps += (("resolution_ms_sum", t - opened[0]),)
        out.append((t - t % window_ms, (st.SUPPORT_INTERACTION, channel_at(j, t, eid), "", ""), comps))
    return tuple(out)


def channel_at(j: Journey, t: int, event_id: str) -> str:
    """Channel of the journey's touch (t, event_id) ("other" if not held)."""
    summaries = j.summaries
    pos = bisect_left(summaries, (t, event_id))
    if pos < len(summaries) and summaries[pos][0] == t and (summaries[pos][1] == event_id or not event_id):
        return summaries[pos][3]
    return "other"


def last_campaign_before(j: Journey, key: tuple[int, str]) -> str | None:
    """Campaign of the latest campaign-carrying touch strictly before ``key`` (occurred_at, event_id)."""
    campaigns = j.campaign_touches()
    pos = bisect_left(campaigns, key)  # (t, id) sorts before every (t, id, campaign)
    return campaigns[pos - 1][2] if pos else None
