"""The admin operations on the pipeline's topics.

``touchpoint.topics.TOPICS`` is the one place that says which topics the pipeline uses and how they are configured
(re-exported here); ``touchpoint topics create`` (:func:`create_topics`) creates them idempotently. Partitions and
replication come from settings (``TOUCHPOINT_TOPIC_PARTITIONS``, ``TOUCHPOINT_TOPIC_REPLICATION``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from touchpoint.config import Settings
from touchpoint.errors import BrokerUnavailableError, PermanentError
from touchpoint.topics import TOPICS, TopicSpec, topic_configs  # noqa: F401 - re-exported: the topic table


@dataclass(frozen=True)
class TopicState:
    """One pipeline topic as found on (or created in) the cluster."""

    name: str
    spec: TopicSpec
    status: str  # "created", "exists", "missing"
    partitions: int | None
    expected_partitions: int
    replication: int | None

    @property
    def mismatched(self) -> bool:
        return self.partitions is not None and self.partitions != self.expected_partitions


@dataclass(frozen=True)
class TopicReport:
    """Outcome of :func:`create_topics`."""

    topics: tuple[TopicState, ...]

    @property
    def created(self) -> list[str]:
        return [t.name for t in self.topics if t.status == "created"]

    @property
    def existing(self) -> list[str]:
        return [t.name for t in self.topics if t.status == "exists"]

    @property
    def mismatched(self) -> list[TopicState]:
        return [t for t in self.topics if t.mismatched]


def topic_specs(settings: Settings) -> list[tuple[str, TopicSpec]]:
    """(full topic name, spec) for every pipeline topic under the settings' prefix."""
    return [(settings.topic(spec.name), spec) for spec in TOPICS]


def unreachable_message(settings: Settings, detail: str) -> str:
    if settings.uses_local_broker:
        return (
            f"the local Kafka broker at {settings.bootstrap_servers} is not reachable ({detail}); start it with "
            "`touchpoint broker start`, or set KAFKA_BOOTSTRAP_SERVERS to an existing cluster"
        )
    return (
        f"KAFKA_BOOTSTRAP_SERVERS={settings.bootstrap_servers} is not reachable ({detail}); check the address and that "
        "the cluster is up, or unset KAFKA_BOOTSTRAP_SERVERS and start a local broker with `touchpoint broker start`"
    )


def admin_client(settings: Settings) -> AdminClient:
    # librdkafka would log each refused connection to stderr; failures surface as exceptions with a message instead.
    return AdminClient(settings.kafka_config(log_level=0))


def wait_for_broker(settings: Settings, timeout: float = 30.0) -> None:
    """Return once the configured cluster answers a metadata request; else raise BrokerUnavailableError saying what to do,
    or ConfigError naming the security setting to fix as soon as the cluster refuses them (``kafka_security``)."""
    from touchpoint.kafka_security import check_access

    check_access(settings, timeout)


def _describe(exc: KafkaException) -> str:
    err = exc.args[0] if exc.args else None
    return err.str() if isinstance(err, KafkaError) else str(exc)


def describe_topics(settings: Settings, timeout: float = 10.0) -> dict[str, tuple[int, int]]:
    """{topic: (partitions, replication)} of every topic on the cluster."""
    wait_for_broker(settings, timeout)
    metadata = admin_client(settings).list_topics(timeout=timeout)
    return {
        name: (len(t.partitions), min((len(p.replicas) for p in t.partitions.values()), default=0))
        for name, t in metadata.topics.items()
        if t.error is None
    }


def create_topics(settings: Settings, timeout: float = 30.0) -> TopicReport:
    """Create the pipeline topics that do not exist yet; existing ones are left alone and reported.

    Idempotent: a second run creates nothing. A topic whose partition count differs from the settings is reported as
    mismatched (Kafka cannot shrink partitions, and growing them would move keys between partitions, breaking
    per-customer order), not changed.
    """
    wanted = topic_specs(settings)
    existing = describe_topics(settings, timeout)
    client = admin_client(settings)
    to_create = [
        NewTopic(name, num_partitions=settings.topic_partitions, replication_factor=settings.topic_replication,
                 config=topic_configs(spec, settings))
        for name, spec in wanted
        if name not in existing
    ]
    created: set[str] = set()
    if to_create:
        for name, future in client.create_topics(to_create, request_timeout=timeout).items():
            try:
                future.result(timeout=timeout)
                created.add(name)
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue  # created concurrently by another process: fine
                raise PermanentError(f"creating topic {name} failed: {_describe(exc)}") from exc
        _wait_for_topics(settings, [name for name, _ in wanted], timeout)
        existing = describe_topics(settings, timeout)
    states = []
    for name, spec in wanted:
        partitions, replication = existing.get(name, (None, None))
        status = "created" if name in created else ("exists" if name in existing else "missing")
        states.append(TopicState(name, spec, status, partitions, settings.topic_partitions, replication))
    return TopicReport(tuple(states))


def _wait_for_topics(settings: Settings, names: list[str], timeout: float) -> None:
    """Creation returns when the controller has the topic; wait until every partition has a leader too."""
    client = admin_client(settings)
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending:
        metadata = client.list_topics(timeout=timeout)
        pending = [
            n for n in names
            if n not in metadata.topics
            or metadata.topics[n].error is not None
            or any(p.leader < 0 for p in metadata.topics[n].partitions.values())
        ]
        if not pending:
            return
        if time.monotonic() >= deadline:
            raise BrokerUnavailableError(f"topics {pending} have no partition leaders after {timeout:g}s")
        time.sleep(0.1)


def topic_config_values(settings: Settings, names: list[str], keys: tuple[str, ...] = ("cleanup.policy", "retention.ms"),
                        timeout: float = 10.0) -> dict[str, dict[str, str]]:
    """The broker's values of a few configs for each named topic (for `touchpoint topics list`)."""
    if not names:
        return {}
    client = admin_client(settings)
    futures = client.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, n) for n in names],
                                      request_timeout=timeout)
    out: dict[str, dict[str, str]] = {}
    for resource, future in futures.items():
        entries: dict[str, Any] = future.result(timeout=timeout)
        out[resource.name] = {k: str(entries[k].value) for k in keys if k in entries}
    return out


def delete_topics(settings: Settings, names: list[str], timeout: float = 30.0) -> None:
    """Delete topics (tests clean up with this; the CLI does not expose it)."""
    if not names:
        return
    client = admin_client(settings)  # keep a reference: a collected client fails its pending futures
    for name, future in client.delete_topics(names, operation_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if not (isinstance(err, KafkaError) and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
                raise PermanentError(f"deleting topic {name} failed: {_describe(exc)}") from exc


def members_holding_partitions(settings: Settings, group: str) -> int:
    """How many members of consumer group ``group`` hold partitions now (0 while it is rebalancing or absent)."""
    admin = admin_client(settings)  # held while the future runs: a collected client never answers
    try:
        desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
    except Exception:  # noqa: BLE001 - the group does not exist yet, or the broker is busy: "not ready"
        return 0
    if str(desc.state).rsplit(".", 1)[-1] != "STABLE":
        return 0
    return sum(1 for m in desc.members if m.assignment and m.assignment.topic_partitions)
