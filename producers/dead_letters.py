"""Dead-letter tooling: read the dead-letter topic, summarise it, and replay fixed records to the events topic.

Every stage diverts a record it cannot use to the dead-letter topic with its original bytes and ``dlq.*`` headers
(``touchpoint/dead_letter.py``). This module is what an operator uses after that:

- ``scan`` reads the topic over a time range (``dlq.at``, else the record's timestamp) into ``StoredDeadLetter``s,
  one per source record: a stage that died between producing a dead letter and committing its offset diverts the
  record again with the same ``dlq.stage`` / ``dlq.source.*`` headers, and those copies are folded into one.
- ``summarise`` counts them by stage, reason kind and event type (decoded from the original bytes where possible).
- ``replay`` re-validates each selected record with the *current* settings (the fix: a raised limit, a schema now
  known) and re-produces the ones that pass, byte for byte, to the events topic. It lives with the producers
  because it is one: it writes the events topic with the producers' guarantees (acks=all, idempotent).

Replay guarantee: at-least-once per record, idempotent downstream. The replayed bytes are the original ones, so the
event keeps its ``event_id``: the worker drops a second copy as a duplicate (``dedup_horizon_days``), and the
touchpoints table collapses it (ReplacingMergeTree on ``event_id``, read ``FINAL``). After a replayed record is
acknowledged, a *replay marker* is written to the dead-letter topic (``dlq.replay.of`` = the record's identity);
``scan`` leaves marked records out unless asked, so a second ``replay`` selects nothing it already replayed. A crash
between the two acknowledgements replays that record again on the next run, which the dedup above absorbs.
Records that still fail stay in the dead-letter topic untouched (Kafka's retention applies to them as before).

Only records whose source is the events topic are replayable: rows the sink refused from the journeys, metrics or
identity-merges topics are derived by the worker, and re-sending them would fail the same way; their fix is in the
table or the worker. Worker-internal frame items are derived too (their events were already read once).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from touchpoint.dead_letter import (HEADER_AT, HEADER_INDEX, HEADER_KIND, HEADER_OFFSET, HEADER_PARTITION,
                                    HEADER_REASON, HEADER_STAGE, HEADER_TOPIC, parse_headers)
from touchpoint.errors import BrokerUnavailableError, InvalidEventError, ValidationError
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.validation import validate_event

HEADER_REPLAY_OF = "dlq.replay.of"        # on a replay marker: the identity of the record it replayed
HEADER_REPLAY_TO = "dlq.replay.to"        # on a replay marker: where the copy went (topic[partition]@offset)
HEADER_REPLAYED_FROM = "dlq.replayed.from"  # on the replayed copy: the dead letter it came from (partition@offset)
STAGE_REPLAY = "replay"

# Outcomes of one record in ``replay``.
REPLAYED = "replayed"
WOULD_REPLAY = "would_replay"       # dry run: it passes validation now
STILL_FAILING = "still_failing"     # fails decoding or validation with the current settings
NOT_REPLAYABLE = "not_replayable"   # its source is not the events topic


@dataclass(frozen=True)
class StoredDeadLetter:
    """One record of the dead-letter topic, its ``dlq.*`` headers parsed and its bytes decoded where possible."""

    dlq_partition: int
    dlq_offset: int
    at_ms: int
    key: bytes | None
    value: bytes | None
    stage: str
    kind: str
    reason: str
    source_topic: str
    source_partition: int
    source_offset: int
    index: int | None
    original_headers: tuple[tuple[str, bytes], ...] = ()
    decoded: dict[str, Any] | None = None
    decode_error: str = ""

    @property
    def identity(self) -> str:
        """Stable name of the diverted source record: stage|topic|partition|offset|index."""
        index = "" if self.index is None else str(self.index)
        return f"{self.stage}|{self.source_topic}|{self.source_partition}|{self.source_offset}|{index}"

    @property
    def event_type(self) -> str:
        """The event type of the original record where it decodes, else ``-``."""
        found = (self.decoded or {}).get("event_type")
        return found if isinstance(found, str) and found else "-"


@dataclass
class Selection:
    """Which dead letters a command works on; empty fields select everything."""

    since_ms: int | None = None
    until_ms: int | None = None
    stages: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    include_replayed: bool = False

    def matches(self, letter: StoredDeadLetter) -> bool:
        return ((not self.stages or letter.stage in self.stages)
                and (not self.kinds or letter.kind in self.kinds)
                and (not self.event_types or letter.event_type in self.event_types))


@dataclass
class ScanResult:
    letters: list[StoredDeadLetter]
    replayed: set[str] = field(default_factory=set)   # identities with a replay marker (left out unless asked)
    copies_folded: int = 0                            # re-diverted copies of the same source record


def _schema_for(settings: Any) -> dict[str, str]:
    return {settings.events_topic: "touchpoint", settings.journeys_topic: "journey_snapshot",
            settings.metrics_topic: "metric_window", settings.merges_topic: "identity_merge"}


def decode_original(settings: Any, codec: AvroCodec, source_topic: str,
                    value: bytes | None) -> tuple[dict[str, Any] | None, str]:
    """The original record as a dict, and "" -- or None and why it does not decode.

    Pipeline topics are Avro (their schema chosen by topic); worker-internal records are JSON after a one-byte
    form marker, or plain JSON.
    """
    schema = _schema_for(settings).get(source_topic)
    if schema is not None:
        try:
            return codec.decode(value, schema), ""
        except InvalidEventError as exc:
            return None, exc.reason
    raw = value or b""
    for body in (raw, raw[1:]):
        try:
            found = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(found, dict):
            return found, ""
    return None, "not Avro of a pipeline topic nor a JSON object"


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def parse_record(settings: Any, codec: AvroCodec, partition: int, offset: int, timestamp_ms: int,
                 key: bytes | None, value: bytes | None,
                 headers: list[tuple[str, bytes | None]] | None) -> StoredDeadLetter:
    """A consumed dead-letter record as a StoredDeadLetter (missing headers read as unknown, never raise)."""
    dlq = parse_headers(headers)
    original = tuple((n, v) for n, v in headers or [] if not n.startswith("dlq.") and v is not None)
    source_topic = dlq.get(HEADER_TOPIC, "?")
    decoded, error = decode_original(settings, codec, source_topic, value)
    index = dlq.get(HEADER_INDEX)
    return StoredDeadLetter(
        dlq_partition=partition, dlq_offset=offset, at_ms=_int(dlq.get(HEADER_AT), timestamp_ms), key=key,
        value=value, stage=dlq.get(HEADER_STAGE, "?"), kind=dlq.get(HEADER_KIND, "?"),
        reason=dlq.get(HEADER_REASON, ""), source_topic=source_topic,
        source_partition=_int(dlq.get(HEADER_PARTITION), -1), source_offset=_int(dlq.get(HEADER_OFFSET), -1),
        index=_int(index, 0) if index is not None else None, original_headers=original, decoded=decoded,
        decode_error=error)


def _read_topic(settings: Any, since_ms: int | None, timeout: float) -> Iterator[Any]:
    """Every record of the dead-letter topic from ``since_ms`` (by record timestamp) up to its end *now*."""
    topic = settings.dead_letter_topic
    consumer = Consumer(settings.kafka_config(**{
        "group.id": f"touchpoint-dead-letters-{time.monotonic_ns()}", "enable.auto.commit": False,
        "enable.auto.offset.store": False, "auto.offset.reset": "earliest"}))
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            raise BrokerUnavailableError(
                f"dead-letter topic {topic} not found on {settings.bootstrap_servers}; "
                "create the topics with `touchpoint topics create` (or check TOUCHPOINT_TOPIC_PREFIX)")
        start: dict[int, int] = {}
        ends: dict[int, int] = {}
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high > low:
                start[p], ends[p] = low, high
        if since_ms is not None and start:
            # Kafka's record timestamp is set when the dead letter is produced, as dlq.at is: a safe lower bound.
            found = consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in start], timeout=timeout)
            for tp in found:
                start[tp.partition] = ends[tp.partition] if tp.offset < 0 else max(tp.offset, start[tp.partition])
        todo = {p for p in start if start[p] < ends[p]}
        if not todo:
            return
        consumer.assign([TopicPartition(topic, p, start[p]) for p in todo])
        deadline = time.monotonic() + timeout
        while todo:
            if time.monotonic() > deadline:
                raise BrokerUnavailableError(f"reading {topic} timed out after {timeout:.0f}s "
                                             f"({len(todo)} partitions unfinished); is the broker reachable?")
            for msg in consumer.consume(1000, timeout=0.5):
                error = msg.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise BrokerUnavailableError(f"reading {topic} failed: {error.str()}")
                    continue
                p, o = msg.partition(), msg.offset()
                if p is None or o is None:
                    continue
                if p in todo and o >= ends[p] - 1:
                    todo.discard(p)
                if o < ends[p]:
                    yield msg
    finally:
        consumer.close()


def scan(settings: Any, selection: Selection | None = None, *, codec: AvroCodec | None = None,
         timeout: float = 60.0) -> ScanResult:
    """The dead letters in ``selection``'s time range, one per source record, oldest first."""
    selection = selection or Selection()
    codec = codec or AvroCodec.from_settings(settings)
    by_identity: dict[str, StoredDeadLetter] = {}
    replayed: set[str] = set()
    folded = 0
    for msg in _read_topic(settings, selection.since_ms, timeout):
        headers = msg.headers() or []
        names = {n: v for n, v in headers}
        marker = names.get(HEADER_REPLAY_OF)
        if marker is not None:
            replayed.add(marker.decode("utf-8", "replace"))
            continue
        _kind, ts = msg.timestamp()
        letter = parse_record(settings, codec, msg.partition(), msg.offset(), ts, msg.key(), msg.value(), headers)
        since, until = selection.since_ms, selection.until_ms
        if (since is not None and letter.at_ms < since) or (until is not None and letter.at_ms >= until):
            continue
        if letter.identity in by_identity:
            folded += 1
            continue
        by_identity[letter.identity] = letter
    letters = [x for x in by_identity.values()
               if selection.matches(x) and (selection.include_replayed or x.identity not in replayed)]
    letters.sort(key=lambda x: (x.at_ms, x.dlq_partition, x.dlq_offset))
    return ScanResult(letters, replayed, folded)


