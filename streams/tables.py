"""Faust tables of the worker, read through a small cache of decoded values.

Faust (with the RocksDB store) writes a table value to the local RocksDB of, and its changelog record to, the
partition of the event being processed; so every write here happens inside the agent, while processing an event of
the partition the key belongs to. Values are bytes (``state_codec``); decoding a journey on every event would cost
more than the logic itself, so decoded values are kept in a bounded cache that is written through (the table
always holds the newest value) and dropped at every rebalance (another worker may have changed the keys).
"""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class CachedTable(Generic[T]):
    """Write-through cache in front of one faust table with raw byte keys and values."""

    def __init__(self, table: Any, loads: Callable[[bytes], T], dumps: Callable[[T], bytes], *, max_items: int) -> None:
        self.table = table
        self._loads = loads
        self._dumps = dumps
        self._max = max_items
        self._cache: dict[bytes, T] = {}

    def get(self, key: bytes) -> T | None:
        value = self._cache.get(key)
        if value is None:
            raw = self.table.get(key)
            if raw is None:
                return None
            value = self._loads(raw)
            self._remember(key, value)
        return value

    def put(self, key: bytes, value: T) -> None:
        """Store ``value`` (table write: local RocksDB + changelog record of the current event's partition)."""
        self.table[key] = self._dumps(value)
        self._remember(key, value)

    def delete(self, key: bytes) -> None:
        self._cache.pop(key, None)
        if key in self.table:
            del self.table[key]

    def forget(self, key: bytes) -> None:
        """Drop a cached value that may be half-changed (the pure step raised while holding it)."""
        self._cache.pop(key, None)

    def clear_cache(self) -> None:
        self._cache.clear()

    def _remember(self, key: bytes, value: T) -> None:
        cache = self._cache
        if key in cache:
            del cache[key]  # re-insert: dict order is recency order
        elif len(cache) >= self._max:
            del cache[next(iter(cache))]
        cache[key] = value
