"""The sink rides out a Kafka outage: its broker is SIGKILLed between an insert and the offset commit, the commit
meets the outage (asynchronous while the store gives the restart position: a later commit or the stored offsets
cover it), and consumption resumes once the broker is back, without the sink exiting, losing or duplicating.

A private broker of the test's own (the shared one is never stopped). Before: the sink exited with
"offset commit failed: ... _WAIT_COORD" (or the like) as soon as the commit met the outage.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import TOUCHPOINT, wait_until
from tests.integration.sinks.test_faults import group_lag, produce_events, query_other_store, sink_env
from tests.private_broker import private_broker  # noqa: F401 - fixture
from touchpoint.config import load_settings
from touchpoint.kafka_admin import create_topics
from touchpoint.local_broker import LocalBroker
from touchpoint.schemas.codec import AvroCodec

pytestmark = pytest.mark.integration


def test_sink_survives_a_broker_kill_during_its_commit(private_broker: LocalBroker, tmp_path: Path,  # noqa: F811
                                                       unique: str) -> None:
    settings = load_settings(kafka_bootstrap_servers=private_broker.bootstrap, topic_prefix=f"tp{unique}",
                             data_dir=tmp_path, clickhouse_database=f"tp_{unique}", sink_group=f"{unique}-sink",
                             topic_partitions=2)
    create_topics(settings)
    codec = AvroCodec()
    faults = tmp_path / "faults"
    faults.mkdir()
    dsn = f"chdb://{tmp_path / 'sink-chdb'}"
    env = sink_env(settings, dsn, faults)
    env["TOUCHPOINT_SINK_RETRY_MAX_SECONDS"] = "1"
    env["TOUCHPOINT_TOPIC_PARTITIONS"] = "2"
    env["TOUCHPOINT_SINK_SESSION_TIMEOUT_SECONDS"] = "8"  # a commit into the outage fails after 8 s, not 45
    status_file = tmp_path / "sink.status"
    env["TOUCHPOINT_STAGE_STATUS_FILE"] = str(status_file)  # what `touchpoint run` shows while there is no throughput
    ids = produce_events(settings, codec, 0, 300)
    table = f"{settings.clickhouse_database}.touchpoints"

    (faults / "pause_before_commit").touch()
    log_path = tmp_path / "sink.log"
    with log_path.open("wb") as log:
        sink = subprocess.Popen([str(TOUCHPOINT), "sink"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: (faults / "paused_before_commit").exists() or sink.poll() is not None, timeout=90,
                   what="sink paused between insert and commit")
        assert sink.poll() is None, log_path.read_text()[-3000:]

        pid = private_broker.status().pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not private_broker.is_running(), timeout=30, what="broker gone")
        (faults / "pause_before_commit").unlink()  # the sink now commits into the outage

        # librdkafka either fails the commit (_WAIT_COORD, which made the sink exit before) or keeps it waiting
        wait_until(lambda: any(s in log_path.read_text() for s in ("offset commit failed", "offset commit is waiting")),
                   timeout=60, what="a commit attempt met the outage")
        assert sink.poll() is None, log_path.read_text()[-3000:]

        private_broker.start(timeout=180)
        ids += produce_events(settings, codec, 300, 200)
        wait_until(lambda: group_lag(settings) == 0, timeout=120, what="every offset committed after the outage")
        assert sink.poll() is None, log_path.read_text()[-3000:]
        assert status_file.read_text() == "running"
    finally:
        sink.send_signal(signal.SIGTERM)
        code = sink.wait(60)
    output = log_path.read_text()
    assert code == 0, output[-3000:]
    # the batch's commit either went through once the broker was back, or (the session having expired meanwhile)
    # was superseded by the stored offsets; both without re-inserting anything
    assert ("offset commit succeeded after" in output or "the stored offset covers it" in output
            or "offset commit is waiting" in output)
    assert query_other_store(dsn, f"SELECT count(), uniqExact(event_id) FROM {table}") == [[500, 500]]
    assert {r[0] for r in query_other_store(dsn, f"SELECT toString(event_id) FROM {table}")} == set(ids)


def test_sink_stops_promptly_when_asked_during_an_outage(private_broker: LocalBroker, tmp_path: Path,  # noqa: F811
                                                         unique: str) -> None:
    """SIGTERM while the commit waits for the missing broker: the sink exits (the stored offsets cover the rows)
    instead of hanging in librdkafka's uninterruptible commit until someone SIGKILLs it."""
    settings = load_settings(kafka_bootstrap_servers=private_broker.bootstrap, topic_prefix=f"tp{unique}",
                             data_dir=tmp_path, clickhouse_database=f"tp_{unique}", sink_group=f"{unique}-sink",
                             topic_partitions=1)
    create_topics(settings)
    faults = tmp_path / "faults"
    faults.mkdir()
    dsn = f"chdb://{tmp_path / 'sink-chdb'}"
    env = {**sink_env(settings, dsn, faults), "TOUCHPOINT_TOPIC_PARTITIONS": "1"}
    produce_events(settings, AvroCodec(), 0, 50)
    (faults / "pause_before_commit").touch()
    log_path = tmp_path / "sink.log"
    with log_path.open("wb") as log:
        sink = subprocess.Popen([str(TOUCHPOINT), "sink"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: (faults / "paused_before_commit").exists() or sink.poll() is not None, timeout=90,
                   what="sink paused between insert and commit")
        pid = private_broker.status().pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not private_broker.is_running(), timeout=30, what="broker gone")
        (faults / "pause_before_commit").unlink()
        wait_until(lambda: any(s in log_path.read_text() for s in ("offset commit failed", "offset commit is waiting")),
                   timeout=60, what="a commit attempt met the outage")
        assert sink.poll() is None, log_path.read_text()[-3000:]
        sink.send_signal(signal.SIGTERM)
        code = sink.wait(30)
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait(10)
    assert code == 0, log_path.read_text()[-3000:]
    assert query_other_store(dsn, f"SELECT count() FROM {settings.clickhouse_database}.touchpoints") == [[50]]
