"""Benchmark: SDK produce (validate + encode + produce + flush) vs a bare confluent-kafka producer.

Assumptions: run from the repo with the project venv against a reachable broker
(`KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:29092 .venv/bin/python tests/benchmarks/bench_produce.py [--events N]`);
it creates a private 4-partition topic per run and deletes it afterwards. Events are the seven example touchpoints
(all types, in turn) with distinct event ids over 5,000 customers. The bare baseline sends the same count of
pre-encoded values with the same keys and the same producer configuration (`producer_config`: idempotence,
acks=all, compression and linger from settings), with no per-message callback: the cheapest correct loop one
can write with confluent-kafka. Prints both rates, their ratio, and where the SDK's time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import statistics
import time
import uuid
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from touchpoint.config import load_settings
from touchpoint.producers import TouchpointProducer, producer_config
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.examples import EVENT_TYPES, example_event
from touchpoint.schemas.validation import validate_event


def make_events(n: int) -> list[dict[str, Any]]:
    events = []
    for i in range(n):
        event = example_event(EVENT_TYPES[i % len(EVENT_TYPES)], i=i, customer_id=f"c-{i % 5000}")
        event["event_id"] = str(uuid.uuid4())
        events.append(event)
    return events


def run_sdk(settings: Any, topic: str, events: list[dict[str, Any]], batch: int = 0) -> tuple[float, float]:
    """(events per wall-clock second, events per CPU second of this process, librdkafka threads included)."""
    with TouchpointProducer(settings, topic=topic) as producer:
        start, cpu = time.perf_counter(), time.process_time()
        if batch:
            send_many = producer.send_many
            for i in range(0, len(events), batch):
                send_many(events[i : i + batch])
        else:
            send = producer.send
            for event in events:
                send(event)
        left = producer.flush(60)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert left == 0, f"{left} events undelivered"
    return len(events) / elapsed, len(events) / cpu


def run_bare(settings: Any, topic: str, values: list[bytes], keys: list[str]) -> tuple[float, float]:
    producer = Producer(producer_config(settings))
    produce, poll = producer.produce, producer.poll
    start, cpu = time.perf_counter(), time.process_time()
    for value, key in zip(values, keys):
        try:
            produce(topic, value, key)
        except BufferError:
            poll(0.05)
            produce(topic, value, key)
    left = producer.flush(60)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert left == 0, f"{left} messages undelivered"
    return len(values) / elapsed, len(values) / cpu


def split_run(settings: Any, topic: str, events: list[dict[str, Any]]) -> tuple[float, float, float, float]:
    """Microseconds per event spent in validate, encode, queueing, and the final flush (send() step by step)."""
    clock = time.perf_counter_ns
    validate, limit = validate_event, settings.max_string_bytes
    with TouchpointProducer(settings, topic=topic) as producer:
        encode, queue = producer._encode, producer._queue
        v = e = q = 0
        for event in events:
            t0 = clock()
            validate(event, limit)
            t1 = clock()
            value = encode(event)
            t2 = clock()
            queue(event, value, None)
            t3 = clock()
            v += t1 - t0
            e += t2 - t1
            q += t3 - t2
        t4 = clock()
        producer.flush(60)
        f = clock() - t4
    n = len(events) * 1000
    return v / n, e / n, q / n, f / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events per run (default 200,000)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/SDK rounds (default 3)")
    parser.add_argument("--profile", action="store_true", help="also print the top functions of a cProfile of one SDK run")
    args = parser.parse_args()
    n = args.events

    settings = load_settings()
    admin = AdminClient(settings.kafka_config())
    topic = f"bench-produce-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 4, 1)])[topic].result(30)
    try:
        events = make_events(n)
        codec = AvroCodec.from_settings(settings)
        values = [codec.encode(e) for e in events]
        keys = [e["customer_id"] or e["anonymous_id"] for e in events]
        # The input (N event dicts) is long-lived: keep the cyclic GC from re-walking it on every collection,
        # which would charge the run with the size of the benchmark's own data set.
        gc.collect()
        gc.freeze()

        # Warm both paths (connection, idempotent PID, topic metadata) before timing.
        run_bare(settings, topic, values[:5000], keys[:5000])
        run_sdk(settings, topic, events[:5000])

        # Rounds alternate bare and SDK runs so that load from other processes on a shared machine hits both;
        # each round's ratio compares neighbours in time, and the median of those is the figure to quote.
        rows = []
        for _ in range(args.rounds):
            bare, bare_cpu = run_bare(settings, topic, values, keys)
            sdk, sdk_cpu = run_sdk(settings, topic, events)
            many, many_cpu = run_sdk(settings, topic, events, batch=1000)
            rows.append((bare, sdk, many, bare_cpu, sdk_cpu, many_cpu))
            print(f"  round: bare {bare:9,.0f}/s   SDK send {sdk:9,.0f}/s ({sdk / bare:.2f})   "
                  f"send_many {many:9,.0f}/s ({many / bare:.2f})   "
                  f"per CPU-second: bare {bare_cpu:9,.0f}  send {sdk_cpu:9,.0f} ({sdk_cpu / bare_cpu:.2f})")
        best = [max(r[i] for r in rows) for i in range(6)]
        ratio = statistics.median(r[1] / r[0] for r in rows)
        ratio_many = statistics.median(r[2] / r[0] for r in rows)
        ratio_cpu = statistics.median(r[4] / r[3] for r in rows)
        print(f"events: {n:,} of {len(EVENT_TYPES)} types, {sum(map(len, values)) / n:.0f} bytes each on average, "
              f"compression={settings.producer_compression} linger.ms={settings.producer_linger_ms}, "
              f"best of {args.rounds} rounds, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"bare confluent-kafka (pre-encoded bytes):  {best[0]:10,.0f} events/s")
        print(f"SDK send()  validate+encode+produce+flush: {best[1]:10,.0f} events/s   ratio {ratio:.2f} (median per round)")
        print(f"SDK send_many(1000 per call):              {best[2]:10,.0f} events/s   ratio {ratio_many:.2f}")
        print(f"per CPU-second (less sensitive to other load): bare {best[3]:,.0f}, SDK send {best[4]:,.0f}, "
              f"ratio {ratio_cpu:.2f}")

        # Where the time goes, in one instrumented run of exactly what send() does (timer cost ~0.1 us/step).
        v_us, e_us, q_us, f_us = split_run(settings, topic, events)
        print(f"split per event (us): validate {v_us:.2f} + encode {e_us:.2f} + queue (future, produce, poll, "
              f"callbacks) {q_us:.2f} + final flush {f_us:.2f}; bare produce+flush {1e6 / best[0]:.2f}")

        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            run_sdk(settings, topic, events[: min(n, 50_000)])
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
    finally:
        for future in admin.delete_topics([topic]).values():
            future.result(30)  # wait: the request is lost if the process exits first


if __name__ == "__main__":
    main()
