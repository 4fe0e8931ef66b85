"""The sink's consuming loop: Kafka (events, journeys, metrics, identity-merges) -> ClickHouse tables.

Guarantee: **every record of the four topics is stored exactly once per store** (or dead-lettered / skipped with
a counted reason), across retries, crashes between insert and commit, and consumer-group resets; duplicates
are possible only after a crash *inside* a multi-block insert, which the batch cut rules out for our tables
(see below), and `FINAL` views collapse even that.

Protocol for one batch (``_flush``), in order:
1. insert the rows of the batch as ONE columnar insert with ``insert_deduplication_token`` = table + per partition
   (first offset, last offset) of its rows; retryable failures are retried with the same token (a retry after
   a lost response is deduplicated by ClickHouse) with exponential backoff, consumption paused meanwhile;
2. rows ClickHouse refuses as data (constraint, type) are found by bisection and dead-lettered
   (kind ``rejected_by_store``); a refusal of the request itself (unknown table, access) stops the sink;
3. wait until every dead letter of the batch is acknowledged by Kafka;
4. commit exactly the offsets the batch handled (``enable.auto.commit=false``): asynchronously while
   ``sink_resume_from_store`` is on (the default), because then the restart position is the store's and the group's
   offsets only show progress, so a Kafka outage never stalls the loop on a commit; synchronously when it is off.
   The last offsets are committed synchronously once more on a clean stop (when Kafka is reachable).

A Kafka outage does not stop the sink: a failed commit (coordinator unavailable, broker down) and dead letters
not yet acknowledged are retried with the same backoff as ClickHouse inserts, consumption paused meanwhile, until
the broker is back; then consumption resumes. Only a fatal client error or a stop request ends the wait. A commit
runs in a helper thread because librdkafka's synchronous commit cannot be interrupted and may wait for a lost
coordinator indefinitely: a stop request during that wait leaves the commit behind (the stored offsets cover its
rows) instead of hanging the process.

Why restarts cannot duplicate: on (re)assignment of a partition the loop asks the store for the highest
``kafka_offset`` it holds for that topic partition and skips records at or below it. That is exact because,
per partition, batches are inserted in offset order, the next batch only after the previous one succeeded,
and each insert writes a single part (a batch never spans two months of the table's partition key, and stays
below ``max_insert_block_size``), which ClickHouse commits atomically: a stored offset implies every earlier
row of that partition is stored. So a crash between insert and commit, a rebalance that drops a pending batch,
or a group reset to the beginning all resume without re-inserting. ReplacingMergeTree on each table's key is the
second line of defence (``FINAL`` views). Recreating a topic (offsets restart at 0) requires deleting its rows
first or ``sink_resume_from_store=false``.

Records of the events topic that fail to decode or validate are counted and skipped, not dead-lettered: the
worker reads the same topic and owns their dead letter (each poison message lands in the DLQ exactly once).
Undecodable records of the other topics are dead-lettered here (kind ``undecodable`` / ``unknown_schema``).

Dead-letter ratio limit: when more than ``sink_dead_letter_max_ratio`` of the last ``sink_dead_letter_min_records``
records handled (rows stored or dead-lettered) were dead letters, the sink stops with ``DeadLetterRatioError``
(exit 1) instead of quietly diverting everything; nothing after the last commit is committed, so a restart after
the fix re-reads those records.

Lag while paused: librdkafka's statistics stop being served while the loop waits out a ClickHouse outage (no
``consume`` call), so during that wait the lag gauge is recomputed from the broker's high watermarks and the
consumer's positions at every retry and at least every ``_LAG_REFRESH_S``: it keeps growing while producers write.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from touchpoint import metrics as m
from touchpoint.dead_letter import KIND_INVALID, KIND_REJECTED, DeadLetter, RatioGuard
from touchpoint.errors import BrokerUnavailableError, ConfigError, InvalidEventError, PermanentError, ValidationError
from touchpoint.kafka_security import security_problem
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.validation import validate_event
from touchpoint.sinks.batcher import Batch, Batcher, token_for
from touchpoint.sinks.eraser import Eraser
from touchpoint.sinks.rows import JOURNEYS, MERGES, METRICS, TOUCHPOINTS, TableSpec, month_of_millis
from touchpoint.sinks.store import Store, StoreRejectedError, StoreRetryableError
from touchpoint.stage_status import report_phase

log = logging.getLogger(__name__)

STAGE = "sink"
_UNKNOWN = object()
_LAG_REFRESH_S = 5.0  # how often the lag gauge is recomputed while consumption is paused


class DeadLetterRatioError(PermanentError):
    """Too many of the sink's recent records were dead-lettered: it stops rather than divert everything."""


