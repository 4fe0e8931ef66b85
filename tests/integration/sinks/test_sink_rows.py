"""Records produced to Kafka land in their tables with exactly the expected rows and values."""

from __future__ import annotations

from touchpoint.schemas.examples import EVENT_TYPES
from touchpoint.sinks.loop import SinkLoop

from tests.integration.sinks.conftest import journey, merge, metric, produce, sink_settings, touchpoint


def test_every_event_type_lands_flattened(store, pipeline_topics, codec):
    settings = sink_settings(pipeline_topics)
    events = [touchpoint(t, i) for i, t in enumerate(EVENT_TYPES)]
    produce(settings, settings.events_topic, [codec.encode(e) for e in events], keys=["c-1"] * len(events))
    stats = SinkLoop(settings, store).run(idle_exit=2)
    assert stats.rows_inserted == {"touchpoints": len(EVENT_TYPES)}
    rows = store.query_rows(
        f"SELECT event_type, toString(event_id), customer_id, campaign_id, cost_minor, currency, email_action, "
        f"checkout_status, amount_minor, delivery_status, toUnixTimestamp64Milli(promised_by), survey_kind, score, "
        f"support_action, support_kind, context['country'], identity_key, kafka_topic "
        f"FROM {store.table('touchpoints')} ORDER BY occurred_at")
    by_type = {r[0]: r for r in rows}
    assert [r[1] for r in rows] == [e["event_id"] for e in events]
    assert by_type["AD_CLICK"][3:6] == ("bf-2026", 85, "EUR")
    assert by_type["EMAIL_ENGAGEMENT"][3] == "bf-2026" and by_type["EMAIL_ENGAGEMENT"][6] == "clicked"
    assert by_type["CHECKOUT"][7:9] == ("completed", 12990)
    assert by_type["CHECKOUT"][9] == "" and by_type["CHECKOUT"][12] is None
    promised = events[EVENT_TYPES.index("DELIVERY_NOTICE")]["payload"]["promised_by"]
    assert by_type["DELIVERY_NOTICE"][9:11] == ("delivered", promised)
    assert by_type["SURVEY_RESPONSE"][11:13] == ("NPS", 9)
    assert by_type["SUPPORT_INTERACTION"][13:15] == ("resolved", "chat")
    assert all(r[15] == "DE" and r[16] == "c-1" and r[17] == settings.events_topic for r in rows)


def test_zero_score_is_kept_as_zero_not_null(store, pipeline_topics, codec):
    settings = sink_settings(pipeline_topics)
    event = touchpoint("SURVEY_RESPONSE", 1, score=0)
    produce(settings, settings.events_topic, [codec.encode(event)])
    SinkLoop(settings, store).run(idle_exit=2)
    assert store.query_rows(f"SELECT score FROM {store.table('touchpoints')}") == [(0,)]


def test_newest_journey_and_metric_version_wins(store, pipeline_topics, codec):
    settings = sink_settings(pipeline_topics)
    # versions arrive out of order on purpose (two partitions): the highest version must win, not the last one
    produce(settings, settings.journeys_topic, [codec.encode(journey("c-1:1", v), "journey_snapshot") for v in (1, 3)],
            keys=["c-1", "c-1"], partition=0)
    produce(settings, settings.journeys_topic, [codec.encode(journey("c-1:1", 2), "journey_snapshot")], keys=["c-1"],
            partition=1)
    produce(settings, settings.metrics_topic, [
        codec.encode(metric(0, 0, 1, nps_promoters=1), "metric_window"),
        codec.encode(metric(0, 0, 2, nps_promoters=2, nps_detractors=1), "metric_window"),
        codec.encode(metric(0, 1, 1, nps_passives=1), "metric_window"),
    ], keys=["m0p0", "m0p0", "m0p1"])
    produce(settings, settings.merges_topic, [codec.encode(merge("a-1", "c-1"), "identity_merge")])
    stats = SinkLoop(settings, store).run(idle_exit=2)
    assert stats.rows_inserted == {"journeys": 3, "metrics_minute": 3, "identity_merges": 1}
    db = store.database
    assert store.query_rows(f"SELECT version, event_count, path_event_types FROM {db}.journeys_current") == [(3, 3, ["AD_CLICK"])]
    assert store.query_rows(f"SELECT nps_promoters, nps_passives, nps_detractors, nps_responses, nps FROM {db}.kpi_day") == [
        (2, 1, 1, 4, 25.0)]
    assert store.query_rows(f"SELECT customer_id FROM {db}.identity_merges") == [("c-1",)]
