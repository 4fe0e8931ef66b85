"""Benchmark: the worker's state stays bounded by the allowed lateness, not by the event-time span of the data.

Assumptions: run from the repo with the project venv; Kafka at KAFKA_BOOTSTRAP_SERVERS (default the dev broker
127.0.0.1:29092); fresh topics per run, 4 partitions, DEFAULT settings (allowed lateness 1 h). Usage:

    .venv/bin/python tests/benchmarks/bench_late_state.py [N=1000000]

The same N events (the realistic mix of bench_worker.py: people with anonymous clicks, logins at checkout,
deliveries, surveys, tickets, emails) are loaded twice into fresh pipelines; only their event times differ: each
person is moved to a random minute of ONE DAY in the first run and of ONE YEAR in the second, and arrival order
is the same (people interleaved), so most events of both runs arrive far behind the partition's watermark and
become late corrections. After the worker has processed every event (and one more flush and prune), it prints
per run: metric windows held (``touchpoint_stream_windows_held``: open windows + corrections not yet deleted),
journey owners held, the worker's RSS (VmRSS), and the size of its RocksDB directory; then year/day ratios.
Journey state grows with the number of people (the same in both runs), windows with the allowed lateness.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.integration.streams.events import MIN, interleave, population  # noqa: E402
from tests.integration.streams.harness import Pipeline, free_port  # noqa: E402

PARTITIONS = 4
DAY = 86_400_000


def load(p: Pipeline, n: int, span_ms: int) -> int:
    """Send n events batch by batch (never all in memory), each person moved to a random minute of the span."""
    sent, seed = 0, 0
    while sent < n:
        seed += 1
        rnd = random.Random(seed)
        people = population(2000, seed=seed)
        for person in people:
            shift = rnd.randrange(0, span_ms, MIN) - span_ms  # the span ends at T0: all history
            for e in person:
                e["occurred_at"] += shift
                if e["event_type"] == "DELIVERY_NOTICE":
                    e["payload"]["promised_by"] += shift
                for f in ("customer_id", "anonymous_id"):
                    if e.get(f):
                        e[f] = f"{e[f]}-{seed}"
        batch = interleave(people, seed=seed)[: n - sent]
        p.send_events(batch)
        sent += len(batch)
    return sent


def scrape(port: int) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("touchpoint_stream_"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def du_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def run(n: int, span_ms: int, label: str) -> dict[str, float]:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
    p = Pipeline(bootstrap, Path(tempfile.mkdtemp(prefix=f"bench-late-{label}-")), partitions=PARTITIONS)
    p.create_topics()
    t = time.perf_counter()
    n = load(p, n, span_ms)
    print(f"[{label}] loaded {n:,} events in {time.perf_counter() - t:.0f}s", flush=True)
    port = free_port()
    log = open(p.logs / "worker.log", "wb")
    proc = subprocess.Popen([str(ROOT / ".venv/bin/touchpoint"), "worker", "--web-port", str(port), "--loglevel",
                             "warning"], env=p.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        t = time.perf_counter()
        deadline = time.monotonic() + 7200
        m: dict[str, float] = {}
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"worker exited with {proc.returncode}; see {p.logs / 'worker.log'}")
            m = scrape(port)
            if m.get("touchpoint_stream_events_processed_total", 0) + m.get("touchpoint_stream_duplicates_total", 0) >= n:
                break
            time.sleep(2)
        else:
            raise SystemExit(f"[{label}] worker did not finish: {m}")
        took = time.perf_counter() - t
        # Let the last corrections be sent and acknowledged by a commit flush, then give every partition one more
        # frame after that flush (corrections are deleted while a frame of their partition is processed).
        for _ in range(2):
            time.sleep(5)
            p.send_events(tail())
        time.sleep(10)
        m = scrape(port)
        figures = {
            "windows_held": m.get("touchpoint_stream_windows_held", 0.0),
            "journeys_open": m.get("touchpoint_stream_journeys_open", 0.0),
            "late_events": m.get("touchpoint_stream_late_events_total", 0.0),
            "rss_mib": rss_mib(proc.pid),
            "rocksdb_mib": du_mib(p.data_dir),
        }
        print(f"[{label}] processed in {took:.0f}s; " + ", ".join(f"{k} {v:,.1f}" for k, v in figures.items()), flush=True)
        return figures
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(300)
        log.close()


def tail() -> list[dict]:
    """A few new events for every partition, so each processes one more frame (deletions happen in frames)."""
    from tests.integration.streams.events import T0, page_view

    return [page_view(T0 + i, customer=f"tail-{i}-{time.monotonic_ns()}") for i in range(64)]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    day = run(n, DAY, "1 day")
    year = run(n, 365 * DAY, "1 year")
    for key in day:
        ratio = year[key] / day[key] if day[key] else float("nan")
        print(f"{key}: 1 day {day[key]:,.1f}  1 year {year[key]:,.1f}  ratio year/day {ratio:.2f}")


if __name__ == "__main__":
    main()
