"""Realistic synthetic touchpoint traffic, its ground truth, and the ways to ship it (JSON Lines or Kafka).

    sim = simulate(SimulationConfig(customers=2000, seed=7))
    write_jsonl(sim.arrived, sys.stdout)       # what `touchpoint produce` reads
    produce(sim.arrived, settings)             # or straight through the producer SDK
    sim.truth                                  # what the pipeline must report

Determinism: the same config (seed, customers, days, start) gives the same events, byte for byte, in the
same arrival order. Every person has a random stream of their own, seeded from (seed, person index).
Arrival: mostly in event-time order; ~6 % held back by up to 10 minutes (out of order), ~1.5 % sent twice
with the same event_id (exact duplicates), as collectors with retries and offline buffers do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any

from touchpoint.config import Settings
from touchpoint.producers.simulation.arrival import ArrivalModel, arrange, arrival_stats
from touchpoint.producers.simulation.catalog import DAY_MS
from touchpoint.producers.simulation.customers import Event
from touchpoint.producers.simulation.journeys import person_events
from touchpoint.producers.simulation.truth import compute_truth
from touchpoint.producers.simulation.retention import retention_person_events
from touchpoint.producers.simulation.truth_customers import compute_customer_truth

# "journeys": one buying journey per person (the default output); "retention": customer lives over months.
PROFILES = ("journeys", "retention")

# Fixed default start so that a seed alone pins the output; pass `start` for "recent" traffic.
DEFAULT_START = datetime(2026, 1, 1, tzinfo=timezone.utc)

Progress = Callable[[int], None]


@dataclass(frozen=True)
class SimulationConfig:
    customers: int = 2_000
    days: float = 30.0
    seed: int = 1
    start: datetime = DEFAULT_START
    arrival: ArrivalModel = field(default_factory=ArrivalModel)
    profile: str = "journeys"  # one of PROFILES: "retention" simulates customer lives over months

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return self.start_ms + int(self.days * DAY_MS)

    @property
    def replay_lateness_seconds(self) -> int:
        """Allowed lateness that lets the worker's windows count every event when this whole span is replayed in
        seconds: partitions are consumed at different speeds, so a replay looks days late to a live-stream watermark."""
        return int(self.days * 86_400) + 3_600


@dataclass(frozen=True)
class Simulation:
    config: SimulationConfig
    arrived: list[Event]  # arrival order, duplicates included
    truth: dict[str, Any]


def simulate(config: SimulationConfig, progress: Progress | None = None) -> Simulation:
    """Generate every person's events, arrange their arrival, and compute the truth of the deduplicated stream."""
    if config.customers < 0:
        raise ValueError("customers must be >= 0")
    if config.days <= 0:
        raise ValueError("days must be > 0")
    if config.profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}")
    events: list[Event] = []
    start, end = config.start_ms, config.end_ms
    people = retention_person_events if config.profile == "retention" else person_events
    for index in range(config.customers):
        events.extend(people(config.seed, index, start, end))
        if progress is not None and (index % 100 == 99 or index == config.customers - 1):
            progress(100 if index % 100 == 99 else index % 100 + 1)
    arrived = arrange(events, config.seed, config.arrival)
    truth = compute_truth(arrived)
    truth["generated"] = {
        "seed": config.seed,
        "people": config.customers,
        "start": config.start.isoformat(),
        "days": config.days,
        **arrival_stats(arrived),
    }
    if config.profile == "retention":
        truth["generated"]["profile"] = config.profile
        truth["retention"] = compute_customer_truth(arrived)
    return Simulation(config, arrived, truth)


def to_json_line(event: Event) -> str:
    """One event in the documented JSON shape (`touchpoint produce` reads it)."""
    from touchpoint.schemas.json_shape import event_to_json

    return json.dumps(event_to_json(event), separators=(",", ":"), ensure_ascii=False)


def write_jsonl(events: list[Event], out: IO[str], progress: Progress | None = None) -> int:
    lines = 0
    for event in events:
        out.write(to_json_line(event))
        out.write("\n")
        lines += 1
        if progress is not None and lines % 1000 == 0:
            progress(1000)
    if progress is not None and lines % 1000:
        progress(lines % 1000)
    return lines


def write_truth(truth: dict[str, Any], out: IO[str]) -> None:
    json.dump(truth, out, indent=2, sort_keys=True)
    out.write("\n")


class Pacer:
    """Holds a sender to `rate` events per second (None: as fast as possible), in small bursts."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._t0 = time.monotonic()
        self._sent = 0

    def tick(self, n: int = 1) -> None:
        self._sent += n
        if not self.rate:
            return
        ahead = self._sent / self.rate - (time.monotonic() - self._t0)
        if ahead > 0.005:
            time.sleep(ahead)


def produce(events: list[Event], settings: Settings, rate: float | None = None, progress: Progress | None = None,
            stamp: Callable[[int, Event], None] | None = None, batch: int = 500) -> int:
    """Send events through the producer SDK (at-least-once; duplicates in `events` are sent as duplicates).

    stamp(i, event), when given, is called right before event i is sent (the benchmark records send times).
    Returns the number of events sent; raises when any delivery failed.
    """
    from touchpoint.producers.producer import TouchpointProducer

    failures: list[BaseException] = []

    def on_delivery(error: BaseException | None, _report: object) -> None:
        if error is not None:
            failures.append(error)

    pacer = Pacer(rate)
    chunk = max(1, min(batch, int(rate / 20) if rate else batch))
    with TouchpointProducer.from_settings(settings) as producer:
        for i in range(0, len(events), chunk):
            part = events[i:i + chunk]
            if stamp is not None:
                for j, event in enumerate(part):
                    stamp(i + j, event)
            producer.send_many(part, on_delivery)
            pacer.tick(len(part))
            if progress is not None:
                progress(len(part))
    if failures:
        raise failures[0]
    return len(events)
