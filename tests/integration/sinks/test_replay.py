"""Replay: reset the sink's group to the beginning and run again -> identical tables and views."""

from __future__ import annotations

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from touchpoint.sinks.loop import SinkLoop

from tests.integration.sinks.conftest import produce_scenario, sink_settings, snapshot


def reset_group_to_beginning(settings) -> None:
    admin = AdminClient(settings.kafka_config())
    parts = [TopicPartition(settings.topic(s), p, 0) for s in ("events", "journeys", "metrics", "identity-merges")
             for p in range(settings.topic_partitions)]
    futures = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(settings.sink_group, parts)])
    for future in futures.values():
        future.result(timeout=30)


def test_replay_gives_identical_tables_and_views_with_and_without_final(store, pipeline_topics, codec):
    settings = sink_settings(pipeline_topics)
    counts = produce_scenario(settings, codec)
    first = SinkLoop(settings, store).run(idle_exit=2)
    assert first.rows_inserted == {"touchpoints": counts["events"], "journeys": counts["journeys"],
                                   "metrics_minute": counts["metrics"], "identity_merges": counts["identity-merges"]}
    before_raw, before_final = snapshot(store, final=False), snapshot(store, final=True)
    # sanity: the views computed something real
    assert before_final["kpi_day"] and before_final["journeys_current"] and before_final["touchpoints_resolved"]
    assert len(before_raw["touchpoints"]) == counts["events"]

    reset_group_to_beginning(settings)
    again = SinkLoop(settings, store).run(idle_exit=2)
    assert again.total_rows() == 0
    assert again.skipped_stored == sum(counts.values())
    assert snapshot(store, final=False) == before_raw
    assert snapshot(store, final=True) == before_final


def test_replay_that_reinserts_is_still_exact_through_final(store, pipeline_topics, codec):
    """With the restart position disabled, replayed rows are inserted again: the FINAL tables and every view
    (all of which read FINAL or duplicate-insensitive aggregates) stay identical."""
    settings = sink_settings(pipeline_topics)
    counts = produce_scenario(settings, codec)
    SinkLoop(settings, store).run(idle_exit=2)
    before_final = snapshot(store, final=True)

    replay = sink_settings(settings, sink_resume_from_store=False, sink_batch_rows=7)  # other batch boundaries
    again = SinkLoop(replay, store).run(idle_exit=2)
    assert again.total_rows() == sum(counts.values())  # really inserted again (new group, new boundaries)
    assert snapshot(store, final=True) == before_final
