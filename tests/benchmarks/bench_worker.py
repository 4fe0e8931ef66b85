"""Benchmark: one `touchpoint worker` process vs a bare confluent-kafka consume+decode loop, same events, same run.

Assumptions: run from the repo with the project venv; Kafka at KAFKA_BOOTSTRAP_SERVERS (default the dev broker
127.0.0.1:29092); fresh topics per run (prefix ``bench<random>``), 4 partitions. Usage:

    .venv/bin/python tests/benchmarks/bench_worker.py [N=100000] [--simulated] [--profile out.prof]

1. Pre-load N events (a realistic mix: anonymous ad clicks and page views, logins at checkout, deliveries,
   surveys, support, emails; ~1/3 of people anonymous first) into the events topic. With ``--simulated`` the
   events are the first N of `touchpoint simulate` (30 days of longer journeys, duplicates and late arrivals;
   the allowed lateness is raised to the span, as `touchpoint bench` does).
2. Baseline: a plain confluent-kafka Consumer reads all N and decodes each with ``AvroCodec.decode``.
3. Worker: start `touchpoint worker` (a subprocess, as users run it); poll its /metrics every 0.5 s; the rate is
   measured from the first to the last processed event (``touchpoint_stream_events_processed_total``), so
   start-up, group join and table recovery are excluded. With ``--profile`` the worker runs under cProfile and
   the top functions are printed.
Prints events/s of both and the ratio.
"""

from __future__ import annotations

import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from functools import partial
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.integration.streams.events import interleave, person_partition, population  # noqa: E402
from tests.integration.streams.harness import Pipeline, free_port, kafka_conf  # noqa: E402

PARTITIONS = 4


def make_events(n: int) -> list[dict]:
    events: list[dict] = []
    seed = 0
    while len(events) < n:  # ~8 events per person
        seed += 1
        people = population(2000, seed=seed)
        for i, person in enumerate(people):  # distinct ids per batch
            for e in person:
                for f in ("customer_id", "anonymous_id"):
                    if e.get(f):
                        e[f] = f"{e[f]}-{seed}"
        events.extend(interleave(people, seed=seed))
    return events[:n]


def simulated_events(n: int) -> list[dict]:
    from touchpoint.producers.simulator import SimulationConfig, simulate

    return simulate(SimulationConfig(customers=max(100, n // 10), seed=1)).arrived[:n]


def baseline(p: Pipeline, n: int) -> float:
    topic = p.topic("events")
    c = Consumer({**kafka_conf(p.bootstrap), "group.id": f"bench-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    codec = p.codec
    c.subscribe([topic])
    seen = 0
    start = None
    cpu0 = time.process_time()
    while seen < n:
        for m in c.consume(1000, timeout=1.0):
            if m.error():
                continue
            if start is None:
                start = time.perf_counter()
            codec.decode(m.value())
            seen += 1
    elapsed = time.perf_counter() - (start or time.perf_counter())
    print(f"baseline CPU per event: {1000 * (time.process_time() - cpu0) / n:.3f} ms", flush=True)
    c.close()
    return n / elapsed


def records(p: Pipeline, name: str) -> int:
    """Records in topic ``name`` (sum of end offsets)."""
    topic = p.topic(name)
    c = Consumer({**kafka_conf(p.bootstrap), "group.id": f"bench-{uuid.uuid4().hex}"})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(c.get_watermark_offsets(TopicPartition(topic, q), timeout=10)[1] for q in parts)
    finally:
        c.close()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def processed(port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return -1.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()  # duplicates are handled events too
               if line.startswith(("touchpoint_stream_events_processed_total{", "touchpoint_stream_duplicates_total ")))


def run_worker(p: Pipeline, n: int, profile: str | None) -> float:
    port = free_port()
    cmd = [str(ROOT / ".venv/bin/touchpoint"), "worker", "--web-port", str(port), "--loglevel", "warning"]
    if profile:
        # CPU time, not wall time: the worker waits on sockets a lot, and that is not where it spends CPU.
        code = ("import cProfile, sys, time; sys.argv = %r; from touchpoint.cli.main import main\n"
                "prof = cProfile.Profile(time.process_time)\n"
                "try:\n    prof.runcall(main)\nexcept SystemExit:\n    pass\nfinally:\n    prof.dump_stats(%r)"
                % (["touchpoint"] + cmd[1:], profile))
        cmd = [sys.executable, "-c", code]
    log = open(p.logs / "bench-worker.log", "wb")
    proc = subprocess.Popen(cmd, env=p.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        first_t = first_n = None
        last_n, last_t = 0.0, time.perf_counter()
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"worker exited with {proc.returncode}; see {p.logs / 'bench-worker.log'}")
            count = processed(port)
            now = time.perf_counter()
            if count > 0 and first_t is None:
                first_t, first_n, first_cpu = now, count, cpu_seconds(proc.pid)
            if count > last_n:
                last_n, last_t, last_cpu = count, now, cpu_seconds(proc.pid)
            if count >= n:
                break
            time.sleep(0.5)  # each /metrics scrape costs the worker ~3 ms of CPU
        else:
            raise SystemExit(f"worker processed only {last_n} of {n} events")
        assert first_t is not None and first_n is not None
        cpu_ms = 1000 * (last_cpu - first_cpu) / max(1.0, last_n - first_n)
        print(f"worker CPU per event: {cpu_ms:.3f} ms (machine load average {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} cores)", flush=True)
        return (last_n - first_n) / max(1e-9, last_t - first_t)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        log.close()


def main() -> None:
    args = sys.argv[1:]
    profile = None
    if "--profile" in args:
        i = args.index("--profile")
        profile = args[i + 1]
        del args[i: i + 2]
    simulated = "--simulated" in args
    if simulated:
        args.remove("--simulated")
    n = int(args[0]) if args else 100_000
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
    tmp = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    env = {"TOUCHPOINT_ALLOWED_LATENESS_SECONDS": str(31 * 86400)} if simulated else {}
    p = Pipeline(bootstrap, tmp, partitions=PARTITIONS, extra_env=env)
    p.create_topics()
    print(f"generating and pre-loading {n} events into {p.topic('events')} ...", flush=True)
    events = simulated_events(n) if simulated else make_events(n)
    n = len(events)
    t = time.perf_counter()
    p.send_events(events, partition_of=None if simulated else partial(person_partition, partitions=PARTITIONS))
    print(f"pre-loaded in {time.perf_counter() - t:.1f}s", flush=True)

    base = baseline(p, n)
    print(f"baseline (confluent-kafka consume + AvroCodec.decode): {base:,.0f} events/s", flush=True)
    ours = run_worker(p, n, profile)
    print(f"touchpoint worker (decode, identity, journeys, windows, snapshots): {ours:,.0f} events/s")
    print(f"ratio worker/baseline: {ours / base:.3f}")
    snapshots = records(p, "journeys")
    print(f"journey snapshots sent: {snapshots:,} ({snapshots / n:.2f} per event)")
    if profile:
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats("faust|aiokafka|streams|mode|codec|rocks|asyncio", 50)


if __name__ == "__main__":
    main()
