"""Step 1, decode: raw events topic → frames on the identity / journey topics; bad records → dead-letter topic.

Guarantee: at-least-once, ordered per source partition. Each record is decoded (``AvroCodec.decode``) and
validated (``validate_event``). A record that fails either goes to the dead-letter topic with its original key,
value and headers untouched plus the ``dlq.*`` headers (reason, kind, stage=worker, source topic/partition/offset),
and processing goes on; it never crashes the agent or blocks the partition. A valid event with an anonymous id
goes to the identity topic keyed by that id, so the alias table sees every event of an anonymous id in one
partition. An event with only a customer id needs no alias state (``identity.route`` passes it through unchanged,
keyed by its customer), so it skips the identity hop and goes straight to the journey topic keyed by customer:
one Kafka record and one consume less per such event. Journeys are order-independent, so it does not matter that
such an event can overtake that customer's events still on the identity topic. After a crash, records after the
last commit are processed again: their repartitioned copies are then deduplicated by the journey state
(event_id), their dead letters carry the same source coordinates.

The events topic is read by ``source.SourceConsumer`` (a librdkafka consumer, group ``<worker_id>-decode``), not
a faust agent: per record, faust costs more than this whole step. Frames (``internal.py``): valid events are
collected per target partition and sent as one record per partition when a frame is full, every
``FRAME_LINGER_S`` and before every offset commit, so an event whose offset is committed has always been
handed to the outbox, which is flushed before the commit.

The dead-letter ratio guard (``dead_letter_max_ratio`` over the last ``dead_letter_min_events`` records) stops
the worker with a critical log line and exit code 1 instead of diverting everything quietly.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from confluent_kafka import Message

from touchpoint.dead_letter import KIND_INVALID, KIND_UNDECODABLE, DeadLetter
from touchpoint.errors import InvalidEventError, ValidationError
from touchpoint.metrics import STREAM_SUPPRESSED
from touchpoint.schemas.validation import validate_event
from touchpoint.streams import internal
from touchpoint.streams.app import WorkerContext
from touchpoint.streams.dead_letters import STAGE, DeadLetterSender
from touchpoint.streams.source import SourceConsumer
from touchpoint.streams.topology import decode_group, identity_topic, journey_topic

log = logging.getLogger(__name__)

FRAME_LINGER_S = 0.1  # the longest a valid event waits in an open frame (adds to end-to-end latency)


def check(ctx: WorkerContext, value: bytes | None) -> tuple[dict[str, Any] | None, str, str]:
    """Decode and validate one raw value: (event, "", "") or (None, kind, reason)."""
    if not value:
        return None, KIND_UNDECODABLE, "empty value (tombstone)"
    try:
        event = ctx.codec.decode(value)
        validate_event(event, ctx.settings.max_string_bytes)
    except InvalidEventError as exc:
        return None, exc.kind, exc.reason
    except ValidationError as exc:
        return None, KIND_INVALID, f"{exc.field}: {exc.rule}"
    except Exception as exc:  # a decoder/validator bug on odd input is still that input's problem: divert it
        log.exception("decoding or validating a record failed unexpectedly")
        return None, KIND_UNDECODABLE, f"decoder failed: {type(exc).__name__}: {exc}"
    return event, "", ""


class Framer:
    """Open frames of valid events per (topic, partition); ``flush`` hands them to the outbox."""

    def __init__(self, ctx: WorkerContext) -> None:
        settings = ctx.settings
        self.outbox = ctx.outbox
        self.identity_topic = identity_topic(settings)
        self.journey_topic = journey_topic(settings)
        self.partition_for = internal.Partitioner(settings.topic_partitions)
        self.identity: dict[int, list[dict[str, Any]]] = {}
        self.journey: dict[int, list[internal.Routed]] = {}

    def add(self, event: dict[str, Any]) -> None:
        anon = event.get("anonymous_id")
        if anon:
            p = self.partition_for(anon)
            frame = self.identity.setdefault(p, [])
            frame.append(event)
            if len(frame) >= internal.FRAME_MAX_EVENTS:
                self._send_identity(p, self.identity.pop(p))
        else:  # customer only: what identity.route would do (see the module docstring)
            owner = event["customer_id"]
            p = self.partition_for(owner)
            items = self.journey.setdefault(p, [])
            items.append((owner, False, event))
            if len(items) >= internal.FRAME_MAX_EVENTS:
                self._send_journey(p, self.journey.pop(p))

    def flush(self) -> None:
        identity, self.identity = self.identity, {}
        journey, self.journey = self.journey, {}
        for p, events in identity.items():
            self._send_identity(p, events)
        for p, items in journey.items():
            self._send_journey(p, items)

    def _send_identity(self, partition: int, events: list[dict[str, Any]]) -> None:
        self.outbox.send(self.identity_topic, internal.encode_identity_frame(events), partition=partition)

    def _send_journey(self, partition: int, items: list[internal.Routed]) -> None:
        self.outbox.send(self.journey_topic, internal.encode_journey_frame(items), partition=partition)


class DecodeStep:
    """``handle`` one record of the events topic: frame a valid event, dead-letter anything else."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.framer = Framer(ctx)
        self.dead = DeadLetterSender(ctx.outbox, ctx.settings.dead_letter_topic)

    def handle(self, msg: Message) -> bool:
        """False once the dead-letter ratio guard has stopped the worker (this record is handled: dead-lettered)."""
        ctx = self.ctx
        value = msg.value()
        decoded, kind, reason = check(ctx, value)
        if decoded is not None:
            ctx.guard.record(False)
            if ctx.suppression is not None and ctx.suppression.blocks(decoded):
                STREAM_SUPPRESSED.inc()  # an erased customer's or visitor's event: dropped, counted
                return True
            self.framer.add(decoded)
            return True
        topic = msg.topic() or ""
        self.dead.send(DeadLetter(key=msg.key(), value=value, reason=reason, kind=kind, stage=STAGE, topic=topic,
                                  partition=msg.partition() or 0, offset=msg.offset() or 0),
                       headers=msg.headers())
        if not ctx.guard.record(True):
            return True
        ctx.fail(
            f"more than {ctx.guard.max_ratio:.0%} of the last {ctx.guard.window} records on {topic} were "
            f"dead-lettered (last: {kind}: {reason}); see the dead-letter topic {ctx.settings.dead_letter_topic}, "
            "fix the producers, then restart the worker (or raise TOUCHPOINT_DEAD_LETTER_MAX_RATIO)"
        )
        return False  # records after this one stay uncommitted and are read again by the next start


def register(app: faust.App, ctx: WorkerContext) -> None:
    step = DecodeStep(ctx)
    source = SourceConsumer(ctx.settings, ctx.settings.events_topic, decode_group(ctx.settings), outbox=ctx.outbox,
                            handle=step.handle, flush=step.framer.flush, flush_every=FRAME_LINGER_S,
                            legacy_group=ctx.settings.worker_id)  # faust's group read the events topic until 2026-12

    @app.task
    async def decode() -> None:
        try:
            await source.run()
        except Exception as exc:  # without this task the worker would run on, reading nothing: stop it loudly
            log.exception("reading %s failed", ctx.settings.events_topic)
            ctx.fail(f"reading {ctx.settings.events_topic} failed: {exc}; check the broker, then restart the worker")
