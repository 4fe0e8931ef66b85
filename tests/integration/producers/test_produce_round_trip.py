"""Round trip through the real broker: SDK-produced touchpoints of every type come back exactly, ordered per key."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from touchpoint.config import Settings
from touchpoint.metrics import REGISTRY
from touchpoint.producers import EventType, TouchpointProducer
from touchpoint.schemas.codec import AvroCodec

pytestmark = pytest.mark.integration

MakeEvents = Callable[..., list[dict[str, Any]]]

EVENTS = 10_000
def _key(event: dict[str, Any]) -> str:
    return event["customer_id"] or event["anonymous_id"]


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_every_type_round_trips_exactly_and_in_order_per_key(
    pipeline_topics: Settings, consume_all: Callable[..., list[Any]], make_events: MakeEvents
) -> None:
    settings = pipeline_topics
    events = make_events(EVENTS)
    assert {e["event_type"] for e in events} == {t.value for t in EventType}
    produced_before = {t.value: _sample("touchpoint_producer_events_produced_total", {"event_type": t.value}) for t in EventType}
    latency_before = _sample("touchpoint_producer_send_latency_seconds_count")

    with TouchpointProducer(settings) as producer:
        futures = [producer.send(e) for e in events]
    reports = [f.result(timeout=0) for f in futures]  # close() flushed: every result is already there

    records = consume_all(settings.events_topic, EVENTS)
    assert len(records) == EVENTS

    codec = AvroCodec.from_settings(settings)
    sent_by_id = {e["event_id"]: e for e in events}
    received: dict[str, list[tuple[int, int, dict[str, Any]]]] = defaultdict(list)
    partitions_of: dict[str, set[int]] = defaultdict(set)
    for record in records:
        event = codec.decode(record.value())
        assert event == sent_by_id[event["event_id"]]
        assert record.key() == _key(event).encode("utf-8")
        received[_key(event)].append((record.partition(), record.offset(), event))
        partitions_of[_key(event)].add(record.partition())
    assert len({r[2]["event_id"] for rs in received.values() for r in rs}) == EVENTS

    # One key, one partition; and per key, the broker's order is the order of send().
    assert all(len(p) == 1 for p in partitions_of.values())
    sent_by_key: dict[str, list[str]] = defaultdict(list)
    for e in events:
        sent_by_key[_key(e)].append(e["event_id"])
    assert sent_by_key.keys() == received.keys()
    for key, sent_ids in sent_by_key.items():
        got = [event["event_id"] for _, _, event in sorted(received[key], key=lambda r: r[1])]
        assert got == sent_ids, f"order differs for key {key}"

    # The futures tell where each event landed, and the metrics counted every delivery.
    where = {r[2]["event_id"]: (r[0], r[1]) for rs in received.values() for r in rs}
    assert all(where[rep.event_id] == (rep.partition, rep.offset) for rep in reports)
    per_type = {t.value: sum(1 for e in events if e["event_type"] == t.value) for t in EventType}
    for event_type, count in per_type.items():
        after = _sample("touchpoint_producer_events_produced_total", {"event_type": event_type})
        assert after - produced_before[event_type] == count
    assert _sample("touchpoint_producer_send_latency_seconds_count") - latency_before == EVENTS


def test_send_many_and_callbacks_report_every_delivery(
    pipeline_topics: Settings, consume_all: Callable[..., list[Any]], make_events: MakeEvents
) -> None:
    settings = pipeline_topics
    events = make_events(700, seed=11)
    seen: list[tuple[object, object]] = []
    with TouchpointProducer(settings) as producer:
        for start in range(0, len(events), 100):
            producer.send_many(events[start:start + 100], on_delivery=lambda err, rep: seen.append((err, rep)))
    assert [err for err, _ in seen] == [None] * len(events)
    assert sorted(rep.event_id for _, rep in seen) == sorted(e["event_id"] for e in events)  # type: ignore[attr-defined]
    codec = AvroCodec.from_settings(settings)
    got = sorted((codec.decode(r.value()) for r in consume_all(settings.events_topic, len(events))), key=lambda e: e["event_id"])
    assert got == sorted(events, key=lambda e: e["event_id"])


def test_a_full_local_queue_applies_back_pressure_instead_of_failing(
    pipeline_topics: Settings, consume_all: Callable[..., list[Any]], make_events: MakeEvents
) -> None:
    settings = pipeline_topics
    events = make_events(500, seed=12)
    # A 20-message local queue overflows (BufferError) many times over; send() must wait for room, not fail.
    with TouchpointProducer(settings, config={"queue.buffering.max.messages": 20}) as producer:
        waits = []
        wait_for_room = producer._produce_when_room
        producer._produce_when_room = lambda *a: (waits.append(1), wait_for_room(*a))  # type: ignore[method-assign]
        futures = [producer.send(e) for e in events]
    assert len(waits) > 10, "the local queue never overflowed: the test did not exercise back-pressure"
    assert all(f.exception(timeout=0) is None for f in futures)
    codec = AvroCodec.from_settings(settings)
    got = [codec.decode(r.value())["event_id"] for r in consume_all(settings.events_topic, len(events))]
    assert sorted(got) == sorted(e["event_id"] for e in events)
