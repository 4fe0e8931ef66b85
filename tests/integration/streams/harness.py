"""Run `touchpoint worker` as a subprocess (as users run it) and read its output topics back.

Assumes a reachable Kafka (the ``kafka_bootstrap`` fixture). Each test gets its own topic prefix, worker id and
data dir, passed to the subprocess through TOUCHPOINT_* variables, which is how users configure the worker.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable

from confluent_kafka import Consumer, Producer, TopicPartition

from touchpoint.schemas.codec import AvroCodec

VOLATILE_JOURNEY_FIELDS = ("updated_at", "version")
MERGE_VOLATILE = ("merged_at",)
DIMS = ("event_type", "channel", "campaign_id", "currency")
META = ("window_start", "window_seconds", "partition", "version", "emitted_at", "correction_id") + DIMS


def kafka_conf(bootstrap: str) -> dict[str, Any]:
    """librdkafka settings for ``bootstrap`` with the environment's security settings (Settings.kafka_config)."""
    from touchpoint.config import load_settings

    return load_settings(kafka_bootstrap_servers=bootstrap).kafka_config()


def free_port() -> int:
    """A free loopback port outside the ephemeral range (``tests.helpers.free_port``)."""
    from tests.helpers import free_port as shared_free_port

    return shared_free_port()


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
    """Poll ``check`` until it returns a truthy value; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}"[:3000])


class Pipeline:
    """One isolated pipeline: topic prefix, worker id, data dir, and helpers to feed and read it."""

    def __init__(self, bootstrap: str, tmp: Path, *, partitions: int = 4, extra_env: dict[str, str] | None = None) -> None:
        tag = uuid.uuid4().hex[:10]
        self.bootstrap = bootstrap
        self.prefix = f"t{tag}"
        self.worker_id = f"w{tag}"
        self.data_dir = tmp / "data"
        self.partitions = partitions
        self.codec = AvroCodec()
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "TOUCHPOINT_TOPIC_PREFIX": self.prefix,
            "TOUCHPOINT_WORKER_ID": self.worker_id,
            "TOUCHPOINT_DATA_DIR": str(self.data_dir),
            "TOUCHPOINT_TOPIC_PARTITIONS": str(partitions),
            "TOUCHPOINT_CONFIG": os.devnull,
            **(extra_env or {}),
        }
        self.logs = tmp / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.workers: list[WorkerProcess] = []
        self._producer = Producer({**kafka_conf(bootstrap), "linger.ms": 5, "partitioner": "murmur2_random"})

    def topic(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    def create_topics(self) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient(kafka_conf(self.bootstrap))
        names = [self.topic(n) for n in ("events", "dead-letters", "journeys", "metrics", "identity-merges")]
        for fut in admin.create_topics([NewTopic(n, self.partitions, 1) for n in names]).values():
            fut.result()

    # --- input -----------------------------------------------------------------------------------------
    def send_events(self, events: Iterable[dict[str, Any]], *, partition: int | None = None,
                    partition_of: Callable[[dict[str, Any]], int] | None = None) -> None:
        """Produce events as producers do (key = customer_id, else anonymous_id), optionally to chosen partitions."""
        for e in events:
            key = (e.get("customer_id") or e.get("anonymous_id") or "").encode()
            self.send_raw(key, self.codec.encode(e), partition=partition_of(e) if partition_of else partition)
        self.flush()

    def send_raw(self, key: bytes | None, value: bytes | None, *, partition: int | None = None,
                 headers: list[tuple[str, bytes]] | None = None) -> None:
        kwargs: dict[str, Any] = {"key": key, "value": value, "headers": headers}
        if partition is not None:
            kwargs["partition"] = partition
        self._producer.produce(self.topic("events"), **kwargs)
        self._producer.poll(0)

    def flush(self) -> None:
        assert self._producer.flush(15) == 0

    # --- workers -----------------------------------------------------------------------------------------
    def start_worker(self, *, web_port: int | None = None, env: dict[str, str] | None = None) -> "WorkerProcess":
        w = WorkerProcess(self, web_port or free_port(), env or {})
        self.workers.append(w)
        return w

    def group_members_with_partitions(self) -> int:
        """How many members of the worker group (faust app id = TOUCHPOINT_WORKER_ID) hold partitions now."""
        from touchpoint.config import Settings
        from touchpoint.kafka_admin import members_holding_partitions

        return members_holding_partitions(Settings(kafka_bootstrap_servers=self.bootstrap), self.worker_id)

    def stop_all(self) -> None:
        for w in self.workers:
            w.stop()

    # --- output ------------------------------------------------------------------------------------------
    def read(self, name: str, schema: str | None = None) -> list[Any]:
        """Every record of topic ``name`` so far: decoded dicts, or raw (key, value, headers, partition, offset)."""
        topic = self.topic(name)
        c = Consumer({**kafka_conf(self.bootstrap), "group.id": f"reader-{uuid.uuid4().hex}",
                      "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        try:
            meta = c.list_topics(topic, timeout=10).topics[topic]
            tps = []
            ends: dict[int, int] = {}
            for p in meta.partitions:
                low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                if high > low:
                    ends[p] = high
                    tps.append(TopicPartition(topic, p, low))
            out: list[Any] = []
            if not tps:
                return out
            c.assign(tps)
            pos = {tp.partition: tp.offset for tp in tps}
            deadline = time.monotonic() + 30
            while any(pos[p] < ends[p] for p in ends) and time.monotonic() < deadline:
                for m in c.consume(1000, timeout=0.5):
                    if m.error():
                        continue
                    pos[m.partition()] = m.offset() + 1
                    if m.offset() >= ends[m.partition()]:
                        continue
                    if schema:
                        out.append(self.codec.decode(m.value(), schema))
                    else:
                        out.append((m.key(), m.value(), m.headers() or [], m.partition(), m.offset()))
            return out
        finally:
            c.close()

    def uncommitted_events(self) -> int:
        """Records of the events topic past the offsets committed by the workers' events group ``<id>-decode``."""
        topic = self.topic("events")
        c = Consumer({**kafka_conf(self.bootstrap), "group.id": f"{self.worker_id}-decode",
                      "enable.auto.commit": False})
        try:
            parts = [TopicPartition(topic, p) for p in c.list_topics(topic, timeout=10).topics[topic].partitions]
            committed = c.committed(parts, timeout=10)
            return sum(c.get_watermark_offsets(tp, timeout=10)[1] - max(tp.offset, 0) for tp in committed)
        finally:
            c.close()

    def journeys(self) -> dict[str, dict[str, Any]]:
        return newest_journeys(self.read("journeys", "journey_snapshot"))

    def metric_totals(self) -> dict[tuple[str, ...], dict[str, int]]:
        return metric_totals(self.read("metrics", "metric_window"))


