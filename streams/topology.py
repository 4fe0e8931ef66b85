"""Names and specs of every topic the worker reads or writes, and their creation.

The worker owns two repartition topics and two table changelogs, all named under its app id
(``settings.worker_id``) and all with ``settings.topic_partitions`` partitions:

* ``<id>-identity-repartition`` — frames of valid events that carry an anonymous id, by its partition;
* ``<id>-journey-repartition`` — frames of routed events, by journey owner's partition (customer-only events come
  straight from decode);
* ``<id>-aliases-changelog`` — the alias table (compacted), co-partitioned with the identity topic;
* ``<id>-journeys-changelog`` — the journey table, which also holds the window and watermark values of its
  partition (compacted), co-partitioned with the journey topic.

A table value lives in the local RocksDB of, and its changelog record in, the partition of the record being
processed: a table is only correct when every key is always written while processing the same partition. Frames go
to ``internal.Partitioner(key)`` (murmur2, like the Java client), which is why the worker never trusts the
partitioning of the public events topic (confluent-kafka producers default to a CRC32 partitioner).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from touchpoint.config import Settings
from touchpoint.errors import BrokerUnavailableError, ConfigError

ALIAS_TABLE = "aliases"
JOURNEY_TABLE = "journeys"


@dataclass(frozen=True)
class TopicSpec:
    """One topic the worker needs, with the partition count and config it must have."""

    name: str
    partitions: int
    replication: int
    config: dict[str, str] = field(default_factory=dict)


def decode_group(settings: Settings) -> str:
    """Consumer group of the events topic (``source.SourceConsumer``); faust's own group is ``worker_id``."""
    return f"{settings.worker_id}-decode"


def identity_topic(settings: Settings) -> str:
    return f"{settings.worker_id}-identity-repartition"


def journey_topic(settings: Settings) -> str:
    return f"{settings.worker_id}-journey-repartition"


def changelog_topic(settings: Settings, table: str) -> str:
    """Faust's own naming rule for a table changelog: ``<app id>-<table>-changelog``."""
    return f"{settings.worker_id}-{table}-changelog"


def internal_topic_specs(settings: Settings) -> list[TopicSpec]:
    """Topics owned by the worker (repartition topics and changelogs)."""
    n, r = settings.topic_partitions, settings.topic_replication
    compact = {"cleanup.policy": "compact"}
    return [
        TopicSpec(identity_topic(settings), n, r),
        TopicSpec(journey_topic(settings), n, r),
        TopicSpec(changelog_topic(settings, ALIAS_TABLE), n, r, compact),
        TopicSpec(changelog_topic(settings, JOURNEY_TABLE), n, r, compact),
    ]


def ensure_topics(settings: Settings, specs: list[TopicSpec], *, timeout: float = 15.0) -> list[str]:
    """Create the missing topics; check that existing internal ones have the partition count the tables need.

    Returns the names created. Raises ConfigError when an existing internal topic has another partition count
    (faust would silently mis-route table keys), BrokerUnavailableError when Kafka cannot be reached.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(settings.kafka_config())
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise BrokerUnavailableError(
            f"Kafka at {settings.bootstrap_servers} is not reachable ({exc}); start a local broker with "
            "`touchpoint broker start` or set KAFKA_BOOTSTRAP_SERVERS."
        ) from exc
    internal = {spec.name for spec in internal_topic_specs(settings)}
    missing = []
    for spec in specs:
        meta = existing.get(spec.name)
        if meta is None or meta.error is not None:
            missing.append(spec)
        elif spec.name in internal and len(meta.partitions) != spec.partitions:
            raise ConfigError(
                f"topic {spec.name} has {len(meta.partitions)} partitions but the worker's tables need "
                f"{spec.partitions} (TOUCHPOINT_TOPIC_PARTITIONS); use another TOUCHPOINT_WORKER_ID or delete the topic."
            )
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replication, config=s.config) for s in missing],
        operation_timeout=timeout,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != 36:  # TOPIC_ALREADY_EXISTS: another worker won the race
                raise BrokerUnavailableError(f"could not create topic {name}: {exc}") from exc
    return created
