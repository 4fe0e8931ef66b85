"""The status line counts distinct events, and `touchpoint report` shows dead letters by reason and late touchpoints
(terminal, --json, --html).

Before: the status line's "in ClickHouse" was `count()` of raw rows (a re-sent event counted twice), and the
report had no dead letters and no late touchpoints outside the raw `totals_from_metrics` JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from tests.integration.analyst import dataset
from touchpoint.cli.pipeline import in_store_sql
from touchpoint.config import load_settings
from touchpoint.dead_letter import DeadLetter
from touchpoint.kafka_admin import create_topics
from touchpoint.sinks import rows

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def test_status_counts_distinct_events(loaded: Any) -> None:
    # dataset.py: 38 distinct events, one of them inserted a second time (a replay)
    raw = loaded.client.query(f"SELECT count() FROM {loaded.database}.touchpoints").result_rows[0][0]
    distinct = loaded.client.query(in_store_sql(loaded.database)).result_rows[0][0]
    assert (raw, distinct) == (39, 38)


def _dead_letters(settings: Any) -> None:
    """6 dead letters: 3 invalid and 2 undecodable from the worker, 1 refused by the store from the sink."""
    letters = [("worker", "invalid", f"payload.score: {i} is outside the scale 0..10") for i in (11, 12, 13)]
    letters += [("worker", "undecodable", "not Avro: truncated record")] * 2
    letters += [("sink", "rejected_by_store", "Code: 53. type mismatch")]
    producer = Producer(settings.kafka_config())
    for i, (stage, kind, reason) in enumerate(letters):
        letter = DeadLetter(b"k", b"\x00bad", reason, kind, stage, settings.events_topic, 0, i)
        producer.produce(settings.dead_letter_topic, key=letter.key, value=letter.value, headers=letter.headers())
    assert producer.flush(30) == 0


def test_report_shows_dead_letters_by_reason_and_late_touchpoints(
    loaded: Any, sql_server: Any, chdb_dsn: str, kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    kafka = load_settings(kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=f"tp{unique}", data_dir=tmp_path)
    create_topics(kafka)
    _dead_letters(kafka)
    # late touchpoints: the newest version of each window counts (3 + 4); the superseded version 1 (10) does not
    windows = [dataset._window(dataset.D1 + 11 * dataset.H, 0, "PAGE_VIEW", 1, late_events=10),
               dataset._window(dataset.D1 + 11 * dataset.H, 0, "PAGE_VIEW", 2, late_events=3),
               dataset._window(dataset.D1 + 12 * dataset.H, 1, "PAGE_VIEW", 1, late_events=4)]
    data = [rows.metric_row(w, "metrics", 5, 100 + i) for i, w in enumerate(windows)]
    loaded.client.insert(f"{loaded.database}.metrics_minute", [list(c) for c in zip(*data)],
                         column_names=list(rows.METRIC_COLUMNS), column_oriented=True)

    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_") and k not in ("CLICKHOUSE_DSN",)}
    env.update({"CLICKHOUSE_DSN": chdb_dsn, "TOUCHPOINT_CLICKHOUSE_DATABASE": loaded.database,
                "TOUCHPOINT_SINK_SQL_PORT": str(sql_server.port), "TOUCHPOINT_CONFIG": os.devnull,
                "TOUCHPOINT_DATA_DIR": str(tmp_path), "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "TOUCHPOINT_TOPIC_PREFIX": kafka.topic_prefix, "COLUMNS": "200", "PYTHONPATH": str(REPO)})
    code = "import sys; from touchpoint.cli.main import main; sys.argv = ['touchpoint', *sys.argv[1:]]; main()"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)

    out = run("report", "--json", "--html", str(tmp_path / "r.html"))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["late_touchpoints"] == 7
    dead = report["dead_letters"]
    assert (dead["topic"], dead["total"], dead["read"], dead["error"]) == (kafka.dead_letter_topic, 6, 6, None)
    assert [(r["stage"], r["kind"], r["count"]) for r in dead["by_reason"]] == [
        ("worker", "invalid", 3), ("worker", "undecodable", 2), ("sink", "rejected_by_store", 1)]
    assert dead["by_reason"][0]["example"] == "payload.score: 11 is outside the scale 0..10"

    page = (tmp_path / "r.html").read_text()
    section = page[page.index('id="data-quality"'):]
    assert "<b>7</b>" in section and "rejected_by_store" in section and "<b>6</b>" in section

    out = run("report")
    assert out.returncode == 0, out.stderr
    assert "late touchpoints" in out.stdout and ": 7" in out.stdout
    assert f"dead letters on {kafka.dead_letter_topic}: 6" in out.stdout
    line = next(line for line in out.stdout.splitlines() if "undecodable" in line)
    assert "worker" in line and " 2 " in line


def test_report_says_when_dead_letters_cannot_be_read(loaded: Any, tmp_path: Path) -> None:
    from tests.helpers import free_port
    from touchpoint.sinks.report_quality import dead_letter_summary

    address = f"127.0.0.1:{free_port()}"
    summary = dead_letter_summary(load_settings(kafka_bootstrap_servers=address, data_dir=tmp_path), timeout=1)
    assert summary["total"] is None and address in summary["error"]
