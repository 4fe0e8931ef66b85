"""The pipeline's topic table: names agree with Settings, and the configs the stages rely on are there."""

from __future__ import annotations

from touchpoint.config import load_settings
from touchpoint.kafka_admin import TOPICS, topic_configs, topic_specs


def test_topic_names_are_the_settings_topics() -> None:
    s = load_settings(topic_prefix="acme", kafka_bootstrap_servers="k:9092")
    assert [name for name, _ in topic_specs(s)] == [
        s.events_topic, s.dead_letter_topic, s.journeys_topic, s.metrics_topic, s.merges_topic]
    assert all(name.startswith("acme.") for name, _ in topic_specs(s))


def test_configs_the_stages_rely_on() -> None:
    by_name = {spec.name: spec.configs for spec in TOPICS}
    assert by_name["journeys"]["cleanup.policy"] == "compact"  # latest snapshot per journey survives
    assert by_name["metrics"]["cleanup.policy"] == "compact"
    assert by_name["events"]["cleanup.policy"] == "delete"
    assert int(by_name["events"]["retention.ms"]) == 7 * 24 * 3600 * 1000
    assert int(by_name["dead-letters"]["retention.ms"]) >= 30 * 24 * 3600 * 1000
    assert by_name["identity-merges"]["retention.ms"] == "-1"


def test_min_insync_replicas_follows_replication() -> None:
    events = TOPICS[0]
    assert "min.insync.replicas" not in topic_configs(events, load_settings(topic_replication=1))
    assert topic_configs(events, load_settings(topic_replication=2))["min.insync.replicas"] == "1"
    assert topic_configs(events, load_settings(topic_replication=3))["min.insync.replicas"] == "2"
