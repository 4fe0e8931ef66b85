"""Rows ClickHouse refuses go to the dead-letter topic with the reason; nothing is dropped silently."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer

from touchpoint.dead_letter import parse_headers
from touchpoint.sinks.loop import SinkLoop
from touchpoint.sinks.store import StoreRejectedError

from tests.helpers import wait_until
from tests.integration.sinks.conftest import journey, merge, produce, sink_settings, touchpoint


def read_dead_letters(settings, expected: int) -> list:
    consumer = Consumer(settings.kafka_config(**{"group.id": f"dlq-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest"}))
    consumer.subscribe([settings.dead_letter_topic])
    seen: list = []
    try:
        def enough() -> bool:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                seen.append(msg)
            assert len(seen) >= expected, f"{len(seen)} dead letters"
            return True

        wait_until(enough, timeout=30, what=f"{expected} dead letters", interval=0)
        extra = consumer.poll(2)  # nothing more may arrive
        assert extra is None or extra.error() is not None, "more dead letters than expected"
    finally:
        consumer.close()
    return seen


def test_rejected_and_undecodable_records_are_dead_lettered_once_with_reason(store, pipeline_topics, codec):
    settings = sink_settings(pipeline_topics)
    good = [codec.encode(journey(f"c-{i}:1", 1), "journey_snapshot") for i in range(5)]
    rejected = codec.encode(journey("c-bad:1", -1), "journey_snapshot")  # breaks CHECK version >= 0
    garbage = b"not avro at all"
    values = good[:2] + [rejected] + good[2:4] + [garbage] + good[4:]
    produce(settings, settings.journeys_topic, values, keys=["k"] * len(values), partition=0)
    # the events topic: a poison record is the worker's to dead-letter; the sink counts and skips it
    produce(settings, settings.events_topic, [b"garbage", codec.encode(touchpoint("PAGE_VIEW", 1))], keys=["c", "c"])

    stats = SinkLoop(settings, store).run(idle_exit=2)

    assert stats.rows_inserted == {"journeys": 5, "touchpoints": 1}
    assert stats.skipped_invalid == 1 and stats.dead_letters == 2
    assert sorted(r[0] for r in store.query_rows(f"SELECT journey_id FROM {store.table('journeys')}")) == [
        f"c-{i}:1" for i in range(5)]
    letters = read_dead_letters(settings, 2)
    by_kind = {parse_headers(m.headers())["dlq.kind"]: m for m in letters}
    assert set(by_kind) == {"rejected_by_store", "undecodable"}
    rej = parse_headers(by_kind["rejected_by_store"].headers())
    assert by_kind["rejected_by_store"].value() == rejected  # original bytes
    assert rej["dlq.stage"] == "sink" and rej["dlq.source.topic"] == settings.journeys_topic
    assert rej["dlq.source.offset"] == "2" and "VIOLATED_CONSTRAINT" in rej["dlq.reason"]
    assert by_kind["undecodable"].value() == garbage
    assert parse_headers(by_kind["undecodable"].headers())["dlq.source.offset"] == "5"


@pytest.mark.parametrize("resume_from_store", [True, False], ids=["restart-position-read", "insert"])
def test_a_missing_table_stops_the_sink_instead_of_dead_lettering_everything(store, pipeline_topics, codec,
                                                                             resume_from_store):
    settings = sink_settings(pipeline_topics, sink_resume_from_store=resume_from_store)
    store.command(f"DROP TABLE {store.table('identity_merges')}")
    produce(settings, settings.merges_topic, [codec.encode(merge("a-1", "c-1"), "identity_merge")], keys=["c-1"])
    loop = SinkLoop(settings, store)
    with pytest.raises(StoreRejectedError, match="sink migrate"):
        loop.run(idle_exit=2)
    assert loop.stats.dead_letters == 0