def _coordinates(message: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed record (never None for a record without error)."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None and partition is not None and offset is not None
    return topic, partition, offset


class Interrupted(Exception):
    """Stop was requested while waiting for ClickHouse; the pending batch is neither stored nor committed."""


class CommitAbandoned(Interrupted):
    """Stop was requested while an offset commit waited for Kafka; its rows are stored (the stored offset covers them)."""


@dataclass
class SinkStats:
    """Counters of one run (the Prometheus metrics are process-wide; tests and the CLI read these)."""

    rows_inserted: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    retries: int = 0
    skipped_stored: int = 0
    skipped_invalid: int = 0
    skipped_erased: int = 0
    dead_letters: int = 0
    commits: int = 0
    max_pending_rows: int = 0
    first_record_at: float = 0.0   # monotonic time of the first record consumed (benchmarks)
    last_flush_at: float = 0.0     # monotonic time the last batch was committed

    def total_rows(self) -> int:
        return sum(self.rows_inserted.values())


class SinkLoop:
    """Consume the pipeline topics and store them; see the module docstring for the guarantee and protocol."""

    def __init__(self, settings: Any, store: Store, *, codec: AvroCodec | None = None,
                 consumer: Consumer | None = None, producer: Producer | None = None) -> None:
        self.settings = settings
        self.store = store
        self.codec = codec or AvroCodec.from_settings(settings)
        self.routes: dict[str, TableSpec] = {
            settings.events_topic: TOUCHPOINTS,
            settings.journeys_topic: JOURNEYS,
            settings.metrics_topic: METRICS,
            settings.merges_topic: MERGES,
        }
        self.batcher = Batcher(settings.sink_batch_rows, settings.sink_batch_seconds)
        self.eraser = Eraser(settings, store)  # erased ids: their records dropped, their rows deleted (privacy.py)
        self.stats = SinkStats()
        self._consumer = consumer
        self._producer = producer
        self._stop = threading.Event()
        self._watermarks: dict[tuple[str, int], int | None] = {}
        self._assigned: set[tuple[str, int]] = set()
        self._paused = False
        self._dlq_pending = 0
        self._dlq_errors: list[str] = []
        self._last_progress = time.monotonic()
        self._assigned_at = 0.0
        self._commit_thread: threading.Thread | None = None
        self.guard = RatioGuard(settings.sink_dead_letter_max_ratio, settings.sink_dead_letter_min_records)
        self._kafka_up = True                                  # from the last statistics: any broker UP
        self._committed: dict[tuple[str, int], int] = {}      # newest offsets handed to commit, per partition

    # --- lifecycle ----------------------------------------------------------------------------------------

    def consumer_config(self) -> dict[str, Any]:
        config: dict[str, Any] = self.settings.kafka_config(**{
            "group.id": self.settings.sink_group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            # Eager assignor: a rebalance revokes every partition, so dropping all pending batches is safe.
            "partition.assignment.strategy": "range",
            "max.poll.interval.ms": 600_000,        # outlives a long ClickHouse outage while we retry, not polling
            "session.timeout.ms": int(self.settings.sink_session_timeout_seconds * 1000),
            "queued.max.messages.kbytes": 65_536,   # prefetch bound; pause() also purges it
            "fetch.max.bytes": 16 * 1024 * 1024,
            "statistics.interval.ms": 5000,
            "stats_cb": self._on_stats,
            "on_commit": self._on_commit,
        })
        return config

    @property
    def consumer(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(self.consumer_config())
        return self._consumer

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(self.settings.kafka_config(**{"enable.idempotence": True, "linger.ms": 5}))
        return self._producer

    def stop(self) -> None:
        """Ask the loop to flush, commit and close (safe from a signal handler or another thread)."""
        self._stop.set()

    def run(self, *, idle_exit: float | None = None) -> SinkStats:
        """Consume until ``stop()`` (or, with ``idle_exit``, until assigned and idle that long); flush, commit, close."""
        self.eraser.start()
        consumer = self.consumer
        consumer.subscribe(list(self.routes), on_assign=self._on_assign, on_revoke=self._on_revoke,
                           on_lost=self._on_lost)
        log.info("sink consuming %s as group %s into %s", ", ".join(self.routes), self.settings.sink_group,
                 self.store.database)
        report_phase(self.settings, f"joining consumer group {self.settings.sink_group}")
        last_message = time.monotonic()
        interrupted = False
        try:
            while not self._stop.is_set():
                messages = consumer.consume(num_messages=min(10_000, self.settings.sink_batch_rows), timeout=0.1)
                for message in messages:
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            continue
                        if error.fatal():
                            raise BrokerUnavailableError(f"Kafka consumer failed: {error.str()}")
                        problem = security_problem(self.settings, error.str())
                        if problem is not None:
                            raise ConfigError(problem)
                        log.warning("Kafka consumer error: %s", error.str())
                        continue
                    self._accept(message)
                now = time.monotonic()
                if messages or self._assigned_at > last_message:
                    last_message = max(now if messages else 0.0, self._assigned_at)
                for table in self.batcher.due(now):
                    self._flush(table)
                if self.eraser.due(now):
                    erasures = self.eraser.poll()
                    if erasures:
                        self.flush_all()  # rows accepted before the erasure was known are stored, then deleted
                        self.eraser.erase(erasures)
                m.SINK_PENDING_ROWS.set(self.batcher.pending_rows())
                self._progress(now)
                if (idle_exit is not None and self._assigned and now - last_message >= idle_exit
                        and self.batcher.pending_rows() == 0 and not self.batcher.due(now + 1e9)):
                    break
            self.flush_all()
        except CommitAbandoned:
            interrupted = True
            log.warning("sink stopped while an offset commit waited for Kafka: its rows are stored, and the stored "
                        "offsets make the next run skip them; %d pending rows are re-read", self.batcher.pending_rows())
            self.batcher.clear()
        except Interrupted:
            interrupted = True
            log.warning("sink stopped while ClickHouse was failing: %d pending rows neither stored nor committed "
                        "(they are re-read on restart)", self.batcher.pending_rows())
            self.batcher.clear()
        finally:
            self._stop.set()  # on_revoke during close must not flush again
            self._final_commit()
            self.eraser.close()
            try:
                if self._commit_thread is not None and self._commit_thread.is_alive():
                    log.warning("not closing the Kafka consumer: a commit is still waiting for the broker")
                else:
                    consumer.close()
            finally:
                if self._producer is not None:
                    self._producer.flush(10)
        log.info("sink stopped%s: %s", " (interrupted)" if interrupted else "", self._summary())
        return self.stats

    def flush_all(self) -> None:
        for table in list(self.batcher.batches):
            self._flush(table)

    # --- records ------------------------------------------------------------------------------------------

    def _accept(self, message: Message) -> None:
        topic, partition, offset = _coordinates(message)
        spec = self.routes[topic]
        if not self.stats.first_record_at:
            self.stats.first_record_at = time.monotonic()
        if self.settings.sink_resume_from_store:
            stored = self._watermark(spec, topic, partition)
            if stored is not None and offset <= stored:
                self.batcher.batch(spec).consumed(topic, partition, offset)
                self.stats.skipped_stored += 1
                m.SINK_RECORDS_SKIPPED.labels("already_stored").inc()
                return
        if message.value() is None and spec is JOURNEYS:  # an erased journey's tombstone (compaction marker)
            m.SINK_RECORDS_SKIPPED.labels("tombstone").inc()
            self.batcher.batch(spec).consumed(topic, partition, offset)
            return
        try:
            record = self.codec.decode(message.value() or b"", spec.schema)
            if spec.validate:
                validate_event(record, self.settings.max_string_bytes)
            month = month_of_millis(record[spec.partition_field]) if spec.partition_field else None
            row = spec.to_row(record, topic, partition, offset)
        except (InvalidEventError, ValidationError, KeyError, TypeError, ValueError) as exc:
            self._bad_record(spec, message, exc)
            return
        if self.eraser.blocks(spec.table, record):
            self.stats.skipped_erased += 1
            m.SINK_RECORDS_SKIPPED.labels("erased").inc()
            self.batcher.batch(spec).consumed(topic, partition, offset)
            return
        if self.batcher.must_cut_before(spec, month):
            self._flush(spec.table)
        batch = self.batcher.batch(spec)
        batch.add(row, message, month)
        batch.consumed(topic, partition, offset)
        if self.batcher.full(spec.table):
            self._flush(spec.table)

    def _bad_record(self, spec: TableSpec, message: Message, exc: Exception) -> None:
        batch = self.batcher.batch(spec)
        if spec.validate:
            # The worker dead-letters bad records of the events topic; we only count them.
            self.stats.skipped_invalid += 1
            m.SINK_RECORDS_SKIPPED.labels("invalid_event").inc()
        else:
            kind = getattr(exc, "kind", None) or KIND_INVALID
            self._dead_letter(message, kind, f"{type(exc).__name__}: {exc}")
        batch.consumed(*_coordinates(message))

    def _dead_letter(self, message: Message, kind: str, reason: str) -> None:
        topic, partition, offset = _coordinates(message)
        key = message.key()
        letter = DeadLetter(key=key if isinstance(key, bytes) else None, value=message.value(), reason=reason,
                            kind=kind, stage=STAGE, topic=topic, partition=partition, offset=offset)
        headers: list[tuple[str, str | bytes | None]] = list(letter.headers())
        self.producer.produce(self.settings.dead_letter_topic, key=letter.key, value=letter.value,
                              headers=headers, on_delivery=self._on_dlq_delivery)
        self._dlq_pending += 1
        self.stats.dead_letters += 1
        m.SINK_DEAD_LETTERS.labels(kind).inc()
        log.warning("dead-lettered %s[%d]@%d (%s): %s", letter.topic, letter.partition, letter.offset, kind, reason)
        if self.guard.record(True):
            raise DeadLetterRatioError(
                f"more than {self.guard.max_ratio:.0%} of the sink's last {self.guard.window} records were "
                f"dead-lettered (last: {letter.topic}[{letter.partition}]@{letter.offset}, {kind}: {reason}); the sink "
                f"stops. See `touchpoint dead-letters list --stage sink`, fix the table or the producer, then restart "
                "the sink (or raise TOUCHPOINT_SINK_DEAD_LETTER_MAX_RATIO)")

    def _on_dlq_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._dlq_errors.append(err.str())

    # --- store --------------------------------------------------------------------------------------------

    def _flush(self, table: str) -> None:
        """Steps 1-4 of the module docstring for the open batch of ``table``."""
        batch = self.batcher.take(table)
        if batch is None:
            return
        self.stats.max_pending_rows = max(self.stats.max_pending_rows, len(batch.rows) + self.batcher.pending_rows())
        if batch.rows:
            self._insert(batch.spec, batch.rows, batch.messages)
            self.stats.batches += 1
        self._await_dead_letters()
        self.store.faults.before_commit(self._stop.is_set)
        self._commit(batch)
        self.stats.last_flush_at = time.monotonic()

    def _insert(self, spec: TableSpec, rows: list[tuple[Any, ...]], messages: list[Any]) -> None:
        try:
            self._insert_with_retry(spec, rows)
        except StoreRejectedError as exc:
            if not exc.row_level:
                raise StoreRejectedError(f"{exc} -- the sink stops: this is not a bad row but a problem with the "
                                         "table or the request (run `touchpoint sink migrate`?)", exc.code) from exc
            if len(rows) == 1:
                self._dead_letter(messages[0], KIND_REJECTED, str(exc))
                return
            # Bisect in offset order: the left half is stored before the right one (restart position stays exact).
            mid = len(rows) // 2
            self._insert(spec, rows[:mid], messages[:mid])
            self._insert(spec, rows[mid:], messages[mid:])

    def _insert_with_retry(self, spec: TableSpec, rows: list[tuple[Any, ...]]) -> None:
        token = token_for(spec.table, rows)
        columns = list(zip(*rows))
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                self.store.insert(spec.table, columns, spec.columns, token)
            except StoreRetryableError as exc:
                attempt += 1
                m.SINK_INSERT_FAILURES.labels(spec.table, "retryable").inc()
                self._wait_retry(attempt, f"insert of {len(rows)} rows into {spec.table} failed: {exc}")
                m.SINK_INSERT_RETRIES.labels(spec.table).inc()
                self.stats.retries += 1
                continue
            except StoreRejectedError:
                m.SINK_INSERT_FAILURES.labels(spec.table, "permanent").inc()
                self._resume()
                raise
            m.SINK_INSERT_LATENCY.labels(spec.table).observe(time.perf_counter() - started)
            for _ in range(len(rows)):
                self.guard.record(False)
            m.SINK_ROWS_INSERTED.labels(spec.table).inc(len(rows))
            m.SINK_BATCH_ROWS.labels(spec.table).observe(len(rows))
            self.stats.rows_inserted[spec.table] = self.stats.rows_inserted.get(spec.table, 0) + len(rows)
            if attempt:
                log.info("ClickHouse insert into %s succeeded after %d retries; resuming", spec.table, attempt)
            self._resume()
            return

    def _wait_retry(self, attempt: int, what: str) -> None:
        """Pause consumption (bounded memory) and back off; raises Interrupted when stop is requested."""
        self._pause()
        delay = min(self.settings.sink_retry_max_seconds, 0.1 * 2 ** min(attempt, 20))
        log.warning("%s; retry %d in %.1fs (consumption paused)", what, attempt, delay)
        report_phase(self.settings, f"paused: {what}; retry {attempt}")
        until = time.monotonic() + delay
        while True:
            self._refresh_lag()
            left = until - time.monotonic()
            if self._stop.wait(max(0.0, min(left, _LAG_REFRESH_S))):
                raise Interrupted(what)
            if left <= _LAG_REFRESH_S:
                return

    def _refresh_lag(self) -> None:
        """Lag gauge from the broker's high watermarks minus this consumer's positions (see the module docstring)."""
        if not self._assigned or self._consumer is None:
            return
        try:
            parts = [TopicPartition(t, p) for t, p in sorted(self._assigned)]
            positions = {(tp.topic, tp.partition): tp.offset for tp in self.consumer.position(parts)}
            committed: dict[tuple[str, int], int] | None = None
            lag: dict[str, int] = {}
            for t, p in sorted(self._assigned):
                low, high = self.consumer.get_watermark_offsets(TopicPartition(t, p), timeout=2, cached=False)
                position = positions.get((t, p), -1)
                if position < 0:  # nothing consumed yet on this partition: its committed offset, else the start
                    if committed is None:
                        committed = {(tp.topic, tp.partition): tp.offset
                                     for tp in self.consumer.committed(parts, timeout=2)}
                    found = committed.get((t, p), -1)
                    position = found if found >= 0 else low
                lag[t] = lag.get(t, 0) + max(high - position, 0)
        except KafkaException as exc:
            log.debug("lag not refreshed while paused: %s", exc)
            return
        for topic, value in lag.items():
            m.SINK_CONSUMER_LAG.labels(topic).set(value)

    def _watermark(self, spec: TableSpec, topic: str, partition: int) -> int | None:
        key = (topic, partition)
        found = self._watermarks.get(key, _UNKNOWN)
        if found is not _UNKNOWN:
            return found  # type: ignore[return-value]
        attempt = 0
        while True:
            try:
                value = self.store.high_water(spec.table, topic, partition)
                break
            except StoreRetryableError as exc:
                attempt += 1
                self._wait_retry(attempt, f"reading the stored offset of {topic}[{partition}] failed: {exc}")
            except StoreRejectedError as exc:
                raise StoreRejectedError(f"{exc} -- the sink stops: cannot read what {spec.table} already holds "
                                         "(run `touchpoint sink migrate`?)", exc.code) from exc
        self._resume()
        self._watermarks[key] = value
        if value is not None:
            log.info("%s[%d]: offsets up to %d already stored in %s; skipping them", topic, partition, value,
                     spec.table)
        return value

    def _pause(self) -> None:
        if not self._paused and self._assigned:
            self.consumer.pause([TopicPartition(t, p) for t, p in self._assigned])
            self._paused = True
            m.SINK_PAUSED.set(1)

    def _resume(self) -> None:
        report_phase(self.settings, "running")
        if self._paused:
            self.consumer.resume([TopicPartition(t, p) for t, p in self._assigned])
            self._paused = False
            m.SINK_PAUSED.set(0)

    # --- Kafka --------------------------------------------------------------------------------------------

    def _await_dead_letters(self) -> None:
        if not self._dlq_pending:
            return
        left = self.producer.flush(30)
        attempt = 0
        while left and not self._dlq_errors:  # the broker is away: wait for it (librdkafka keeps retrying)
            attempt += 1
            self._wait_retry(attempt, f"{left} dead letter(s) to {self.settings.dead_letter_topic} not acknowledged yet")
            left = self.producer.flush(5)
        if attempt:
            self._resume()
        if left or self._dlq_errors:
            errors = "; ".join(self._dlq_errors[:3]) or f"{left} still queued"
            raise BrokerUnavailableError(f"dead letters to {self.settings.dead_letter_topic} were not acknowledged "
                                         f"({errors}); offsets not committed, the records are re-read on restart")
        self._dlq_pending = 0

    def _commit(self, batch: Batch) -> None:
        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(batch.commit.items()) if (t, p) in self._assigned]
        if not offsets:
            return
        asynchronous = bool(self.settings.sink_resume_from_store)
        for tp in offsets:
            self._committed[(tp.topic, tp.partition)] = tp.offset
        try:
            if asynchronous:
                self.consumer.commit(offsets=offsets, asynchronous=True)
            else:
                self._commit_sync(offsets)  # a stop request is honoured while it waits for Kafka
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            code = error.code() if isinstance(error, KafkaError) else None
            retriable = isinstance(error, KafkaError) and error.retriable()
            if retriable or code in (KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
                                     KafkaError.UNKNOWN_MEMBER_ID, KafkaError._NO_OFFSET, KafkaError._WAIT_COORD,
                                     KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR):
                # Rows are stored; whoever owns the partition next (this sink after Kafka is back, or another)
                # skips them by the stored offset, and the next batch's commit covers these offsets.
                log.warning("offset commit skipped (%s); the stored offset covers it", exc)
                return
            raise BrokerUnavailableError(f"offset commit failed: {exc}") from exc
        self.stats.commits += 1

    def _on_commit(self, err: KafkaError | None, _partitions: list[TopicPartition]) -> None:
        if err is not None and err.code() != KafkaError._NO_OFFSET:
            # Rows are stored: the stored offset is the restart position, a later commit covers these offsets.
            log.warning("asynchronous offset commit failed (%s); the stored offset covers it", err.str())

    def _final_commit(self) -> None:
        """On stop: the newest offsets once more, synchronously, so the group shows no lag for stored records."""
        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(self._committed.items()) if (t, p) in self._assigned]
        if not offsets or not self._kafka_up or not self.settings.sink_resume_from_store:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning("final offset commit failed (%s); the stored offsets cover it", exc)

    def _commit_sync(self, offsets: list[TopicPartition], patience: float = 5.0) -> None:
        """``consumer.commit(asynchronous=False)`` in a helper thread, so a stop request is honoured while the call
        waits for a coordinator (raises CommitAbandoned). Raises what the commit raised."""
        outcome: list[BaseException | None] = []

        def call() -> None:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
                outcome.append(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the loop's thread below
                outcome.append(exc)

        thread = threading.Thread(target=call, name="sink-commit", daemon=True)
        self._commit_thread = thread
        thread.start()
        started = time.monotonic()
        told = False
        while not outcome:
            thread.join(0.1)
            if outcome:
                break
            if self._stop.is_set():
                raise CommitAbandoned("offset commit waiting for Kafka")
            if not told and time.monotonic() - started >= patience:
                told = True
                log.warning("offset commit is waiting for Kafka at %s (broker unreachable?); consumption paused",
                            self.settings.bootstrap_servers)
                report_phase(self.settings, f"paused: offset commit waiting for Kafka at {self.settings.bootstrap_servers}")
        self._commit_thread = None
        error = outcome[0]
        if error is not None:
            raise error

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned_at = time.monotonic()
        m.SINK_REBALANCES.inc()
        for tp in partitions:
            key = (tp.topic, tp.partition)
            self._assigned.add(key)
            self._watermarks.pop(key, None)  # re-read from the store: another member may have written meanwhile
        log.info("assigned %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing")
        report_phase(self.settings, "running")

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if not self._stop.is_set():
            try:
                self.flush_all()
            except Interrupted:
                pass
            except StoreRetryableError as exc:  # pragma: no cover - _flush retries these itself
                log.warning("flush on revoke failed: %s", exc)
        dropped = self.batcher.clear()
        if dropped:
            log.warning("partitions revoked: %d pending rows dropped uncommitted (re-read by the next owner)", dropped)
        for tp in partitions:
            self._assigned.discard((tp.topic, tp.partition))
            self._watermarks.pop((tp.topic, tp.partition), None)
            self._committed.pop((tp.topic, tp.partition), None)
        self._paused = False
        m.SINK_PAUSED.set(0)
        if not self._stop.is_set():
            report_phase(self.settings, f"rejoining consumer group {self.settings.sink_group} (rebalance)")

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        report_phase(self.settings, f"rejoining consumer group {self.settings.sink_group} (partitions lost)")
        dropped = self.batcher.clear()
        log.warning("partitions lost: %d pending rows dropped uncommitted", dropped)
        for tp in partitions:
            self._assigned.discard((tp.topic, tp.partition))
            self._watermarks.pop((tp.topic, tp.partition), None)

    def _on_stats(self, stats_json: str) -> None:
        for topic, lag in m.lag_by_topic(stats_json, self._assigned).items():
            m.SINK_CONSUMER_LAG.labels(topic).set(lag)
        up = m.brokers_up(stats_json)
        if up is not None:
            m.SINK_KAFKA_BROKERS_UP.set(up)
            self._kafka_up = up > 0

    # --- logging ------------------------------------------------------------------------------------------

    def _summary(self) -> str:
        s = self.stats
        tables = ", ".join(f"{t}={n}" for t, n in sorted(s.rows_inserted.items())) or "none"
        return (f"rows inserted {tables}; batches {s.batches}; retries {s.retries}; skipped already-stored "
                f"{s.skipped_stored}, invalid {s.skipped_invalid}; dead letters {s.dead_letters}")

    def _progress(self, now: float) -> None:
        if now - self._last_progress >= 10:
            self._last_progress = now
            log.info("sink progress: %s; pending %d rows%s", self._summary(), self.batcher.pending_rows(),
                     " (paused)" if self._paused else "")
