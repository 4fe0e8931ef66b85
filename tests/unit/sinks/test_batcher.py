"""Batch boundaries and dedup tokens (pure logic)."""

from __future__ import annotations

from touchpoint.sinks.batcher import Batcher, token_for
from touchpoint.sinks.rows import JOURNEYS, TOUCHPOINTS


def row(topic: str, partition: int, offset: int) -> tuple:
    return ("x", topic, partition, offset)


def test_token_is_deterministic_and_names_each_partition_range():
    rows = [row("t", 1, 10), row("t", 0, 5), row("t", 1, 11), row("t", 0, 9)]
    assert token_for("touchpoints", rows) == "touchpoints|t:0:5-9|t:1:10-11"
    interleaved = [rows[1], rows[3], rows[0], rows[2]]  # other interleaving of the partitions, same runs
    assert token_for("touchpoints", interleaved) == token_for("touchpoints", rows)
    assert token_for("journeys", rows) != token_for("touchpoints", rows)
    assert token_for("touchpoints", rows[:2]) != token_for("touchpoints", rows)  # halves of a bisection differ


def test_long_tokens_are_hashed_but_stable():
    rows = [row(f"topic-{p}", p, p * 100) for p in range(64)]
    token = token_for("touchpoints", rows)
    assert token.startswith("touchpoints|sha256:") and len(token) < 100
    assert token == token_for("touchpoints", list(reversed(rows)))  # one row per partition: order-free


def test_batch_is_full_at_max_rows_and_due_after_max_seconds():
    batcher = Batcher(max_rows=3, max_seconds=1.0)
    batch = batcher.batch(TOUCHPOINTS)
    for offset in range(2):
        batch.add(row("t", 0, offset), object(), 202611)
        batch.consumed("t", 0, offset)
    assert not batcher.full("touchpoints")
    assert batcher.due(batch.opened_at + 0.5) == []
    assert batcher.due(batch.opened_at + 1.0) == ["touchpoints"]
    batch.add(row("t", 0, 2), object(), 202611)
    assert batcher.full("touchpoints")
    taken = batcher.take("touchpoints")
    assert taken is batch and batcher.take("touchpoints") is None and batcher.pending_rows() == 0


def test_a_row_of_another_month_cuts_the_batch():
    batcher = Batcher(max_rows=100, max_seconds=1.0)
    assert not batcher.must_cut_before(TOUCHPOINTS, 202611)  # nothing open
    batcher.batch(TOUCHPOINTS).add(row("t", 0, 0), object(), 202611)
    assert not batcher.must_cut_before(TOUCHPOINTS, 202611)
    assert batcher.must_cut_before(TOUCHPOINTS, 202612)
    batcher.batch(JOURNEYS).add(row("j", 0, 0), object(), None)
    assert not batcher.must_cut_before(JOURNEYS, None)


def test_skipped_records_advance_the_commit_position_without_rows():
    batcher = Batcher(max_rows=10, max_seconds=1.0)
    batch = batcher.batch(TOUCHPOINTS)
    batch.consumed("t", 2, 41)
    assert not batch.empty and batch.rows == []
    assert batch.commit == {("t", 2): 42}
    assert batcher.due(batch.opened_at + 1.0) == ["touchpoints"]


def test_columns_transpose_rows():
    batcher = Batcher(max_rows=10, max_seconds=1.0)
    batch = batcher.batch(TOUCHPOINTS)
    batch.add(("a", 1), None, None)
    batch.add(("b", 2), None, None)
    assert batch.columns() == [("a", "b"), (1, 2)]
