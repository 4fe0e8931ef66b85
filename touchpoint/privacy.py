"""Erasure requests and the suppression list every stage follows (``touchpoint privacy erase``).

An erasure is a set of records on the compacted topic ``<prefix>.privacy-erasures``, one per erased id (a customer id
and the anonymous ids stitched to it), keyed by the id, all carrying the same request id::

    {"id": "<customer or anonymous id>", "request_id": "<uuid>", "requested_at": <ms>, "requested_by": "<os user>",
     "ids": <how many ids the request erases>}

The topic *is* the suppression list: it is compacted, never expires, and every stage reads all of it
(:class:`SuppressionList`, no consumer group) at start and follows it while running:

- the worker drops events whose customer or anonymous id is erased (at every step, so events already in flight
  are dropped too; counted in ``touchpoint_stream_events_suppressed_total``) and forgets those ids' alias, journey
  state and dedup entries on the partitions it holds (again after every restart and rebalance);
- the sink drops rows of erased ids before inserting them (``touchpoint_sink_records_skipped_total{reason=
  "erased"}``), deletes the rows already stored, and writes one audit row per request and sink (``privacy_erasures``).

It holds the erased ids themselves: the least that lets later touchpoints of that person be recognised. It holds
nothing else of theirs; audit rows hold only counts.
"""

from __future__ import annotations

import getpass
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from touchpoint.errors import BrokerUnavailableError

log = logging.getLogger(__name__)

TOPIC_NAME = "privacy-erasures"
RECHECK_S = 5.0  # how often a stage looks for the erasure topic while it does not exist


@dataclass(frozen=True)
class ErasureRequest:
    request_id: str
    ids: tuple[str, ...]
    requested_at: int
    requested_by: str


def erasure_topic(settings: Any) -> str:
    return str(settings.topic(TOPIC_NAME))


def ensure_topic(settings: Any, timeout: float = 30.0) -> None:
    """Create the erasure topic if missing: compacted and never deleted (an erased id stays suppressed for good).

    Not one of ``kafka_admin.TOPICS``: it exists from the first erasure on, and the stages read nothing from it
    until then."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic

    from touchpoint.kafka_admin import admin_client

    client = admin_client(settings)
    topic = erasure_topic(settings)
    if topic in client.list_topics(timeout=timeout).topics:
        return
    future = client.create_topics([NewTopic(topic, num_partitions=1, replication_factor=settings.topic_replication,
                                            config={"cleanup.policy": "compact"})])[topic]
    try:
        future.result(timeout=timeout)
    except KafkaException as exc:
        err = exc.args[0] if exc.args else None
        if not (isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS):
            raise BrokerUnavailableError(f"creating {topic} failed: {exc}; nothing was erased, run it again") from exc


def new_request(ids: list[str]) -> ErasureRequest:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): say so rather than guess
        who = "unknown"
    return ErasureRequest(str(uuid.uuid4()), tuple(dict.fromkeys(ids)), int(time.time() * 1000), who)


def publish(settings: Any, request: ErasureRequest, timeout: float = 30.0) -> None:
    """Write the request's records (acks=all) and wait until Kafka has every one of them."""
    from confluent_kafka import Producer

    failures: list[str] = []
    producer = Producer(settings.kafka_config(**{"enable.idempotence": True, "acks": "all"}))
    for subject in request.ids:
        value = json.dumps({"id": subject, "request_id": request.request_id, "requested_at": request.requested_at,
                            "requested_by": request.requested_by, "ids": len(request.ids)})
        producer.produce(erasure_topic(settings), value.encode("utf-8"), subject.encode("utf-8"),
                         on_delivery=lambda err, _msg: failures.append(err.str()) if err is not None else None)
    left = producer.flush(timeout)
    if failures or left:
        raise BrokerUnavailableError(
            f"the erasure request could not be written to {erasure_topic(settings)} "
            f"({failures[0] if failures else f'{left} records unacknowledged'}); nothing was erased, run it again"
        )


class SuppressionList:
    """Every erased id, read from the erasure topic from its beginning and followed (``poll``).

    Not thread-safe: one owner polls and reads it (the worker's event loop, the sink's loop).
    """

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.topic = erasure_topic(settings)
        self.ids: set[str] = set()
        self.requests: dict[str, ErasureRequest] = {}
        self._consumer: Any = None
        self._ready = False
        self._next_check = 0.0

    def _assigned(self) -> bool:
        """Assign every partition of the topic once it exists (checked at most every RECHECK_S until then)."""
        if self._ready:
            return True
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + RECHECK_S
        from confluent_kafka import Consumer, TopicPartition

        if self._consumer is None:
            self._consumer = Consumer(self.settings.kafka_config(**{
                "group.id": f"touchpoint-suppression-{uuid.uuid4().hex}",  # required by librdkafka; never committed
                "enable.auto.commit": False, "enable.partition.eof": False, "log_level": 0}))
        from confluent_kafka import KafkaException

        try:
            found = self._consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        except KafkaException as exc:
            # Kafka unreachable (an outage the sink rides out): nothing new can be read now; look again later.
            log.debug("suppression topic %s not reachable yet: %s", self.topic, exc)
            return False
        if found is None or found.error is not None or not found.partitions:
            # No erasure was ever requested on this cluster (`touchpoint privacy erase` creates the topic): nothing
            # is suppressed; look again later.
            return False
        self._consumer.assign([TopicPartition(self.topic, p, -2) for p in found.partitions])  # -2: from the start
        self._ready = True
        return True

    def load(self, timeout: float = 30.0) -> list[ErasureRequest]:
        """Read the whole list up to its current end (blocking); returns the requests read."""
        from confluent_kafka import TopicPartition

        self._next_check = 0.0
        if not self._assigned():
            return []
        consumer = self._consumer
        ends = {}
        for tp in consumer.assignment():
            _, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
            ends[tp.partition] = high
        done = {p for p, high in ends.items() if high <= 0}
        read: list[ErasureRequest] = []
        deadline = time.monotonic() + timeout
        while len(done) < len(ends):
            if time.monotonic() > deadline:
                raise BrokerUnavailableError(f"reading {self.topic} took longer than {timeout:g}s")
            for message in consumer.consume(1000, timeout=0.5):
                read.extend(self._accept(message))
                if message.error() is None and (message.offset() or 0) + 1 >= ends.get(message.partition() or 0, 0):
                    done.add(message.partition() or 0)
        return read

    def poll(self) -> list[ErasureRequest]:
        """New requests since the last call (never blocks)."""
        if not self._assigned():
            return []
        out: list[ErasureRequest] = []
        for message in self._consumer.consume(1000, timeout=0):
            out.extend(self._accept(message))
        return out

    def _accept(self, message: Any) -> list[ErasureRequest]:
        if message.error() is not None or not message.value():
            return []
        try:
            record = json.loads(message.value())
            subject, request_id = str(record["id"]), str(record["request_id"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed record on %s at offset %s", self.topic, message.offset())
            return []
        self.ids.add(subject)
        known = self.requests.get(request_id)
        ids = (known.ids if known else ()) + (subject,)
        self.requests[request_id] = ErasureRequest(request_id, ids, int(record.get("requested_at", 0)),
                                                   str(record.get("requested_by", "")))
        return [ErasureRequest(request_id, (subject,), int(record.get("requested_at", 0)),
                               str(record.get("requested_by", "")))]

    def blocks(self, event: dict[str, Any]) -> bool:
        """Whether the event belongs to an erased customer or anonymous id."""
        ids = self.ids
        if not ids:
            return False
        return event.get("customer_id") in ids or event.get("anonymous_id") in ids

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
            self._ready = False
