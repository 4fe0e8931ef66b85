"""A delivery Kafka refuses is surfaced: in the future, in the callback, and in the failed counter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from touchpoint.config import Settings
from touchpoint.errors import ConfigError
from touchpoint.metrics import REGISTRY
from touchpoint.producers import DeliveryError, TouchpointProducer

pytestmark = pytest.mark.integration


def _failed(event_type: str) -> float:
    return REGISTRY.get_sample_value(
        "touchpoint_producer_events_failed_total", {"event_type": event_type, "reason": "delivery"}
    ) or 0.0


def test_producing_to_a_missing_topic_fails_the_future_callback_and_counter(
    settings: Settings, make_events: Callable[..., list[dict[str, Any]]]
) -> None:
    # The producer never auto-creates topics (allow.auto.create.topics=false), whatever the broker allows.
    missing = f"{settings.topic_prefix}.does-not-exist"
    events = make_events(3, seed=1)
    seen: list[tuple[object, object]] = []
    before = {e["event_type"]: _failed(e["event_type"]) for e in events}
    producer = TouchpointProducer(settings, topic=missing, config={"message.timeout.ms": 2000})
    with pytest.raises(ConfigError, match="touchpoint topics create"):
        producer.check_topic()
    futures = [producer.send(e, on_delivery=lambda err, rep: seen.append((err, rep))) for e in events]

    for future, event in zip(futures, events):
        error = future.exception(timeout=30)
        assert isinstance(error, DeliveryError)
        assert error.event_id == event["event_id"] and error.topic == missing
        assert missing in str(error)
        with pytest.raises(DeliveryError):
            future.result(timeout=0)
    assert [type(err) for err, _ in seen] == [DeliveryError] * 3 and [rep for _, rep in seen] == [None] * 3
    for event in events:
        assert _failed(event["event_type"]) - before[event["event_type"]] == 1
    producer.close(timeout=5)  # nothing left in flight: close returns
