"""Step 2, identity: identity topic (frames, by anonymous id) → journey topic (frames, by owner).

Guarantee: at-least-once, ordered per identity key. For each event of a frame (``internal.py``) the alias of its anonymous id (table
``aliases``, co-partitioned with the identity topic) goes through ``identity.route``; the changed alias is stored,
the routed events are sent to the journey topic in one frame per partition of their journey owner, and a merge (login stitching an
anonymous id to a customer) is recorded as an IdentityMerge on the identity-merges topic.

Crash safety: the alias write and the sends are separate Kafka records. When the worker dies in between, the
event is processed again after restart; ``route`` returns the same outputs for a replayed merging event (the
journey step drops the re-sent events as duplicates) and this step re-sends the IdentityMerge rebuilt from the
stored alias (identical record; the audit table keeps one per anonymous id).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust

from touchpoint.dead_letter import KIND_INVALID, DeadLetter
from touchpoint.errors import InvalidEventError
from touchpoint.metrics import STREAM_MERGES, STREAM_SUPPRESSED
from touchpoint.streams import internal, state_codec
from touchpoint.streams.app import WorkerContext
from touchpoint.streams.agent_guard import stop_worker_on_failure
from touchpoint.streams.dead_letters import STAGE, DeadLetterSender
from touchpoint.streams.identity import AliasState, route
from touchpoint.streams.tables import CachedTable, TableWriter
from touchpoint.streams.topology import ALIAS_TABLE, changelog_topic, identity_topic, journey_topic

log = logging.getLogger(__name__)


def replayed_merge(alias: AliasState, event: dict[str, Any]) -> dict[str, Any] | None:
    """The IdentityMerge a replay of the merging event must repeat (route only returns it the first time)."""
    if alias.customer_id is None or event.get("event_id") != alias.merge_event_id or alias.merged_at is None:
        return None
    return {
        "anonymous_id": alias.anonymous_id,
        "customer_id": alias.customer_id,
        "merged_at": alias.merged_at,
        "event_id": event["event_id"],
        "event_occurred_at": event["occurred_at"],
        "events_moved": len(alias.buffer),
    }


class IdentityStep:
    """Routes the events of one identity frame; every write and send of a frame happens without yielding."""

    def __init__(self, app: faust.App, ctx: WorkerContext) -> None:
        settings = ctx.settings
        n = settings.topic_partitions
        self.source = app.topic(identity_topic(settings), partitions=n, internal=True)
        self.outbox = ctx.outbox
        self.journey_topic = journey_topic(settings)
        self.merges_topic = settings.merges_topic
        self.partition_for = internal.Partitioner(n)
        self.dead = DeadLetterSender(ctx.outbox, settings.dead_letter_topic)
        writer = TableWriter(app.Table(ALIAS_TABLE, partitions=n, key_type=bytes, value_type=bytes), ctx.changelog,
                             changelog_topic(settings, ALIAS_TABLE))
        ctx.table_writers.append(writer)
        self.aliases: CachedTable[AliasState] = CachedTable(writer, state_codec.loads_alias, state_codec.dumps_alias,
                                                           max_items=50_000)
        self.codec = ctx.codec
        self.suppression = ctx.suppression

    def forget(self, anonymous_id: str, partition: int) -> bool:
        """Delete the alias of an erased anonymous id (the erasure sweep, outside the agent)."""
        key = anonymous_id.encode("utf-8")
        self.aliases.forget(key)
        return self.aliases.writer.forget_key(key, partition)

    def process(self, msg: Any) -> None:
        try:
            items = internal.decode_identity_frame(msg.value)
        except InvalidEventError as exc:
            self.dead.send(DeadLetter(msg.key, msg.value, exc.reason, exc.kind, STAGE, msg.topic, msg.partition,
                                      msg.offset), headers=msg.headers)
            return
        now = int(time.time() * 1000)
        out: dict[int, list[internal.Routed]] = {}
        for index, item in enumerate(items):
            self._route(msg, item, index, now, out)
        for p, routed in out.items():
            for frame in internal.chunks(routed):
                self.outbox.send(self.journey_topic, internal.encode_journey_frame(frame), partition=p)

    def _route(self, msg: Any, item: Any, index: int, now: int, out: dict[int, list[internal.Routed]]) -> None:
        key: bytes | None = None
        try:
            ev = internal.check_event(item)
            if self.suppression is not None and self.suppression.blocks(ev):
                STREAM_SUPPRESSED.inc()  # framed before its id was erased: dropped here
                return
            anon = ev.get("anonymous_id")
            key = anon.encode("utf-8") if anon else None
            alias = self.aliases.get(key) if key is not None else None
            result = route(alias, ev, now)
        except InvalidEventError as exc:
            self.dead.send(DeadLetter(msg.key, internal.item_record(item, routed=False), exc.reason, exc.kind, STAGE, msg.topic, msg.partition,
                                      msg.offset, index), headers=msg.headers)
            return
        except Exception as exc:  # a routing bug must not stall the partition: divert the event, loudly
            log.exception("identity routing failed at %s[%d]@%d", msg.topic, msg.partition, msg.offset)
            if key is not None:
                self.aliases.forget(key)
            self.dead.send(DeadLetter(key, internal.item_record(item, routed=False), f"identity step failed: {type(exc).__name__}: {exc}",
                                      KIND_INVALID, STAGE, msg.topic, msg.partition, msg.offset, index),
                           headers=msg.headers)
            return
        if key is not None and result.alias is not None:
            if result.changed:
                self.aliases.put(key, result.alias, msg.partition)
            merge = result.merge or (None if result.changed else replayed_merge(result.alias, ev))
            if merge is not None:
                self.outbox.send(self.merges_topic, self.codec.encode(merge, "identity_merge"), key)
                if result.merge is not None:
                    STREAM_MERGES.inc()
        for routed in result.outputs:
            out.setdefault(self.partition_for(routed.journey_key), []).append(
                (routed.journey_key, routed.restitched, routed.event))


def register(app: faust.App, ctx: WorkerContext) -> IdentityStep:
    step = IdentityStep(app, ctx)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # faust stubs reject async receivers
    async def _drop_alias_cache(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        step.aliases.clear_cache()

    @app.agent(step.source, name="identity")
    async def identity(stream: faust.StreamT[Any]) -> None:
        with stop_worker_on_failure(ctx, "the identity agent"):
            async for event in stream.events():
                step.process(event.message)

    return step
