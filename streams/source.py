"""The events topic read by one librdkafka consumer, in batches, inside the worker's event loop.

Why not a faust agent: faust hands every Kafka record to an agent through two asyncio tasks, a queue and an
``Event`` (~40-60 µs of Python per record), more than decoding and framing it. Producers write one record per
event, so the events topic is the only one where that cost is paid per event (the internal topics carry frames of
up to ``FRAME_MAX_EVENTS`` events). Here ``consume(n, timeout=0)`` returns what librdkafka's threads prefetched,
and a whole batch is handled without yielding.

Group: ``<worker_id>-decode`` (``topology.decode_group``), so the worker processes of one pipeline split the
events topic's partitions as they split the internal topics through faust's group ``<worker_id>``.

Guarantee (at-least-once, ordered per source partition, as with faust): the offset of a record is committed only
after everything ``handle`` made of it (frames, dead letters) was acknowledged by Kafka: every
``COMMIT_INTERVAL_S``, at a rebalance (before the partitions are given up) and at stop, the open frames are handed
to the outbox (``flush``), the outbox is flushed, then the offsets are committed. A record handled after a
crash is handled again; the journey state deduplicates its event, its dead letter repeats the same source
coordinates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from touchpoint.errors import BrokerUnavailableError, ConfigError
from touchpoint.kafka_security import security_problem
from touchpoint.metrics import STREAM_CONSUMER_LAG, STREAM_REBALANCES, lag_by_topic
from touchpoint.streams.outbox import DeliveryFailed, Outbox

log = logging.getLogger(__name__)

BATCH = 1_000  # records per consume(): ~10 ms of work, then other agents get the event loop
IDLE_SLEEP_S = 0.005  # nothing prefetched: look again after this long (bounds the added latency)
COMMIT_INTERVAL_S = 1.0  # like faust's broker_commit_interval: bounds what a crash replays

TP = tuple[str, int]


class SourceConsumer:
    """Consume ``topic`` until stopped; ``handle(message)`` returns False to stop after that message."""

    def __init__(self, settings: Any, topic: str, group: str, *, outbox: Outbox, handle: Callable[[Message], bool],
                 flush: Callable[[], None], flush_every: float, legacy_group: str | None = None) -> None:
        """``flush``: hand what ``handle`` holds back (open frames) to the outbox; called every ``flush_every``
        seconds and before every commit. ``legacy_group``: the group that read ``topic`` before this one (see
        ``_continue_legacy``)."""
        self.settings = settings
        self.topic = topic
        self.group = group
        self.legacy_group = legacy_group
        self.outbox = outbox
        self.handle = handle
        self.flush = flush
        self.flush_every = flush_every
        self.config = settings.kafka_config(**{
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",  # a new pipeline starts at the beginning of the events
            "partition.assignment.strategy": "range",  # eager: a rebalance revokes all, committed first
            "enable.partition.eof": False,
            "fetch.wait.max.ms": 50,  # the broker answers an empty fetch after 50 ms (latency, not load)
            "statistics.interval.ms": 5000,  # consumer lag for /metrics (served from consume(), this thread)
            "stats_cb": self._on_stats,
        })
        self.positions: dict[TP, int] = {}  # next offset per partition handled so far
        self.committed: dict[TP, int] = {}
        self.assigned: set[TP] = set()
        self.stopping = False
        self.failed = False  # a record was not delivered: commit nothing more (a restart replays)
        self._consumer: Consumer | None = None

    async def run(self) -> None:
        consumer = self._consumer = Consumer(self.config)
        consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)
        log.info("consuming %s as group %s", self.topic, self.group)
        now = time.monotonic()
        next_commit, next_flush = now + COMMIT_INTERVAL_S, now + self.flush_every
        try:
            while not self.stopping:
                messages = consumer.consume(BATCH, timeout=0)
                for message in messages:
                    if not self._accept(message):
                        self.stopping = True
                        break
                now = time.monotonic()
                if now >= next_flush:
                    self.flush()
                    next_flush = now + self.flush_every
                if now >= next_commit:
                    await self.commit()
                    next_commit = time.monotonic() + COMMIT_INTERVAL_S
                await asyncio.sleep(0 if messages else IDLE_SLEEP_S)
        finally:
            self.close()

    def _accept(self, message: Message) -> bool:
        error = message.error()
        if error is not None:
            if error.fatal():
                raise BrokerUnavailableError(f"Kafka consumer of {self.topic} failed: {error.str()}")
            problem = security_problem(self.settings, error.str())
            if problem is not None:
                raise ConfigError(problem)
            log.warning("Kafka consumer error on %s: %s", self.topic, error.str())
            return True
        go_on = self.handle(message)
        self.positions[(self.topic, message.partition() or 0)] = (message.offset() or 0) + 1
        return go_on

    def _due(self, only: set[TP] | None = None, *, again: bool = False) -> list[TopicPartition]:
        """Positions of assigned partitions to commit: those moved since the last commit, or all with ``again``
        (an asynchronous commit may have failed unseen)."""
        return [TopicPartition(t, p, o) for (t, p), o in self.positions.items()
                if (t, p) in self.assigned and (only is None or (t, p) in only)
                and (again or self.committed.get((t, p)) != o)]

    async def commit(self) -> None:
        """Hand over open frames, wait until Kafka has them, then commit what they cover (asynchronously)."""
        due = [] if self.failed else self._due()
        if not due:
            return
        self.flush()
        try:
            await self.outbox.flush()
        except DeliveryFailed:  # the outbox already stopped the worker loudly
            self.failed = True
            self.stopping = True
            return
        self._commit([tp for tp in due if (tp.topic, tp.partition) in self.assigned], asynchronous=True)

    def _commit_now(self, only: set[TP] | None = None) -> None:
        """The blocking form, for a rebalance callback and the stop (no event loop turn in between)."""
        if self.failed:
            return
        self.flush()
        try:
            self.outbox.drain()
        except DeliveryFailed:
            self.failed = True
            self.stopping = True
            return
        self._commit(self._due(only, again=True), asynchronous=False)

    def _commit(self, offsets: list[TopicPartition], *, asynchronous: bool) -> None:
        if not offsets or self._consumer is None:
            return
        try:
            if asynchronous:
                self._consumer.commit(offsets=offsets, asynchronous=True)
            else:
                self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:  # e.g. a rebalance is in progress: those records are handled again
            log.warning("commit of %s offsets failed (%s); records after the last commit are handled again",
                        self.topic, exc)
            return
        for tp in offsets:
            self.committed[(tp.topic, tp.partition)] = tp.offset

    def _on_stats(self, stats_json: str) -> None:
        lag = lag_by_topic(stats_json, self.assigned).get(self.topic)
        if lag is not None:
            STREAM_CONSUMER_LAG.labels(self.topic).set(lag)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned.update((tp.topic, tp.partition) for tp in partitions)
        STREAM_REBALANCES.inc()
        log.info("%s partitions assigned: %s", self.topic, sorted(tp.partition for tp in partitions))
        if self.legacy_group:
            self._continue_legacy(consumer, partitions)

    def _continue_legacy(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start partitions this group never committed where ``legacy_group`` stopped (an upgrade from a worker
        whose faust agent read the events topic): re-reading the whole topic would count events again whose
        ids the journey state has already forgotten (dedup horizon)."""
        try:
            ours = consumer.committed(partitions, timeout=10)
            fresh = [TopicPartition(tp.topic, tp.partition) for tp in ours if tp.offset < 0]
            if not fresh:
                return
            legacy = Consumer({**{k: v for k, v in self.config.items() if k != "stats_cb"},
                               "group.id": self.legacy_group, "statistics.interval.ms": 0})
            try:
                theirs = {(tp.topic, tp.partition): tp.offset for tp in legacy.committed(fresh, timeout=10)}
            finally:
                legacy.close()
        except KafkaException as exc:
            log.warning("could not read the committed offsets of %s (%s); partitions without offsets of their own "
                        "start at the earliest record", self.legacy_group, exc)
            return
        starts = {tp: off for tp, off in theirs.items() if off >= 0}
        if not starts:
            return
        log.warning("%s: continuing from the offsets committed by group %s (the previous worker version) on "
                    "partitions %s", self.topic, self.legacy_group, sorted(p for _, p in starts))
        consumer.assign([TopicPartition(tp.topic, tp.partition, starts.get((tp.topic, tp.partition), tp.offset))
                         for tp in partitions])
        # Made ours at once: the old group's offsets expire (offsets.retention.minutes) now that nobody commits them.
        self.positions.update(starts)
        self._commit(self._due(set(starts), again=True), asynchronous=False)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self._commit_now(revoked)
        self._forget(revoked)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        lost = {(tp.topic, tp.partition) for tp in partitions}
        log.warning("%s partitions lost (session timed out): %s; their records after the last commit are handled "
                    "again by their new owner", self.topic, sorted(p for _, p in lost))
        self._forget(lost)

    def _forget(self, tps: set[TP]) -> None:
        self.assigned -= tps
        for tp in tps:
            self.positions.pop(tp, None)
            self.committed.pop(tp, None)

    def close(self) -> None:
        """Commit what was handled (blocking) and leave the group; safe to call twice."""
        consumer = self._consumer
        if consumer is None:
            return
        try:
            self._commit_now()
        finally:
            self.stopping = True
            self._consumer = None  # the revoke during close() has nothing left to commit
            try:
                consumer.close()
            except (KafkaException, RuntimeError) as exc:
                log.warning("closing the %s consumer: %s", self.topic, exc)
