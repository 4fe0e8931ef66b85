"""The collector when Kafka cannot take the events, and when it is stopped: never a 2xx for an unacknowledged
event, nothing half-accepted, in-flight requests answered at shutdown."""

from __future__ import annotations

import os
import signal
import threading
import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tests.helpers import wait_until
from tests.integration.collector.conftest import (
    DEFAULT_KEYS, Answer, keys_toml, page_view, read_topic, start_collector, stop_collector,
)
from touchpoint.schemas.codec import AvroCodec

pytestmark = pytest.mark.integration


def stored_ids(env: dict[str, str]) -> set[str]:
    topic = f"{env['TOUCHPOINT_TOPIC_PREFIX']}.events"
    return {AvroCodec().decode(m.value())["event_id"] for m in read_topic(env["KAFKA_BOOTSTRAP_SERVERS"], topic)}


def test_a_full_queue_is_503_with_nothing_queued(collector_env, tmp_path):
    c = start_collector(tmp_path, {**collector_env, "TOUCHPOINT_COLLECTOR_QUEUE_MAX_EVENTS": "10"},
                        keys_toml(DEFAULT_KEYS), name="small-queue")
    try:
        wait_until(lambda: c.get("/readyz").status == 200, timeout=30, what="ready")
        batch = [page_view(f"a-{uuid.uuid4()}", i) for i in range(11)]
        answer = c.post(batch)
        assert answer.status == 503 and answer.headers["Retry-After"] == "5"
        assert "queue is full" in answer.body["error"]
        fits = [page_view(f"a-{uuid.uuid4()}", i) for i in range(10)]
        assert c.post(fits).status == 200
        on_kafka = stored_ids(collector_env)
        assert {e["event_id"] for e in fits} <= on_kafka and not {e["event_id"] for e in batch} & on_kafka
    finally:
        assert stop_collector(c) == 0, c.log.read_text()[-2000:]


def test_an_event_over_the_topics_message_limit_is_rejected_alone_and_the_service_goes_on(kafka_bootstrap, tmp_path):
    """The producer knows the topic's max.message.bytes, so an event the broker would refuse is a rejected item
    (its index, the size and the limit) before anything is sent; the valid events of the batch are accepted."""
    prefix = f"colref{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    topics = [NewTopic(f"{prefix}.events", 2, 1, config={"max.message.bytes": "1500"}),
              NewTopic(f"{prefix}.dead-letters", 1, 1)]
    for future in admin.create_topics(topics).values():
        future.result()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOUCHPOINT_CONFIG": os.devnull,
           "TOUCHPOINT_DATA_DIR": str(tmp_path), "TOUCHPOINT_TOPIC_PREFIX": prefix,
           "TOUCHPOINT_PRODUCER_COMPRESSION": "none"}
    c = start_collector(tmp_path, env, keys_toml(DEFAULT_KEYS), name="refusing")
    try:
        wait_until(lambda: c.get("/readyz").status == 200, timeout=30, what="ready")
        big = page_view("a-big", payload={"url": "https://shop.example/" + "x" * 3000, "page_type": "home"})
        small = page_view("a-small", 1)
        answer = c.post([small, big])  # the broker takes at most 1,500 bytes per record on this topic
        assert answer.status == 207, answer.body
        assert answer.body["accepted"] == 1
        [rejected] = answer.body["rejected"]
        assert rejected["index"] == 1 and rejected["field"] == "event"
        assert "over the 1,500 bytes topic" in rejected["rule"], rejected
        again = page_view("a-small", 2)
        assert c.post([again]).status == 200, "the collector goes on serving"
        stored = stored_ids(env)
        assert {small["event_id"], again["event_id"]} <= stored and big["event_id"] not in stored
    finally:
        assert stop_collector(c) == 0, c.log.read_text()[-2000:]


def test_sigterm_answers_the_request_in_flight_then_exits(collector_env, tmp_path):
    # A 3 s linger holds the request in its "awaiting Kafka's ack" step long enough to signal the process then.
    c = start_collector(tmp_path, {**collector_env, "TOUCHPOINT_COLLECTOR_LINGER_MS": "3000"},
                        keys_toml(DEFAULT_KEYS), name="graceful")
    wait_until(lambda: c.get("/readyz").status == 200, timeout=30, what="ready")
    event = page_view(f"a-{uuid.uuid4()}")
    answers: list[Answer] = []
    poster = threading.Thread(target=lambda: answers.append(c.post([event])), daemon=True)
    poster.start()
    wait_until(lambda: b"touchpoint_collector_requests_in_flight 1.0" in c.get("/metrics").body, timeout=10,
               what="the request being handled")
    c.proc.send_signal(signal.SIGTERM)
    poster.join(30)
    assert [(a.status, a.body) for a in answers] == [(200, {"accepted": 1, "rejected": []})]
    assert c.proc.wait(30) == 0, c.log.read_text()[-2000:]
    assert event["event_id"] in stored_ids(collector_env)


@pytest.mark.slow
def test_readiness_follows_kafka_and_an_outage_is_503_never_a_false_2xx(tmp_path):
    """A private broker is stopped under the collector and started again."""
    from tests.helpers import free_port_pair
    from touchpoint.config import load_settings
    from touchpoint.kafka_admin import create_topics
    from touchpoint.local_broker import LocalBroker

    broker = LocalBroker(tmp_path / "kafka", port=free_port_pair())
    broker.start(timeout=180)
    c = None
    try:
        prefix = f"colout{uuid.uuid4().hex[:8]}"
        create_topics(load_settings(kafka_bootstrap_servers=broker.bootstrap, topic_prefix=prefix, data_dir=tmp_path))
        env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "TOUCHPOINT_CONFIG": os.devnull,
               "TOUCHPOINT_DATA_DIR": str(tmp_path), "TOUCHPOINT_TOPIC_PREFIX": prefix,
               "TOUCHPOINT_COLLECTOR_ACK_TIMEOUT_SECONDS": "3"}
        c = start_collector(tmp_path, env, keys_toml(DEFAULT_KEYS), name="outage")
        wait_until(lambda: c.get("/readyz").status == 200, timeout=30, what="ready")
        before = page_view("a-outage", 1)
        # A broker that has just started may still be loading its coordinators (the idempotent producer waits for
        # its producer id): until then the documented answer is 503 + Retry-After, which a client retries.
        wait_until(lambda: c.post([before]).status == 200, timeout=60, interval=1.0,
                   what="the first event accepted by the freshly started broker")

        broker.stop()
        during = [page_view("a-outage", 2)]
        answer = c.post(during)  # the readiness check may not have noticed yet: then the ack times out
        assert answer.status == 503 and answer.headers["Retry-After"] == "5", (answer.status, answer.body)
        wait_until(lambda: c.get("/readyz").status == 503, timeout=30, what="/readyz answering 503")
        answer = c.post([page_view("a-outage", 3)])
        assert answer.status == 503 and "Kafka is not reachable" in answer.body["error"]

        broker.start(timeout=180)
        wait_until(lambda: c.get("/readyz").status == 200, timeout=60, what="ready again")
        after = page_view("a-outage", 4)
        answer = c.post([after])
        assert answer.status == 200, answer.body
        on_kafka = stored_ids(env)
        assert {before["event_id"], after["event_id"]} <= on_kafka
    finally:
        if c is not None:
            assert stop_collector(c) == 0, c.log.read_text()[-2000:]
        broker.stop()
