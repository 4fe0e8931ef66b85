"""Every place the worker goes under the public surface of faust-streaming / mode-streaming / aiokafka, in one module.

The versions are pinned exactly in pyproject.toml (faust-streaming 0.15.3, mode-streaming 0.7.1, aiokafka 0.14.0)
and each behaviour relied on here has a contract test against the real installed library
(``tests/contract/test_faust_contract.py``); an upgrade that changes one fails that test, not the numbers.

Internals used, and why:

1. ``store._db_for_partition(p)`` and ``store._key_index`` of faust's RocksDB store (``faust.stores.rocksdb.Store``),
   in ``store_put``: the worker writes a table value for an explicit partition without faust's serializer and
   current-event lookups (~4 µs less per write). Public alternative: ``table[key] = value``
   inside the agent, which also sends the changelog through faust's producer (the changelog outbox sends it instead).
2. ``store._dbs`` (partition -> open RocksDB of the partitions this worker holds), in ``partition_db`` /
   ``held_partitions``: the erasure sweep deletes a key of one partition outside any agent, and changelog offsets
   are recorded only for held partitions. faust has no public "which partitions does my store hold" query.
3. Wrapping ``seek_to_committed`` of faust's transport consumer (``seek_uncommitted_to_start_after_rebalance``):
   aiokafka 0.14.0 ``AIOKafkaConsumer.seek_to_committed`` only seeks when the committed offset is > 0, so a
   partition with nothing committed keeps the fetch position of the previous generation, and faust skips the
   records fetched then as stale. No public hook runs between faust's seek and its resumption of fetching:
   ``app.on_rebalance_complete`` is sent *before* ``consumer.perform_seek()`` (faust/tables/recovery.py
   ``_resume_streams``), so the seek itself is wrapped, on this one consumer instance.

No longer used: ``Worker._schedule_shutdown``; ``request_shutdown`` raises SIGTERM, which mode's worker handles with
the same clean shutdown (its documented signal handling).
"""

from __future__ import annotations

import logging
import signal
from typing import Any, Awaitable, Callable, Iterable, Mapping

log = logging.getLogger(__name__)


# --- faust RocksDB store ----------------------------------------------------------------------------------------


def store_put(table: Any, key: bytes, value: bytes, partition: int) -> None:
    """Write ``key`` into the local RocksDB of ``partition`` of a faust table, where faust's reads will find it."""
    store = table.data
    store._db_for_partition(partition).put(key, value)
    store._key_index[key] = partition


def held_partitions(table: Any) -> set[int]:
    """Partitions whose local RocksDB this worker has open for ``table``."""
    return set(table.data._dbs)


def partition_db(table: Any, partition: int) -> Any | None:
    """The open RocksDB of ``partition`` (``get``/``delete`` by raw key), or None when this worker does not hold it."""
    db: Any | None = table.data._dbs.get(partition)
    return db


def store_forget(table: Any, key: bytes, partition: int) -> bool:
    """Delete ``key`` from ``partition``'s local RocksDB, outside an agent; returns whether it was there."""
    db = partition_db(table, partition)
    if db is None or db.get(key) is None:
        return False
    db.delete(key)
    table.data._key_index.pop(key, None)
    return True


# --- seeking after a rebalance ----------------------------------------------------------------------------------


async def seek_uncommitted_to_start(committed: Mapping[Any, int | None], topics: Iterable[str],
                                    seek: Callable[[Any, int], Awaitable[None]]) -> None:
    """Seek every partition of ``topics`` with nothing committed (None or 0) to offset 0 (Kafka moves a position
    before the log start to the earliest offset). With nothing committed, re-reading from the start is the
    at-least-once rule and the steps' state makes a re-read event a no-op."""
    wanted = set(topics)
    for tp, offset in committed.items():
        if not offset and tp.topic in wanted:
            log.info("nothing committed for %s[%d]: reading it from the start", tp.topic, tp.partition)
            await seek(tp, 0)


def seek_uncommitted_to_start_after_rebalance(consumer: Any, topics: Iterable[str]) -> None:
    """Make faust's transport ``consumer`` run ``seek_uncommitted_to_start`` for ``topics`` after each of its seeks
    to the committed offsets (changelog partitions are left alone: faust's recovery owns them)."""
    internal = list(topics)
    seek_to_committed = consumer.seek_to_committed

    async def seek_then_fix() -> Any:
        committed = await seek_to_committed()
        await seek_uncommitted_to_start(committed, internal, consumer.seek)
        return committed

    consumer.seek_to_committed = seek_then_fix


# --- stopping -----------------------------------------------------------------------------------------------------


def request_shutdown() -> None:
    """Ask the running faust worker (main thread) for its clean shutdown, exactly as a SIGTERM from outside does."""
    signal.raise_signal(signal.SIGTERM)
