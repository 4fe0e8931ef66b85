"""Benchmark: raw touchpoints through the sink vs a bare clickhouse-connect columnar insert of the same rows.

Assumptions: a Kafka broker at KAFKA_BOOTSTRAP_SERVERS (default the dev broker 127.0.0.1:29092); the embedded
ClickHouse engine (chdb) under a temporary directory. Not collected by pytest.

    .venv/bin/python tests/benchmarks/bench_sink.py [N]      # default N = 200,000

1. N valid touchpoints (all seven event types) are produced to a fresh events topic (not timed);
2. the sink (SinkLoop: consume -> decode -> validate -> rows -> columnar insert with dedup token -> commit)
   drains the topic into database A; timed from its first consumed record to its last commit;
3. the same rows (already decoded, in the same column order) are inserted with a bare clickhouse-connect
   ``client.insert(..., column_oriented=True)`` in batches of the same size into database B (same DDL);
4. where the sink's time goes: bare consume, decode, validate, row building, measured separately.
"""

from __future__ import annotations

import gc
import os
import shutil
import sys
import tempfile
import time
import uuid

from confluent_kafka import Consumer, Producer

from touchpoint.config import load_settings
from touchpoint.kafka_admin import create_topics
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.examples import BASE_MILLIS, EVENT_TYPES, example_event
from touchpoint.schemas.validation import validate_event
from touchpoint.sinks.loop import SinkLoop
from touchpoint.sinks.migrations import migrate
from touchpoint.sinks.rows import TOUCHPOINT_COLUMNS, touchpoint_row
from touchpoint.sinks.store import Store


def make_events(n: int) -> list[dict]:
    events = []
    for i in range(n):
        event = example_event(EVENT_TYPES[i % len(EVENT_TYPES)], i=i, customer_id=f"c-{i % 5000}",
                              anonymous_id=None if i % 3 else f"a-{i % 7000}")
        event["event_id"] = str(uuid.UUID(int=uuid.uuid4().int, version=4))
        event["occurred_at"] = BASE_MILLIS + i * 10  # one month: every batch is one part
        events.append(event)
    return events


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    tag = uuid.uuid4().hex[:6]
    workdir = tempfile.mkdtemp(prefix="bench-sink-")
    settings = load_settings(
        kafka_bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092"),
        topic_prefix=f"bench{tag}", clickhouse_dsn=f"chdb://{workdir}/chdb", clickhouse_database=f"bench_{tag}",
        sink_group=f"bench{tag}", data_dir=workdir,
    )
    codec = AvroCodec()
    try:
        create_topics(settings)
        events = make_events(n)
        encoded = [codec.encode(e) for e in events]
        producer = Producer(settings.kafka_config(**{"linger.ms": 50, "batch.size": 1_000_000, "compression.type": "lz4"}))
        for e, value in zip(events, encoded):
            while True:
                try:
                    producer.produce(settings.events_topic, key=e["customer_id"].encode(), value=value)
                    break
                except BufferError:
                    producer.poll(0.05)
        assert producer.flush(120) == 0
        print(f"produced {n:,} touchpoints ({sum(map(len, encoded)) / n:.0f} B avg) to {settings.events_topic}")

        store = Store.connect(settings)
        migrate(store, settings)
        baseline_db = settings.model_copy(update={"clickhouse_database": f"bench_{tag}_bare"})
        bare_store = Store(store.client, baseline_db.clickhouse_database, dsn=store.dsn)
        migrate(bare_store, baseline_db)
        decoded = [codec.decode(v) for v in encoded]
        rows = [touchpoint_row(e, settings.events_topic, i % 4, i) for i, e in enumerate(decoded)]
        bare_table = f"{baseline_db.clickhouse_database}.touchpoints"
        # Warm-up (first insert imports clickhouse-connect's optional modules), then empty the table again.
        store.client.insert(bare_table, list(zip(*rows[:10])), column_names=list(TOUCHPOINT_COLUMNS), column_oriented=True)
        store.command(f"TRUNCATE TABLE {bare_table}")

        # The benchmark's own copies of the data (events, bytes, decoded dicts, rows: millions of objects) would
        # make every full garbage collection in the timed sections walk them; a running sink holds none of them.
        gc.collect()
        gc.freeze()

        loop = SinkLoop(settings, store)
        stats = loop.run(idle_exit=1.5)
        assert stats.rows_inserted.get("touchpoints") == n, stats
        sink_seconds = stats.last_flush_at - stats.first_record_at
        sink_rate = n / sink_seconds
        counted = store.query_rows(f"SELECT count() FROM {store.table('touchpoints')}")[0][0]
        assert counted == n, counted

        # Bare baseline: same rows, same column order, same batch size, plain clickhouse-connect.
        size = settings.sink_batch_rows
        client = store.client
        started = time.perf_counter()
        for start in range(0, n, size):
            columns = list(zip(*rows[start:start + size]))
            client.insert(bare_table, columns, column_names=list(TOUCHPOINT_COLUMNS),
                          column_oriented=True)
        bare_seconds = time.perf_counter() - started
        bare_rate = n / bare_seconds

        # Where the sink's time goes (each step alone, same data).
        consumer = Consumer(settings.kafka_config(**{"group.id": f"bench{tag}-bare", "auto.offset.reset": "earliest",
                                                     "enable.auto.commit": False}))
        consumer.subscribe([settings.events_topic])
        got, first = 0, 0.0
        while got < n:
            batch = consumer.consume(10_000, timeout=1.0)
            if batch and not first:
                first = time.perf_counter()
            got += sum(1 for m in batch if m.error() is None)
        consume_seconds = time.perf_counter() - first
        consumer.close()
        t0 = time.perf_counter()
        for v in encoded:
            codec.decode(v)
        decode_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        for e in decoded:
            validate_event(e)
        validate_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i, e in enumerate(decoded):
            touchpoint_row(e, "t", 0, i)
        rows_seconds = time.perf_counter() - t0

        print(f"sink:      {n:,} rows in {sink_seconds:.2f} s = {sink_rate:,.0f} rows/s "
              f"({stats.batches} batches of <= {size:,}, {stats.commits} commits)")
        print(f"bare:      {n:,} rows in {bare_seconds:.2f} s = {bare_rate:,.0f} rows/s (clickhouse-connect columnar insert only)")
        print(f"ratio:     {sink_rate / bare_rate:.2f} (sink / bare insert)")
        print("where the sink's time goes (each step alone):")
        for name, seconds in (("bare consume", consume_seconds), ("avro decode", decode_seconds),
                              ("validate_event", validate_seconds), ("row building", rows_seconds),
                              ("columnar insert (bare)", bare_seconds)):
            print(f"  {name:24s} {seconds:6.2f} s  {seconds / sink_seconds * 100:5.1f}% of the sink's time")
        store.command(f"DROP DATABASE {settings.clickhouse_database}")
        store.command(f"DROP DATABASE {baseline_db.clickhouse_database}")
        store.close()
    finally:
        from touchpoint.kafka_admin import admin_client

        admin = admin_client(settings)
        for future in admin.delete_topics([settings.topic(s) for s in ("events", "dead-letters", "journeys", "metrics",
                                                                        "identity-merges")]).values():
            try:
                future.result(30)
            except Exception as exc:  # noqa: BLE001 - cleanup only; say so
                print(f"(topic cleanup: {exc})")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
