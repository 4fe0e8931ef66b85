"""`touchpoint bench`: the whole pipeline on simulated traffic — end-to-end events/s and produce-to-queryable latency.

Two phases on a private namespace (topics, database, groups of their own), worker(s) and sink as child processes:
1. throughput: every simulated event produced as fast as possible; the clock stops when the last one is
   queryable (raw table) and counted in the metric windows (worker path). Per stage it records when that stage
   had everything: producer acknowledged, sink stored the raw events, worker's windows complete in ClickHouse.
2. latency: fresh traffic paced at --latency-rate; a sample of event ids is stamped at send time and the store
   is polled every 100 ms until each one is queryable (resolution: the poll interval).
Optionally (--stage-benchmarks) the per-stage scripts in tests/benchmarks/ run too, each against its baseline.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from touchpoint.config import load_settings
from touchpoint.errors import TouchpointError
from touchpoint.cli.pipeline import StoreReader, log_dir, prepare, stage_specs
from touchpoint.cli.supervise import StopSignal, Supervisor

_out = Console()
_err = Console(stderr=True)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _wait_ready(reader: StoreReader, db: str, stop: StopSignal, supervisor: Supervisor, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not stop.stopping:
        supervisor.check()
        try:
            reader.scalar(f"SELECT count() FROM {db}.touchpoints")
            return
        except Exception as exc:  # noqa: BLE001 - the sink may not serve yet; bounded by the deadline
            if time.monotonic() > deadline:
                raise TouchpointError(f"the sink's store did not answer within {timeout:.0f}s ({exc})") from exc
        stop.wait(0.5)


def _wait_workers(settings: Any, workers: int, stop: StopSignal, supervisor: Supervisor, timeout: float = 120) -> None:
    """Until every worker holds partitions of both its groups: start-up is not part of sustained throughput."""
    from touchpoint.kafka_admin import members_holding_partitions
    from touchpoint.streams.topology import decode_group

    expected = min(workers, settings.topic_partitions)
    deadline = time.monotonic() + timeout
    while not stop.stopping:
        supervisor.check()
        if all(members_holding_partitions(settings, g) >= expected for g in (settings.worker_id, decode_group(settings))):
            return
        if time.monotonic() > deadline:
            raise TouchpointError(f"the workers did not join their consumer groups within {timeout:.0f}s; see "
                                  f"their logs in {log_dir(settings)}")
        stop.wait(0.5)


def throughput_phase(settings: Any, reader: StoreReader, events: list[dict[str, Any]], unique: int, stop: StopSignal,
                     supervisor: Supervisor, timeout: float) -> dict[str, float]:
    from touchpoint.producers.simulator import produce

    db = settings.clickhouse_database
    t0 = time.monotonic()
    produce(events, settings)
    marks = {"produced": time.monotonic() - t0}
    deadline = t0 + timeout
    while not stop.stopping and ("raw" not in marks or "windows" not in marks):
        supervisor.check()
        row = reader.rows(f"SELECT (SELECT uniqExact(event_id) FROM {db}.touchpoints) AS raw, "
                          f"(SELECT sum(touchpoints) FROM {db}.metrics_minute_current) AS windows")[0]
        now = time.monotonic() - t0
        for key in ("raw", "windows"):
            if key not in marks and int(row[key] or 0) >= unique:
                marks[key] = now
        if time.monotonic() > deadline:
            raise TouchpointError(f"not queryable within {timeout:.0f}s: raw {row['raw']}/{unique}, windows {row['windows']}/{unique}")
        stop.wait(0.2)
    return marks


def latency_phase(settings: Any, reader: StoreReader, events: list[dict[str, Any]], rate: float, stop: StopSignal,
                  sample_every: int = 10, timeout: float = 120) -> list[float]:
    """Seconds from send to queryable for every `sample_every`-th event."""
    from touchpoint.producers.simulator import produce

    db = settings.clickhouse_database
    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}
    lock = threading.Lock()
    done = threading.Event()

    def stamp(i: int, event: dict[str, Any]) -> None:
        if i % sample_every == 0 and event["event_id"] not in sent:
            with lock:
                sent[event["event_id"]] = time.monotonic()

    def poll() -> None:
        while not stop.stopping:
            with lock:
                pending = [e for e in sent if e not in arrived]
            finished = done.is_set()
            if pending:
                ids = ",".join(f"'{e}'" for e in pending[:5000])
                try:
                    rows = reader.rows(f"SELECT toString(event_id) AS id FROM {db}.touchpoints WHERE event_id IN ({ids})")
                except Exception:  # noqa: BLE001 - a slow answer only delays this poll
                    rows = []
                now = time.monotonic()
                with lock:
                    for row in rows:
                        arrived.setdefault(row["id"], now)
            elif finished:
                return
            if finished and time.monotonic() > deadline:
                return
            time.sleep(0.1)

    deadline = time.monotonic() + timeout
    poller = threading.Thread(target=poll, name="bench-poll", daemon=True)
    poller.start()
    produce(events, settings, rate=rate, stamp=stamp)
    deadline = time.monotonic() + timeout
    done.set()
    poller.join(timeout + 5)
    missing = len(sent) - len(arrived)
    if missing:
        _err.print(f"[yellow]{missing} sampled events were not queryable within {timeout:.0f}s[/yellow]")
    return [arrived[e] - sent[e] for e in arrived if e in sent]


def run_stage_benchmarks(settings: Any) -> list[str]:
    root = Path(__file__).resolve().parents[2] / "tests" / "benchmarks"
    lines = []
    for script in ("bench_produce.py", "bench_worker.py", "bench_sink.py"):
        path = root / script
        if not path.exists():
            lines.append(f"{script}: not present")
            continue
        env = {"KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers}
        import os

        done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=900,
                              env={**os.environ, **env}, cwd=root.parents[1])
        lines.append(f"--- {script} (exit {done.returncode})\n{(done.stdout or done.stderr).strip()[-1500:]}")
    return lines


def bench(
    customers: Annotated[int, typer.Option("--customers", "-n", min=100, help="People simulated for the throughput phase.")] = 8_000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
    latency_rate: Annotated[float, typer.Option("--latency-rate", min=1, help="Events/s during the latency phase.")] = 2_000.0,
    latency_customers: Annotated[int, typer.Option("--latency-customers", min=10, help="People simulated for the latency phase.")] = 2_000,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds a phase may take before it fails.")] = 600.0,
    stage_benchmarks: Annotated[bool, typer.Option("--stage-benchmarks", help="Also run tests/benchmarks/bench_*.py (slow).")] = False,
) -> None:
    """Benchmark the whole pipeline: sustained end-to-end events/s, produce-to-queryable p50/p99, and the limiting stage."""
    from touchpoint.cli.demo import namespace
    from touchpoint.producers.simulator import SimulationConfig, simulate

    run_id = "bench" + time.strftime("%Y%m%d%H%M%S", time.gmtime())
    config = SimulationConfig(customers=customers, seed=seed)
    ns = namespace(run_id, config.replay_lateness_seconds)
    settings = load_settings(**{k.removeprefix("TOUCHPOINT_").lower(): v for k, v in ns.items()})
    sim = simulate(config)
    late = simulate(SimulationConfig(customers=latency_customers, seed=seed + 1000))
    with StopSignal() as stop:
        prepare(settings, lambda msg: _err.print(f"[dim]{msg}[/dim]"), env=ns)
        supervisor = Supervisor(stage_specs(settings, workers, 1, env=ns), log_dir(settings))
        supervisor.start()
        try:
            reader = StoreReader(settings)
            _wait_ready(reader, settings.clickhouse_database, stop, supervisor)
            _wait_workers(settings, workers, stop, supervisor)
            n, unique = len(sim.arrived), sim.truth["events"]
            _err.print(f"throughput phase: {n:,} events ({unique:,} unique) from {customers:,} customers, as fast as possible")
            marks = throughput_phase(settings, reader, sim.arrived, unique, stop, supervisor, timeout)
            _err.print(f"latency phase: {len(late.arrived):,} events at {latency_rate:,.0f}/s")
            latencies = latency_phase(settings, reader, late.arrived, latency_rate, stop, timeout=min(timeout, 120))
        finally:
            supervisor.stop()
    table = Table(title=f"touchpoint bench ({workers} worker(s), 1 sink, {settings.topic_partitions} partitions)", title_justify="left")
    for col in ("stage", "had everything after", "events/s"):
        table.add_column(col, justify="right" if col != "stage" else "left")
    names = {"produced": "producer (acknowledged)", "raw": "sink: raw events queryable", "windows": "worker: metric windows queryable"}
    for key in ("produced", "raw", "windows"):
        table.add_row(names[key], f"{marks[key]:.2f} s", f"{unique / marks[key]:,.0f}")
    end_to_end = max(marks.values())
    table.add_row("[bold]end to end[/bold]", f"{end_to_end:.2f} s", f"[bold]{unique / end_to_end:,.0f}[/bold]")
    _out.print(table)
    limiting = max(marks, key=lambda k: marks[k])
    _out.print(f"limiting stage: [bold]{names[limiting]}[/bold] (the last to have every event)")
    if latencies:
        _out.print(f"produce-to-queryable latency at {latency_rate:,.0f} events/s over {len(latencies):,} sampled events: "
                   f"p50 {_percentile(latencies, 0.5):.3f} s, p99 {_percentile(latencies, 0.99):.3f} s, "
                   f"max {max(latencies):.3f} s (poll interval 0.1 s)")
    if stage_benchmarks:
        for line in run_stage_benchmarks(settings):
            _out.print(line)
