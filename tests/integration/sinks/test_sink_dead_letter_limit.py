"""The sink's dead-letter ratio limit stops it loudly, and its lag gauge keeps telling the truth while it is paused."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import Consumer, TopicPartition

from touchpoint.metrics import REGISTRY
from touchpoint.sinks.loop import DeadLetterRatioError, SinkLoop
from touchpoint.sinks.store import Store

from tests.helpers import wait_until
from tests.integration.sinks.conftest import journey, produce, sink_settings, touchpoint


def committed(settings, topic: str) -> int:
    consumer = Consumer(settings.kafka_config(**{"group.id": settings.sink_group, "enable.auto.commit": False}))
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
    finally:
        consumer.close()


def test_the_sink_stops_when_too_many_recent_records_are_dead_lettered(store, pipeline_topics, codec):
    settings = sink_settings(pipeline_topics, sink_dead_letter_min_records=20, sink_dead_letter_max_ratio=0.5)
    values = []
    for i in range(60):  # 3 of 4 records are garbage: 75 % > 50 %
        values.append(codec.encode(journey(f"c-{i}:1", 1), "journey_snapshot") if i % 4 == 0 else b"garbage")
    produce(settings, settings.journeys_topic, values, keys=["k"] * len(values), partition=0)
    loop = SinkLoop(settings, store)
    with pytest.raises(DeadLetterRatioError, match="TOUCHPOINT_SINK_DEAD_LETTER_MAX_RATIO"):
        loop.run(idle_exit=5)
    # It stopped instead of diverting all 45 garbage records, and committed nothing past the trip.
    assert 10 < loop.stats.dead_letters < 45
    assert committed(settings, settings.journeys_topic) < 60


def test_a_good_stream_with_a_few_dead_letters_does_not_trip_the_limit(store, pipeline_topics, codec):
    settings = sink_settings(pipeline_topics, sink_dead_letter_min_records=20, sink_dead_letter_max_ratio=0.5)
    values = [codec.encode(journey(f"c-{i}:1", 1), "journey_snapshot") if i % 5 else b"garbage" for i in range(60)]
    produce(settings, settings.journeys_topic, values, keys=["k"] * len(values), partition=0)
    stats = SinkLoop(settings, store).run(idle_exit=2)
    assert stats.dead_letters == 12 and stats.rows_inserted == {"journeys": 48}


def lag_gauge(topic: str) -> float | None:
    return REGISTRY.get_sample_value("touchpoint_sink_consumer_lag_messages", {"topic": topic})


def test_the_lag_gauge_grows_with_the_log_while_the_sink_is_paused(store, pipeline_topics, codec, tmp_path):
    faults = tmp_path / "faults"
    faults.mkdir()
    settings = sink_settings(pipeline_topics, sink_fault_dir=faults, sink_retry_max_seconds=1.0)
    loop = SinkLoop(settings, Store(store.client, store.database, dsn=store.dsn, fault_dir=faults))
    topic = settings.events_topic

    def send(start: int, n: int) -> None:
        events = [touchpoint("PAGE_VIEW", i, f"c-{i % 7}") for i in range(start, start + n)]
        produce(settings, topic, [codec.encode(e) for e in events], keys=[e["customer_id"] for e in events])

    runner = threading.Thread(target=loop.run, daemon=True)
    runner.start()
    try:
        send(0, 100)
        wait_until(lambda: loop.stats.total_rows() == 100, timeout=60, what="the first 100 rows stored")
        (faults / "insert_unavailable").touch()
        send(100, 100)
        wait_until(lambda: loop._paused, timeout=30, what="the sink paused by the outage")
        send(200, 300)
        # Nothing is consumed while paused: the gauge must count at least the 300 sent since, and then grow by
        # exactly what is produced next (a stale gauge would stay put).
        first = wait_until(lambda: (lag_gauge(topic) or 0) >= 300 and lag_gauge(topic), timeout=30,
                           what="lag >= 300 while paused")
        send(500, 200)
        wait_until(lambda: lag_gauge(topic) == first + 200, timeout=30, what=f"lag {first} + 200 while paused")
        assert loop._paused
        (faults / "insert_unavailable").unlink()
        wait_until(lambda: loop.stats.total_rows() == 700, timeout=60, what="all 700 rows after the outage")
        wait_until(lambda: lag_gauge(topic) == 0, timeout=30, what="lag gauge back to 0")
    finally:
        loop.stop()
        runner.join(30)
    assert not runner.is_alive()
