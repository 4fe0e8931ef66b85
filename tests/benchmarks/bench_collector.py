"""Benchmark: events/s through the HTTP collector vs the SDK producing the same events, in the same run.

Assumptions: run from the repo with the project venv against a reachable broker
(`KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:29092 .venv/bin/python tests/benchmarks/bench_collector.py [--events N]
[--clients C]`). It creates private topics per run (deleted afterwards), starts `touchpoint collect` as its own
process on a loopback port with a one-key keys file, and posts the seven example touchpoints (all types, in
turn; distinct event ids) as JSON arrays of 100 from C concurrent aiohttp clients in this process. Every 2xx
means Kafka acknowledged the batch (acks=all), so the rate is acknowledged events per second. The baseline is
the SDK (`TouchpointProducer.send` + flush) producing the same events in this process. Prints both rates, the
ratio, and the p50/p99 request latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from confluent_kafka.admin import AdminClient

from touchpoint.config import load_settings
from touchpoint.kafka_admin import create_topics
from touchpoint.producers import TouchpointProducer
from touchpoint.producers.collector.keys import digest
from touchpoint.schemas.examples import EVENT_TYPES, example_event
from touchpoint.schemas.json_shape import event_to_json

KEY = "tpk_bench_" + uuid.uuid4().hex


def make_events(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        event = example_event(EVENT_TYPES[i % len(EVENT_TYPES)], i=i, customer_id=f"c-{i % 5000}")
        event["event_id"] = str(uuid.uuid4())
        out.append(event)
    return out


def run_sdk(settings: Any, events: list[dict[str, Any]]) -> float:
    with TouchpointProducer(settings) as producer:
        start = time.perf_counter()
        send = producer.send
        for event in events:
            send(event)
        assert producer.flush(60) == 0
        return len(events) / (time.perf_counter() - start)


async def run_clients(url: str, bodies: list[bytes], clients: int) -> tuple[float, list[float], dict[int, int]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = list(reversed(bodies))
    headers = {"Content-Type": "application/json", "X-Touchpoint-Key": KEY}

    async def client(session: aiohttp.ClientSession) -> None:
        while queue:
            body = queue.pop()
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return elapsed, latencies, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()

    prefix = f"bench-col-{uuid.uuid4().hex[:8]}"
    settings = load_settings(topic_prefix=prefix)
    create_topics(settings)
    tmp = Path(tempfile.mkdtemp(prefix="bench-collector-"))
    keys = tmp / "keys.toml"
    keys.write_text(f'[[key]]\nsource = "bench"\nsha256 = "{digest(KEY)}"\n')
    port = _free_port()
    env = {**os.environ, "TOUCHPOINT_TOPIC_PREFIX": prefix, "TOUCHPOINT_COLLECTOR_PORT": str(port),
           "TOUCHPOINT_COLLECTOR_KEYS_FILE": str(keys), "TOUCHPOINT_DATA_DIR": str(tmp)}
    server = subprocess.Popen([sys.executable, "-c", "from touchpoint.cli.main import main; main()", "collect"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/readyz")
        events = make_events(args.events)
        sdk_rate = run_sdk(settings, events)
        fresh = make_events(args.events)  # new event ids, same content
        as_json = [event_to_json(e) for e in fresh]
        bodies = [json.dumps(as_json[i : i + args.batch]).encode() for i in range(0, len(as_json), args.batch)]
        asyncio.run(run_clients(f"http://127.0.0.1:{port}/v1/batch", bodies[: max(1, len(bodies) // 10)], args.clients))
        cpu_before = _cpu_seconds(server.pid)
        elapsed, latencies, statuses = asyncio.run(run_clients(f"http://127.0.0.1:{port}/v1/batch", bodies, args.clients))
        server_cpu = _cpu_seconds(server.pid) - cpu_before
    finally:
        server.terminate()
        server.wait(30)
        AdminClient(settings.kafka_config()).delete_topics(
            [settings.topic(t) for t in ("events", "dead-letters", "journeys", "metrics", "identity-merges")])
    assert set(statuses) == {200}, f"answers other than 200: {statuses}"
    rate = args.events / elapsed
    cuts = statistics.quantiles(latencies, n=100)
    print(f"collector: {rate:,.0f} events/s ({len(bodies)} requests of {args.batch}, {args.clients} clients, loopback)")
    print(f"SDK:       {sdk_rate:,.0f} events/s (TouchpointProducer.send + flush, same events)")
    print(f"ratio collector/SDK: {rate / sdk_rate:.2f}")
    print(f"request latency: p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms")
    print(f"collector process CPU: {server_cpu / args.events * 1e6:.1f} us/event "
          f"({args.events / server_cpu:,.0f} events per CPU-second, librdkafka threads included)")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc), to show the collector's cost apart from the load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the collector at {url} did not become ready within {timeout:g}s")
        time.sleep(0.2)


if __name__ == "__main__":
    main()
