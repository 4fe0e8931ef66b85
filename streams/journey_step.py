"""Step 3, journeys and windows: journey topic (keyed by owner) → journey snapshots and metric windows.

Guarantee: at-least-once input, idempotent state, versioned snapshots (the sink keeps the newest version per key).

One faust table, ``journeys``, co-partitioned with the journey topic, holds three kinds of values of a partition
``p`` (keys are bytes):

* ``j:<owner>`` — the JourneyState of an owner (customer id, or anonymous id not yet stitched);
* ``m:<p>`` — the watermark (highest event time seen on partition p);
* ``w:<p>:<window_start>`` — the WindowState of one 1-minute window of partition p.

Per event at offset o of partition p the writes go, in this order, to: the watermark, the windows, the journey.
They share one changelog partition (p), which Kafka keeps in order, so whatever prefix of them survives a crash is
consistent: a stored journey (which records the event_id, making a replay a duplicate) implies its windows and
watermark are stored; stored windows without the journey are skipped on replay because they remember the highest
offset they absorbed. That is why windows and journeys share a table instead of having one each.

Snapshots: each change sends the JourneySnapshot (superseded journey ids first) keyed by journey_id. A duplicate
re-sends the owner's current snapshots (same versions): after a crash the state may be stored while its snapshot
was lost. Windows changed since their last snapshots are sent every second, on shutdown and, for all windows held,
after every rebalance (the "already emitted" mark lives only in memory; re-sending the same version is harmless).
Windows that can no longer change (older than the watermark minus the allowed lateness) and whose snapshots went
out are deleted from the table.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust

from touchpoint.dead_letter import KIND_INVALID, DeadLetter
from touchpoint.errors import InvalidEventError
from touchpoint.metrics import (
    STREAM_DUPLICATES,
    STREAM_EVENT_LAG,
    STREAM_EVENTS_PROCESSED,
    STREAM_JOURNEYS_OPEN,
    STREAM_LATE_EVENTS,
    STREAM_RECOVERY_SECONDS,
)
from touchpoint.streams import internal, state_codec, windows
from touchpoint.streams.app import WorkerContext
from touchpoint.streams.dead_letters import STAGE, DeadLetterSender
from touchpoint.streams.identity import is_merge_marker
from touchpoint.streams.journey import JourneyState, apply, snapshots_of
from touchpoint.streams.topology import JOURNEY_TABLE, journey_topic
from touchpoint.streams.windows import WindowState

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 1.0
PRUNE_INTERVAL_MS = 10_000


def journey_key(owner: str) -> bytes:
    return b"j:" + owner.encode("utf-8")


def watermark_key(partition: int) -> bytes:
    return b"m:%d" % partition


def window_key(partition: int, window_start: int) -> bytes:
    return b"w:%d:%d" % (partition, window_start)


def _now_ms() -> int:
    return int(time.time() * 1000)


class JourneyStep:
    """State and outputs of the journey agent (one per worker process)."""

    def __init__(self, app: faust.App, ctx: WorkerContext) -> None:
        settings = ctx.settings
        n = settings.topic_partitions
        self.ctx = ctx
        self.cfg = ctx.journey_cfg
        self.lateness_ms = int(settings.allowed_lateness_seconds * 1000)
        self.source = app.topic(journey_topic(settings), partitions=n, internal=True)
        self.journeys_out = app.topic(settings.journeys_topic)
        self.metrics_out = app.topic(settings.metrics_topic)
        self.dead = DeadLetterSender(app.topic(settings.dead_letter_topic))
        self.table = app.Table(JOURNEY_TABLE, partitions=n, key_type=bytes, value_type=bytes)
        self.codec = ctx.codec
        # Decoded values, written through to the table (see streams/tables.py for why a cache).
        self.states: dict[bytes, JourneyState] = {}
        self.windows: dict[bytes, WindowState] = {}
        self.watermarks: dict[int, int | None] = {}
        self.dirty: dict[bytes, WindowState] = {}
        self.emitted_cells: dict[bytes, dict[tuple[str, str, str, str], dict[str, int]]] = {}
        self.last_prune: dict[int, int] = {}
        self.max_states = 20_000
        self.owners_open = 0
        self.assigned_at: float | None = None

    # --- table access (inside the agent only) -----------------------------------------------------------
    def _state(self, key: bytes) -> JourneyState | None:
        state = self.states.get(key)
        if state is None:
            raw = self.table.get(key)
            if raw is not None:
                state = state_codec.loads_journey(raw)
                if len(self.states) >= self.max_states:
                    del self.states[next(iter(self.states))]
                self.states[key] = state
        return state

    def _window(self, key: bytes) -> WindowState | None:
        window = self.windows.get(key)
        if window is None:
            raw = self.table.get(key)
            if raw is not None:
                window = self.windows[key] = state_codec.loads_window(raw)
        return window

    def _watermark(self, partition: int) -> int | None:
        if partition not in self.watermarks:
            raw = self.table.get(watermark_key(partition))
            self.watermarks[partition] = int(raw) if raw is not None else None
        return self.watermarks[partition]

    # --- one event ------------------------------------------------------------------------------------
    async def process(self, msg: Any) -> None:
        p, offset = msg.partition, msg.offset
        key = b"j:" + (msg.key or b"")
        now = _now_ms()
        try:
            event, restitched = internal.decode_routed(msg.value)
            state = self._state(key)
            had = state is not None
            result = apply(state, event, restitched=restitched, offset_partition=p, cfg=self.cfg, now_ms=now)
        except InvalidEventError as exc:
            await self.dead.send(DeadLetter(msg.key, msg.value, exc.reason, exc.kind, STAGE, msg.topic, p, offset),
                                 headers=msg.headers)
            return
        except Exception as exc:  # a logic bug must not stall the partition: divert the event, loudly
            log.exception("journey step failed at %s[%d]@%d", msg.topic, p, offset)
            self.states.pop(key, None)
            await self.dead.send(DeadLetter(msg.key, msg.value, f"journey step failed: {type(exc).__name__}: {exc}",
                                            KIND_INVALID, STAGE, msg.topic, p, offset), headers=msg.headers)
            return

        if result.duplicate:
            if not is_merge_marker(event):
                STREAM_DUPLICATES.inc()
            if result.state is not None:  # the state may be stored while its snapshot was lost: re-send it
                for snap in snapshots_of(result.state, self.cfg, now):
                    await self._send_snapshot(snap)
            return

        marker = is_merge_marker(event)
        if not marker:
            # Watermark, then windows, then the journey: see the module docstring for why this order.
            occurred_at = int(event["occurred_at"])
            old_wm = self._watermark(p)
            wm = windows.advance_watermark(old_wm, occurred_at)
            if wm != old_wm:
                self.watermarks[p] = wm
                # Persisted at one-second steps (a table write per event would be one more Kafka record per
                # event): after a restart the watermark may be up to 1 s behind until the replay re-advances it.
                if old_wm is None or wm // 1000 != old_wm // 1000:
                    self.table[watermark_key(p)] = b"%d" % (wm - wm % 1000)
            if result.contributions:
                plan = windows.plan(result.contributions, wm, allowed_lateness_ms=self.lateness_ms)
                for ws, contribs in plan.by_window.items():
                    wkey = window_key(p, ws)
                    window = windows.absorb(self._window(wkey), contribs, offset, window_start=ws, partition=p)
                    self.table[wkey] = state_codec.dumps_window(window)
                    self.windows[wkey] = window
                    self.dirty[wkey] = window
                if plan.late:
                    STREAM_LATE_EVENTS.inc(plan.late)
            if not restitched:
                STREAM_EVENTS_PROCESSED.labels(event_type=event["event_type"]).inc()
                STREAM_EVENT_LAG.observe(max(0.0, (now - occurred_at) / 1000.0))
            self._prune_windows(p, wm, now)
        if result.state is not None:
            self.table[key] = state_codec.dumps_journey(result.state)
            if len(self.states) >= self.max_states and key not in self.states:
                del self.states[next(iter(self.states))]
            self.states[key] = result.state
            if not had:
                self.owners_open += 1
                STREAM_JOURNEYS_OPEN.set(self.owners_open)
        for snap in result.superseded:
            await self._send_snapshot(snap)
        if result.snapshot is not None:
            await self._send_snapshot(result.snapshot)

    async def _send_snapshot(self, snap: dict[str, Any]) -> None:
        try:
            value = self.codec.encode(snap, "journey_snapshot")
        except Exception:  # a snapshot the contract rejects is a logic bug: say so, do not crash-loop the agent
            log.exception("journey snapshot %s does not fit the journey_snapshot schema; not sent", snap.get("journey_id"))
            return
        # Keyed by journey_id, not owner: the journeys topic is compacted, and an owner has several journey ids
        # (older journeys, superseded ids) whose newest snapshots must all survive compaction.
        await self.journeys_out.send(key=snap["journey_id"].encode("utf-8"), value=value)

    def _prune_windows(self, partition: int, watermark: int | None, now: int) -> None:
        """Delete closed, already emitted windows of ``partition`` (we are processing one of its events)."""
        if now - self.last_prune.get(partition, 0) < PRUNE_INTERVAL_MS:
            return
        self.last_prune[partition] = now
        prefix = b"w:%d:" % partition
        for wkey, window in list(self.windows.items()):
            if (wkey.startswith(prefix) and wkey not in self.dirty and not windows.is_dirty(window)
                    and windows.is_closed(window, watermark, self.lateness_ms)):
                del self.windows[wkey]
                self.emitted_cells.pop(wkey, None)
                del self.table[wkey]

    # --- window snapshots (timer, shutdown, rebalance) --------------------------------------------------
    async def flush_windows(self) -> int:
        """Send the snapshots of every window changed since its last ones; returns how many records went out."""
        if not self.dirty:
            return 0
        dirty, self.dirty = self.dirty, {}
        now = _now_ms()
        sent = 0
        for wkey, window in dirty.items():
            # Only the cells (dims combinations) that changed since the last flush: absorb replaces the components
            # dict of a cell it changes, so identity tells. An unchanged cell's newest snapshot is still right.
            last = self.emitted_cells.setdefault(wkey, {})
            changed = {dims: comps for dims, comps in window.cells.items() if last.get(dims) is not comps}
            if not changed:
                continue
            last.update(changed)
            partial = WindowState(window.window_start, window.partition, changed, window.last_offset, window.emitted_offset)
            for record in windows.snapshots(partial, emitted_at=now):
                # The metrics topic is compacted: key = everything that identifies one MetricWindow row.
                key = "%d:%d:%s:%s:%s:%s" % (record["window_start"], record["partition"], record["event_type"],
                                             record["channel"], record["campaign_id"], record["currency"])
                await self.metrics_out.send(key=key.encode("utf-8"),
                                            value=self.codec.encode(record, "metric_window"))
                sent += 1
            windows.mark_emitted(window)
        return sent

    async def after_rebalance(self, app: faust.App) -> None:
        """Reload what this worker now holds: count owners, mark every held window dirty (re-sent next flush)."""
        if self.assigned_at is not None:
            STREAM_RECOVERY_SECONDS.set(time.monotonic() - self.assigned_at)
            self.assigned_at = None
        topic = self.source.get_topic_name()
        held = {tp.partition for tp in app.consumer.assignment() if tp.topic == topic}
        owners = 0
        try:
            for key, raw in self.table.items():
                if key.startswith(b"j:"):
                    owners += 1
                elif key.startswith(b"w:") and int(key.split(b":")[1]) in held:
                    window = self.windows[key] = state_codec.loads_window(raw)
                    self.dirty[key] = window
        except Exception:  # the tables stay right; only the re-sending of held windows is incomplete
            log.exception("journeys: could not scan the recovered table to re-send window snapshots")
        self.owners_open = owners
        STREAM_JOURNEYS_OPEN.set(owners)
        log.info("journeys: %d owners and %d windows held on partitions %s", owners, len(self.dirty), sorted(held))

    def on_revoked(self) -> None:
        self.assigned_at = time.monotonic()
        self.states.clear()
        self.windows.clear()
        self.watermarks.clear()
        self.emitted_cells.clear()
        # dirty windows of revoked partitions are re-sent by their new owner after its recovery


def register(app: faust.App, ctx: WorkerContext) -> JourneyStep:
    step = JourneyStep(app, ctx)

    @app.agent(step.source, name="journeys")
    async def journeys(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            await step.process(event.message)

    @app.timer(FLUSH_INTERVAL_S)
    async def flush_windows() -> None:
        await step.flush_windows()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # faust stubs reject async receivers
    async def _revoked(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        step.on_revoked()

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # faust stubs reject async receivers
    async def _rebalanced(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        await step.after_rebalance(app)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # faust stubs reject async receivers
    async def _flush_on_shutdown(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        sent = await step.flush_windows()
        log.info("shutdown: sent %d pending window snapshots", sent)

    return step
