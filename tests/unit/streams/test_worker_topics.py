"""The worker's own topics come from the one topic table (touchpoint.topics): names, configs, and no clash with the
pipeline topics."""

from __future__ import annotations

import pytest

from touchpoint.config import load_settings
from touchpoint.kafka_admin import topic_specs
from touchpoint.streams.topology import (
    ALIAS_TABLE, JOURNEY_TABLE, changelog_topic, identity_topic, internal_topic_specs, journey_topic,
)  # fmt: skip
from touchpoint.topics import topic_configs, worker_topic


def test_worker_topic_names_follow_the_worker_id_and_fausts_changelog_rule() -> None:
    s = load_settings(worker_id="w1", topic_prefix="acme", kafka_bootstrap_servers="k:9092")
    assert [name for name, _ in internal_topic_specs(s)] == [
        "w1-identity-repartition", "w1-journey-repartition", "w1-aliases-changelog", "w1-journeys-changelog"]
    assert identity_topic(s) == "w1-identity-repartition" and journey_topic(s) == "w1-journey-repartition"
    assert changelog_topic(s, ALIAS_TABLE) == "w1-aliases-changelog"
    assert changelog_topic(s, JOURNEY_TABLE) == "w1-journeys-changelog"


def test_changelogs_are_compacted_and_every_full_name_is_distinct() -> None:
    s = load_settings(worker_id="journeys", topic_prefix="journeys", kafka_bootstrap_servers="k:9092")
    configs = {name: topic_configs(spec, s) for name, spec in internal_topic_specs(s)}
    assert configs["journeys-aliases-changelog"]["cleanup.policy"] == "compact"
    assert configs["journeys-journeys-changelog"]["cleanup.policy"] == "compact"
    assert "cleanup.policy" not in configs["journeys-identity-repartition"]  # the broker default: delete
    names = [name for name, _ in internal_topic_specs(s)] + [name for name, _ in topic_specs(s)]
    assert len(set(names)) == len(names) == 9


def test_worker_topics_get_min_insync_replicas_like_the_pipeline_topics() -> None:
    s = load_settings(worker_id="w1", topic_replication=3, kafka_bootstrap_servers="k:9092")
    assert all(topic_configs(spec, s)["min.insync.replicas"] == "2" for _, spec in internal_topic_specs(s))


def test_an_unknown_worker_topic_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: identity-repartition, journey-repartition"):
        worker_topic("events-changelog")
