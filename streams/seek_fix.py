"""Read a repartition topic's partition from its start when the group has committed nothing for it yet.

The gap this closes (faust-streaming 0.15.3 over aiokafka, seen in the two-worker CI test): after a rebalance
faust seeks every assigned partition to its committed offset, but aiokafka's ``seek_to_committed`` only seeks when
that offset is > 0. A partition with nothing committed keeps whatever fetch position the consumer had: if a record
there was fetched in the previous generation, faust skips it as stale (``message.generation_id`` check) and the
next fetch starts after it, so it is never processed and later commits go past it. That happens to the first
frames of a fresh pipeline when a second worker joins while they are in flight.

For the internal topics this module seeks such partitions to offset 0 (Kafka moves a position before the log
start to the earliest offset): with nothing committed, re-reading from the start is the at-least-once rule, and
the steps' state makes a re-read event a no-op. Changelog partitions are left alone (faust's recovery owns them).
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

log = logging.getLogger(__name__)


def install(consumer: Any, topics: Iterable[str]) -> None:
    """Wrap ``consumer.seek_to_committed`` (faust's transport consumer) for the partitions of ``topics``."""
    internal = set(topics)
    seek_to_committed = consumer.seek_to_committed

    async def seek_uncommitted_to_start() -> Any:
        committed = await seek_to_committed()
        for tp, offset in committed.items():
            if not offset and tp.topic in internal:
                log.info("nothing committed for %s[%d]: reading it from the start", tp.topic, tp.partition)
                await consumer.seek(tp, 0)
        return committed

    consumer.seek_to_committed = seek_uncommitted_to_start
