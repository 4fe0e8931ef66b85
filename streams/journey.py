"""Journey state of one owner (a customer id, or an anonymous id not yet stitched) and the pure ``apply`` step.

Guarantees (given at-least-once delivery of events keyed by owner):

* **Idempotent on event_id.** The ids an owner absorbed are kept in its state with the processing time they were
  absorbed and forgotten after ``dedup_horizon_ms``; an id seen again returns ``duplicate=True`` and changes nothing.
* **Order-independent.** Every field of a snapshot except ``version`` and ``updated_at`` depends only on the *set* of
  events absorbed: touches are kept sorted by (occurred_at, event_id), order-dependent fields are recomputed from
  them, per-order / per-shipment / per-ticket facts keep the earliest (or latest) by that same key.
* **Segmentation.** Events of one owner form journeys: a journey is a run of touches with no gap longer than
  ``inactivity_gap_ms``. An event within the gap of a journey (before its start or after its end) joins it; an event
  that bridges two journeys fuses them. ``journey_id`` is ``<owner>:<first touch ms>``, so a touch earlier than the
  journey start renames the journey; the old ids come back in ``ApplyResult.superseded`` with ``merged_into`` set to
  the owner (a non-null ``merged_into`` always means "this journey id is superseded").

Documented choices for the journey's facts (the snapshot fields, built by ``journey_snapshot``):

* Deliveries: in the journey a shipment counts once: on time/late by its earliest ``delivered`` notice (late when
  occurred_at > promised_by, delay = occurred_at - promised_by), else failed if it had a ``failed_attempt`` or
  ``returned``.
* Support: a ticket is opened by its earliest ``opened``, resolved by its latest ``resolved``; resolution time is
  resolved - opened (>= 0).
* Revenue: orders are completed checkouts, one per order_id (earliest completion wins). ``currency`` is the currency
  of the first order; ``revenue_minor`` sums the orders in that currency only (other currencies count as orders).
* Stage: furthest of awareness → feedback; a journey of only support contacts reports ``awareness``.

Metric contributions (metric_window components, with last-touch attribution) follow their own rules, in
``contributions``: event components are booked once per new, non-restitched event; per order / shipment / ticket
the journey records what it booked (``Journey.booked``) and, after every change of the journey (restitched events
and fusions included), books corrections (-old, +new) for the facts whose components changed, so the final metric
windows depend only on the set of events, like the snapshots.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from touchpoint.streams import stages as st
from touchpoint.streams.contributions import (
    Booking, Contribution, Dims, all_fact_keys, contributions, corrections, fact_key,
)  # fmt: skip
from touchpoint.streams.identity import MERGE_MARKER
from touchpoint.streams.journey_snapshot import build_snapshot, journey_id

# Re-exported: the journey's public API includes the contribution record and the journey id.
__all__ = [
    "ApplyResult", "Contribution", "DAY_MS", "Dims", "Journey", "JourneyConfig", "JourneyState", "Summary", "apply",
    "journey_id", "snapshots_of",
]

DAY_MS = 86_400_000

# A touch summary: (occurred_at, event_id, event_type, channel, campaign or None). Sorted by the first two.
Summary = tuple[int, str, str, str, "str | None"]


@dataclass(frozen=True, slots=True)
class JourneyConfig:
    """Knobs of the journey logic (all durations in milliseconds)."""

    inactivity_gap_ms: int = 30 * DAY_MS
    path_limit: int = 100
    dedup_horizon_ms: int = 7 * DAY_MS
    window_ms: int = 60_000
    max_journeys: int = 4

    @classmethod
    def from_settings(cls, settings: Any) -> JourneyConfig:
        """Build from ``touchpoint.config.Settings``."""
        return cls(
            inactivity_gap_ms=int(settings.journey_inactivity_days * DAY_MS),
            path_limit=int(settings.journey_path_limit),
            dedup_horizon_ms=int(settings.dedup_horizon_days * DAY_MS),
        )


@dataclass(slots=True)
class Journey:
    """One journey of an owner. Plain data; see state_codec for the stored form."""

    version: int = 0
    summaries: list[Summary] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    stage: int = -1
    service: bool = False
    # order_id -> (occurred_at, event_id, amount_minor, currency) of its earliest completed checkout
    orders: dict[str, tuple[int, str, int, str]] = field(default_factory=dict)
    # shipment_id -> [earliest delivered (occurred_at, event_id, promised_by) or None,
    #                 earliest failure (occurred_at, event_id) or None]
    shipments: dict[str, list[Any]] = field(default_factory=dict)
    # survey kind -> (occurred_at, event_id, score) of the latest answer
    surveys: dict[str, tuple[int, str, int]] = field(default_factory=dict)
    # ticket_id -> [earliest opened (occurred_at, event_id) or None, resolved_at max or None,
    #               earliest resolved (occurred_at, event_id) or None]
    tickets: dict[str, list[Any]] = field(default_factory=dict)
    anonymous_ids: list[str] = field(default_factory=list)
    # fact key ("o:<order>", "s:<shipment>", "t:<ticket>") -> what it booked in the metric windows (see
    # contributions.corrections); None = foreign (first seen restitched: booked by the anonymous journey)
    booked: dict[str, Booking | None] = field(default_factory=dict)
    # Derived from summaries, never stored (state_codec leaves them out; rebuilt on first use): the path steps
    # handed out in snapshots (earliest path_limit touches) and the campaign-carrying touches, both sorted.
    path_cache: list[dict[str, Any]] | None = field(default=None, compare=False, repr=False)
    campaign_cache: list[tuple[int, str, str]] | None = field(default=None, compare=False, repr=False)

    @property
    def first_at(self) -> int:
        return self.summaries[0][0]

    @property
    def last_at(self) -> int:
        return self.summaries[-1][0]

    def campaign_touches(self) -> list[tuple[int, str, str]]:
        """(occurred_at, event_id, campaign) of the campaign-carrying touches, sorted; cached in campaign_cache."""
        if self.campaign_cache is None:
            self.campaign_cache = [(s[0], s[1], s[4]) for s in self.summaries if s[4]]
        return self.campaign_cache


@dataclass(slots=True)
class JourneyState:
    """Everything known about one journey owner: its journeys (oldest first) and the event ids it absorbed."""

    owner: str
    is_anonymous: bool
    merged_into: str | None = None
    seen: dict[str, int] = field(default_factory=dict)  # event_id -> processing ms it was absorbed
    pruned_at: int = 0
    journeys: list[Journey] = field(default_factory=list)
    # journey ids this owner retired (renamed by an earlier touch, or fused) -> the superseded snapshot sent for
    # each; re-sent by snapshots_of, since the worker may die after storing the state but before sending them
    retired: dict[str, dict[str, Any]] = field(default_factory=dict)


class ApplyResult(NamedTuple):
    state: JourneyState | None
    snapshot: dict[str, Any] | None
    contributions: list[Contribution]
    duplicate: bool
    superseded: list[dict[str, Any]] = []


def apply(
    state: JourneyState | None,
    event: dict[str, Any],
    *,
    restitched: bool = False,
    offset_partition: int = 0,
    cfg: JourneyConfig,
    now_ms: int,
) -> ApplyResult:
    """Absorb one event (or an identity merge marker) into its owner's state.

    The owner of a new state is the event's customer_id, else its anonymous_id (identity.route fills in the
    customer of stitched events). ``restitched`` events update the journey but yield no event components, since
    they were counted when they first arrived under their anonymous id; like every event they can change the
    journey's facts (a stitched click moves the attribution of a later order), whose corrections they return. ``offset_partition`` (the journey-topic
    partition) is accepted for the app's convenience and does not influence the result. The given state is
    consumed: store the returned one.
    """
    if event["event_type"] == MERGE_MARKER:
        return _apply_marker(state, event, cfg, now_ms)
    event_id = event["event_id"]
    if state is not None and event_id in state.seen:
        return ApplyResult(state, None, [], True)
    if state is None:
        customer = event.get("customer_id")
        state = JourneyState(owner=customer or event["anonymous_id"], is_anonymous=not customer, pruned_at=now_ms)
    _prune_seen(state, cfg, now_ms)
    state.seen[event_id] = now_ms

    occurred_at = int(event["occurred_at"])
    fused = len(state.journeys)
    journey, superseded_ids = _place(state, occurred_at, cfg)
    fused -= len(state.journeys)
    contribs = [] if restitched else contributions(journey, event, cfg.window_ms)
    _absorb(journey, event, cfg.path_limit)
    key = fact_key(event)
    if restitched and key is not None and key not in journey.booked:
        journey.booked[key] = None
    if fused > 0:  # journeys fused: every fact may change
        keys = all_fact_keys(journey)
    elif st.campaign_of(event):  # a campaign touch can change the attribution of any later order
        keys = ["o:" + order_id for order_id, order in journey.orders.items() if order[:2] > (occurred_at, event["event_id"])]
        if key is not None and key not in keys:
            keys.append(key)
    else:
        keys = [key] if key is not None else []
    if keys:
        for c in corrections(journey, keys, cfg.window_ms):
            if contribs and c[:2] == contribs[0][:2]:  # same window and dims as the event's own: one cell update
                merged = dict(contribs[0].components)
                for name, amount in c.components.items():
                    merged[name] = merged.get(name, 0) + amount
                contribs[0] = Contribution(c.window_start, c.dims, {k: v for k, v in merged.items() if v})
            else:
                contribs.append(c)
    journey.version += 1
    while len(state.journeys) > cfg.max_journeys:  # forget the oldest journey, never the one just updated
        state.journeys.pop(1 if state.journeys[0] is journey else 0)

    snapshot = build_snapshot(state, journey, cfg.path_limit, now_ms)
    # (own copy of the path: the live snapshot's path list is the journey's cache, which later events change)
    superseded = [dict(snapshot, journey_id=old, merged_into=state.owner, path=list(snapshot["path"]))
                  for old in superseded_ids]
    for snap in superseded:
        state.retired.pop(snap["journey_id"], None)
        state.retired[snap["journey_id"]] = snap
    while len(state.retired) > RETIRED_KEPT:
        del state.retired[next(iter(state.retired))]
    return ApplyResult(state, snapshot, contribs, False, superseded)


RETIRED_KEPT = 4  # superseded snapshots remembered per owner (re-sent with the live ones; renames are rare)


def snapshots_of(state: JourneyState, cfg: JourneyConfig, now_ms: int) -> list[dict[str, Any]]:
    """Snapshots of every journey the state holds, oldest first, then the superseded snapshots of the ids it
    retired last, exactly as they were sent (for re-emitting after a possible crash, or inspecting)."""
    snaps = [build_snapshot(state, j, cfg.path_limit, now_ms) for j in state.journeys]
    if state.retired:
        live = {snap["journey_id"] for snap in snaps}
        snaps.extend(snap for old, snap in state.retired.items() if old not in live)
    return snaps


# --- segmentation -------------------------------------------------------------------------------------------


def _place(state: JourneyState, t: int, cfg: JourneyConfig) -> tuple[Journey, list[str]]:
    """The journey event time ``t`` belongs to (created, or fused when t bridges journeys) and the ids retired."""
    gap = cfg.inactivity_gap_ms
    journeys = state.journeys
    if len(journeys) == 1:  # the common case
        only = journeys[0]
        first, last = only.summaries[0][0], only.summaries[-1][0]
        if first <= t <= last + gap:
            return only, []
    hits = [i for i, j in enumerate(journeys) if j.summaries[0][0] - gap <= t <= j.summaries[-1][0] + gap]
    if not hits:
        journey = Journey()
        starts = [j.summaries[0][0] for j in journeys]
        journeys.insert(bisect_left(starts, t), journey)
        return journey, []
    retired: list[str] = []
    journey = journeys[hits[0]]
    old_id = journey_id(state.owner, journey)
    for i in reversed(hits[1:]):
        other = journeys.pop(i)
        retired.append(journey_id(state.owner, other))
        _fuse(journey, other)
    if t < journey.first_at:
        retired.append(old_id)
    return journey, retired


def _fuse(into: Journey, other: Journey) -> None:
    """Fold journey ``other`` into ``into`` (both of one owner, ``into`` earlier)."""
    into.version = max(into.version, other.version) + 1
    into.summaries = sorted(into.summaries + other.summaries)
    into.path_cache = into.campaign_cache = None
    for k, v in other.counts.items():
        into.counts[k] = into.counts.get(k, 0) + v
    into.stage = max(into.stage, other.stage)
    into.service = into.service or other.service
    for order_id, rec in other.orders.items():
        mine = into.orders.get(order_id)
        if mine is None or rec[:2] < mine[:2]:
            into.orders[order_id] = rec
    for sid, (delivered, failure) in other.shipments.items():
        mine_s = into.shipments.setdefault(sid, [None, None])
        mine_s[0] = _min_opt(mine_s[0], delivered)
        mine_s[1] = _min_opt(mine_s[1], failure)
    for kind, rec3 in other.surveys.items():
        cur = into.surveys.get(kind)
        if cur is None or rec3[:2] > cur[:2]:
            into.surveys[kind] = rec3
    for tid, (opened, resolved, first_res) in other.tickets.items():
        mine_t = into.tickets.setdefault(tid, [None, None, None])
        mine_t[0] = _min_opt(mine_t[0], opened)
        mine_t[1] = _max_opt(mine_t[1], resolved)
        mine_t[2] = _min_opt(mine_t[2], first_res)
    for fkey, theirs in other.booked.items():
        mine_b = into.booked.get(fkey, ())
        # both bookings stay in the windows until corrections() retracts them; foreign only if both are
        into.booked[fkey] = None if mine_b is None and theirs is None else (mine_b or ()) + (theirs or ())
    into.anonymous_ids = sorted(set(into.anonymous_ids) | set(other.anonymous_ids))


def _min_opt(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


def _max_opt(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _prune_seen(state: JourneyState, cfg: JourneyConfig, now_ms: int) -> None:
    # Pruning walks every id, so do it at most 8 times per horizon; ids live between 1 and 1.125 horizons.
    if now_ms - state.pruned_at < cfg.dedup_horizon_ms // 8:
        return
    cutoff = now_ms - cfg.dedup_horizon_ms
    state.seen = {eid: at for eid, at in state.seen.items() if at >= cutoff}
    state.pruned_at = now_ms


def _apply_marker(state: JourneyState | None, marker: dict[str, Any], cfg: JourneyConfig, now_ms: int) -> ApplyResult:
    """The anonymous owner was stitched into a customer: its journeys are superseded (merged_into set)."""
    if state is None or not state.journeys:
        return ApplyResult(state, None, [], False)
    if state.merged_into == marker["merged_into"]:
        return ApplyResult(state, None, [], True)
    state.merged_into = marker["merged_into"]
    snaps = []
    for journey in state.journeys:
        journey.version += 1
        snaps.append(build_snapshot(state, journey, cfg.path_limit, now_ms))
    return ApplyResult(state, snaps[-1], [], False, snaps[:-1])


# --- absorbing one event ------------------------------------------------------------------------------------


def _absorb(j: Journey, event: dict[str, Any], path_limit: int) -> None:
    etype = event["event_type"]
    occurred_at = int(event["occurred_at"])
    event_id = event["event_id"]
    channel = event.get("channel") or "other"
    campaign = st.campaign_of(event)
    summary = (occurred_at, event_id, etype, channel, campaign)
    summaries = j.summaries
    if not summaries or summary > summaries[-1]:
        pos = len(summaries)
        summaries.append(summary)
    else:
        pos = bisect_left(summaries, summary)
        summaries.insert(pos, summary)
    if j.path_cache is not None and pos < path_limit:
        j.path_cache.insert(pos, {"event_type": etype, "channel": channel, "occurred_at": occurred_at})
        if len(j.path_cache) > path_limit:
            j.path_cache.pop()
    if campaign and j.campaign_cache is not None:
        insort(j.campaign_cache, (occurred_at, event_id, campaign))
    j.counts[etype] = j.counts.get(etype, 0) + 1
    rank = st.stage_rank(event)
    if rank > j.stage:
        j.stage = rank
    anon = event.get("anonymous_id")
    if anon and anon not in j.anonymous_ids and event.get("customer_id"):
        insort(j.anonymous_ids, anon)
    p = event.get("payload") or {}
    if etype == st.CHECKOUT:
        if p["status"] == "completed":
            order = j.orders.get(p["order_id"])
            if order is None or (occurred_at, event_id) < order[:2]:
                j.orders[p["order_id"]] = (occurred_at, event_id, int(p["amount_minor"]), p["currency"])
    elif etype == st.DELIVERY_NOTICE:
        status = p["status"]
        if status == st.DELIVERED or status in st.DELIVERY_FAILED_STATUSES:
            ship = j.shipments.setdefault(p["shipment_id"], [None, None])
            if status == st.DELIVERED:
                if ship[0] is None or (occurred_at, event_id) < ship[0][:2]:
                    ship[0] = (occurred_at, event_id, int(p["promised_by"]))
            elif ship[1] is None or (occurred_at, event_id) < ship[1]:
                ship[1] = (occurred_at, event_id)
    elif etype == st.SURVEY_RESPONSE:
        cur = j.surveys.get(p["survey_kind"])
        if cur is None or (occurred_at, event_id) > cur[:2]:
            j.surveys[p["survey_kind"]] = (occurred_at, event_id, int(p["score"]))
    elif etype == st.SUPPORT_INTERACTION:
        j.service = True
        action = p["action"]
        if action == "opened" or action == "resolved":
            ticket = j.tickets.setdefault(p["ticket_id"], [None, None, None])
            if action == "opened":
                ticket[0] = _min_opt(ticket[0], (occurred_at, event_id))
            else:
                ticket[1] = _max_opt(ticket[1], occurred_at)
                ticket[2] = _min_opt(ticket[2], (occurred_at, event_id))
