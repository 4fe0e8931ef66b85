"""The worker's outbox: a record Kafka never acknowledges fails the pre-commit flush (no offset commit) loudly."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers import free_port
from touchpoint.config import Settings
from touchpoint.streams.outbox import DeliveryFailed, Outbox, install


def test_an_undeliverable_record_fails_the_flush_and_reports_why() -> None:
    reasons: list[str] = []
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")  # nothing listens there
    outbox = Outbox(settings, on_failure=reasons.append, overrides={"message.timeout.ms": 300})
    outbox.send("t.events", b"v", b"k")
    with pytest.raises(DeliveryFailed, match="t.events"):
        asyncio.run(outbox.flush(timeout=20))
    assert len(reasons) == 1 and "not delivered" in reasons[0]


def test_the_blocking_drain_fails_the_same_way() -> None:
    """A rebalance callback or the stop cannot await: ``drain`` must refuse to let offsets be committed too."""
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    outbox = Outbox(settings, overrides={"message.timeout.ms": 300})
    outbox.send("t.events", b"v", b"k")
    with pytest.raises(DeliveryFailed, match="t.events"):
        outbox.drain(timeout=20)


def test_install_runs_the_hooks_around_the_drain_before_faust_flushes() -> None:
    calls: list[str] = []

    class FakeOutbox:
        async def flush(self) -> None:
            calls.append("outbox")

    class FakeProducer:
        async def flush(self) -> None:
            calls.append("faust")

    class FakeApp:
        producer = FakeProducer()

    app = FakeApp()
    install(app, [FakeOutbox(), FakeOutbox()], [lambda: calls.append("snapshots")],  # type: ignore[list-item]
            [lambda: calls.append("offsets")])
    asyncio.run(app.producer.flush())
    assert calls == ["snapshots", "outbox", "outbox", "offsets", "faust"]
