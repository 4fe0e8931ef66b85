"""What ops sees: the real Prometheus scrapes a running worker and sink, and the alert rules fire when they should.

The pipeline runs as users run it (`touchpoint worker` and `touchpoint sink` as processes, TOUCHPOINT_* env, ports
from free_port) on the session's Kafka broker. Each job gets its own Prometheus (the shared fixture scrapes one job
per server) named as in deploy/prometheus/prometheus.yml, so `up{job=...}` reads as it does in production.
The alert rules of deploy/prometheus/alerts.yml are unit-tested with `promtool test rules` (alerts_test.yml).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli, wait_until
from tests.integration.e2e.helpers import namespace_env, settings_of, sql, start, stop
from touchpoint.producers.simulator import SimulationConfig, produce, simulate

PROMETHEUS_DIR = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"
WORKER_JOB, SINK_JOB = "touchpoint-worker", "touchpoint-sink"  # the job names of deploy/prometheus/prometheus.yml


def promql(url: str, expr: str) -> list[dict[str, Any]]:
    """Instant query through Prometheus's HTTP API: the result vector."""
    query = urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def scalar(url: str, expr: str) -> float | None:
    """The single value of ``expr`` (an aggregate), or None while Prometheus has no sample for it."""
    result = promql(url, expr)
    assert len(result) <= 1, f"{expr} is not a single series: {result}"
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_worker_and_sink_and_sees_every_event_and_the_dead_letter(
        kafka_bootstrap: str, tmp_path: Path, unique: str, prometheus: Callable[..., str]) -> None:
    sim = simulate(SimulationConfig(customers=40, seed=17))
    unique_events, sent = sim.truth["events"], len(sim.arrived)
    assert sent > unique_events, "the population should include duplicate sends"

    env = namespace_env(kafka_bootstrap, tmp_path / "data", unique)
    settings = settings_of(env)
    from touchpoint.kafka_admin import create_topics

    create_topics(settings)
    migrated = run_cli("sink", "migrate", env=env)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    logs = [tmp_path / "worker.log", tmp_path / "sink.log"]
    procs = [start(["worker"], env, logs[0]), start(["sink"], env, logs[1])]

    def alive() -> None:
        for proc, log in zip(procs, logs):
            assert proc.poll() is None, f"{log.stem} exited with {proc.returncode}: {log.read_text()[-3000:]}"

    try:
        worker = prometheus([f"127.0.0.1:{env['TOUCHPOINT_WORKER_WEB_PORT']}"], scrape_interval="1s", job=WORKER_JOB)
        sink = prometheus([f"127.0.0.1:{env['TOUCHPOINT_SINK_METRICS_PORT']}"], scrape_interval="1s", job=SINK_JOB)

        def both_up() -> bool:
            alive()
            return (scalar(worker, f'up{{job="{WORKER_JOB}"}}') == 1.0
                    and scalar(sink, f'up{{job="{SINK_JOB}"}}') == 1.0)

        wait_until(both_up, timeout=90, what="up == 1 for the worker and the sink job", interval=0.5)

        produce(sim.arrived, settings)
        processed = "sum(touchpoint_stream_events_processed_total)"
        inserted = 'sum(touchpoint_sink_rows_inserted_total{table="touchpoints"})'
        seen: list[tuple[float | None, float | None]] = []

        # The worker drops a resent event_id, so it counts unique events. The sink writes one row per record of the
        # events topic (a resent event_id collapses later in ReplacingMergeTree, sinks/README.md), so it counts
        # every send; the table then holds exactly the unique event ids.
        expected = (float(unique_events), float(sent))

        def settled() -> bool:
            # Equal to the truth and unchanged over 3 polls (> 2 scrape intervals): later counts would show.
            alive()
            now = (scalar(worker, processed), scalar(sink, inserted))
            seen.append(now)
            assert now[0] is None or now[0] <= unique_events, f"worker counted {now[0]} > {unique_events} unique events"
            assert now[1] is None or now[1] <= sent, f"sink inserted {now[1]} rows for {sent} records sent"
            return now == expected and seen[-3:] == [now] * 3

        try:
            wait_until(settled, timeout=90, what=f"processed == {unique_events} unique events, inserted == {sent} sent",
                       interval=1.0)
        finally:
            print(f"last (processed, inserted) seen through Prometheus: {seen[-5:]}")

        # Every event was counted under its own type; nothing was dead-lettered yet.
        by_type = {r["metric"]["event_type"]: float(r["value"][1])
                   for r in promql(worker, "touchpoint_stream_events_processed_total")}
        assert sum(by_type.values()) == unique_events and len(by_type) > 1, by_type
        assert scalar(worker, "sum(touchpoint_stream_dead_letters_total)") in (None, 0.0)
        db = env["TOUCHPOINT_CLICKHOUSE_DATABASE"]
        [stored] = sql(int(env["TOUCHPOINT_SINK_SQL_PORT"]), f"SELECT uniqExact(event_id) AS n FROM {db}.touchpoints")
        assert int(stored["n"]) == unique_events

        # One poison record on the events topic: the worker dead-letters it, the sink skips it.
        from confluent_kafka import Producer

        producer = Producer(settings.kafka_config())
        producer.produce(settings.events_topic, key=b"poison", value=b"\x00 not an avro touchpoint")
        assert producer.flush(30) == 0, "the poison record was not delivered"

        dead = "sum(touchpoint_stream_dead_letters_total)"  # any reason kind (this value reads as Confluent framing)

        def dead_lettered() -> bool:
            alive()
            now = (scalar(worker, dead), scalar(sink, 'sum(touchpoint_sink_records_skipped_total{reason="invalid_event"})'))
            assert now == (1.0, 1.0), f"(worker dead letters, sink skipped invalid) = {now}; worker dead letters by " \
                                      f"reason: {promql(worker, 'touchpoint_stream_dead_letters_total')}"
            return True

        wait_until(dead_lettered, timeout=60, what="the worker's dead-letter counter and the sink's skip counter at 1")
        # The poison record changed no event count.
        assert scalar(worker, processed) == unique_events
        assert scalar(sink, inserted) == sent
    finally:
        codes = [stop(p) for p in procs]
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]


def _promtool() -> str:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: install Debian's `prometheus` package (deploy/local/bootstrap.sh does)"
    return tool


def test_alert_rules_fire_and_stay_quiet_as_their_unit_tests_say() -> None:
    done = subprocess.run([_promtool(), "test", "rules", str(PROMETHEUS_DIR / "alerts_test.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


# The usual production case: only the worker dead-letters (the sink skips bad events-topic records and exports no
# touchpoint_sink_dead_letters_total series at all). `sum(a) + sum(b)` is then empty, so the alert cannot fire.
_WORKER_ONLY_DEAD_LETTERS = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'touchpoint_stream_dead_letters_total{{job="touchpoint-worker",instance="worker:6066",reason="undecodable"}}'
        values: '0+300x20'
    alert_rule_test:
      - eval_time: 15m
        alertname: TouchpointDeadLetterRate
        exp_alerts:
          - exp_labels: {{severity: ticket}}
            exp_annotations:
              summary: "more than 1 record/s goes to the dead-letter topic"
              description: "Inspect the dead-letter topic (dlq.reason header); a producer may be sending bad events."
"""


def test_dead_letter_alert_fires_when_only_the_worker_dead_letters(tmp_path: Path) -> None:
    case = tmp_path / "worker_only_test.yml"
    case.write_text(_WORKER_ONLY_DEAD_LETTERS.format(rules=PROMETHEUS_DIR / "alerts.yml"))
    done = subprocess.run([_promtool(), "test", "rules", str(case)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
