"""``Acks``: a request is answered only after every record it queued is acknowledged, else ``NotAcknowledged``."""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka import KafkaError

from touchpoint.producers.collector.delivery import Acks, NotAcknowledged
from touchpoint.producers.producer import DeliveryError


def test_wait_returns_only_after_the_last_acknowledgement():
    async def scenario() -> list[str]:
        acks = Acks()
        acks.pending = 3
        seen: list[str] = []
        waiter = asyncio.create_task(acks.wait(5))
        for n in range(3):
            await asyncio.sleep(0)
            seen.append(f"done={waiter.done()}")
            acks(None, None)
        await waiter
        seen.append(f"done={waiter.done()}")
        return seen

    assert asyncio.run(scenario()) == ["done=False", "done=False", "done=False", "done=True"]


def test_one_failed_delivery_fails_the_whole_request():
    async def scenario() -> None:
        acks = Acks()
        acks.pending = 2
        acks(None, None)
        acks(DeliveryError(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), "e-1", "PAGE_VIEW", "t.events"), None)
        await acks.wait(5)

    with pytest.raises(NotAcknowledged, match="MSG_SIZE_TOO_LARGE|too large"):
        asyncio.run(scenario())


def test_a_missing_acknowledgement_times_out():
    async def scenario() -> None:
        acks = Acks()
        acks.pending = 1
        await acks.wait(0.05)

    with pytest.raises(NotAcknowledged, match="within 0.05s"):
        asyncio.run(scenario())


def test_nothing_queued_needs_no_wait():
    async def scenario() -> None:
        await Acks().wait(0)

    asyncio.run(scenario())
