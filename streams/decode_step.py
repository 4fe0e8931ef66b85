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

Frames (``internal.py``): valid events are collected per target partition and sent as one record per partition
when a frame is full, every ``FRAME_LINGER_S`` (timer) and before every offset commit (``ctx.before_commit``), so
an event whose offset is committed has always been handed to the outbox, which is flushed before the commit.

The dead-letter ratio guard (``dead_letter_max_ratio`` over the last ``dead_letter_min_events`` records) stops
the worker with a critical log line and exit code 1 instead of diverting everything quietly.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from touchpoint.dead_letter import KIND_INVALID, KIND_UNDECODABLE, DeadLetter
from touchpoint.errors import InvalidEventError, ValidationError
from touchpoint.schemas.validation import validate_event
from touchpoint.streams import internal
from touchpoint.streams.app import WorkerContext
from touchpoint.streams.dead_letters import STAGE, DeadLetterSender
from touchpoint.streams.topology import identity_topic, journey_topic

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


async def _park() -> None:
    """Wait until the worker stop cancels this agent (faust only waits for *acked* events at stop)."""
    await asyncio.Event().wait()


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


def register(app: faust.App, ctx: WorkerContext) -> None:
    settings = ctx.settings
    source = app.topic(settings.events_topic)
    dead = DeadLetterSender(ctx.outbox, settings.dead_letter_topic)
    guard = ctx.guard
    framer = Framer(ctx)
    ctx.before_commit.append(framer.flush)

    @app.timer(FRAME_LINGER_S)
    async def flush_frames() -> None:
        framer.flush()

    @app.agent(source, name="decode")
    async def decode(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            msg = event.message
            decoded, kind, reason = check(ctx, msg.value)
            if decoded is None:
                dead.send(DeadLetter(key=msg.key, value=msg.value, reason=reason, kind=kind, stage=STAGE,
                                     topic=msg.topic, partition=msg.partition, offset=msg.offset),
                          headers=msg.headers)
                if guard.record(True):
                    ctx.fail(
                        f"more than {guard.max_ratio:.0%} of the last {guard.window} records on {msg.topic} were "
                        f"dead-lettered (last: {kind}: {reason}); see the dead-letter topic "
                        f"{settings.dead_letter_topic}, fix the producers, then restart the worker "
                        "(or raise TOUCHPOINT_DEAD_LETTER_MAX_RATIO)"
                    )
                    # This record is handled (dead-lettered): ack it so the stop commits it, then take no more.
                    # Records after it stay uncommitted and are read again by the next start.
                    event.ack()
                    await _park()
                continue
            guard.record(False)
            framer.add(decoded)
