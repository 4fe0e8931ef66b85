"""Everything the worker produces except its table changelogs, through one confluent-kafka (librdkafka) producer.

Why not faust's producer: a send through faust + aiokafka costs ~0.1 ms of Python (futures, tasks, callbacks); a
librdkafka ``produce`` is a few µs of C and batches in its own threads. The worker sends ~2 records per event
(frames, snapshots, metric windows, merges, dead letters), so this is most of its time.

Guarantee (at-least-once): faust commits consumer offsets only after ``app.producer.flush()``; ``install`` wraps
that flush so it first hands over what the steps hold back (pending journey snapshots), waits until librdkafka has
every record acknowledged, then runs faust's own flush (table
changelogs). The events topic's consumer (``source.py``) flushes the outbox itself before its commits.
A record librdkafka gives up on (after ``message.timeout.ms``) fails the flush, so the offsets are not committed,
and stops the worker loudly: a restart replays from the last commit.

``send`` never awaits: a step can do all the work of one input record without yielding to the event loop, so
nothing (a rebalance callback, a timer) interleaves with it halfway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from confluent_kafka import KafkaError, Message, Producer

from touchpoint.config import Settings
from touchpoint.errors import BrokerUnavailableError

log = logging.getLogger(__name__)

POLL_EVERY = 1_000  # serve delivery callbacks after this many sends
FLUSH_TIMEOUT_S = 120.0


class DeliveryFailed(BrokerUnavailableError):
    """librdkafka gave up on a record: offsets must not be committed past it."""


class Outbox:
    """A librdkafka producer with an async ``flush`` for the commit path and a remembered delivery failure."""

    def __init__(self, settings: Settings, *, on_failure: Callable[[str], None] | None = None,
                 track_offsets: bool = False, overrides: dict[str, Any] | None = None) -> None:
        """``track_offsets``: report every delivery and remember the highest offset per (topic, partition)
        (``take_acked``); otherwise librdkafka reports failures only, which is cheaper. ``overrides``: more
        librdkafka settings (tests)."""
        self._producer = Producer(settings.kafka_config(**{
            "acks": "all",
            "enable.idempotence": True,  # no duplicates or reordering from librdkafka's own retries
            "compression.type": "lz4",
            "linger.ms": 10,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 1_000_000,
            "delivery.report.only.error": not track_offsets,
            "on_delivery": self._delivered,
            **(overrides or {}),
        }))
        self._acked: dict[tuple[str, int], int] = {}
        self._on_failure = on_failure
        self.failure: str | None = None
        self._unpolled = 0

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:  # only with track_offsets (runs in whichever thread polls: a plain dict store is atomic)
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            if topic is not None and partition is not None and offset is not None:
                if offset > self._acked.get((topic, partition), -1):
                    self._acked[(topic, partition)] = offset
            return
        if self.failure is None:
            self.failure = f"a record to {msg.topic()} was not delivered: {err.str()}"
            log.critical("%s; offsets will not be committed past it, stopping the worker", self.failure)
            if self._on_failure is not None:
                self._on_failure(self.failure)

    def send(self, topic: str, value: bytes | None, key: bytes | None = None, *, partition: int | None = None,
             headers: list[tuple[str, str | bytes | None]] | None = None) -> None:
        """Queue one record (never blocks the event loop for long: waits only while librdkafka's queue is full)."""
        producer = self._producer
        while True:
            try:
                if partition is None:
                    producer.produce(topic, value, key, headers=headers)
                else:
                    producer.produce(topic, value, key, partition, headers=headers)
                break
            except BufferError:  # local queue full: let librdkafka send, then retry
                producer.poll(0.05)
        self._unpolled += 1
        if self._unpolled >= POLL_EVERY:
            self._unpolled = 0
            producer.poll(0)

    async def flush(self, timeout: float = FLUSH_TIMEOUT_S) -> None:
        """Wait until every queued record is acknowledged; raise DeliveryFailed if one was not (or on timeout)."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout
        while True:
            remaining = await loop.run_in_executor(None, self._producer.flush, 0.5)
            if self.failure is not None:
                raise DeliveryFailed(self.failure)
            if remaining == 0:
                return
            if time.monotonic() > deadline:
                raise DeliveryFailed(f"{remaining} records still unacknowledged after {timeout:.0f}s; is Kafka up?")

    def drain(self, timeout: float = FLUSH_TIMEOUT_S) -> None:
        """The blocking ``flush``, for callbacks that cannot await (a rebalance, the stop)."""
        remaining = self._producer.flush(timeout)
        if self.failure is not None:
            raise DeliveryFailed(self.failure)
        if remaining:
            raise DeliveryFailed(f"{remaining} records still unacknowledged after {timeout:.0f}s; is Kafka up?")

    def take_acked(self) -> dict[tuple[str, int], int]:
        """Highest acknowledged offset per (topic, partition) since the last call (``track_offsets`` only)."""
        acked, self._acked = self._acked, {}
        return acked

    def close(self, timeout: float = 30.0) -> int:
        """Blocking final flush (after the event loop stopped); returns the records left unsent."""
        return int(self._producer.flush(timeout))


def install(app: Any, outboxes: list[Outbox], before_flush: list[Callable[[], object]],
            after_flush: list[Callable[[], None]]) -> None:
    """Make faust's pre-commit ``producer.flush()`` run the ``before_flush`` hooks (pending journey snapshots go to
    the outbox), drain every outbox, then run the ``after_flush`` hooks (recording the changelog offsets now safe in Kafka) before faust's own flush."""
    producer = app.producer
    faust_flush = producer.flush

    async def flush() -> None:
        for hook in before_flush:
            hook()
        for outbox in outboxes:
            await outbox.flush()
        for hook in after_flush:
            hook()
        await faust_flush()

    producer.flush = flush
