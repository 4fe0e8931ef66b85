"""Upgrading a worker whose faust agent read the events topic (group ``<worker_id>``) to the batch consumer (group
``<worker_id>-decode``): the new group continues where the old one stopped instead of re-reading the topic, whose
events the journey state may no longer recognise as duplicates (dedup horizon)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.helpers import wait_until
from tests.integration.streams.events import MIN, T0, page_view
from tests.integration.streams.harness import Pipeline

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def _commit_end_offsets(p: Pipeline, group: str) -> int:
    """What the previous worker version left behind: ``group`` committed the end of every events partition."""
    topic = p.topic("events")
    c = Consumer({"bootstrap.servers": p.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        ends = [TopicPartition(topic, q, c.get_watermark_offsets(TopicPartition(topic, q), timeout=10)[1]) for q in parts]
        c.commit(offsets=ends, asynchronous=False)
        return sum(tp.offset for tp in ends)
    finally:
        c.close()


def _processed(text: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("touchpoint_stream_events_processed_total{"))


def test_the_upgraded_worker_continues_where_the_old_group_stopped(pipeline: Pipeline) -> None:
    old = [page_view(T0 + i * MIN, customer=f"old-{i}") for i in range(6)]
    new = [page_view(T0 + (10 + i) * MIN, customer=f"new-{i}") for i in range(3)]
    pipeline.send_events(old)
    assert _commit_end_offsets(pipeline, pipeline.worker_id) == len(old)
    pipeline.send_events(new)
    worker = pipeline.start_worker()

    def owners() -> set[str]:
        return {j["customer_id"] for j in pipeline.journeys().values() if j["merged_into"] is None}

    wait_until(lambda: owners() == {"new-0", "new-1", "new-2"}, timeout=90, what="journeys of the 3 new events only")
    time.sleep(2)  # nothing else arrives: the 6 old events are not read again
    assert owners() == {"new-0", "new-1", "new-2"}
    assert _processed(worker.metrics_text()) == 3
    assert worker.stop() == 0
    assert pipeline.uncommitted_events() == 0
