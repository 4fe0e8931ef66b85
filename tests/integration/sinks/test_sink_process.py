"""`touchpoint sink` as a process: /metrics, read-only SQL over the embedded store while it writes, and a graceful
SIGTERM that flushes and commits."""

from __future__ import annotations

import signal
import subprocess
import urllib.request

import clickhouse_connect

from tests.helpers import TOUCHPOINT, free_port, wait_until
from tests.integration.sinks.conftest import sink_settings
from tests.integration.sinks.test_faults import group_lag, produce_events, sink_env


def test_sink_process_serves_metrics_and_readonly_sql_and_stops_cleanly_on_sigterm(pipeline_topics, codec, tmp_path):
    settings = sink_settings(pipeline_topics)
    faults = tmp_path / "faults"
    faults.mkdir()
    metrics_port, sql_port = free_port(), free_port()
    env = sink_env(settings, f"chdb://{tmp_path / 'sink-chdb'}", faults)
    env.update({"TOUCHPOINT_SINK_METRICS_PORT": str(metrics_port), "TOUCHPOINT_SINK_SQL_PORT": str(sql_port),
                "TOUCHPOINT_SINK_BATCH_SECONDS": "5"})  # long batches: SIGTERM must flush the pending one
    produce_events(settings, codec, 0, 300)
    log = open(tmp_path / "sink.log", "wb")
    proc = subprocess.Popen([str(TOUCHPOINT), "sink"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        def sql_port_up():
            assert proc.poll() is None, (tmp_path / "sink.log").read_text()[-3000:]
            return clickhouse_connect.get_client(host="127.0.0.1", port=sql_port)

        client = wait_until(sql_port_up, timeout=60, what="read-only SQL port")
        table = f"{settings.clickhouse_database}.touchpoints"
        wait_until(lambda: client.query(f"SELECT count() FROM {table}").result_rows[0][0] == 300, timeout=60,
                   what="300 rows visible through the SQL port")
        produce_events(settings, codec, 300, 200)  # pending in a 5 s batch when SIGTERM arrives

        def scrape() -> str:
            return urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()

        wait_until(lambda: "touchpoint_sink_pending_rows 200.0" in scrape(), timeout=10, what="200 rows pending")
        metrics = scrape()
        assert 'touchpoint_sink_rows_inserted_total{table="touchpoints"} 300.0' in metrics
        assert "touchpoint_sink_insert_latency_seconds_bucket" in metrics
        assert group_lag(settings) == 200
        lag_line = f'touchpoint_sink_consumer_lag_messages{{topic="{settings.events_topic}"}} 200.0'
        wait_until(lambda: lag_line in scrape(), timeout=20, what="consumer lag gauge = 200 uncommitted")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, (tmp_path / "sink.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    text = (tmp_path / "sink.log").read_text()
    assert "signal 15: flushing, committing and closing" in text
    assert "sink stopped: rows inserted touchpoints=500" in text
    assert group_lag(settings) == 0
