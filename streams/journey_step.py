"""Step 3, journeys and windows: journey topic (frames, by owner) → journey snapshots and metric windows.

Guarantee: at-least-once input, idempotent state, versioned snapshots (the sink keeps the newest version per key).

One faust table, ``journeys``, co-partitioned with the journey topic, holds three kinds of values of a partition
``p`` (keys are bytes):

* ``j:<owner>`` — the JourneyState of an owner (customer id, or anonymous id not yet stitched);
* ``m:<p>`` — the watermark (highest event time seen on partition p);
* ``w:<p>:<window_start>`` — the WindowState of one 1-minute window of partition p;
* ``c:<p>:<window_start>:<correction_id>`` — a late event's correction of a closed window of partition p (see
  below), held only until its snapshot is surely in Kafka.

The input is frames (``internal.py``): many events of one partition per record. A frame at offset o of partition
p is applied event by event in memory (event i has the *position* ``o * FRAME_SLOTS + i``), then its writes go, in
this order, to: the windows (and correction windows), the journeys it changed (one value per key per frame), the
watermark. They share one changelog partition (p), which Kafka keeps in order, so whatever prefix of them survives
a crash is consistent: a stored journey (which records its event ids, making a replay a duplicate) implies the
frame's windows are stored; stored windows without the journey are skipped on replay because they remember the
highest position they absorbed; a stored watermark implies its whole frame is stored. That is why windows and
journeys share a table instead of having one each.

Late contributions (windows closed by the watermark) become correction windows: one per (event, window), keyed by
``windows.correction_id`` (event id and position), emitted once as additive MetricWindow rows and deleted after
a pre-commit flush of the outboxes succeeded after their snapshots were sent (Kafka has them).
Exactly-once into ClickHouse needs "late or not" to come out the same when a frame is replayed: the watermark
seen by an event depends only on the frame contents and the watermark stored before the frame (every item
advances it, duplicates too; each claim is capped at the frame's Kafka timestamp plus ``max_clock_skew_seconds``,
not at the wall clock), and it is stored exactly, last, so a replay starts from the value the frame first saw. A frame is
processed without yielding to the event loop (sends go to the outbox, which never awaits), so no rebalance
callback or timer runs halfway through one.

Snapshots: the newest JourneySnapshot of every journey id a frame changed (superseded ids too) is kept as pending
after the frame's writes and sent, keyed by journey_id, every ``SNAPSHOT_LINGER_S``, before every offset commit (the
outbox's ``before_flush`` hook), at a revocation and at shutdown: a journey changed by several frames within the
linger is encoded and sent once (during a backlog most are), and no offset is committed before the snapshots of its
frame are handed to the outbox. A duplicate re-sends the owner's current snapshots and those of the ids it
retired (same versions): after a crash the state may be stored while its snapshots were lost. Windows changed since
their last snapshots are sent every second and on shutdown; after every rebalance, once the tables are recovered,
every window held is re-sent (the "already emitted" mark lives only in memory, and window snapshots are not tied
to offset commits; re-sending a version is harmless). Windows that can no longer change (older than the watermark
minus the allowed lateness) and whose snapshots went out are deleted from the table.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
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
    STREAM_SUPPRESSED,
    STREAM_WINDOWS_HELD,
)
from touchpoint.streams import faust_adapter, internal, state_codec, windows
from touchpoint.streams.app import WorkerContext
from touchpoint.streams.agent_guard import stop_worker_on_failure
from touchpoint.streams.dead_letters import STAGE, DeadLetterSender
from touchpoint.streams.identity import is_merge_marker
from touchpoint.streams.journey import JourneyState, apply, snapshots_of
from touchpoint.streams.tables import CachedTable, TableWriter
from touchpoint.streams.topology import JOURNEY_TABLE, changelog_topic, journey_topic
from touchpoint.streams.window_emitter import WindowEmitter
from touchpoint.streams.windows import WindowState

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 1.0
SNAPSHOT_LINGER_S = 0.5  # the longest a journey snapshot waits for a newer version of itself
PRUNE_INTERVAL_MS = 10_000


def journey_key(owner: str) -> bytes:
    return b"j:" + owner.encode("utf-8")


def watermark_key(partition: int) -> bytes:
    return b"m:%d" % partition


def window_key(partition: int, window_start: int) -> bytes:
    return b"w:%d:%d" % (partition, window_start)


def correction_key(partition: int, window_start: int, correction_id: str) -> bytes:
    return b"c:%d:%d:%s" % (partition, window_start, correction_id.encode("utf-8"))


def _frame_time_ms(msg: Any, fallback: int) -> int:
    """The frame's Kafka timestamp (set when it was produced): the same on every replay, unlike the wall clock."""
    ts = getattr(msg, "timestamp", None)
    return int(ts * 1000) if isinstance(ts, (int, float)) and ts > 0 else fallback


