"""Step 1, decode: raw events topic → identity repartition topic; bad records → dead-letter topic.

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


def register(app: faust.App, ctx: WorkerContext) -> None:
    settings = ctx.settings
    source = app.topic(settings.events_topic)
    out = app.topic(identity_topic(settings), partitions=settings.topic_partitions, internal=True)
    direct = app.topic(journey_topic(settings), partitions=settings.topic_partitions, internal=True)
    dead = DeadLetterSender(app.topic(settings.dead_letter_topic))
    guard = ctx.guard

    @app.agent(source, name="decode")
    async def decode(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            msg = event.message
            decoded, kind, reason = check(ctx, msg.value)
            if decoded is None:
                await dead.send(DeadLetter(key=msg.key, value=msg.value, reason=reason, kind=kind, stage=STAGE,
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
            anon = decoded.get("anonymous_id")
            if anon:
                await out.send(key=anon.encode("utf-8"), value=internal.encode_event(decoded))
            else:  # customer only: what identity.route would do (see the module docstring)
                await direct.send(key=decoded["customer_id"].encode("utf-8"),
                                  value=internal.encode_routed(decoded, False))
