"""Names and specs of every topic the worker reads or writes, and their creation.

The worker owns two repartition topics and two table changelogs (defined in ``touchpoint.topics.WORKER_TOPICS``),
all named under its app id (``settings.worker_id``) and all with ``settings.topic_partitions`` partitions:

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

from touchpoint.config import Settings
from touchpoint.errors import BrokerUnavailableError, ConfigError
from touchpoint.topics import ALIAS_TABLE, JOURNEY_TABLE, WORKER_TOPICS, TopicSpec, topic_configs, worker_topic


def decode_group(settings: Settings) -> str:
    """Consumer group of the events topic (``source.SourceConsumer``); faust's own group is ``worker_id``."""
    return f"{settings.worker_id}-decode"


def identity_topic(settings: Settings) -> str:
    return f"{settings.worker_id}-{worker_topic('identity-repartition').name}"


def journey_topic(settings: Settings) -> str:
    return f"{settings.worker_id}-{worker_topic('journey-repartition').name}"


def changelog_topic(settings: Settings, table: str) -> str:
    """Faust's own naming rule for a table changelog: ``<app id>-<table>-changelog``."""
    return f"{settings.worker_id}-{worker_topic(f'{table}-changelog').name}"


def internal_topic_specs(settings: Settings) -> list[tuple[str, TopicSpec]]:
    """(full name, spec) of the topics owned by the worker (``touchpoint.topics.WORKER_TOPICS``)."""
    return [(f"{settings.worker_id}-{spec.name}", spec) for spec in WORKER_TOPICS]


def ensure_topics(settings: Settings, specs: list[tuple[str, TopicSpec]], *, timeout: float = 15.0) -> list[str]:
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
    internal = {name for name, _ in internal_topic_specs(settings)}
    n = settings.topic_partitions
    missing = []
    for name, spec in specs:
        meta = existing.get(name)
        if meta is None or meta.error is not None:
            missing.append((name, spec))
        elif name in internal and len(meta.partitions) != n:
            raise ConfigError(
                f"topic {name} has {len(meta.partitions)} partitions but the worker's tables need "
                f"{n} (TOUCHPOINT_TOPIC_PARTITIONS); use another TOUCHPOINT_WORKER_ID or delete the topic."
            )
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=n, replication_factor=settings.topic_replication,
                  config=topic_configs(spec, settings)) for name, spec in missing],
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
