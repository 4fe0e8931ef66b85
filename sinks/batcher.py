"""Pending rows per table, cut into insert batches by size, time and partition month (no I/O here).

A batch holds rows of one table, possibly from several Kafka partitions of its topic, in arrival order (so each
partition's rows are in offset order), the source message of every row (for the dead-letter topic) and the
position to commit per partition once the batch is stored (records skipped or dead-lettered advance it too).

Boundaries that matter for exactness:
- a batch never spans two months of the table's partition key, so one insert writes exactly one part, which
  ClickHouse commits atomically (the sink's restart position relies on "a stored offset implies every earlier
  offset of that partition is stored", see loop.py);
- the dedup token is a pure function of the rows' (topic, partition, first offset, last offset), so retrying
  the same batch, or either half of a bisected one, always sends the same token.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from touchpoint.sinks.rows import TableSpec

TopicPartition = tuple[str, int]


@dataclass
class Batch:
    spec: TableSpec
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    messages: list[Any] = field(default_factory=list)     # source message per row (same index)
    commit: dict[TopicPartition, int] = field(default_factory=dict)  # next offset to commit per partition
    month: int | None = None
    opened_at: float = field(default_factory=time.monotonic)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def empty(self) -> bool:
        return not self.rows and not self.commit

    def add(self, row: tuple[Any, ...], message: Any, month: int | None) -> None:
        if not self.rows:
            self.month = month
        self.rows.append(row)
        self.messages.append(message)

    def consumed(self, topic: str, partition: int, offset: int) -> None:
        """Record that ``offset`` was handled (stored, skipped or dead-lettered) by this batch."""
        self.commit[(topic, partition)] = offset + 1

    def columns(self, rows: list[tuple[Any, ...]] | None = None) -> list[tuple[Any, ...]]:
        """The rows transposed into columns (C-speed ``zip``)."""
        return list(zip(*(self.rows if rows is None else rows)))


def token_for(table: str, rows: list[tuple[Any, ...]]) -> str:
    """``insert_deduplication_token`` of these rows: table + per partition the first and last offset.

    Rows end with (kafka_topic, kafka_partition, kafka_offset) and hold each partition's rows in offset order (a
    batch, or a slice of one). Deterministic, so a retry is a no-op.
    """
    if not rows:
        return table + "|empty"
    _head, topics, partitions, offsets = _tail_columns(rows)
    keys = list(zip(topics, partitions))
    last = dict(zip(keys, offsets))                          # later rows overwrite: the last offset per partition
    first = dict(zip(reversed(keys), reversed(offsets)))     # same trick from the end: the first offset
    text = table + "|" + "|".join(f"{t}:{p}:{first[(t, p)]}-{last[(t, p)]}" for t, p in sorted(last))
    if len(text) <= 200:
        return text
    return table + "|sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _tail_columns(rows: list[tuple[Any, ...]]) -> tuple[None, tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]:
    topics = tuple(row[-3] for row in rows)
    partitions = tuple(row[-2] for row in rows)
    offsets = tuple(row[-1] for row in rows)
    return None, topics, partitions, offsets


class Batcher:
    """One open batch per table; the loop asks what to flush."""

    def __init__(self, max_rows: int, max_seconds: float) -> None:
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self.batches: dict[str, Batch] = {}

    def batch(self, spec: TableSpec) -> Batch:
        current = self.batches.get(spec.table)
        if current is None:
            current = self.batches[spec.table] = Batch(spec)
        return current

    def must_cut_before(self, spec: TableSpec, month: int | None) -> bool:
        """True when a row of ``month`` cannot join the open batch (it would span two partitions)."""
        current = self.batches.get(spec.table)
        return current is not None and bool(current.rows) and current.month != month

    def full(self, table: str) -> bool:
        current = self.batches.get(table)
        return current is not None and len(current.rows) >= self.max_rows

    def due(self, now: float | None = None) -> list[str]:
        """Tables whose open batch is older than max_seconds."""
        now = time.monotonic() if now is None else now
        return [t for t, b in self.batches.items() if not b.empty and now - b.opened_at >= self.max_seconds]

    def take(self, table: str) -> Batch | None:
        """Remove and return the open batch of ``table`` (None when there is nothing to do)."""
        current = self.batches.pop(table, None)
        return None if current is None or current.empty else current

    def pending_rows(self) -> int:
        return sum(len(b.rows) for b in self.batches.values())

    def clear(self) -> int:
        """Drop every pending batch (partitions revoked without a successful flush); returns rows dropped."""
        dropped = self.pending_rows()
        self.batches.clear()
        return dropped
