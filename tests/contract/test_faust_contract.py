"""Contract tests: every faust-streaming / mode-streaming / aiokafka behaviour that ``streams/faust_adapter.py``
relies on, exercised against the real installed (pinned) libraries: a real faust RocksDB store, a real aiokafka
consumer on the real broker, a real mode worker process. Each fails when its library behaviour goes away.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import faust
import pytest

from touchpoint.streams import faust_adapter


def faust_table(datadir: Path) -> Any:
    """A faust table on the RocksDB store, as the worker declares its tables (nothing connects to Kafka)."""
    app = faust.App("contract-" + uuid.uuid4().hex[:6], broker="kafka://127.0.0.1:9", store="rocksdb://",
                    datadir=str(datadir), key_serializer="raw", value_serializer="raw", topic_partitions=4)
    return app.Table("states", partitions=4, key_type=bytes, value_type=bytes)


# --- the RocksDB store ------------------------------------------------------------------------------------------


def test_a_value_put_for_a_partition_is_read_by_faust_from_that_partition(tmp_path: Path) -> None:
    table = faust_table(tmp_path)
    faust_adapter.store_put(table, b"j:c1", b"state-1", 2)

    assert table.data[b"j:c1"] == b"state-1"  # faust's own read path (outside an agent: its key index)
    assert faust_adapter.held_partitions(table) == {2}
    db = faust_adapter.partition_db(table, 2)
    assert db is not None and db.get(b"j:c1") == b"state-1"
    assert faust_adapter.partition_db(table, 1) is None  # a partition this worker never held


def test_faust_reads_follow_the_partition_of_the_latest_put(tmp_path: Path) -> None:
    """faust routes reads outside an agent through its key index; ``store_put`` must keep that index right (without
    it, faust would read the first partition that holds the key)."""
    table = faust_table(tmp_path)
    faust_adapter.store_put(table, b"k", b"old", 1)
    faust_adapter.store_put(table, b"k", b"new", 3)
    assert table.data[b"k"] == b"new"


def test_a_forgotten_key_is_gone_for_faust_and_can_be_written_again_elsewhere(tmp_path: Path) -> None:
    table = faust_table(tmp_path)
    faust_adapter.store_put(table, b"k", b"v1", 1)
    assert table.data[b"k"] == b"v1"

    assert faust_adapter.store_forget(table, b"k", 1)
    assert not faust_adapter.store_forget(table, b"k", 1)  # already gone
    assert not faust_adapter.store_forget(table, b"k", 0)  # a partition this worker does not hold
    assert table.data.get(b"k") is None

    # faust's changelog recovery writes a partition's db in batches without touching the key index
    # (Store.apply_changelog_batch); a stale index entry for partition 1 would hide this value from faust's reads
    faust_adapter.store_put(table, b"other", b"x", 2)
    db = faust_adapter.partition_db(table, 2)
    assert db is not None
    db.put(b"k", b"v2")
    assert table.data[b"k"] == b"v2"


def test_persisted_changelog_offsets_are_kept_per_held_partition(tmp_path: Path) -> None:
    from faust.types import TP

    table = faust_table(tmp_path)
    faust_adapter.store_put(table, b"k", b"v", 2)
    tp = TP(table.changelog_topic.get_topic_name(), 2)
    table.data.set_persisted_offset(tp, 41)
    assert table.data.persisted_offset(tp) == 41


# --- clean shutdown on request ------------------------------------------------------------------------------------


def test_request_shutdown_stops_a_running_mode_worker_cleanly(tmp_path: Path) -> None:
    """mode's worker (faust.Worker's base) answers the SIGTERM raised by ``request_shutdown`` with its clean stop:
    services stopped, exit code 0."""
    trace = tmp_path / "trace"
    script = textwrap.dedent("""
        import sys
        import mode
        from touchpoint.streams import faust_adapter

        def note(what: str) -> None:
            with open(sys.argv[1], "a") as f:
                f.write(what + "\\n")

        class Job(mode.Service):
            async def on_started(self) -> None:
                note("started")
                faust_adapter.request_shutdown()

            async def on_stop(self) -> None:
                note("stopped")

        mode.Worker(Job(), loglevel="warning", quiet=True).execute_from_commandline()
        note("not reached: execute_from_commandline exits")
    """)
    proc = subprocess.run([sys.executable, "-c", script, str(trace)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert trace.read_text().split() == ["started", "stopped"], proc.stderr[-2000:]


# --- seeking after a rebalance (real aiokafka consumer, real broker) ---------------------------------------------


def _topic_with_records(settings: Any, name: str, count: int) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import NewTopic

    from touchpoint.kafka_admin import admin_client

    admin = admin_client(settings)
    for future in admin.create_topics([NewTopic(name, 1, 1)]).values():
        future.result(timeout=30)
    producer = Producer(settings.kafka_config())
    for i in range(count):
        producer.produce(name, b"record-%d" % i)
    assert producer.flush(30) == 0


async def _fetch_to_end(consumer: Any, tp: Any) -> None:
    """Fetch until the position is past the 3 records (what the consumer did in the previous generation)."""
    seen: list[int] = []
    while await consumer.position(tp) < 3:
        batch = await consumer.getmany(tp, timeout_ms=10_000)
        assert batch, f"no records fetched from {tp}; seen offsets {seen}"
        seen += [r.offset for r in batch[tp]]


async def _read_after_seek(settings: Any, topic: str, group: str, *, commit: int | None, fix: bool) -> list[int]:
    """Fetch every record (the previous generation's position), then do what faust does after a rebalance (seek to
    committed, with or without the adapter's fix) and return the offsets read next."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from touchpoint.kafka_security import aiokafka_security

    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest", **aiokafka_security(settings))
    await consumer.start()
    try:
        consumer.assign([tp])
        if commit is not None:
            await consumer.commit({tp: commit})
        await _fetch_to_end(consumer, tp)

        committed = await consumer.seek_to_committed()
        if fix:
            async def seek(partition: Any, offset: int) -> None:
                consumer.seek(partition, offset)

            await faust_adapter.seek_uncommitted_to_start(committed, [topic], seek)
        position = await consumer.position(tp)
        if position == 3:
            return []
        batch = await consumer.getmany(tp, timeout_ms=10_000)
        return [r.offset for r in batch.get(tp, [])]
    finally:
        await consumer.stop()


@pytest.mark.integration
def test_aiokafka_leaves_a_never_committed_partition_where_it_was(settings: Any, unique: str) -> None:
    """The library gap the adapter closes: if an aiokafka upgrade seeks such partitions itself, this fails and the
    workaround can go."""
    topic = f"{settings.topic_prefix}-seek-gap"
    _topic_with_records(settings, topic, 3)
    assert asyncio.run(_read_after_seek(settings, topic, f"{unique}-gap", commit=None, fix=False)) == []
    assert asyncio.run(_read_after_seek(settings, topic, f"{unique}-c1", commit=1, fix=False)) == [1, 2]


@pytest.mark.integration
def test_the_fix_rereads_a_never_committed_partition_from_its_start(settings: Any, unique: str) -> None:
    topic = f"{settings.topic_prefix}-seek-fix"
    _topic_with_records(settings, topic, 3)
    assert asyncio.run(_read_after_seek(settings, topic, f"{unique}-fix", commit=None, fix=True)) == [0, 1, 2]
    # a committed partition keeps aiokafka's own seek
    assert asyncio.run(_read_after_seek(settings, topic, f"{unique}-fix2", commit=2, fix=True)) == [2]
    # partitions of other topics (changelogs: faust's recovery owns them) are left alone
    assert asyncio.run(_read_after_seek_other(settings, topic, f"{unique}-fix3")) == []


async def _read_after_seek_other(settings: Any, topic: str, group: str) -> list[int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from touchpoint.kafka_security import aiokafka_security

    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest", **aiokafka_security(settings))
    await consumer.start()
    try:
        consumer.assign([tp])
        await _fetch_to_end(consumer, tp)
        committed = await consumer.seek_to_committed()

        async def seek(partition: Any, offset: int) -> None:
            consumer.seek(partition, offset)

        await faust_adapter.seek_uncommitted_to_start(committed, ["some-other-topic"], seek)
        return [] if await consumer.position(tp) == 3 else [await consumer.position(tp)]
    finally:
        await consumer.stop()


def test_faust_names_table_changelogs_as_the_topology_does(tmp_path: Path) -> None:
    """The worker creates the changelog topics itself (touchpoint.topics.WORKER_TOPICS) before faust starts; faust
    must use the same names, or it would create and recover from other topics."""
    from touchpoint.config import load_settings
    from touchpoint.streams.topology import JOURNEY_TABLE, changelog_topic

    app = faust.App("w9", broker="kafka://127.0.0.1:9", store="rocksdb://", datadir=str(tmp_path))
    table = app.Table(JOURNEY_TABLE, partitions=4, key_type=bytes, value_type=bytes)
    settings = load_settings(worker_id="w9", kafka_bootstrap_servers="127.0.0.1:9")
    assert table.changelog_topic.get_topic_name() == changelog_topic(settings, JOURNEY_TABLE) == "w9-journeys-changelog"