class WorkerProcess:
    """`touchpoint worker` in a subprocess, its output in a log file."""

    def __init__(self, pipeline: Pipeline, web_port: int, env: dict[str, str]) -> None:
        self.pipeline = pipeline
        self.web_port = web_port
        self.env = env
        self.runs = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def log_path(self) -> Path:
        return self.pipeline.logs / f"worker-{self.web_port}-{self.runs}.log"

    def start(self) -> None:
        self.runs += 1
        touchpoint = shutil.which("touchpoint") or str(Path(os.sys.executable).parent / "touchpoint")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [touchpoint, "worker", "--web-port", str(self.web_port), "--loglevel", "warning"],
            env={**self.pipeline.env, **self.env}, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics_text(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"worker did not stop within {timeout}s after signal {sig}; log:\n{self.log()[-3000:]}")
        finally:
            self._log.close()


def newest_journeys(snaps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Newest version per journey_id (what the sink keeps)."""
    best: dict[str, dict[str, Any]] = {}
    for s in snaps:
        cur = best.get(s["journey_id"])
        if cur is None or s["version"] >= cur["version"]:
            best[s["journey_id"]] = s
    return best


def stable(journeys: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Journeys without processing-time fields (updated_at, version), for comparing runs."""
    return {k: {f: v for f, v in s.items() if f not in VOLATILE_JOURNEY_FIELDS} for k, s in journeys.items()}


def metric_totals(records: list[dict[str, Any]]) -> dict[tuple[str, ...], dict[str, int]]:
    """Newest version per (window_start, partition, correction_id, dims) (the sink's key), then summed over
    partitions and late corrections: {(window_start, dims...): components}."""
    newest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in records:
        k = (r["window_start"], r["partition"], r.get("correction_id") or "") + tuple(r[d] for d in DIMS)
        if k not in newest or r["version"] >= newest[k]["version"]:
            newest[k] = r
    totals: dict[tuple[Any, ...], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for k, r in newest.items():
        t = totals[(k[0],) + k[3:]]
        for f, v in r.items():
            if f not in META and v:
                t[f] += v
    return {k: dict(v) for k, v in totals.items()}


def grand_totals(totals: dict[tuple[Any, ...], dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for comps in totals.values():
        for f, v in comps.items():
            out[f] += v
    return dict(out)