def summarise(letters: Iterable[StoredDeadLetter]) -> Counter[tuple[str, str, str]]:
    """Counts by (stage, reason kind, event type)."""
    return Counter((x.stage, x.kind, x.event_type) for x in letters)


@dataclass(frozen=True)
class ReplayOutcome:
    letter: StoredDeadLetter
    outcome: str
    detail: str = ""


def check_replayable(settings: Any, codec: AvroCodec, letter: StoredDeadLetter) -> tuple[str, str]:
    """(outcome, detail) of re-validating ``letter`` with the current settings, without producing anything."""
    if letter.source_topic != settings.events_topic:
        return NOT_REPLAYABLE, (f"source {letter.source_topic} is not the events topic: derived records are "
                                "re-derived by the worker, fix the table or the worker instead")
    try:
        event = codec.decode(letter.value)
        validate_event(event, settings.max_string_bytes)
    except InvalidEventError as exc:
        return STILL_FAILING, f"{exc.kind}: {exc.reason}"
    except ValidationError as exc:
        return STILL_FAILING, f"invalid: {exc.field}: {exc.rule}"
    return WOULD_REPLAY, ""


def replay(settings: Any, letters: Iterable[StoredDeadLetter], *, dry_run: bool = False,
           codec: AvroCodec | None = None, producer: Producer | None = None, timeout: float = 60.0,
           on_outcome: Callable[[ReplayOutcome], None] | None = None) -> list[ReplayOutcome]:
    """Re-validate ``letters`` and, unless ``dry_run``, re-produce those that pass; see the module docstring.

    Steps: 1. check every letter (``check_replayable``); 2. produce the passing ones, original key, value and
    headers plus ``dlq.replayed.from``, to the events topic; 3. wait until Kafka acknowledged all of them (a failed
    delivery stops the replay with BrokerUnavailableError, nothing marked); 4. write one replay marker per
    acknowledged record to the dead-letter topic and wait for those too.
    """
    codec = codec or AvroCodec.from_settings(settings)
    outcomes: list[ReplayOutcome] = []
    passing: list[StoredDeadLetter] = []
    for letter in letters:
        outcome, detail = check_replayable(settings, codec, letter)
        if outcome == WOULD_REPLAY:
            passing.append(letter)
            if dry_run:
                outcomes.append(ReplayOutcome(letter, WOULD_REPLAY))
        else:
            outcomes.append(ReplayOutcome(letter, outcome, detail))
    if dry_run or not passing:
        return outcomes
    own = producer is None
    producer = producer or Producer(settings.kafka_config(**{"enable.idempotence": True, "acks": "all",
                                                             "linger.ms": 5}))
    delivered: dict[str, str] = {}
    errors: list[str] = []

    def on_delivery(identity: str) -> Callable[[KafkaError | None, Any], None]:
        def done(err: KafkaError | None, msg: Any) -> None:
            if err is not None:
                errors.append(f"{identity}: {err.str()}")
            else:
                delivered[identity] = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
        return done

    for letter in passing:
        headers: list[tuple[str, str | bytes | None]] = [(n, v) for n, v in letter.original_headers]
        headers.append((HEADER_REPLAYED_FROM, f"{letter.dlq_partition}@{letter.dlq_offset}".encode()))
        producer.produce(settings.events_topic, key=letter.key, value=letter.value, headers=headers,
                         on_delivery=on_delivery(letter.identity))
        producer.poll(0)
    left = producer.flush(timeout)
    if left or errors:
        raise BrokerUnavailableError(
            f"replay to {settings.events_topic} was not acknowledged ({'; '.join(errors[:3]) or f'{left} queued'}); "
            "nothing was marked as replayed: run the replay again (the copies that did arrive are deduplicated "
            "by event_id)")
    for letter in passing:
        producer.produce(settings.dead_letter_topic, key=letter.key, value=b"",
                         headers=[(HEADER_REPLAY_OF, letter.identity.encode()),
                                  (HEADER_REPLAY_TO, delivered[letter.identity].encode()),
                                  (HEADER_STAGE, STAGE_REPLAY.encode()),
                                  (HEADER_AT, str(int(time.time() * 1000)).encode())],
                         on_delivery=on_delivery(f"marker {letter.identity}"))
    left = producer.flush(timeout)
    if left or errors:
        raise BrokerUnavailableError(
            f"the events were replayed but their replay markers were not acknowledged by {settings.dead_letter_topic} "
            f"({'; '.join(errors[:3]) or f'{left} queued'}); a next replay re-sends them (deduplicated by event_id)")
    for letter in passing:
        done = ReplayOutcome(letter, REPLAYED, delivered[letter.identity])
        outcomes.append(done)
        if on_outcome is not None:
            on_outcome(done)
    if own:
        producer.flush(1)
    return outcomes
