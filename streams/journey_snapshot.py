"""The ``journey_snapshot`` record of one journey (codec form: times as epoch ms, the stage as its enum symbol).

Every field except ``version`` and ``updated_at`` depends only on the set of events the journey absorbed (see
``journey`` for the definitions of deliveries, tickets, revenue and stage). First / last touch campaign and channel
are taken from the touches before the conversion: strictly before the earliest completed checkout, or that
checkout itself when it is the first touch (so they are never empty).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Any

from touchpoint.streams import stages as st

if TYPE_CHECKING:  # journey imports this module at runtime
    from touchpoint.streams.journey import Journey, JourneyState


def journey_id(owner: str, journey: Journey) -> str:
    """``<owner>:<first touch ms>``: a touch earlier than the journey's start renames the journey."""
    return f"{owner}:{journey.summaries[0][0]}"


def build_snapshot(state: JourneyState, j: Journey, path_limit: int, now_ms: int) -> dict[str, Any]:
    """The snapshot of journey ``j`` of ``state``'s owner, stamped ``updated_at = now_ms``."""
    limit = path_limit
    summaries = j.summaries
    n = len(summaries)
    first = min(j.orders.values()) if j.orders else None
    # Touches "before conversion": strictly before the converting checkout; if the checkout is the first touch,
    # that checkout itself (so first/last touch channel are never empty).
    end = bisect_left(summaries, first[:2]) if first else n
    if end == 0:
        end = 1
    campaigns = j.campaign_touches()
    bound = summaries[end - 1]
    pos = bisect_left(campaigns, (bound[0], bound[1]))
    if pos < len(campaigns) and campaigns[pos][0] == bound[0] and campaigns[pos][1] == bound[1]:
        pos += 1  # the bound touch itself is included
    first_campaign = campaigns[0][2] if pos else None
    last_campaign = campaigns[pos - 1][2] if pos else None
    path = j.path_cache
    if path is None:
        path = j.path_cache = [{"event_type": s[2], "channel": s[3], "occurred_at": s[0]} for s in summaries[:limit]]
    currency = first[3] if first else None
    revenue = sum(o[2] for o in j.orders.values() if o[3] == currency)
    on_time = late = failed = delay = 0
    for delivered, was_failed in j.shipments.values():
        if delivered is not None:
            if delivered[0] <= delivered[2]:
                on_time += 1
            else:
                late += 1
                delay += delivered[0] - delivered[2]
        elif was_failed:
            failed += 1
    opened = resolved = resolution = 0
    for t in j.tickets.values():
        if t[0] is not None:
            opened += 1
        if t[1] is not None:
            resolved += 1
            if t[0] is not None:
                resolution += max(0, t[1] - t[0][0])
    surveys = j.surveys
    return {
        "journey_id": journey_id(state.owner, j),
        "customer_id": state.owner,
        "is_anonymous": state.is_anonymous,
        "merged_into": state.merged_into,
        "version": j.version,
        "updated_at": now_ms,
        "first_touch_at": summaries[0][0],
        "last_touch_at": summaries[-1][0],
        "anonymous_ids": list(j.anonymous_ids),
        "path": list(path),
        "path_truncated": max(0, n - limit),
        "event_count": n,
        "counts_by_type": dict(j.counts),
        "stage": st.STAGES[max(j.stage, 0)],
        "service_contacted": j.service,
        "first_touch_campaign": first_campaign,
        "first_touch_channel": summaries[0][3],
        "last_touch_campaign": last_campaign,
        "last_touch_channel": summaries[end - 1][3],
        "converted": first is not None,
        "converted_at": first[0] if first else None,
        "time_to_convert_ms": first[0] - summaries[0][0] if first else None,
        "orders": len(j.orders),
        "revenue_minor": revenue,
        "currency": currency,
        "deliveries_on_time": on_time,
        "deliveries_late": late,
        "deliveries_failed": failed,
        "delivery_delay_ms_sum": delay,
        "nps_score": surveys["NPS"][2] if "NPS" in surveys else None,
        "csat_score": surveys["CSAT"][2] if "CSAT" in surveys else None,
        "ces_score": surveys["CES"][2] if "CES" in surveys else None,
        "support_tickets_opened": opened,
        "support_tickets_resolved": resolved,
        "resolution_ms_sum": resolution,
    }