def _now_ms() -> int:
    return int(time.time() * 1000)


FRAME_SLOTS = 1 << 20  # position of an event = offset of its frame * FRAME_SLOTS + index in the frame


@dataclass
class _Frame:
    """What one journey frame changed, written and sent together at its end."""

    states: dict[bytes, JourneyState] = field(default_factory=dict)
    windows: dict[bytes, WindowState] = field(default_factory=dict)
    corrections: dict[bytes, WindowState] = field(default_factory=dict)  # correction windows created by this frame
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)  # journey_id -> newest snapshot
    applied: dict[bytes, list[tuple[dict[str, Any], bool]]] = field(default_factory=dict)  # to rebuild a state


class JourneyStep:
    """State and outputs of the journey agent (one per worker process)."""

    def __init__(self, app: faust.App, ctx: WorkerContext) -> None:
        settings = ctx.settings
        n = settings.topic_partitions
        self.app = app
        self.ctx = ctx
        self.cfg = ctx.journey_cfg
        self.lateness_ms = int(settings.allowed_lateness_seconds * 1000)
        self.skew_ms = int(settings.max_clock_skew_seconds * 1000)
        self.source = app.topic(journey_topic(settings), partitions=n, internal=True)
        self.outbox = ctx.outbox
        self.journeys_topic = settings.journeys_topic
        self.dead = DeadLetterSender(ctx.outbox, settings.dead_letter_topic)
        self.table = app.Table(JOURNEY_TABLE, partitions=n, key_type=bytes, value_type=bytes)
        self.writer = TableWriter(self.table, ctx.changelog, changelog_topic(settings, JOURNEY_TABLE))
        ctx.table_writers.append(self.writer)
        self.codec = ctx.codec
        # Decoded values, written through to the table (see streams/tables.py for why a cache).
        self.states: CachedTable[JourneyState] = CachedTable(self.writer, state_codec.loads_journey,
                                                             state_codec.dumps_journey, max_items=20_000)
        self.windows: dict[bytes, WindowState] = {}
        # Correction windows by partition: stored (maybe unsent), handed to the outbox before a flush under way,
        # acknowledged by a flush (deleted at the next frame of their partition).
        self.corrections_new: dict[int, set[bytes]] = {}
        self.corrections_flushing: dict[int, set[bytes]] = {}
        self.corrections_done: dict[int, set[bytes]] = {}
        self.watermarks: dict[int, int | None] = {}
        self.emitter = WindowEmitter(ctx.outbox, ctx.codec, settings.metrics_topic)
        self.pending: dict[str, dict[str, Any]] = {}  # journey_id -> newest snapshot not sent yet
        self.last_prune: dict[int, int] = {}
        self.owners_open = 0
        self.assigned_at: float | None = None
        self.needs_rescan = True  # re-send every held window once the tables are recovered
        self.processed: dict[str, Any] = {}  # event_type -> its labelled counter (a labels() call costs ~2 µs)

    # --- table access (inside the agent only) -----------------------------------------------------------
    def _window(self, key: bytes) -> WindowState | None:
        window = self.windows.get(key)
        if window is None:
            raw = self.table.get(key)
            if raw is not None:
                window = self.windows[key] = state_codec.loads_window(raw)
        return window

    def _stored_window(self, key: bytes) -> WindowState | None:
        """A correction window as stored (a replay finds it and absorbs nothing twice), else None."""
        raw = self.table.get(key)
        return state_codec.loads_window(raw) if raw is not None else None

    def _watermark(self, partition: int) -> int | None:
        if partition not in self.watermarks:
            raw = self.table.get(watermark_key(partition))
            self.watermarks[partition] = int(raw) if raw is not None else None
        return self.watermarks[partition]

    # --- one frame --------------------------------------------------------------------------------------
    def process(self, msg: Any) -> None:
        """Apply every event of one journey frame, then write and send what changed (never yields)."""
        p = msg.partition
        try:
            items = internal.decode_journey_frame(msg.value, msg.key)
        except InvalidEventError as exc:
            self.dead.send(DeadLetter(msg.key, msg.value, exc.reason, exc.kind, STAGE, msg.topic, p, msg.offset),
                           headers=msg.headers)
            return
        if self.needs_rescan:
            self.rescan()
        now = _now_ms()
        frame = _Frame()
        old_wm = wm = self._watermark(p)
        base = msg.offset * FRAME_SLOTS
        claim_limit = _frame_time_ms(msg, now) + self.skew_ms
        for i, item in enumerate(items):
            wm = self._one(msg, item, i, base + i, wm, now, frame, claim_limit)

        # Windows, then journeys, then the watermark: see the module docstring for why this order.
        for wkey, window in frame.windows.items():
            self.writer.set(wkey, state_codec.dumps_window(window), p)
            self.windows[wkey] = window
            self.emitter.mark(wkey, window)
        for ckey, window in frame.corrections.items():
            self.writer.set(ckey, state_codec.dumps_window(window), p)
            self.emitter.mark(ckey, window)
            self.corrections_new.setdefault(p, set()).add(ckey)
        for key, state in frame.states.items():
            self.states.put(key, state, p)
        if wm != old_wm and wm is not None:
            self.watermarks[p] = wm
            self.writer.set(watermark_key(p), b"%d" % wm, p)  # exact: a replayed frame must see the same value
        self.pending.update(frame.snapshots)
        self._delete_corrections(p)
        self._prune_windows(p, wm, now)

    def _one(self, msg: Any, item: Any, index: int, position: int, wm: int | None, now: int, frame: _Frame,
             claim_limit: int) -> int | None:
        """Apply one frame item; returns the partition's watermark after it."""
        key = b""
        try:
            owner, restitched, event = internal.check_routed(item)
            if not is_merge_marker(event):
                # Every item advances the watermark, duplicates too, so a replay computes the same value.
                occurred_at = event.get("occurred_at")
                if type(occurred_at) is int:
                    wm = windows.advance_watermark(wm, occurred_at if occurred_at <= claim_limit else claim_limit)
            suppression = self.ctx.suppression
            if suppression is not None and suppression.ids and (owner in suppression.ids or suppression.blocks(event)):
                if not restitched and not is_merge_marker(event):
                    STREAM_SUPPRESSED.inc()  # framed before its id was erased: dropped here
                return wm
            key = b"j:" + owner.encode("utf-8")
            state = frame.states[key] if key in frame.states else self.states.get(key)
            had = state is not None
            result = apply(state, event, restitched=restitched, offset_partition=msg.partition, cfg=self.cfg, now_ms=now)
        except InvalidEventError as exc:
            self._divert(msg, item, index, exc.reason, exc.kind)
            return wm
        except Exception as exc:  # a logic bug must not stall the partition: divert the event, loudly
            log.exception("journey step failed at %s[%d]@%d", msg.topic, msg.partition, msg.offset)
            self._divert(msg, item, index, f"journey step failed: {type(exc).__name__}: {exc}", KIND_INVALID)
            if key:
                self._rebuild(key, frame, now)
            return wm

        if result.duplicate:
            if not restitched and not is_merge_marker(event):  # input events only, not the login's internal copies
                STREAM_DUPLICATES.inc()
            if result.state is not None:  # the state may be stored while its snapshots were lost: re-send them
                for snap in snapshots_of(result.state, self.cfg, now):
                    frame.snapshots[snap["journey_id"]] = snap
            return wm

        if not is_merge_marker(event):
            occurred_at = int(event["occurred_at"])
            if result.contributions:
                plan = windows.plan(result.contributions, wm, allowed_lateness_ms=self.lateness_ms)
                p = msg.partition
                for ws, contribs in plan.by_window.items():
                    wkey = window_key(p, ws)
                    window = frame.windows.get(wkey)
                    if window is None:
                        window = self._window(wkey)
                    frame.windows[wkey] = windows.absorb(window, contribs, position, window_start=ws, partition=p)
                if plan.corrections:
                    cid = windows.correction_id(event["event_id"], position)
                    for ws, contribs in plan.corrections.items():
                        ckey = correction_key(p, ws, cid)
                        frame.corrections[ckey] = windows.absorb(self._stored_window(ckey), contribs, position,
                                                                 window_start=ws, partition=p, correction_id=cid)
                if plan.late:
                    STREAM_LATE_EVENTS.inc(plan.late)
            if not restitched:
                counter = self.processed.get(event["event_type"])
                if counter is None:
                    counter = self.processed[event["event_type"]] = STREAM_EVENTS_PROCESSED.labels(event_type=event["event_type"])
                counter.inc()
                STREAM_EVENT_LAG.observe(max(0.0, (now - occurred_at) / 1000.0))
        if result.state is not None:
            frame.states[key] = result.state
            frame.applied.setdefault(key, []).append((event, restitched))
            if not had:
                self.owners_open += 1
                STREAM_JOURNEYS_OPEN.set(self.owners_open)
        for snap in result.superseded:
            frame.snapshots[snap["journey_id"]] = snap
        if result.snapshot is not None:
            frame.snapshots[result.snapshot["journey_id"]] = result.snapshot
        return wm

    def forget(self, owner: str, partition: int) -> bool:
        """Delete an erased owner's journey state (journeys, dedup entries) and tombstone its journey ids on the
        compacted journeys topic (the erasure sweep, outside the agent; the sink deletes the stored rows)."""
        key = journey_key(owner)
        store = faust_adapter.partition_db(self.table, partition)
        raw = store.get(key) if store is not None else None
        if raw is None:
            return False
        ids = {snap["journey_id"] for snap in snapshots_of(state_codec.loads_journey(raw), self.cfg, _now_ms())}
        self.states.forget(key)
        self.writer.forget_key(key, partition)
        for journey_id in ids | {j for j in self.pending if j.startswith(owner + ":")}:
            self.pending.pop(journey_id, None)
            self.outbox.send(self.journeys_topic, None, journey_id.encode("utf-8"))
        self.owners_open = max(0, self.owners_open - 1)
        STREAM_JOURNEYS_OPEN.set(self.owners_open)
        return True

    def _divert(self, msg: Any, item: Any, index: int, reason: str, kind: str) -> None:
        """Dead-letter one frame item as its own record (one-event form), keyed by its owner when known."""
        owner = item[0] if isinstance(item, list) and item and isinstance(item[0], str) else None
        key = owner.encode("utf-8") if owner else msg.key
        self.dead.send(DeadLetter(key, internal.item_record(item, routed=bool(owner)), reason, kind, STAGE, msg.topic,
                                  msg.partition, msg.offset, index), headers=msg.headers)

    def _rebuild(self, key: bytes, frame: _Frame, now: int) -> None:
        """After ``apply`` raised, the owner's state may be half-changed: reload it as stored before this frame
        and re-apply this frame's earlier events of the owner (deterministic, same ``now``)."""
        self.states.forget(key)
        frame.states.pop(key, None)
        try:
            state = self.states.get(key)
            for event, restitched in frame.applied.get(key, []):
                state = apply(state, event, restitched=restitched, cfg=self.cfg, now_ms=now).state
        except Exception:
            log.exception("could not rebuild the journey state of %r; this frame's changes to it are dropped", key)
            self.states.forget(key)
            return
        if state is not None:
            frame.states[key] = state

    def flush_snapshots(self) -> int:
        """Send every pending journey snapshot; returns how many went out."""
        pending, self.pending = self.pending, {}
        for snap in pending.values():
            self._send_snapshot(snap)
        return len(pending)

    def _send_snapshot(self, snap: dict[str, Any]) -> None:
        try:
            value = self.codec.encode(snap, "journey_snapshot")
        except Exception:  # a snapshot the contract rejects is a logic bug: say so, do not crash-loop the agent
            log.exception("journey snapshot %s does not fit the journey_snapshot schema; not sent", snap.get("journey_id"))
            return
        # Keyed by journey_id, not owner: the journeys topic is compacted, and an owner has several journey ids
        # (older journeys, superseded ids) whose newest snapshots must all survive compaction.
        self.outbox.send(self.journeys_topic, value, snap["journey_id"].encode("utf-8"))

    def _delete_corrections(self, partition: int) -> None:
        """Delete the correction windows of ``partition`` whose snapshots the outbox acknowledged."""
        done = self.corrections_done.pop(partition, None)
        if done:
            for ckey in done:
                self.emitter.forget(ckey)
                self.writer.delete(ckey, partition)
            self._held()

    def corrections_handed(self) -> None:
        """Before the pre-commit flush of the outboxes: the corrections already sent (not dirty) are in the outbox,
        so this flush acknowledges them; unsent ones wait for a later flush."""
        for partition, keys in self.corrections_new.items():
            sent = {k for k in keys if k not in self.emitter.dirty}
            if sent:
                self.corrections_flushing.setdefault(partition, set()).update(sent)
                keys -= sent
        self.corrections_new = {p: keys for p, keys in self.corrections_new.items() if keys}

    def corrections_acked(self) -> None:
        """After the outboxes flushed without failure: the corrections handed before it are in Kafka; the next frame
        of their partition deletes them."""
        for partition, keys in self.corrections_flushing.items():
            self.corrections_done.setdefault(partition, set()).update(keys)
        self.corrections_flushing = {}

    def _held(self) -> None:
        STREAM_WINDOWS_HELD.set(len(self.windows) + sum(map(len, self.corrections_new.values()))
                                + sum(map(len, self.corrections_flushing.values()))
                                + sum(map(len, self.corrections_done.values())))

    def _prune_windows(self, partition: int, watermark: int | None, now: int) -> None:
        """Delete closed, already emitted windows of ``partition`` (we are processing one of its events)."""
        if now - self.last_prune.get(partition, 0) < PRUNE_INTERVAL_MS:
            return
        self.last_prune[partition] = now
        prefix = b"w:%d:" % partition
        for wkey, window in list(self.windows.items()):
            if (wkey.startswith(prefix) and wkey not in self.emitter.dirty and not windows.is_dirty(window)
                    and windows.is_closed(window, watermark, self.lateness_ms)):
                del self.windows[wkey]
                self.emitter.forget(wkey)
                self.writer.delete(wkey, partition)
        self._held()

    # --- window snapshots (timer, shutdown, rebalance) --------------------------------------------------
    def flush_windows(self) -> int:
        """Send the snapshots of every window changed since its last ones; returns how many records went out."""
        if self.needs_rescan and not (self.app.rebalancing or self.app.in_recovery):
            self.rescan()
        return self.emitter.flush()

    def rescan(self) -> None:
        """After a rebalance, once the tables are recovered: count owners, mark every held window for re-sending.

        The "already emitted" mark of a window lives in memory only (timers cannot write tables), and a window's
        snapshots go out on the timer, not with the offset commit: after a kill or a move to another worker, the
        recovered windows may never have been sent. Re-sending a version is harmless.
        """
        self.needs_rescan = False
        topic = self.source.get_topic_name()
        held = {tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic}
        owners = windows_held = 0
        try:
            # items(), not keys() + get(): inside a frame, get() only looks in the frame's partition's store,
            # and the windows of every held partition are needed here.
            for key, raw in self.table.items():
                if key.startswith(b"j:"):
                    owners += 1
                elif key.startswith(b"w:") and int(key.split(b":")[1]) in held:
                    window = self.windows.get(key)
                    if window is None:
                        window = self.windows[key] = state_codec.loads_window(raw)
                    self.emitter.mark(key, window)
                    windows_held += 1
                elif key.startswith(b"c:") and int(key.split(b":")[1]) in held:
                    # a correction stored but maybe never sent: send it (again; the sink keeps one row), delete later
                    partition = int(key.split(b":")[1])
                    self.emitter.mark(key, state_codec.loads_window(raw))
                    self.corrections_new.setdefault(partition, set()).add(key)
                    windows_held += 1
        except Exception:  # the tables stay right; only the re-sending of held windows is incomplete
            log.exception("journeys: could not scan the recovered table to re-send window snapshots")
        self.owners_open = owners
        STREAM_JOURNEYS_OPEN.set(owners)
        log.info("journeys: %d owners and %d windows held on partitions %s", owners, windows_held, sorted(held))

    def after_rebalance(self) -> None:
        if self.assigned_at is not None:
            STREAM_RECOVERY_SECONDS.set(time.monotonic() - self.assigned_at)
            self.assigned_at = None
        self.needs_rescan = True

    def on_revoked(self) -> None:
        self.flush_snapshots()
        self.assigned_at = time.monotonic()
        self.needs_rescan = True
        self.states.clear_cache()
        self.windows.clear()
        self.watermarks.clear()
        # held corrections of revoked partitions are re-sent and deleted by their next owner's rescan
        self.corrections_new.clear()
        self.corrections_flushing.clear()
        self.corrections_done.clear()
        self.emitter.forget_sent()
        # dirty windows of revoked partitions are still sent by this worker's timer; their new owner re-sends too


def register(app: faust.App, ctx: WorkerContext) -> JourneyStep:
    step = JourneyStep(app, ctx)

    @app.agent(step.source, name="journeys")
    async def journeys(stream: faust.StreamT[Any]) -> None:
        with stop_worker_on_failure(ctx, "the journeys agent"):
            async for event in stream.events():
                step.process(event.message)

    @app.timer(FLUSH_INTERVAL_S)
    async def flush_windows() -> None:
        step.flush_windows()

    @app.timer(SNAPSHOT_LINGER_S)
    async def flush_snapshots() -> None:
        step.flush_snapshots()

    ctx.before_flush.append(step.flush_snapshots)
    ctx.before_flush.append(step.corrections_handed)
    ctx.after_flush.append(step.corrections_acked)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # faust stubs reject async receivers
    async def _revoked(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        step.on_revoked()

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # faust stubs reject async receivers
    async def _rebalanced(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        step.after_rebalance()

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # faust stubs reject async receivers
    async def _flush_on_shutdown(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        journeys_sent, windows_sent = step.flush_snapshots(), step.flush_windows()
        log.info("shutdown: sent %d pending journey and %d window snapshots", journeys_sent, windows_sent)

    return step
