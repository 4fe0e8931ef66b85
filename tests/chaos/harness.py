"""A chaos run: the real pipeline (broker, `touchpoint worker`, `touchpoint sink`) fed simulated traffic while a fault
is injected, its figures counted independently, its metrics recorded as Prometheus would scrape them.

Figures of a run (``Figures``), each from its own source:
- produced: events handed to the producer SDK (the simulator's arrivals, its deliberate re-sends included);
- acknowledged: delivery reports without error (acks=all, idempotent producer); lost = acknowledged unique event ids
  not in ClickHouse;
- in ClickHouse: distinct event ids in ``touchpoints`` and events counted by the analyst windows
  (``metrics_minute_current``); duplicates = rows of the ``FINAL`` view ``touchpoints_resolved`` beyond one per
  event, plus window counts beyond the distinct events;
- report: figures of ``touchpoint report`` that differ from the simulator's truth.

The recorder scrapes every target's /metrics once a second, as a Prometheus server would (``up`` is 1 when the
scrape answered, 0 when it did not), and writes the series of a fault as a ``promtool test rules`` file whose alert
expectations come from the fault's own timeline (when it was injected and lifted), never from the values.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import free_port, run_cli, wait_until
from tests.integration.e2e.helpers import (namespace_env, progress, report, settings_of, sql, start, stop,
                                           wait_complete)
from touchpoint.cli.demo_check import compare
from touchpoint.producers.simulator import SimulationConfig, simulate

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(os.environ.get("TOUCHPOINT_CHAOS_RESULTS", ROOT / ".touchpoint" / "chaos" / "results.jsonl"))
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "chaos"
STEP_S = 5  # resolution of the promtool input series


@dataclass
class Figures:
    fault: str
    produced: int = 0
    acknowledged: int = 0
    acknowledged_unique: int = 0
    failed_deliveries: int = 0
    in_clickhouse: int = 0
    windowed: int = 0
    lost: int = 0
    duplicates: int = 0
    report_mismatches: int = 0
    seconds: float = 0.0
    notes: str = ""


class Producer(threading.Thread):
    """Sends the simulated arrivals through the producer SDK at ``rate`` events/s, counting acknowledgements."""

    def __init__(self, events: list[dict[str, Any]], settings: Any, rate: float) -> None:
        super().__init__(name="chaos-produce", daemon=True)
        self.events, self.settings, self.rate = events, settings, rate
        self.sent = 0
        self.acked_ids: set[str] = set()
        self.acked = 0
        self.failed: list[str] = []
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def on_delivery(self, error: Any, report: Any) -> None:
        with self._lock:
            if error is not None:
                self.failed.append(str(error))
            else:
                self.acked += 1
                self.acked_ids.add(report.event_id)

    def run(self) -> None:
        from touchpoint.producers.producer import TouchpointProducer

        try:
            with TouchpointProducer.from_settings(self.settings) as producer:
                started = time.monotonic()
                chunk = max(1, int(self.rate / 10))
                for i in range(0, len(self.events), chunk):
                    producer.send_many(self.events[i:i + chunk], self.on_delivery)
                    self.sent += len(self.events[i:i + chunk])
                    ahead = self.sent / self.rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)  # pacing the sender, not waiting for a condition
        except BaseException as exc:  # noqa: BLE001 - reported by the test through .error
            self.error = exc


class Recorder(threading.Thread):
    """Scrapes targets every second: {(name, labels): [(t, value)]} plus ``up`` per target."""

    def __init__(self, keep: set[str]) -> None:
        super().__init__(name="chaos-scrape", daemon=True)
        self.keep = keep
        self.targets: dict[str, tuple[str, int]] = {}  # instance -> (job, port)
        self.samples: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[float, float]]] = {}
        self.t0 = time.monotonic()
        self._halt = threading.Event()

    def add(self, job: str, instance: str, port: int) -> None:
        self.targets[instance] = (job, port)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _put(self, name: str, labels: dict[str, str], t: float, value: float) -> None:
        self.samples.setdefault((name, tuple(sorted(labels.items()))), []).append((t, value))

    def scrape_once(self) -> None:
        for instance, (job, port) in list(self.targets.items()):
            t = self.now()
            base = {"job": job, "instance": instance}
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=0.8) as response:
                    text = response.read().decode()
            except OSError:
                self._put("up", base, t, 0.0)
                continue
            self._put("up", base, t, 1.0)
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name in self.keep:
                        self._put(sample.name, {**base, **sample.labels}, t, float(sample.value))

    def run(self) -> None:
        while not self._halt.is_set():
            started = time.monotonic()
            self.scrape_once()
            self._halt.wait(max(0.0, 1.0 - (time.monotonic() - started)))

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def series(self, until: float) -> list[tuple[str, str]]:
        """Promtool input series at STEP_S resolution: the newest sample of each step ('_' when there is none)."""
        steps = int(until // STEP_S) + 1
        out = []
        for (name, labels), points in sorted(self.samples.items()):
            values = []
            for k in range(steps):
                t = k * STEP_S
                recent = [v for (ts, v) in points if t - STEP_S < ts <= t]
                values.append(_fmt(recent[-1]) if recent else "_")
            if all(v == "_" for v in values):
                continue
            label_text = ",".join(f'{k}="{v}"' for k, v in labels)
            out.append((f"{name}{{{label_text}}}", " ".join(values)))
        return out


def _fmt(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def write_alert_test(fault: str, recorder: Recorder, until: float, checks: list[dict[str, Any]]) -> Path:
    """deploy/prometheus/chaos/<fault>.yml: the recorded series and the alert expectations of the fault timeline."""
    import yaml

    ALERT_TESTS.mkdir(parents=True, exist_ok=True)
    path = ALERT_TESTS / f"{fault}.yml"
    doc = {
        "rule_files": ["../alerts.yml"],
        "evaluation_interval": f"{STEP_S}s",
        "tests": [{
            "interval": f"{STEP_S}s",
            "input_series": [{"series": s, "values": v} for s, v in recorder.series(until)],
            "alert_rule_test": checks,
        }],
    }
    header = (f"# Recorded by `make chaos` (tests/chaos/test_faults.py, fault {fault}): series scraped every second from the\n"
              f"# real run, at {STEP_S}s resolution; expectations from the fault's timeline. "
              "Checked by tests/unit/deploy/test_chaos_alerts.py.\n")
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=1_000_000))
    return path


def step_at(seconds: float) -> str:
    """An eval time on the STEP_S grid at or after ``seconds``."""
    k = int(-(-seconds // STEP_S))
    return f"{k * STEP_S}s"


class ChaosRun:
    """One isolated pipeline on ``bootstrap``; processes started here are stopped by ``close``."""

    def __init__(self, bootstrap: str, tmp: Path, name: str, *, fault: str, customers: int, seed: int,
                 extra_env: dict[str, str] | None = None) -> None:
        self.name = name
        self.fault = fault
        self.tmp = tmp
        self.sim = simulate(SimulationConfig(customers=customers, seed=seed))
        self.env = {**namespace_env(bootstrap, tmp / "data", name), **(extra_env or {})}
        self.settings = settings_of(self.env)
        self.procs: list[tuple[Any, Path]] = []
        self.recorder = Recorder({
            "touchpoint_sink_paused", "touchpoint_sink_consumer_lag_messages", "touchpoint_sink_kafka_brokers_up",
            "touchpoint_sink_rebalances_total", "touchpoint_sink_insert_retries_total",
            "touchpoint_stream_consumer_lag_messages", "touchpoint_stream_rebalances_total",
            "touchpoint_stream_state_rebuilt", "touchpoint_stream_dead_letters_total",
            "touchpoint_sink_dead_letters_total"})
        self.started = time.monotonic()
        self.timeline: dict[str, float] = {}
        print(f"chaos {name}: seed {seed}, {len(self.sim.arrived)} arrivals, truth {self.sim.truth['events']} events")

    @property
    def sql_port(self) -> int:
        return int(self.env["TOUCHPOINT_SINK_SQL_PORT"])

    @property
    def db(self) -> str:
        return self.env["TOUCHPOINT_CLICKHOUSE_DATABASE"]

    def mark(self, what: str) -> None:
        self.timeline[what] = self.recorder.now()
        print(f"chaos {self.name}: {what} at {self.timeline[what]:.1f}s")

    def setup(self) -> None:
        from touchpoint.kafka_admin import create_topics

        create_topics(self.settings)
        done = run_cli("sink", "migrate", env=self.env)
        assert done.returncode == 0, done.stderr
        self.recorder.start()

    def start_worker(self, port: int | None = None, env: dict[str, str] | None = None) -> Any:
        port = port or int(self.env["TOUCHPOINT_WORKER_WEB_PORT"])
        log = self.tmp / f"worker-{port}-{len(self.procs)}.log"
        proc = start(["worker"], {**self.env, "TOUCHPOINT_WORKER_WEB_PORT": str(port), **(env or {})}, log)
        self.procs.append((proc, log))
        self.recorder.add("touchpoint-worker", f"worker:{port}", port)
        return proc

    def start_sink(self, *, metrics_port: int | None = None, sql_port: int | None = None,
                   env: dict[str, str] | None = None) -> Any:
        port = metrics_port or int(self.env["TOUCHPOINT_SINK_METRICS_PORT"])
        sql_port = self.sql_port if sql_port is None else sql_port
        log = self.tmp / f"sink-{port}-{len(self.procs)}.log"
        proc = start(["sink"], {**self.env, "TOUCHPOINT_SINK_METRICS_PORT": str(port),
                                "TOUCHPOINT_SINK_SQL_PORT": str(sql_port), **(env or {})}, log)
        self.procs.append((proc, log))
        self.recorder.add("touchpoint-sink", f"sink:{port}", port)
        return proc

    def produce(self, rate: float) -> Producer:
        producer = Producer(self.sim.arrived, self.settings, rate)
        producer.start()
        return producer

    def wait_stored(self, at_least: int, timeout: float = 180) -> None:
        wait_until(lambda: progress(self.sql_port, self.db)["raw"] >= at_least, timeout=timeout, interval=1.0,
                   what=f"at least {at_least} events stored")

    def finish(self, producer: Producer, timeout: float = 300) -> Figures:
        """Wait for the producer and for every event to be queryable; count the figures."""
        producer.join(timeout)
        assert not producer.is_alive(), "the producer did not finish"
        assert producer.error is None, f"producing failed: {producer.error!r}"
        for proc, log in self.procs:
            assert proc.poll() in (None, 0), f"{proc.args[1:]} exited with {proc.returncode}: {log.read_text()[-3000:]}"
        live = [(p, log) for p, log in self.procs if p.poll() is None]
        wait_complete(self.env, self.sim.truth, timeout=timeout, procs=[p for p, _ in live],
                      logs=[log for _, log in live])
        self.mark("complete")
        port, db = self.sql_port, self.db
        row = sql(port, f"SELECT (SELECT uniqExact(event_id) FROM {db}.touchpoints) AS unique_ids, "
                        f"(SELECT count() FROM {db}.touchpoints_resolved) AS resolved_rows, "
                        f"(SELECT sum(touchpoints) FROM {db}.metrics_minute_current) AS windowed")[0]
        stored = {str(r["event_id"]) for r in sql(port, f"SELECT DISTINCT event_id FROM {db}.touchpoints")}
        unique_ids, resolved, windowed = (int(row[k]) for k in ("unique_ids", "resolved_rows", "windowed"))
        mismatches = [c for c in compare(report(self.env), self.sim.truth) if not c.ok]
        return Figures(
            fault=self.fault, produced=producer.sent, acknowledged=producer.acked,
            acknowledged_unique=len(producer.acked_ids), failed_deliveries=len(producer.failed),
            in_clickhouse=unique_ids, windowed=windowed, lost=len(producer.acked_ids - stored),
            duplicates=(resolved - unique_ids) + (windowed - unique_ids), report_mismatches=len(mismatches),
            seconds=round(time.monotonic() - self.started, 1),
            notes="; ".join(f"{c.name}: {c.expected} != {c.actual}" for c in mismatches[:3]))

    def close(self) -> list[int]:
        self.recorder.stop()
        codes = []
        for proc, _log in self.procs:
            codes.append(stop(proc, signal.SIGTERM) if proc.poll() is None else proc.returncode)
        return codes


def record(figures: Figures) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(json.dumps(asdict(figures)) + "\n")
    print("chaos figures:", json.dumps(asdict(figures)))


def table(path: Path = RESULTS) -> str:
    """The README table of the newest row per fault."""
    rows: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        rows[row["fault"]] = row
    out = ["| fault | produced | acknowledged (unique events) | in ClickHouse | lost | duplicates | report figures off | run |",
           "|---|---|---|---|---|---|---|---|"]
    for row in rows.values():
        out.append(f"| {row['fault']} | {row['produced']:,} | {row['acknowledged']:,} ({row['acknowledged_unique']:,}) "
                   f"| {row['in_clickhouse']:,} | {row['lost']} | {row['duplicates']} | {row['report_mismatches']} "
                   f"| {row['seconds']:.0f} s |")
    return "\n".join(out)


def assert_exact(figures: Figures, truth_events: int) -> None:
    assert figures.failed_deliveries == 0, figures
    assert figures.acknowledged == figures.produced, figures
    assert figures.acknowledged_unique == truth_events, figures
    assert figures.lost == 0 and figures.duplicates == 0, figures
    assert figures.in_clickhouse == truth_events and figures.windowed == truth_events, figures
    assert figures.report_mismatches == 0, figures


__all__ = ["ChaosRun", "Figures", "assert_exact", "free_port", "record", "step_at", "table", "write_alert_test"]
