"""Step 2, identity: identity topic (keyed by anonymous id, else customer id) → journey topic (keyed by owner).

Guarantee: at-least-once, ordered per identity key. For each event the alias of its anonymous id (table
``aliases``, co-partitioned with the identity topic) goes through ``identity.route``; the changed alias is stored,
the routed events are sent to the journey topic keyed by their journey owner, and a merge (login stitching an
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
from touchpoint.metrics import STREAM_MERGES
from touchpoint.streams import internal, state_codec
from touchpoint.streams.app import WorkerContext
from touchpoint.streams.dead_letters import STAGE, DeadLetterSender
from touchpoint.streams.identity import AliasState, route
from touchpoint.streams.tables import CachedTable
from touchpoint.streams.topology import ALIAS_TABLE, identity_topic, journey_topic

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


def register(app: faust.App, ctx: WorkerContext) -> None:
    settings = ctx.settings
    n = settings.topic_partitions
    source = app.topic(identity_topic(settings), partitions=n, internal=True)
    out = app.topic(journey_topic(settings), partitions=n, internal=True)
    merges = app.topic(settings.merges_topic)
    dead = DeadLetterSender(app.topic(settings.dead_letter_topic))
    aliases: CachedTable[AliasState] = CachedTable(
        app.Table(ALIAS_TABLE, partitions=n, key_type=bytes, value_type=bytes), state_codec.loads_alias, state_codec.dumps_alias, max_items=50_000
    )
    codec = ctx.codec

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # faust stubs reject async receivers
    async def _drop_alias_cache(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        aliases.clear_cache()

    @app.agent(source, name="identity")
    async def identity(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            msg = event.message
            key: bytes | None = None
            try:
                ev = internal.decode_event(msg.value)
                anon = ev.get("anonymous_id")
                key = anon.encode("utf-8") if anon else None
                alias = aliases.get(key) if key is not None else None
                result = route(alias, ev, int(time.time() * 1000))
            except InvalidEventError as exc:
                await dead.send(DeadLetter(msg.key, msg.value, exc.reason, exc.kind, STAGE, msg.topic, msg.partition,
                                           msg.offset), headers=msg.headers)
                continue
            except Exception as exc:  # a routing bug must not stall the partition: divert the event, loudly
                log.exception("identity routing failed at %s[%d]@%d", msg.topic, msg.partition, msg.offset)
                if key is not None:
                    aliases.forget(key)
                await dead.send(DeadLetter(msg.key, msg.value, f"identity step failed: {type(exc).__name__}: {exc}",
                                           KIND_INVALID, STAGE, msg.topic, msg.partition, msg.offset),
                                headers=msg.headers)
                continue
            if key is not None and result.alias is not None:
                if result.changed:
                    aliases.put(key, result.alias)
                merge = result.merge or (None if result.changed else replayed_merge(result.alias, ev))
                if merge is not None:
                    await merges.send(key=key, value=codec.encode(merge, "identity_merge"))
                    if result.merge is not None:
                        STREAM_MERGES.inc()
            for routed in result.outputs:
                await out.send(key=routed.journey_key.encode("utf-8"),
                               value=internal.encode_routed(routed.event, routed.restitched))
