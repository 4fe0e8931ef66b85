"""What `touchpoint run` and `touchpoint demo` share: set-up, the stage processes, and the pipeline's status.

Set-up order (`prepare`): Kafka (start the local broker when none is configured and none answers; with
KAFKA_BOOTSTRAP_SERVERS only check it answers) -> topics (idempotent) -> ClickHouse migrations (run as a
`touchpoint sink migrate` child, because the embedded store belongs to one process at a time and that
process must be the sink).
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from touchpoint.config import Settings
from touchpoint.errors import ConfigError, StoreUnavailableError, TouchpointError
from touchpoint.cli.supervise import ChildSpec, touchpoint_command
from touchpoint.streams.topology import decode_group

Say = Callable[[str], None]


def check_dsn(settings: Settings) -> None:
    dsn = settings.dsn
    if not dsn.startswith(("chdb://", "http://", "https://")):
        raise ConfigError(
            f"CLICKHOUSE_DSN={settings.redacted()['clickhouse_dsn']} is not a ClickHouse address; use chdb:///absolute/path "
            "for the embedded engine or http(s)://user:password@host:8123 for a server (or unset it for the default)"
        )


def check_store_free(settings: Settings) -> None:
    """Refuse to start when another process holds the embedded store, naming it and what to do."""
    if not settings.dsn.startswith("chdb://"):
        return
    from touchpoint.sinks.store_lock import store_holder

    path = Path(settings.dsn[len("chdb://"):])
    holder = store_holder(path)
    if holder is not None:
        stop = f"`kill {holder.pid}` (or Ctrl-C in its terminal)" if holder.pid is not None else "that process"
        raise TouchpointError(
            f"the embedded ClickHouse store {path} is in use by {holder}: another `touchpoint run` or "
            f"`touchpoint sink` on the same data directory. Stop it first with {stop}, or give this one its own "
            "TOUCHPOINT_DATA_DIR; to query the running pipeline use `touchpoint query` / `touchpoint report`"
        )


def prepare(settings: Settings, say: Say, env: dict[str, str] | None = None) -> None:
    """Broker, topics, migrations: everything the stages need before they start."""
    from touchpoint.kafka_admin import create_topics, wait_for_broker
    from touchpoint.local_broker import ensure_broker

    check_dsn(settings)
    check_store_free(settings)
    if settings.uses_local_broker:
        say(f"Kafka: local broker at {settings.bootstrap_servers} (started when not running; first start fetches its jars)")
        ensure_broker(settings)
    else:
        say(f"Kafka: existing cluster at {settings.bootstrap_servers}")
    wait_for_broker(settings, timeout=30.0)
    create_topics(settings)
    say(f"topics: {', '.join(settings.topic(s) for s in ('events', 'dead-letters', 'journeys', 'metrics', 'identity-merges'))} ready")
    say(f"ClickHouse: migrating {settings.redacted()['clickhouse_dsn']} database {settings.clickhouse_database}")
    done = subprocess.run(touchpoint_command("sink", "migrate"), capture_output=True, text=True,
                          env=_env(env), timeout=300)
    if done.returncode != 0:
        check_store_free(settings)  # taken since the check above: say by whom, not "check the DSN"
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise TouchpointError(
            f"`touchpoint sink migrate` failed (exit {done.returncode}) for {settings.redacted()['clickhouse_dsn']}:\n{tail}\n"
            "Check that CLICKHOUSE_DSN points at a reachable ClickHouse (or unset it for the embedded store) and retry."
        )


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    import os

    return {**os.environ, **(extra or {})}


def stage_specs(settings: Settings, workers: int, sinks: int, env: dict[str, str] | None = None) -> list[ChildSpec]:
    """`touchpoint worker` x N (web ports worker_web_port + i) and `touchpoint sink` x M (metrics ports + i)."""
    if workers < 1 or sinks < 1:
        raise ConfigError("--workers and --sinks must be at least 1")
    if sinks > 1 and settings.dsn.startswith("chdb://"):
        raise ConfigError(
            "the embedded ClickHouse store belongs to one process, so --sinks > 1 needs a ClickHouse server: "
            "set CLICKHOUSE_DSN=http(s)://user:password@host:8123, or use --sinks 1"
        )
    base = dict(env or {})
    specs = [
        ChildSpec(f"worker-{i}", ("worker",), {**base, "TOUCHPOINT_WORKER_WEB_PORT": str(settings.worker_web_port + i)})
        for i in range(workers)
    ]
    for i in range(sinks):
        sink_env = {**base, "TOUCHPOINT_SINK_METRICS_PORT": str(settings.sink_metrics_port + i)}
        if i > 0:
            sink_env["TOUCHPOINT_SINK_SQL_PORT"] = "0"
        specs.append(ChildSpec(f"sink-{i}", ("sink",), sink_env))
    return specs


class StoreReader:
    """Read-only SQL against the store the sink writes: the sink's HTTP port (embedded) or the server itself."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded = settings.dsn.startswith("chdb://")
        self._client: Any = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.sink_sql_port}/"

    def client(self) -> Any:
        """A clickhouse-connect client (what analysts use) for the same store."""
        import clickhouse_connect

        if self._client is None:
            if self.embedded:
                self._client = clickhouse_connect.get_client(host="127.0.0.1", port=self.settings.sink_sql_port)
            else:
                self._client = clickhouse_connect.get_client(**self.settings.clickhouse_kwargs())
        return self._client

    def rows(self, sql: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        if not self.embedded:
            result = self.client().query(sql)
            return [dict(zip(result.column_names, row)) for row in result.result_rows]
        query = urllib.parse.urlencode({"query": sql + " FORMAT JSON"})
        try:
            with urllib.request.urlopen(f"{self.http_url}?{query}", timeout=timeout) as response:
                return list(json.load(response)["data"])
        except OSError as exc:
            raise StoreUnavailableError(f"the sink's SQL port {self.http_url} did not answer ({exc})") from exc

    def scalar(self, sql: str) -> Any:
        rows = self.rows(sql)
        return next(iter(rows[0].values())) if rows else None


@dataclass
class Status:
    events_in: int | None = None
    processed: int | None = None
    in_store: int | None = None
    worker_lag: int | None = None
    sink_lag: int | None = None
    dead_letters: int | None = None
    note: str = ""

    def line(self) -> str:
        f = lambda v: "-" if v is None else f"{v:,}"  # noqa: E731
        return (f"events in {f(self.events_in)} | processed {f(self.processed)} | in ClickHouse {f(self.in_store)} | "
                f"lag worker {f(self.worker_lag)} sink {f(self.sink_lag)} | dead letters {f(self.dead_letters)}")


class StatusCollector:
    """Reads the figures of the status line; every figure is best effort (None when its source is not up yet)."""

    def __init__(self, settings: Settings, worker_ports: list[int]) -> None:
        from confluent_kafka import Consumer

        self.settings = settings
        self.worker_ports = worker_ports
        self.store = StoreReader(settings)
        conf = settings.kafka_config(**{"enable.auto.commit": False, "log_level": 0})
        self._worker = Consumer({**conf, "group.id": decode_group(settings)})
        self._sink = Consumer({**conf, "group.id": settings.sink_group})

    def close(self) -> None:
        self._worker.close()
        self._sink.close()

    def _partitions(self, topic: str) -> list[Any]:
        from confluent_kafka import TopicPartition

        meta = self._worker.list_topics(topic, timeout=5)
        return [TopicPartition(topic, p) for p in meta.topics[topic].partitions]

    def end_offsets(self, topic: str) -> int:
        return sum(self._worker.get_watermark_offsets(tp, timeout=5)[1] for tp in self._partitions(topic))

    def lag(self, consumer: Any, topic: str) -> int:
        parts = self._partitions(topic)
        committed = consumer.committed(parts, timeout=5)
        return sum(max(0, self._worker.get_watermark_offsets(tp, timeout=5)[1] - max(c.offset, 0))
                   for tp, c in zip(parts, committed))

    def processed(self) -> int | None:
        from prometheus_client.parser import text_string_to_metric_families

        total, seen = 0.0, False
        for port in self.worker_ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                    text = response.read().decode()
            except OSError:
                continue
            seen = True
            for family in text_string_to_metric_families(text):
                if family.name in ("touchpoint_stream_events_processed", "touchpoint_stream_duplicates"):
                    total += sum(s.value for s in family.samples if s.name.endswith("_total"))
        return int(total) if seen else None

    def collect(self) -> Status:
        s, st = self.settings, Status()
        for name, fn in (
            ("events_in", lambda: self.end_offsets(s.events_topic)),
            ("dead_letters", lambda: self.end_offsets(s.dead_letter_topic)),
            ("worker_lag", lambda: self.lag(self._worker, s.events_topic)),
            ("sink_lag", lambda: self.lag(self._sink, s.events_topic)),
            ("processed", self.processed),
            ("in_store", lambda: int(self.store.scalar(in_store_sql(s.clickhouse_database)))),
        ):
            try:
                setattr(st, name, fn())
            except Exception as exc:  # noqa: BLE001 - a status figure whose source is not up yet shows as '-'
                st.note = f"{name}: {str(exc)[:80]}"
        return st


def in_store_sql(database: str) -> str:
    """Distinct events in the store: FINAL collapses the copies a re-send or a replay inserted (as the report does)."""
    return f"SELECT count() FROM {database}.touchpoints FINAL"


def log_dir(settings: Settings) -> Path:
    return settings.data_dir / "logs"
