"""Metric window snapshots of the journey step: which windows changed, and sending their changed cells.

Windows changed since their last snapshots are "dirty"; ``flush`` sends one MetricWindow record per changed cell
(dims combination) of each, keyed by everything that identifies the sink row (the metrics topic is compacted;
a correction window's key ends with its ``correction_id``).
``absorb`` replaces the components dict of a cell it changes, so identity with what was sent last tells which
cells changed. The "already emitted" marks live in memory only (timers cannot write tables); after a rebalance the
journey step marks every held window dirty again, and re-sending a version is harmless.
"""

from __future__ import annotations

import time
from typing import Any

from touchpoint.streams import windows
from touchpoint.streams.windows import WindowState

Dims = tuple[str, str, str, str]


class WindowEmitter:
    """Dirty windows and the cells last sent of each; ``flush`` hands the changed cells to the outbox."""

    def __init__(self, outbox: Any, codec: Any, topic: str) -> None:
        self.outbox = outbox
        self.codec = codec
        self.topic = topic
        self.dirty: dict[bytes, WindowState] = {}
        self.sent_cells: dict[bytes, dict[Dims, dict[str, int]]] = {}

    def mark(self, key: bytes, window: WindowState) -> None:
        self.dirty[key] = window

    def forget(self, key: bytes) -> None:
        """The window was deleted (closed and emitted)."""
        self.sent_cells.pop(key, None)

    def forget_sent(self) -> None:
        """After a revocation: the next snapshots of any window send all its cells."""
        self.sent_cells.clear()

    def flush(self) -> int:
        """Send the changed cells of every dirty window; returns how many records went out."""
        if not self.dirty:
            return 0
        dirty, self.dirty = self.dirty, {}
        now = int(time.time() * 1000)
        sent = 0
        for wkey, window in dirty.items():
            last = self.sent_cells.setdefault(wkey, {})
            changed = {dims: comps for dims, comps in window.cells.items() if last.get(dims) is not comps}
            if not changed:
                continue
            last.update(changed)
            partial = WindowState(window.window_start, window.partition, changed, window.last_offset,
                                  window.emitted_offset, window.correction_id)
            for record in windows.snapshots(partial, emitted_at=now):
                key = "%d:%d:%s:%s:%s:%s" % (record["window_start"], record["partition"], record["event_type"],
                                             record["channel"], record["campaign_id"], record["currency"])
                if window.correction_id:  # a correction row is its own sink key (compaction must keep it)
                    key += ":" + window.correction_id
                self.outbox.send(self.topic, self.codec.encode(record, "metric_window"), key.encode("utf-8"))
                sent += 1
            windows.mark_emitted(window)
        return sent
