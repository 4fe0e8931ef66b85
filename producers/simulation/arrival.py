"""How events reach the pipeline: mostly in event-time order, some late (bounded), a few sent twice.

Real collectors retry (the same event_id arrives again) and buffer on devices (an event arrives after
events that happened later). Both are bounded here so the stream stays within the worker's allowed lateness.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from touchpoint.producers.simulation.customers import Event


@dataclass(frozen=True)
class ArrivalModel:
    """duplicate_share: events re-sent with the same event_id; late_share: events held back up to max_delay_ms."""

    duplicate_share: float = 0.015
    late_share: float = 0.06
    max_delay_ms: int = 10 * 60_000
    max_resend_ms: int = 2 * 60_000


def arrange(events: list[Event], seed: int, model: ArrivalModel = ArrivalModel()) -> list[Event]:
    """Events in the order they arrive, duplicates included (the same dict object appears twice)."""
    rng = random.Random(f"touchpoint-arrival:{seed}")
    keyed: list[tuple[int, int, Event]] = []
    seq = 0
    for event in events:
        if rng.random() < model.late_share:
            delay = rng.randint(30_000, model.max_delay_ms)
        else:
            delay = min(30_000, int(rng.expovariate(1 / 1_500)))
        arrival = event["occurred_at"] + delay
        keyed.append((arrival, seq, event))
        seq += 1
        if rng.random() < model.duplicate_share:
            keyed.append((arrival + rng.randint(200, model.max_resend_ms), seq, event))
            seq += 1
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [event for _, _, event in keyed]


def identity_key(event: Event) -> str:
    """The id the producer keys the event by: customer_id, else anonymous_id."""
    return str(event["customer_id"] or event["anonymous_id"])


def arrival_stats(arrived: list[Event]) -> dict[str, int]:
    """Counts a reader can check: events sent, exact duplicates, and events arriving after a later one of the same key."""
    seen: set[str] = set()
    latest: dict[str, int] = {}
    duplicates = out_of_order = 0
    for event in arrived:
        if event["event_id"] in seen:
            duplicates += 1
            continue
        seen.add(event["event_id"])
        key = identity_key(event)
        if event["occurred_at"] < latest.get(key, event["occurred_at"]):
            out_of_order += 1
        latest[key] = max(latest.get(key, event["occurred_at"]), event["occurred_at"])
    return {"events_sent": len(arrived), "duplicates_sent": duplicates, "out_of_order": out_of_order}
