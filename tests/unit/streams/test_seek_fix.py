"""After a rebalance, a repartition partition with nothing committed is read from its start (seek_fix)."""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

from touchpoint.streams import seek_fix


class TP(NamedTuple):
    topic: str
    partition: int


class FakeConsumer:
    """What faust's transport consumer offers: ``seek_to_committed`` (aiokafka seeks only offsets > 0), ``seek``."""

    def __init__(self, committed: dict[TP, int | None]) -> None:
        self.committed = committed
        self.seeks: list[tuple[TP, int]] = []

    async def seek_to_committed(self) -> dict[TP, int | None]:
        return dict(self.committed)

    async def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))


def test_uncommitted_internal_partitions_seek_to_the_start_and_the_rest_is_left_alone() -> None:
    committed = {
        TP("w-identity-repartition", 0): None,  # nothing committed: the position may be past a skipped record
        TP("w-identity-repartition", 1): 7,  # aiokafka seeks this one itself
        TP("w-journey-repartition", 2): 0,  # committed 0: aiokafka does not seek either
        TP("w-journeys-changelog", 0): None,  # faust's recovery owns changelog positions
    }
    consumer = FakeConsumer(committed)
    seek_fix.install(consumer, ["w-identity-repartition", "w-journey-repartition"])

    result = asyncio.run(consumer.seek_to_committed())

    assert result == committed  # faust still gets the committed offsets it asked for
    assert consumer.seeks == [(TP("w-identity-repartition", 0), 0), (TP("w-journey-repartition", 2), 0)]
