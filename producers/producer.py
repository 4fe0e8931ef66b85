"""``TouchpointProducer``: validated, Avro-encoded touchpoints onto the events topic.

Guarantee: **at-least-once** delivery of every event whose ``send`` returned; within one producer session
the producer is idempotent (``enable.idempotence=true``, ``acks=all``): librdkafka's retries never
duplicate or reorder a message. Events with the same key (``customer_id``, else ``anonymous_id``) go
to one partition in the order they were sent. Duplicates are possible when *you* re-send after a
failure or a producer restart: consumers dedup on ``event_id`` (keep it when you retry).

Nothing is half-sent: ``send`` validates, then encodes, checks the encoded size against the largest message
the topic accepts (``message_limit``), and only then queues the record; an invalid or oversize event raises
``ValidationError(field, rule)`` and nothing is queued. A record the Kafka client refuses when it is queued
fails its own delivery (future, callback, counter) and never stops the records after it. librdkafka's own log
lines go to the ``touchpoint.kafka`` logger (not straight to stderr).
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from touchpoint.config import Settings, get_settings
from touchpoint.errors import BrokerUnavailableError, ConfigError, RetryableError, TouchpointError, ValidationError
from touchpoint.metrics import PRODUCER_EVENTS_FAILED, PRODUCER_EVENTS_PRODUCED, PRODUCER_SEND_LATENCY
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.validation import validate_event

from touchpoint.producers.builders import EventType
from touchpoint.producers.pseudonymise import Pseudonymiser
from touchpoint.producers.message_limit import RECORD_OVERHEAD, MessageLimit, message_limit

DeliveryCallback = Callable[["DeliveryError | None", "DeliveryReport | None"], None]

_EVENT_TYPES = frozenset(t.value for t in EventType)
_POLL_EVERY = 64
_POLL_INTERVAL = 0.05  # seconds
_monotonic = time.monotonic
KAFKA_LOG = logging.getLogger("touchpoint.kafka")  # librdkafka's log lines (connection failures, retries)


class DeliveryError(TouchpointError):
    """Kafka did not acknowledge an event (after librdkafka's own retries, within ``delivery.timeout.ms``).

    ``retriable`` tells whether sending the same event again may succeed (it keeps its ``event_id``,
    so consumers drop the copy if the first one did land after all).
    """

    def __init__(self, kafka_error: KafkaError, event_id: str, event_type: str, topic: str) -> None:
        self.kafka_error = kafka_error
        self.event_id = event_id
        self.event_type = event_type
        self.topic = topic
        self.retriable = bool(kafka_error.retriable())
        super().__init__(
            f"event {event_id} ({event_type}) was not delivered to {topic}: {kafka_error.str()} "
            f"[{kafka_error.name()}]; check that the topic exists (`touchpoint topics create`) and the broker is reachable"
        )


class DeliveryReport:
    """Where Kafka stored an event."""

    __slots__ = ("event_id", "event_type", "topic", "partition", "offset")

    def __init__(self, event_id: str, event_type: str, topic: str, partition: int, offset: int) -> None:
        self.event_id = event_id
        self.event_type = event_type
        self.topic = topic
        self.partition = partition
        self.offset = offset

    def __repr__(self) -> str:
        return f"DeliveryReport({self.event_id!r}, {self.event_type}, {self.topic}[{self.partition}]@{self.offset})"


class DeliveryFuture:
    """The outcome of one ``send``. Cheap by design (one per event): no lock, no thread.

    Delivery results arrive when the producer is polled; ``result()`` polls it, so calling it from the
    sending thread never dead-locks.
    """

    __slots__ = ("_event", "_owner", "_callback", "_outcome")

    def __init__(self, owner: TouchpointProducer, event: dict[str, Any], callback: DeliveryCallback | None) -> None:
        self._event = event
        self._owner = owner
        self._callback = callback
        # None while in flight, then (partition, offset) or the DeliveryError.
        self._outcome: tuple[int, int] | DeliveryError | None = None

    @property
    def event_id(self) -> str:
        return self._event["event_id"]  # type: ignore[no-any-return]

    @property
    def event_type(self) -> str:
        return self._event["event_type"]  # type: ignore[no-any-return]

    def done(self) -> bool:
        return self._outcome is not None

    def result(self, timeout: float | None = None) -> DeliveryReport:
        """Wait (polling the producer) until Kafka acknowledged the event; raise ``DeliveryError`` if it did not.

        Raises ``TimeoutError`` when no result arrived within ``timeout`` seconds (``None``: wait forever).
        """
        outcome = self._owner._wait(self, timeout)
        if isinstance(outcome, DeliveryError):
            raise outcome
        return DeliveryReport(self.event_id, self.event_type, self._owner.topic, *outcome)

    def exception(self, timeout: float | None = None) -> DeliveryError | None:
        outcome = self._owner._wait(self, timeout)
        return outcome if isinstance(outcome, DeliveryError) else None

    # Called by librdkafka (through confluent-kafka) from poll()/flush(): the hot path of delivery.
    def _deliver(self, err: KafkaError | None, msg: Message) -> None:
        owner = self._owner
        event_type = self._event["event_type"]
        latency = msg.latency()
        if latency is not None:
            owner._latencies.append(latency)
        if err is None:
            # Never None for a delivered message (only for consumer errors); no cast on the hot path.
            self._outcome = (msg.partition(), msg.offset())  # type: ignore[assignment]
            owner._produced[event_type] += 1
        else:
            self._outcome = DeliveryError(err, self._event["event_id"], event_type, owner.topic)
            owner._failed[event_type] += 1
        if self._callback is not None:
            self._notify()

    def _refused(self, err: KafkaError) -> None:
        """The client refused the record when it was queued: the same outcome as a failed delivery."""
        self._outcome = DeliveryError(err, self._event["event_id"], self._event["event_type"], self._owner.topic)
        self._owner._failed[self._event["event_type"]] += 1
        if self._callback is not None:
            self._notify()

    def _notify(self) -> None:
        assert self._callback is not None and self._outcome is not None
        if isinstance(self._outcome, DeliveryError):
            self._callback(self._outcome, None)
        else:
            self._callback(None, DeliveryReport(self.event_id, self.event_type, self._owner.topic, *self._outcome))


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """librdkafka settings of the touchpoint producer (the benchmark's bare baseline uses the same)."""
    return settings.kafka_config(
        **{
            "enable.idempotence": True,  # implies acks=all, retries, max.in.flight<=5 with ordering kept
            "acks": "all",
            "compression.type": settings.producer_compression,
            "linger.ms": settings.producer_linger_ms,
            "batch.size": 1_000_000,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 500_000,
            # Same key -> same partition as the Java client, aiokafka and Kafka Streams (librdkafka's default
            # hashes with CRC32 instead), so a customer's events land together whoever produces them.
            "partitioner": "murmur2_random",
            # The pipeline creates its topics explicitly (partitions, retention): a typo in a topic name must fail
            # the deliveries instead of silently creating a one-partition topic with broker defaults.
            "allow.auto.create.topics": False,
            **overrides,
        }
    )


class TouchpointProducer:
    """Produces touchpoints (in-memory event form, see ``touchpoint.producers.builders``) to the events topic.

    Guarantee: at-least-once, idempotent producer per session, ordered per key (customer_id, else
    anonymous_id); duplicates are possible after a producer restart or an explicit re-send, so consumers
    dedup on ``event_id``.

        with TouchpointProducer.from_settings() as producer:
            future = producer.send(event)
            ...
        # leaving the block flushes: every send has a delivery result
        print(future.result())

    Delivery results (futures, ``on_delivery`` callbacks, metrics) are served by ``poll``, which ``send`` runs
    every few events, and by ``flush``/``close``/``DeliveryFuture.result``, in the calling thread. Use a
    producer from one thread at a time (the hot path keeps its metric counts without locks); give each
    thread its own producer, or guard a shared one with a lock.

    Prometheus: ``touchpoint_producer_events_produced_total`` / ``_failed_total`` by event type (failure
    reason ``validation`` or ``delivery``) and ``touchpoint_producer_send_latency_seconds`` (send to ack).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        topic: str | None = None,
        codec: AvroCodec | None = None,
        config: Mapping[str, Any] | None = None,
        queue_full_timeout: float = 60.0,
        pseudonymise: Pseudonymiser | None | bool = True,
    ) -> None:
        """``pseudonymise``: True (default) hashes the fields ``pseudonymise_fields`` names (none unless configured),
        a ``Pseudonymiser`` uses that one, False or None sends events as given."""
        self.settings = settings or get_settings()
        self._pseudonymise = (Pseudonymiser.from_settings(self.settings) if pseudonymise is True
                              else pseudonymise or None)
        self.topic = topic or self.settings.events_topic
        self._codec = codec or AvroCodec.from_settings(self.settings)
        self._encode = self._codec.encode
        self._max_string_bytes = self.settings.max_string_bytes
        self._queue_full_timeout = queue_full_timeout
        self._config = producer_config(self.settings, **dict(config or {}))
        self._kafka = Producer({"logger": KAFKA_LOG, **self._config})
        self._limit: MessageLimit | None = None
        self._closed = False
        self._unpolled = 0
        self._next_poll = 0.0
        # Metric updates are batched: the delivery path bumps plain ints, _drain_metrics moves them into
        # Prometheus after each poll (a Counter.inc or Histogram.observe per event would cost ~1 us each).
        self._produced: dict[str, int] = dict.fromkeys(_EVENT_TYPES, 0)
        self._failed: dict[str, int] = dict.fromkeys(_EVENT_TYPES, 0)
        self._latencies: list[float] = []
        self._produced_children = {t: PRODUCER_EVENTS_PRODUCED.labels(t) for t in _EVENT_TYPES}
        self._failed_children = {t: PRODUCER_EVENTS_FAILED.labels(t, "delivery") for t in _EVENT_TYPES}

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **kwargs: Any) -> TouchpointProducer:
        return cls(settings, **kwargs)

    def check_topic(self, timeout: float = 10.0) -> int:
        """Fail early, with what to do, when the topic does not exist, the broker is unreachable or refuses the security
        settings; return its partitions."""
        from touchpoint.kafka_security import check_access

        check_access(self.settings, timeout)
        try:
            metadata = self._kafka.list_topics(self.topic, timeout=timeout)
        except KafkaException as exc:
            raise BrokerUnavailableError(
                f"Kafka at {self.settings.bootstrap_servers} is not reachable ({exc.args[0].str() if exc.args else exc}); "
                "start a local broker with `touchpoint broker start` or set KAFKA_BOOTSTRAP_SERVERS"
            ) from exc
        found = metadata.topics.get(self.topic)
        if found is None or found.error is not None:
            reason = found.error.str() if found is not None and found.error is not None else "not in the cluster metadata"
            raise ConfigError(f"topic {self.topic} is not usable ({reason}); create it with `touchpoint topics create`")
        return len(found.partitions)

    def message_limit(self) -> MessageLimit:
        """The largest encoded event the topic and the client accept (looked up once, on first use)."""
        if self._limit is None:
            self._limit = message_limit(self.settings, self.topic, self._config)
        return self._limit

    def _check_size(self, event: dict[str, Any], value: bytes) -> None:
        key = event.get("customer_id") or event.get("anonymous_id") or ""
        limit = self._limit or self.message_limit()
        refusal = limit.refusal(len(value) + len(key.encode()) + RECORD_OVERHEAD, self.topic)
        if refusal is not None:
            raise ValidationError("event", refusal)

    # --- sending -------------------------------------------------------------------------------------

    def send(self, event: dict[str, Any], on_delivery: DeliveryCallback | None = None) -> DeliveryFuture:
        """Validate, encode and queue one event; return its ``DeliveryFuture``.

        Raises ``ValidationError(field, rule)`` before anything is queued when the event breaks its contract.
        ``on_delivery(error, report)`` runs from ``poll``/``flush``/``result`` once Kafka answered.
        """
        if self._closed:
            raise TouchpointError("this TouchpointProducer is closed; create a new one")
        if self._pseudonymise is not None and isinstance(event, dict):
            event = self._pseudonymise(event)
        try:
            validate_event(event, self._max_string_bytes)
            value = self._encode(event)  # raises ValidationError too if the record cannot be written
            self._check_size(event, value)
        except ValidationError:
            self._count_invalid(event)
            raise
        return self._queue(event, value, on_delivery)

    def send_many(
        self, events: Iterable[dict[str, Any]], on_delivery: DeliveryCallback | None = None
    ) -> list[DeliveryFuture]:
        """Send a batch: every event is validated and encoded first, so one invalid event queues none of them.

        The ``ValidationError`` names the position: ``events[3].payload.score``.
        """
        if self._closed:
            raise TouchpointError("this TouchpointProducer is closed; create a new one")
        batch = events if isinstance(events, list) else list(events)
        if self._pseudonymise is not None:
            pseudonymise = self._pseudonymise
            batch = [pseudonymise(e) if isinstance(e, dict) else e for e in batch]
        validate, encode, limit = validate_event, self._encode, self._max_string_bytes
        values: list[bytes] = []
        append = values.append
        for i, event in enumerate(batch):
            try:
                validate(event, limit)
                value = encode(event)
                self._check_size(event, value)
                append(value)
            except ValidationError as exc:
                self._count_invalid(event)
                raise ValidationError(f"events[{i}].{exc.field}", exc.rule, exc.value) from exc
        queue = self._queue
        return [queue(event, value, on_delivery) for event, value in zip(batch, values)]

    def _queue(self, event: dict[str, Any], value: bytes, on_delivery: DeliveryCallback | None) -> DeliveryFuture:
        key = event["customer_id"] or event["anonymous_id"]
        future = DeliveryFuture(self, event, on_delivery)
        try:
            try:
                self._kafka.produce(self.topic, value, key, on_delivery=future._deliver)
            except BufferError:
                self._produce_when_room(value, key, future)
        except KafkaException as exc:  # refused by the client (e.g. too large): this record fails, the next go on
            err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else KafkaError(KafkaError._FAIL, str(exc))
            future._refused(err)
        # Serve delivery reports every _POLL_EVERY sends, or sooner when the last poll is _POLL_INTERVAL old
        # (a slow sender still sees its callbacks promptly). Polling on every send costs ~0.5 us per event.
        self._unpolled += 1
        if self._unpolled >= _POLL_EVERY or _monotonic() >= self._next_poll:
            self.poll(0)
        return future

    def _produce_when_room(self, value: bytes, key: str, future: DeliveryFuture) -> None:
        # librdkafka's local queue is full: serve delivery reports until there is room (back-pressure).
        waited = 0.0
        while True:
            self._kafka.poll(0.05)
            self._drain_metrics()
            waited += 0.05
            try:
                self._kafka.produce(self.topic, value, key, on_delivery=future._deliver)
                return
            except BufferError:
                if waited >= self._queue_full_timeout:
                    raise RetryableError(
                        f"the producer's local queue stayed full for {self._queue_full_timeout:.0f}s: "
                        f"is the broker at {self.settings.bootstrap_servers} reachable?"
                    ) from None

    def _count_invalid(self, event: object) -> None:
        event_type = event.get("event_type") if isinstance(event, dict) else None
        label = event_type if event_type in _EVENT_TYPES else "unknown"
        PRODUCER_EVENTS_FAILED.labels(label, "validation").inc()

    # --- delivery ------------------------------------------------------------------------------------

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery results (callbacks, futures, metrics); return how many were served.

        ``send`` polls every few events; call this when you stop sending for a while and want callbacks now.
        """
        served = int(self._kafka.poll(timeout))
        self._unpolled = 0
        self._next_poll = _monotonic() + _POLL_INTERVAL
        if served:
            self._drain_metrics()
        return served

    def flush(self, timeout: float | None = None) -> int:
        """Wait until every queued event has a delivery result; return how many are still in flight."""
        remaining = int(self._kafka.flush(-1 if timeout is None else timeout))
        self._drain_metrics()
        return remaining

    def abort(self) -> int:
        """Give up on every event still queued or in flight: each fails its delivery (``_PURGE_QUEUE`` /
        ``_PURGE_INFLIGHT``) so callbacks and futures get an outcome now. Returns how many were given up."""
        pending = len(self._kafka)
        if pending:
            self._kafka.purge(in_queue=True, in_flight=True, blocking=False)
            self._kafka.flush(0)  # serve the purged records' delivery callbacks
            self._drain_metrics()
        return pending

    def __len__(self) -> int:
        """Events queued or in flight."""
        return len(self._kafka)

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush: every sent event gets its delivery result (callbacks and futures). Idempotent; no sends after.

        Raises ``RetryableError`` when events are still undelivered after ``timeout`` seconds.
        """
        if self._closed:
            return
        self._closed = True
        remaining = self.flush(timeout)
        if remaining:
            raise RetryableError(
                f"{remaining} event(s) still undelivered after {timeout}s; the broker at "
                f"{self.settings.bootstrap_servers} may be unreachable"
            )

    def __enter__(self) -> TouchpointProducer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        # Events sent before an error in the block are still flushed (at-least-once); if that fails too, the
        # block's own exception stays the one raised and carries the flush failure as a note.
        if exc is None:
            self.close()
            return
        try:
            self.close()
        except RetryableError as flush_error:
            exc.add_note(f"while closing the producer: {flush_error}")

    def _wait(self, future: DeliveryFuture, timeout: float | None) -> tuple[int, int] | DeliveryError:
        deadline = None if timeout is None else time.monotonic() + timeout
        while future._outcome is None:
            left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            self.poll(max(left, 0.0))
            if future._outcome is None and deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"no delivery result for event {future.event_id} within {timeout}s")
        return future._outcome

    def _drain_metrics(self) -> None:
        produced, failed, latencies = self._produced, self._failed, self._latencies
        for event_type, count in produced.items():
            if count:
                self._produced_children[event_type].inc(count)
                produced[event_type] = 0
        for event_type, count in failed.items():
            if count:
                self._failed_children[event_type].inc(count)
                failed[event_type] = 0
        if latencies:
            self._latencies = []
            _observe_many(latencies)


def _observe_many(values: list[float]) -> None:
    """Add many observations to PRODUCER_SEND_LATENCY in one go (bucket counts summed first)."""
    histogram: Any = PRODUCER_SEND_LATENCY
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None:  # prometheus-client internals changed: slow path
        for value in values:
            histogram.observe(value)
        return
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect_left(bounds, value)] += 1
    for index, count in enumerate(counts):
        if count:
            buckets[index].inc(count)
    total.inc(sum(values))
