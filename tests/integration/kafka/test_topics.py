"""`touchpoint topics create|list` and kafka_admin.create_topics against the real broker."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, ConfigResource

from tests.helpers import run_cli
from touchpoint.config import Settings
from touchpoint.kafka_admin import TOPICS, create_topics


def _configs(bootstrap: str, topic: str) -> dict[str, str]:
    client = AdminClient({"bootstrap.servers": bootstrap})
    [future] = client.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)]).values()
    return {k: str(v.value) for k, v in future.result(timeout=10).items()}


def test_create_topics_is_idempotent_and_applies_partitions_and_configs(settings: Settings) -> None:
    names = [settings.events_topic, settings.dead_letter_topic, settings.journeys_topic, settings.metrics_topic,
             settings.merges_topic]
    first = create_topics(settings)
    assert first.created == names
    assert first.existing == [] and first.mismatched == []

    second = create_topics(settings)
    assert second.created == []
    assert second.existing == names
    assert [t.partitions for t in second.topics] == [settings.topic_partitions] * 5

    metadata = AdminClient({"bootstrap.servers": settings.bootstrap_servers}).list_topics(timeout=10)
    for name in names:
        assert len(metadata.topics[name].partitions) == settings.topic_partitions
    assert _configs(settings.bootstrap_servers, settings.journeys_topic)["cleanup.policy"] == "compact"
    assert _configs(settings.bootstrap_servers, settings.metrics_topic)["cleanup.policy"] == "compact"
    events = _configs(settings.bootstrap_servers, settings.events_topic)
    assert events["cleanup.policy"] == "delete" and events["retention.ms"] == str(7 * 24 * 3600 * 1000)
    dead = _configs(settings.bootstrap_servers, settings.dead_letter_topic)
    assert int(dead["retention.ms"]) >= 30 * 24 * 3600 * 1000


def test_mismatched_partition_counts_are_reported_not_changed(settings: Settings) -> None:
    create_topics(settings)
    wider = settings.model_copy(update={"topic_partitions": settings.topic_partitions + 2})
    report = create_topics(wider)
    assert report.created == []
    assert [t.name for t in report.mismatched] == [settings.topic(spec.name) for spec in TOPICS]
    assert {(t.partitions, t.expected_partitions) for t in report.mismatched} == {
        (settings.topic_partitions, settings.topic_partitions + 2)}


def test_topics_cli_create_twice_then_list(settings: Settings, unique: str) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "TOUCHPOINT_TOPIC_PREFIX": f"tp{unique}",
           "TOUCHPOINT_TOPIC_PARTITIONS": "3"}
    first = run_cli("topics", "create", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "created 5, already existed 0" in first.stdout

    second = run_cli("topics", "create", env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "created 0, already existed 5" in second.stdout

    listed = run_cli("topics", "list", env=env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    rows = [line for line in listed.stdout.splitlines() if f"tp{unique}." in line]
    assert len(rows) == 5
    journeys = next(r for r in rows if f"tp{unique}.journeys" in r)
    assert "compact" in journeys and " 3 " in journeys

    mismatch = run_cli("topics", "create", env={**env, "TOUCHPOINT_TOPIC_PARTITIONS": "5"})
    assert mismatch.returncode == 1
    assert "partition counts differ from TOUCHPOINT_TOPIC_PARTITIONS=5" in mismatch.stdout
