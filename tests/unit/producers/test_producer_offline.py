"""Producer and JSON Lines behaviour that needs no broker: validation before queueing, line parsing, metrics."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import free_port
from touchpoint.config import load_settings
from touchpoint.errors import TouchpointError, ValidationError
from touchpoint.metrics import PRODUCER_SEND_LATENCY, REGISTRY
from touchpoint.producers import InvalidLine, TouchpointProducer, parse_line
from touchpoint.producers.producer import _observe_many, producer_config
from touchpoint.schemas.examples import example_event
from touchpoint.schemas.json_shape import event_to_json


class _CountingClient:
    """Wraps the confluent-kafka producer and records what reached ``produce``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.produced: list[bytes] = []

    def produce(self, topic: str, value: bytes, key: str, **kwargs: Any) -> None:
        self.produced.append(value)
        self.inner.produce(topic, value, key, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __len__(self) -> int:
        return len(self.inner)


@pytest.fixture
def offline_producer() -> Iterator[TouchpointProducer]:
    # Nothing listens on this port: queued records stay queued, and the counting client shows what was queued.
    settings = load_settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    producer = TouchpointProducer(settings, topic="offline", config={"log_level": 0})
    producer._kafka = _CountingClient(producer._kafka)  # type: ignore[assignment]
    yield producer
    producer._kafka.purge()
    producer.flush(1)


def _produced(producer: TouchpointProducer) -> list[bytes]:
    return producer._kafka.produced  # type: ignore[attr-defined, no-any-return]


def _failed(event_type: str) -> float:
    return REGISTRY.get_sample_value(
        "touchpoint_producer_events_failed_total", {"event_type": event_type, "reason": "validation"}
    ) or 0.0


def test_invalid_event_raises_before_anything_is_queued(offline_producer: TouchpointProducer) -> None:
    event = example_event("SURVEY_RESPONSE")
    event["payload"]["score"] = 42
    before = _failed("SURVEY_RESPONSE")
    with pytest.raises(ValidationError) as caught:
        offline_producer.send(event)
    assert caught.value.field == "payload.score"
    assert "outside" in caught.value.rule
    assert _produced(offline_producer) == []
    assert _failed("SURVEY_RESPONSE") == before + 1


def test_valid_event_is_queued_with_its_future_pending(offline_producer: TouchpointProducer) -> None:
    event = example_event("CHECKOUT")
    future = offline_producer.send(event)
    assert len(_produced(offline_producer)) == 1
    assert future.event_id == event["event_id"]
    assert not future.done()
    with pytest.raises(TimeoutError):
        future.result(timeout=0.2)


def test_send_many_queues_none_when_one_is_invalid(offline_producer: TouchpointProducer) -> None:
    events = [example_event("PAGE_VIEW", i=i) for i in range(5)]
    events[3]["payload"]["url"] = 17
    with pytest.raises(ValidationError) as caught:
        offline_producer.send_many(events)
    assert caught.value.field == "events[3].payload.url"
    assert _produced(offline_producer) == []


def test_closed_producer_refuses_to_send() -> None:
    settings = load_settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    producer = TouchpointProducer(settings, topic="offline")
    producer.close(timeout=1)
    with pytest.raises(TouchpointError, match="closed"):
        producer.send(example_event("CHECKOUT"))


def test_producer_config_is_idempotent_compressed_and_batched() -> None:
    settings = load_settings(kafka_bootstrap_servers="127.0.0.1:1", producer_compression="zstd", producer_linger_ms=7)
    conf = producer_config(settings)
    assert conf["enable.idempotence"] is True and conf["acks"] == "all"
    assert conf["compression.type"] == "zstd" and conf["linger.ms"] == 7
    assert conf["allow.auto.create.topics"] is False


def test_observe_many_matches_observe_one_by_one() -> None:
    values = [0.0001, 0.0005, 0.003, 0.003, 0.2, 7.0, 99.0]

    def snapshot() -> dict[str, float]:
        return {s.name + str(s.labels): s.value for m in REGISTRY.collect() if m.name == "touchpoint_producer_send_latency_seconds"
                for s in m.samples if not s.name.endswith("_created")}

    before = snapshot()
    for v in values:
        PRODUCER_SEND_LATENCY.observe(v)
    middle = snapshot()
    _observe_many(values)
    after = snapshot()
    for key in before:
        assert after[key] - middle[key] == pytest.approx(middle[key] - before[key]), key


def _line(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_parse_line_accepts_the_documented_shape() -> None:
    event = example_event("DELIVERY_NOTICE")
    assert parse_line(_line(event_to_json(event)), 1) == event


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"event_type": "CHECKOUT", \xff}', "not UTF-8: byte 0xff at position 27"),
        (b"{this is not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"event_type": "TELEPATHY"}', "unknown event type 'TELEPATHY'"),
        (b'{"event_type": ["CHECKOUT"]}', "unknown event type ['CHECKOUT']"),
        (b'{"event_type": {"a": 1}}', "unknown event type {'a': 1}"),
    ],
)
def test_parse_line_reports_line_number_and_reason(raw: bytes, words: str) -> None:
    result = parse_line(raw, 7)
    assert isinstance(result, InvalidLine)
    assert result.line == 7
    assert words in result.reason
    assert str(result).startswith("line 7: ")


def test_parse_line_skips_blank_lines_and_keeps_reasons_short() -> None:
    assert parse_line(b"   ", 1) is None
    obj = event_to_json(example_event("SURVEY_RESPONSE"))
    obj = copy.deepcopy(obj)
    obj["payload"]["score"] = "x" * 1_000_000
    result = parse_line(_line(obj), 3)
    # The shape converter passes the value through; the length limit is the producer's validation.
    assert isinstance(result, dict)
    assert len(result["payload"]["score"]) == 1_000_000


def test_context_manager_keeps_the_blocks_error_and_notes_the_flush_failure() -> None:
    settings = load_settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    producer = TouchpointProducer(settings, topic="offline", config={"log_level": 0})
    producer.close = lambda timeout=0.2: TouchpointProducer.close(producer, 0.2)  # type: ignore[method-assign]
    with pytest.raises(KeyError) as caught:
        with producer:
            producer.send(example_event("CHECKOUT"))
            raise KeyError("the application's own error")
    assert any("1 event(s) still undelivered" in note for note in getattr(caught.value, "__notes__", []))
    producer._kafka.purge()
    producer._kafka.flush(1)
