"""Identity stitching: the alias state of ONE anonymous id and the pure ``route`` step.

Routing (the app side): every valid event with an anonymous_id is re-keyed to the identity topic by it
(``identity_key``), so all events of one anonymous id meet in one partition, in order, whatever partition the
producer wrote them to. Customer-only events skip ``route`` (its first row below) and go from the decode step
straight to the journey topic keyed by customer. ``route`` then decides the journey owner each event goes
to (the journey topic is keyed by owner):

=====================================  =================================================================
event carries                          outputs
=====================================  =================================================================
customer only                          the event, keyed by its customer
anonymous only, alias unknown          the event, keyed by the anonymous id (a provisional anonymous
                                       journey); the event is remembered in a bounded buffer
anonymous only, alias known            the event with ``customer_id`` filled in, keyed by the customer
both, alias unknown (the login)        an IdentityMerge record; every buffered event re-emitted with
                                       ``customer_id`` filled in, keyed by the customer, ``restitched=True``;
                                       the event itself keyed by the customer; a merge marker keyed by the
                                       anonymous id that closes the anonymous journey (merged_into)
both, alias known to that customer     the event, keyed by the customer
both, alias known to ANOTHER customer  first login wins: the alias stays; the event goes to the customer it
                                       names (its own customer_id), ``conflict=True``, ``conflicts`` += 1
=====================================  =================================================================

Guarantees: deterministic and idempotent. Replaying the merging event (e.g. after a crash between the state
write and the sends) returns the same outputs — the buffer is kept after the merge for exactly that — but no
second IdentityMerge record; the journey step drops the re-sent events as duplicates. Buffer overflow: events
beyond ``buffer_limit`` stay in the anonymous journey only and are counted in ``overflow``; ``events_moved``
reports what was actually moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

MERGE_MARKER: Final = "__MERGED__"


@dataclass(slots=True)
class AliasState:
    """What one anonymous id is known to be. Plain data; see state_codec."""

    anonymous_id: str
    customer_id: str | None = None
    buffer: dict[str, dict[str, Any]] = field(default_factory=dict)  # event_id -> event, arrival order
    overflow: int = 0
    merge_event_id: str | None = None
    merged_at: int | None = None
    conflicts: int = 0


class RoutedEvent(NamedTuple):
    journey_key: str
    event: dict[str, Any]
    restitched: bool


class RouteResult(NamedTuple):
    alias: AliasState | None
    outputs: list[RoutedEvent]
    merge: dict[str, Any] | None
    conflict: bool
    changed: bool


def identity_key(event: dict[str, Any]) -> str:
    """Key of the identity topic: the anonymous id when the event has one, else the customer id."""
    return str(event.get("anonymous_id") or event["customer_id"])


def is_merge_marker(event: dict[str, Any]) -> bool:
    return event.get("event_type") == MERGE_MARKER


def merge_marker(anonymous_id: str, customer_id: str, cause: dict[str, Any]) -> dict[str, Any]:
    """The marker sent to the anonymous owner's journey: it is now superseded by ``customer_id``'s."""
    return {
        "event_id": f"merge:{anonymous_id}:{cause['event_id']}",
        "event_type": MERGE_MARKER,
        "occurred_at": cause["occurred_at"],
        "anonymous_id": anonymous_id,
        "customer_id": None,
        "merged_into": customer_id,
    }


def _as_customer(event: dict[str, Any], customer_id: str) -> dict[str, Any]:
    return event if event.get("customer_id") == customer_id else {**event, "customer_id": customer_id}


def route(alias: AliasState | None, event: dict[str, Any], now_ms: int, *, buffer_limit: int = 1000) -> RouteResult:
    """Decide the journey owner(s) of ``event`` given the alias state of its anonymous id (see module doc)."""
    anon: str | None = event.get("anonymous_id")
    customer: str | None = event.get("customer_id")
    if not anon:
        return RouteResult(alias, [RoutedEvent(str(customer), event, False)], None, False, False)
    if alias is None:
        alias = AliasState(anonymous_id=anon)
        changed = True
    else:
        changed = False
    known = alias.customer_id

    if not customer:
        event_id = event["event_id"]
        if event_id in alias.buffer:
            # A replay (or re-send) of an event buffered before the login goes where it went the first time: the
            # anonymous journey, which counted it, dedups it. Re-routing it to the customer as a new event would
            # count its metrics twice if it overtook the restitched copy (seen after SIGKILL and rebalances).
            return RouteResult(alias, [RoutedEvent(anon, event, False)], None, False, changed)
        if known:
            return RouteResult(alias, [RoutedEvent(known, _as_customer(event, known), False)], None, False, changed)
        if event_id not in alias.buffer:
            if len(alias.buffer) < buffer_limit:
                alias.buffer[event_id] = event
            else:
                alias.overflow += 1
            changed = True
        return RouteResult(alias, [RoutedEvent(anon, event, False)], None, False, changed)

    if known is None:
        alias.customer_id = customer
        alias.merge_event_id = event["event_id"]
        alias.merged_at = now_ms
        merge = {
            "anonymous_id": anon,
            "customer_id": customer,
            "merged_at": now_ms,
            "event_id": event["event_id"],
            "event_occurred_at": event["occurred_at"],
            "events_moved": len(alias.buffer),
        }
        return RouteResult(alias, _merge_outputs(alias, event), merge, False, True)
    if known == customer:
        if event["event_id"] == alias.merge_event_id:
            return RouteResult(alias, _merge_outputs(alias, event), None, False, changed)
        return RouteResult(alias, [RoutedEvent(customer, event, False)], None, False, changed)
    # First login wins: the anonymous id stays with the first customer; this event still belongs to the
    # customer it names. Replays count the conflict again (a counter, not a fact the journeys depend on).
    alias.conflicts += 1
    return RouteResult(alias, [RoutedEvent(customer, event, False)], None, True, True)


def _merge_outputs(alias: AliasState, event: dict[str, Any]) -> list[RoutedEvent]:
    customer = alias.customer_id
    assert customer is not None
    outputs = [RoutedEvent(customer, _as_customer(e, customer), True) for e in alias.buffer.values()]
    outputs.append(RoutedEvent(customer, event, False))
    outputs.append(RoutedEvent(alias.anonymous_id, merge_marker(alias.anonymous_id, customer, event), False))
    return outputs
