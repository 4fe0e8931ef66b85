"""Faults: ClickHouse unavailable for 30 s mid-stream, a response lost after the insert ran, and a real SIGKILL
between an insert and its offset commit. The embedded engine cannot be stopped, so unavailability is injected
through the store's test seam (flag files under ``sink_fault_dir``, see sinks/store.py): inserts fail with a
retryable error *before* they run, or *after* they ran (the response-lost case)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from touchpoint.sinks.loop import SinkLoop
from touchpoint.sinks.store import Store

from tests.helpers import TOUCHPOINT, wait_until
from tests.integration.sinks.conftest import produce, sink_settings, touchpoint


def produce_events(settings, codec, start: int, n: int) -> list[str]:
    events = [touchpoint("PAGE_VIEW", i, f"c-{i % 17}") for i in range(start, start + n)]
    produce(settings, settings.events_topic, [codec.encode(e) for e in events], keys=[e["customer_id"] for e in events])
    return [e["event_id"] for e in events]


def group_lag(settings) -> int:
    """Messages of the events topic not yet committed by the sink's group."""
    consumer = Consumer(settings.kafka_config(**{"group.id": settings.sink_group, "enable.auto.commit": False}))
    try:
        parts = [TopicPartition(settings.events_topic, p) for p in range(settings.topic_partitions)]
        committed = consumer.committed(parts, timeout=10)
        lag = 0
        for tp in committed:
            _low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
            lag += high - max(tp.offset, 0)
        return lag
    finally:
        consumer.close()


def with_faults(store: Store, faults: Path) -> Store:
    """The same client, with the test seam switched on."""
    return Store(store.client, store.database, dsn=store.dsn, fault_dir=faults)


def count_rows(store) -> tuple[int, int]:
    return store.query_rows(f"SELECT count(), uniqExact(event_id) FROM {store.table('touchpoints')}")[0]


def test_store_unavailable_for_30s_pauses_then_recovers_without_loss_or_duplicates(store, pipeline_topics, codec, tmp_path):
    faults = tmp_path / "faults"
    faults.mkdir()
    settings = sink_settings(pipeline_topics, sink_fault_dir=faults, sink_batch_rows=500, sink_retry_max_seconds=2.0)
    loop = SinkLoop(settings, with_faults(store, faults))
    runner = threading.Thread(target=loop.run, daemon=True)
    runner.start()
    try:
        ids = produce_events(settings, codec, 0, 1000)
        wait_until(lambda: count_rows(store) == (1000, 1000), timeout=60, what="first 1000 rows stored")

        (faults / "insert_unavailable").touch()
        outage_started = time.monotonic()
        ids += produce_events(settings, codec, 1000, 1000)
        wait_until(lambda: loop._paused and loop.stats.retries >= 1, timeout=30, what="sink paused and retrying")
        pending = loop.batcher.pending_rows()
        ids += produce_events(settings, codec, 2000, 1000)  # produced while paused: must not be buffered
        while time.monotonic() - outage_started < 30:
            assert loop._paused, "consumption resumed during the outage"
            assert loop.batcher.pending_rows() == pending, "rows buffered while paused"
            time.sleep(0.5)
        assert count_rows(store) == (1000, 1000)
        assert group_lag(settings) >= 2000
        (faults / "insert_unavailable").unlink()

        wait_until(lambda: count_rows(store) == (3000, 3000), timeout=60, what="all 3000 rows after the outage")
        wait_until(lambda: group_lag(settings) == 0, timeout=30, what="lag back to 0")
    finally:
        loop.stop()
        runner.join(30)
    assert not runner.is_alive()
    assert loop.stats.max_pending_rows <= 500
    stored = {str(r[0]) for r in store.query_rows(f"SELECT event_id FROM {store.table('touchpoints')}")}
    assert stored == set(ids)
    assert count_rows(store) == (3000, 3000)


def test_lost_insert_response_is_retried_without_duplicates(store, pipeline_topics, codec, tmp_path):
    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / "insert_response_lost").write_text("2")
    settings = sink_settings(pipeline_topics, sink_fault_dir=faults)
    ids = produce_events(settings, codec, 0, 300)
    stats = SinkLoop(settings, with_faults(store, faults)).run(idle_exit=2)
    assert (faults / "insert_response_lost").read_text() == "0"  # both losses happened
    assert stats.retries >= 2
    assert count_rows(store) == (300, 300)  # not FINAL: the retried inserts were deduplicated by their token
    assert {str(r[0]) for r in store.query_rows(f"SELECT event_id FROM {store.table('touchpoints')}")} == set(ids)


def sink_env(settings, dsn: str, faults: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TOUCHPOINT_") and k not in ("KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_DSN")}
    env.update({
        "TOUCHPOINT_CONFIG": os.devnull,
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "CLICKHOUSE_DSN": dsn,
        "TOUCHPOINT_TOPIC_PREFIX": settings.topic_prefix,
        "TOUCHPOINT_CLICKHOUSE_DATABASE": settings.clickhouse_database,
        "TOUCHPOINT_SINK_GROUP": settings.sink_group,
        "TOUCHPOINT_SINK_BATCH_SECONDS": "0.5",
        "TOUCHPOINT_SINK_METRICS_PORT": "0",
        "TOUCHPOINT_SINK_SQL_PORT": "0",
        "TOUCHPOINT_SINK_FAULT_DIR": str(faults),
        "TOUCHPOINT_DATA_DIR": str(faults.parent),
    })
    return env


def query_other_store(dsn: str, sql: str) -> list:
    """Run SQL against a chdb path of another process (this pytest process already owns its own path)."""
    code = ("import clickhouse_connect, json, sys; c = clickhouse_connect.get_client(dsn=sys.argv[1]); "
            "print(json.dumps(c.query(sys.argv[2]).result_rows, default=str))")
    out = subprocess.run([sys.executable, "-c", code, dsn, sql], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_sigkill_between_insert_and_commit_leaves_no_duplicates(pipeline_topics, codec, tmp_path):
    settings = sink_settings(pipeline_topics)
    faults = tmp_path / "faults"
    faults.mkdir()
    dsn = f"chdb://{tmp_path / 'sink-chdb'}"
    env = sink_env(settings, dsn, faults)
    ids = produce_events(settings, codec, 0, 800)
    table = f"{settings.clickhouse_database}.touchpoints"

    (faults / "pause_before_commit").touch()
    log = open(tmp_path / "sink1.log", "wb")
    proc = subprocess.Popen([str(TOUCHPOINT), "sink"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: (faults / "paused_before_commit").exists() or proc.poll() is not None, timeout=90,
                   what="sink paused between insert and commit")
        assert proc.poll() is None, (tmp_path / "sink1.log").read_text()[-3000:]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        log.close()
    (faults / "pause_before_commit").unlink()

    inserted_before_kill = query_other_store(dsn, f"SELECT count() FROM {table}")[0][0]
    assert inserted_before_kill > 0, "the insert did not run before the kill"
    assert group_lag(settings) == 800, "an offset was committed before the kill"

    restarted = subprocess.run([str(TOUCHPOINT), "sink", "--idle-exit", "3"], env=env, capture_output=True,
                               text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    assert "already stored" in restarted.stderr  # resumed from the store's offsets, not by re-inserting
    rows = query_other_store(dsn, f"SELECT count(), uniqExact(event_id) FROM {table}")
    assert rows == [[800, 800]]
    stored = query_other_store(dsn, f"SELECT toString(event_id) FROM {table}")
    assert {r[0] for r in stored} == set(ids)
    assert group_lag(settings) == 0
