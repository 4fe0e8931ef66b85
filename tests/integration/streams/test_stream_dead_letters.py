"""Poison messages end in the dead-letter topic exactly once with their reason; good events keep flowing; the
dead-letter ratio guard stops the worker loudly."""

from __future__ import annotations

import json
import random

import pytest

from tests.helpers import wait_until
from tests.integration.streams.events import MIN, T0, page_view
from tests.integration.streams.harness import Pipeline
from touchpoint.dead_letter import parse_headers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def test_poison_messages_are_dead_lettered_once_while_good_events_flow(pipeline: Pipeline) -> None:
    codec = pipeline.codec
    good = [page_view(T0 + i * MIN, customer=f"cust-{i % 3}") for i in range(12)]
    valid_bytes = codec.encode(good[0])
    bad_event = dict(good[1], event_id="not-a-uuid")
    poison = {
        # seeded: random bytes that began with the single-object marker (1 in 65536) would be "unknown_schema"
        b"random": (random.Random(64).randbytes(64), "undecodable"),
        b"truncated": (valid_bytes[: len(valid_bytes) // 2], "undecodable"),
        b"unknown-fp": (b"\xc3\x01" + b"\x13\x37" * 4 + valid_bytes[10:], "unknown_schema"),
        b"invalid": (codec.encode(bad_event), "invalid"),
    }
    names = list(poison)
    for i, e in enumerate(good):  # good and poison records interleaved
        pipeline.send_events([e])
        if i % 3 == 0:
            pipeline.send_raw(names[i // 3], poison[names[i // 3]][0], headers=[("origin", b"test")])
    pipeline.flush()
    worker = pipeline.start_worker()

    def live_events() -> int:
        return sum(j["event_count"] for j in pipeline.journeys().values() if j["merged_into"] is None)

    wait_until(lambda: live_events() == 12, timeout=60, what="all 12 good events in journeys")
    wait_until(lambda: len(pipeline.read("dead-letters")) >= 4, timeout=30, what="4 dead letters")
    # Every record of the events topic, poison included, was read: the worker's lag gauge says so (librdkafka
    # statistics every 5 s).
    lag_line = f'touchpoint_stream_consumer_lag_messages{{topic="{pipeline.topic("events")}"}} 0.0'
    wait_until(lambda: lag_line in worker.metrics_text(), timeout=30, what="consumer lag 0 on /metrics")
    assert worker.stop() == 0
    letters = pipeline.read("dead-letters")
    assert len(letters) == 4, [(k, parse_headers(h)) for k, _, h, _, _ in letters]
    by_key = {k: (v, parse_headers(h), dict((n, x) for n, x in h if not n.startswith("dlq."))) for k, v, h, _, _ in letters}
    assert set(by_key) == set(poison)
    for key, (value, kind) in poison.items():
        got_value, dlq, other = by_key[key]
        assert got_value == value  # the original bytes, untouched
        assert other == {"origin": b"test"}  # the original headers kept
        assert dlq["dlq.kind"] == kind and dlq["dlq.stage"] == "worker"
        assert dlq["dlq.source.topic"] == pipeline.topic("events")
        assert dlq["dlq.reason"]
    assert "event_id" in by_key[b"invalid"][1]["dlq.reason"]
    assert "truncated" in by_key[b"truncated"][1]["dlq.reason"] or "corrupt" in by_key[b"truncated"][1]["dlq.reason"]
    assert "fingerprint" in by_key[b"unknown-fp"][1]["dlq.reason"]


def test_dead_letter_ratio_guard_stops_the_worker_loudly(pipeline: Pipeline) -> None:
    for i in range(40):
        pipeline.send_raw(b"k", b"garbage-%d" % i)
        if i % 4 == 0:
            pipeline.send_events([page_view(T0 + i, customer="c")])
    pipeline.flush()
    worker = pipeline.start_worker(env={"TOUCHPOINT_DEAD_LETTER_MIN_EVENTS": "20",
                                        "TOUCHPOINT_DEAD_LETTER_MAX_RATIO": "0.5"})
    assert worker.proc is not None
    code = worker.proc.wait(90)
    log = worker.log()
    assert code == 1, log[-3000:]
    assert "dead-lettered" in log and "TOUCHPOINT_DEAD_LETTER_MAX_RATIO" in log
    # It stopped instead of diverting everything: not all 40 records went to the dead-letter topic.
    assert 10 < len(pipeline.read("dead-letters")) < 40


def test_a_bad_event_inside_a_frame_is_dead_lettered_alone_and_the_rest_of_the_frame_flows(pipeline: Pipeline) -> None:
    """The worker's internal topics carry frames of many events: one malformed item (or a record that is no frame at
    all) must cost only itself, with its place in the frame in the dead letter."""
    from touchpoint.streams import internal

    worker = pipeline.start_worker()
    pipeline.send_events([page_view(T0, customer="warm-up")])
    wait_until(lambda: "warm-up" in str(pipeline.journeys()), timeout=90, what="worker up and processing")
    good = [page_view(T0 + i * MIN, customer="c-frame") for i in range(2)]
    topic = f"{pipeline.worker_id}-journey-repartition"
    part = internal.Partitioner(pipeline.partitions)("c-frame")
    frame = b"F" + json.dumps([["c-frame", 0, good[0]], ["c-frame", 0, {"no": "event id"}], ["c-frame", 0, good[1]]]).encode()
    producer = pipeline._producer
    producer.produce(topic, frame, partition=part)
    producer.produce(f"{pipeline.worker_id}-identity-repartition", b"\x00not a frame", b"k", partition=0)
    pipeline.flush()

    def frame_journey() -> int:
        return sum(j["event_count"] for j in pipeline.journeys().values() if j["customer_id"] == "c-frame" and j["merged_into"] is None)

    wait_until(lambda: frame_journey() == 2, timeout=60, what="both good events of the frame in the journey")
    wait_until(lambda: len(pipeline.read("dead-letters")) >= 2, timeout=30, what="2 dead letters")
    assert worker.stop() == 0
    letters = {parse_headers(h)["dlq.source.topic"]: (k, v, parse_headers(h)) for k, v, h, _, _ in pipeline.read("dead-letters")}
    assert set(letters) == {topic, f"{pipeline.worker_id}-identity-repartition"}
    key, value, dlq = letters[topic]
    assert key == b"c-frame" and b"event id" in value  # the item alone, keyed by its owner
    assert dlq["dlq.source.index"] == "1" and dlq["dlq.source.partition"] == str(part) and dlq["dlq.kind"] == "undecodable"
    assert letters[f"{pipeline.worker_id}-identity-repartition"][1] == b"\x00not a frame"  # original bytes untouched
