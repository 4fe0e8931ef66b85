"""Every Kafka topic of the pipeline, defined once: what it carries, its key and the topic configs stages rely on.

Two families, both with ``settings.topic_partitions`` partitions and ``settings.topic_replication`` replicas:

* ``TOPICS`` — the pipeline topics other stages and readers meet at, named ``<topic_prefix>.<name>``
  (``Settings.topic``); created by ``touchpoint topics create`` (``kafka_admin.create_topics``);
* ``WORKER_TOPICS`` — owned by one stream worker (repartition topics, faust table changelogs), named
  ``<worker_id>-<name>`` (``streams.topology``); created by the worker at start (``topology.ensure_topics``).
  Their partition count must never change under a worker: table keys would be mis-routed.

The per-topic configs are fixed because the stages rely on them (the journeys topic must be compacted for the
latest snapshot per key to survive); ``topic_configs`` adds what depends on the settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from touchpoint.config import Settings

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name under its family's prefix, what it carries, its key, and its topic configs."""

    name: str
    carries: str
    key: str
    configs: dict[str, str] = field(default_factory=dict)


# name              | carries                                   | key                        | configs
TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("events", "touchpoints (Avro `touchpoint`) from producers", "customer_id, else anonymous_id",
              # 7 days: enough to replay the worker and the sink after an outage of days.
              {"cleanup.policy": "delete", "retention.ms": str(7 * DAY_MS)}),
    TopicSpec("dead-letters", "records that could not be used: original bytes + dlq.* headers", "original key",
              # 30 days to inspect and replay; a little over 1 MiB so a maximal record plus headers still fits.
              {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS), "max.message.bytes": str(2 * 1024 * 1024)}),
    TopicSpec("journeys", "JourneySnapshot: latest state of each journey", "journey owner id",
              # Compacted: the latest snapshot per journey is what readers need; old snapshots may go.
              {"cleanup.policy": "compact", "min.compaction.lag.ms": str(60 * 60 * 1000)}),
    TopicSpec("metrics", "MetricWindow: experience metrics per window", "metric + window",
              # Compacted: a late event re-emits its window; only the latest value per window matters.
              {"cleanup.policy": "compact", "min.compaction.lag.ms": str(60 * 60 * 1000)}),
    TopicSpec("identity-merges", "IdentityMerge audit: anonymous ids stitched to customers", "customer_id",
              # Audit trail, small: kept forever.
              {"cleanup.policy": "delete", "retention.ms": "-1"}),
)

# Table names of the worker; faust names a table's changelog ``<app id>-<table>-changelog``.
ALIAS_TABLE = "aliases"
JOURNEY_TABLE = "journeys"

WORKER_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("identity-repartition", "frames of valid events that carry an anonymous id (streams/internal.py)",
              "none: partition of the anonymous id (murmur2)"),
    TopicSpec("journey-repartition", "frames of routed events (streams/internal.py)",
              "none: partition of the journey owner (murmur2)"),
    # Compacted: a table needs only the latest value per key to be recovered.
    TopicSpec(f"{ALIAS_TABLE}-changelog", "alias table values (streams/state_codec.py)", "anonymous id",
              {"cleanup.policy": "compact"}),
    TopicSpec(f"{JOURNEY_TABLE}-changelog", "journey, window and watermark values (streams/state_codec.py)",
              "j:<owner>, window or watermark key", {"cleanup.policy": "compact"}),
)


def topic_configs(spec: TopicSpec, settings: Settings) -> dict[str, str]:
    configs = dict(spec.configs)
    if settings.topic_replication > 1:
        # With replicas, acks=all must mean "on more than one broker"; rf 2 -> 1, rf 3+ -> 2.
        configs["min.insync.replicas"] = str(min(2, settings.topic_replication - 1))
    return configs


def worker_topic(name: str) -> TopicSpec:
    """The ``WORKER_TOPICS`` entry called ``name`` (KeyError names the known ones)."""
    for spec in WORKER_TOPICS:
        if spec.name == name:
            return spec
    raise KeyError(f"{name!r} is not a worker topic; known: {', '.join(s.name for s in WORKER_TOPICS)}")
