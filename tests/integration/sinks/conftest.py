"""Fixtures of the sink tests: a migrated store per test (own database in the session's chdb path) and helpers
to produce crafted records (touchpoints, journey snapshots, metric windows, merges) with the real codec."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer

from touchpoint.config import Settings
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.examples import BASE_MILLIS, example_event
from touchpoint.sinks.migrations import migrate
from touchpoint.sinks.store import Store


@pytest.fixture
def store(pipeline_topics: Settings) -> Iterator[Store]:
    store = Store.connect(pipeline_topics)
    migrate(store, pipeline_topics)
    yield store
    store.command(f"DROP DATABASE IF EXISTS {pipeline_topics.clickhouse_database}")
    store.close()


@pytest.fixture
def codec() -> AvroCodec:
    return AvroCodec()


def produce(settings: Settings, topic: str, values: list[bytes], keys: list[str] | None = None,
            partition: int | None = None) -> None:
    """Produce and wait for every acknowledgement (fails the test on a delivery error)."""
    producer = Producer(settings.kafka_config(**{"linger.ms": 20, "enable.idempotence": True}))
    errors: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(err.str())

    for i, value in enumerate(values):
        kwargs: dict[str, Any] = {"key": keys[i].encode() if keys else None, "value": value, "on_delivery": on_delivery}
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                producer.produce(topic, **kwargs)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert not errors, errors


def touchpoint(event_type: str, i: int, customer: str | None = "c-1", anonymous: str | None = None,
               **payload: Any) -> dict[str, Any]:
    """A valid event with a fresh event_id; ``payload`` overrides example payload fields."""
    event = example_event(event_type, i=i, customer_id=customer, anonymous_id=anonymous)
    event["event_id"] = str(uuid.uuid4())
    event["occurred_at"] = BASE_MILLIS + i * 1000
    event["payload"].update(payload)
    return event


def journey(journey_id: str, version: int, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "journey_id": journey_id, "customer_id": journey_id.split(":")[0], "is_anonymous": False,
        "merged_into": None, "version": version, "updated_at": BASE_MILLIS + version, "first_touch_at": BASE_MILLIS,
        "last_touch_at": BASE_MILLIS + version, "anonymous_ids": [],
        "path": [{"event_type": "AD_CLICK", "channel": "web", "occurred_at": BASE_MILLIS}],
        "path_truncated": 0, "event_count": version, "counts_by_type": {"AD_CLICK": version}, "stage": "awareness",
        "service_contacted": False, "first_touch_campaign": "bf", "first_touch_channel": "web",
        "last_touch_campaign": "bf", "last_touch_channel": "web", "converted": False, "converted_at": None,
        "time_to_convert_ms": None, "orders": 0, "revenue_minor": 0, "currency": None, "deliveries_on_time": 0,
        "deliveries_late": 0, "deliveries_failed": 0, "delivery_delay_ms_sum": 0, "nps_score": None,
        "csat_score": None, "ces_score": None, "support_tickets_opened": 0, "support_tickets_resolved": 0,
        "resolution_ms_sum": 0,
    }
    base.update(fields)
    return base


def metric(minute: int, partition: int, version: int, event_type: str = "SURVEY_RESPONSE", **components: int) -> dict[str, Any]:
    window: dict[str, Any] = {
        "window_start": BASE_MILLIS + minute * 60_000, "window_seconds": 60, "partition": partition,
        "event_type": event_type, "channel": "email", "campaign_id": "", "currency": "", "version": version,
        "emitted_at": BASE_MILLIS + minute * 60_000 + version,
    }
    window.update(components)
    return window


def merge(anonymous_id: str, customer_id: str, at: int = 0) -> dict[str, Any]:
    return {"anonymous_id": anonymous_id, "customer_id": customer_id, "merged_at": BASE_MILLIS + at,
            "event_id": str(uuid.uuid4()), "event_occurred_at": BASE_MILLIS + at, "events_moved": 1}


def sink_settings(settings: Settings, **overrides: Any) -> Settings:
    """``settings`` with a fresh sink group and fast batches (for a test's own SinkLoop)."""
    update: dict[str, Any] = {"sink_batch_seconds": 0.3, "sink_retry_max_seconds": 2.0,
                              "sink_group": f"{settings.topic_prefix}-sink-{uuid.uuid4().hex[:6]}"}
    update.update(overrides)
    return settings.model_copy(update=update)


def scenario(codec: AvroCodec) -> dict[str, list[tuple[str, bytes]]]:
    """A small mixed data set over every topic: (key, value) per topic suffix."""
    events = []
    for c in range(6):
        cust = f"c-{c}"
        events += [
            touchpoint("AD_CLICK", c * 10, cust, campaign_id=f"camp-{c % 2}"),
            touchpoint("CHECKOUT", c * 10 + 1, cust, status="started"),
            touchpoint("CHECKOUT", c * 10 + 2, cust, status="completed" if c % 3 else "abandoned"),
            touchpoint("SURVEY_RESPONSE", c * 10 + 3, cust, score=c + 5),
            touchpoint("SUPPORT_INTERACTION", c * 10 + 4, cust, ticket_id=f"t-{c}", action="opened"),
            touchpoint("SUPPORT_INTERACTION", c * 10 + 6, cust, ticket_id=f"t-{c}", action="resolved"),
            touchpoint("EMAIL_ENGAGEMENT", c * 10 + 7, None, f"a-{c}", message_id=f"m-{c}", action="sent"),
            touchpoint("EMAIL_ENGAGEMENT", c * 10 + 8, None, f"a-{c}", message_id=f"m-{c}", action="opened"),
        ]
    out: dict[str, list[tuple[str, bytes]]] = {
        "events": [((e["customer_id"] or e["anonymous_id"]), codec.encode(e)) for e in events],
        "journeys": [(f"c-{c}", codec.encode(journey(f"c-{c}:1", v, converted=v == 3), "journey_snapshot"))
                     for c in range(4) for v in (1, 2, 3)]
        + [("a-9", codec.encode(journey("a-9:1", 1, customer_id="a-9", is_anonymous=True), "journey_snapshot"))],
        "metrics": [(f"m{minute}", codec.encode(metric(minute, 0, v, nps_promoters=v, nps_detractors=1,
                                                       checkouts_started=2 * v, checkouts_completed=v), "metric_window"))
                    for minute in range(5) for v in (1, 2)],
        "identity-merges": [("c-1", codec.encode(merge("a-1", "c-1"), "identity_merge")),
                            ("c-9", codec.encode(merge("a-9", "c-9"), "identity_merge"))],
    }
    return out


def produce_scenario(settings: Settings, codec: AvroCodec) -> dict[str, int]:
    counts = {}
    for suffix, records in scenario(codec).items():
        produce(settings, settings.topic(suffix), [v for _, v in records], keys=[k for k, _ in records])
        counts[suffix] = len(records)
    return counts


VIEWS = ("metrics_minute_current", "metrics_hour", "metrics_day", "kpi_hour", "kpi_day", "campaign_performance",
         "email_campaigns", "support_tickets", "resolution_time_day", "journeys_current", "journey_paths",
         "touchpoints_resolved")
VIEWS += ("conversions", "survey_answers")  # 0004_journey_analysis
TABLES = ("touchpoints", "journeys", "metrics_minute", "identity_merges")


def snapshot(store: Store, final: bool) -> dict[str, list[tuple[Any, ...]]]:
    """Every table (with or without FINAL) and every view, fully sorted."""
    out = {}
    for table in TABLES:
        out[table] = store.query_rows(f"SELECT * FROM {store.table(table)} {'FINAL' if final else ''} ORDER BY ALL")
    for view in VIEWS:
        out[view] = store.query_rows(f"SELECT * FROM {store.table(view)} ORDER BY ALL")
    return out
