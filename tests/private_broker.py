"""A Kafka broker of a test's own, on free ports, for tests that stop or kill it (never the shared one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port_pair
from touchpoint.local_broker import LocalBroker


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A started LocalBroker under tmp_path; stopped at the end whatever the test did to it."""
    broker = LocalBroker(tmp_path / "private-kafka", port=free_port_pair())
    broker.start(timeout=180)
    try:
        yield broker
    finally:
        broker.stop(timeout=10)
