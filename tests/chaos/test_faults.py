"""Faults production sees, on the real pipeline: each run must end with every acknowledged event stored once and
the report equal to the simulator's truth, and records the series its Prometheus alert is tested on.

Fault durations (the broker down 40 s, ClickHouse unavailable 60 s) are the faults themselves, so they are timed;
everything else waits for a condition with a deadline.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

from tests.chaos.harness import ChaosRun, assert_exact, record, step_at, write_alert_test
from tests.helpers import free_port, free_port_pair, wait_until
from tests.integration.e2e.helpers import progress, stop
from touchpoint.kafka_admin import members_holding_partitions

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def hold(seconds: float, run: ChaosRun) -> None:
    """Keep a fault in place for ``seconds``, failing at once if a pipeline process dies meanwhile."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for proc, log in run.procs:
            if proc.poll() not in (None, 0):
                pytest.fail(f"{proc.args[1:]} exited with {proc.returncode} during the fault: {log.read_text()[-3000:]}")
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))


def firing(alert: str, labels: dict[str, str], summary: str, description: str) -> list[dict]:
    return [{"exp_labels": labels, "exp_annotations": {"summary": summary, "description": description}}]


def lag_samples(run: ChaosRun, name: str, start: float, end: float, topic_suffix: str = "") -> list[float]:
    """Recorded values of ``name`` summed per second between ``start`` and ``end`` (topics ending in the suffix)."""
    by_time: dict[float, float] = {}
    for (metric, labels), points in run.recorder.samples.items():
        if metric == name and dict(labels).get("topic", "").endswith(topic_suffix):
            for t, v in points:
                if start <= t <= end:
                    by_time[round(t)] = by_time.get(round(t), 0.0) + v
    return [by_time[t] for t in sorted(by_time)]


def test_clickhouse_unavailable_for_60s_lag_grows_then_drains_nothing_lost(kafka_bootstrap, tmp_path, unique):
    faults = tmp_path / "faults"
    faults.mkdir()
    run = ChaosRun(kafka_bootstrap, tmp_path, f"{unique}c", fault="ClickHouse unavailable 60 s (sink fault seam), worker producing", customers=300, seed=41,
                   extra_env={"TOUCHPOINT_SINK_FAULT_DIR": str(faults), "TOUCHPOINT_SINK_RETRY_MAX_SECONDS": "5"})
    try:
        run.setup()
        run.start_worker()
        run.start_sink()
        producer = run.produce(rate=40)
        run.wait_stored(300)
        run.mark("fault")
        (faults / "insert_unavailable").touch()
        stored_at_fault = progress(run.sql_port, run.db)["raw"]
        hold(60, run)
        assert progress(run.sql_port, run.db)["raw"] <= stored_at_fault + 2000  # at most the batch in flight
        (faults / "insert_unavailable").unlink()
        run.mark("recovered")
        figures = run.finish(producer)
    finally:
        codes = run.close()
    assert codes == [0, 0], codes
    record(figures)
    assert_exact(figures, run.sim.truth["events"])
    t = run.timeline
    lag = lag_samples(run, "touchpoint_sink_consumer_lag_messages", t["fault"] + 10, t["recovered"])
    assert lag and max(lag) - lag[0] >= 1000, f"sink lag while ClickHouse was down: {lag}"
    # drained: the events topic's lag (statistics every 5 s) is back to 0 once everything is stored
    assert min(lag_samples(run, "touchpoint_sink_consumer_lag_messages", t["recovered"], t["complete"] + 10,
                           ".events")) == 0
    path = write_alert_test("clickhouse_unavailable_60s", run.recorder, t["complete"], [
        {"eval_time": step_at(t["fault"] - 5), "alertname": "TouchpointSinkPaused", "exp_alerts": []},
        {"eval_time": step_at(t["fault"] + 45), "alertname": "TouchpointSinkPaused", "exp_alerts": firing(
            "TouchpointSinkPaused", {"severity": "page"},
            "the sink paused consumption: ClickHouse keeps failing inserts",
            "Lag grows while paused (touchpoint_sink_consumer_lag_messages) and drains by itself once ClickHouse "
            "accepts inserts.")},
        {"eval_time": step_at(t["complete"]), "alertname": "TouchpointSinkPaused", "exp_alerts": []},
    ])
    print(f"alert test written: {path}")


def test_broker_sigkilled_and_restarted_mid_stream_loses_and_duplicates_nothing(tmp_path, unique):
    from touchpoint.local_broker import LocalBroker

    broker = LocalBroker(tmp_path / "kafka", port=free_port_pair())
    broker.start(timeout=180)
    run = ChaosRun(broker.bootstrap, tmp_path, f"{unique}b", fault="broker SIGKILLed mid-stream, down 40 s, restarted", customers=300, seed=42)
    try:
        run.setup()
        run.start_worker()
        run.start_sink()
        producer = run.produce(rate=40)
        run.wait_stored(300)
        pid = broker.status().pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        run.mark("killed")
        wait_until(lambda: not broker.is_running(), timeout=30, what="the broker process gone")
        sent_at_kill = producer.sent
        hold(40, run)
        assert producer.sent > sent_at_kill, "the producer stopped accepting events while the broker was down"
        broker.start(timeout=180)
        run.mark("restarted")
        figures = run.finish(producer)
    finally:
        codes = run.close()
        broker.stop()
    assert codes == [0, 0], codes
    record(figures)
    assert_exact(figures, run.sim.truth["events"])
    t = run.timeline
    write_alert_test("broker_sigkill_restart", run.recorder, t["complete"], [
        {"eval_time": step_at(t["killed"] - 5), "alertname": "TouchpointKafkaUnreachable", "exp_alerts": []},
        {"eval_time": step_at(t["killed"] + 35), "alertname": "TouchpointKafkaUnreachable", "exp_alerts": firing(
            "TouchpointKafkaUnreachable", {"severity": "page"}, "the sink is connected to no Kafka broker",
            "Producers buffer and nothing is stored meanwhile; the pipeline resumes by itself once a broker is back.")},
        {"eval_time": step_at(t["complete"]), "alertname": "TouchpointKafkaUnreachable", "exp_alerts": []},
    ])


def test_worker_state_directory_deleted_while_down_is_rebuilt_exactly(kafka_bootstrap, tmp_path, unique):
    run = ChaosRun(kafka_bootstrap, tmp_path, f"{unique}s", fault="worker state directory deleted while the worker is down", customers=300, seed=43)
    port = int(run.env["TOUCHPOINT_WORKER_WEB_PORT"])
    datadir = tmp_path / "data" / "worker" / f"{run.env['TOUCHPOINT_WORKER_ID']}-{port}"
    try:
        run.setup()
        # a worker that has been running: its state on disk, stopped cleanly once
        first = run.start_worker()
        wait_until(lambda: (datadir / "clean-shutdown").exists() or first.poll() is None and datadir.exists(),
                   timeout=60, what="worker state directory")
        wait_until(lambda: members_holding_partitions(run.settings, run.env["TOUCHPOINT_WORKER_ID"]) == 1,
                   timeout=90, what="the worker holding partitions")
        assert stop(first) == 0
        run.procs.clear()
        worker = run.start_worker()
        run.start_sink()
        producer = run.produce(rate=40)
        run.wait_stored(500)
        assert stop(worker) == 0
        run.mark("worker down")
        assert datadir.is_dir()
        shutil.rmtree(datadir)
        sent = producer.sent
        wait_until(lambda: producer.sent >= sent + 400 or not producer.is_alive(), timeout=60,
                   what="400 more events produced while the worker is down")
        run.start_worker()
        run.mark("worker restarted")
        figures = run.finish(producer)
    finally:
        codes = run.close()
    assert codes[-2:] == [0, 0], codes
    record(figures)
    assert_exact(figures, run.sim.truth["events"])
    t = run.timeline
    write_alert_test("worker_state_deleted", run.recorder, t["complete"], [
        {"eval_time": step_at(t["worker down"] - 5), "alertname": "TouchpointWorkerStateRebuilt", "exp_alerts": []},
        {"eval_time": step_at(t["worker restarted"] + 15), "alertname": "TouchpointWorkerStateRebuilt",
         "exp_alerts": firing("TouchpointWorkerStateRebuilt", {"severity": "info"},
                              "a worker started without local state and rebuilds its tables from the changelogs",
                              "Its disk was lost or it did not stop cleanly; numbers stay exact. Expected once for a "
                              "new worker host.")},
    ])


def test_rebalance_storm_workers_1_3_1_and_the_sink_leaving_and_rejoining(kafka_bootstrap, tmp_path, unique):
    run = ChaosRun(kafka_bootstrap, tmp_path, f"{unique}r", fault="rebalance storm: workers 1 -> 3 -> 1, the sink leaving and rejoining", customers=300, seed=44)
    group = run.env["TOUCHPOINT_WORKER_ID"]
    sink_group = run.env["TOUCHPOINT_SINK_GROUP"]

    def members(name: str, n: int) -> None:
        wait_until(lambda: members_holding_partitions(run.settings, name) == n, timeout=120, interval=0.5,
                   what=f"{n} members of {name} holding partitions")

    try:
        run.setup()
        run.start_worker()
        sink = run.start_sink()
        producer = run.produce(rate=30)
        run.wait_stored(300)
        run.mark("storm")
        extra = [run.start_worker(free_port())]
        members(group, 2)
        extra.append(run.start_worker(free_port()))
        members(group, 3)
        # The embedded store belongs to one process, so the sink's group changes by its one sink leaving and
        # joining again (against a server, more sinks would join: deploy/clickhouse-cluster/README.md).
        assert stop(sink) == 0
        members(sink_group, 0)
        for proc in extra:
            assert stop(proc) == 0
        members(group, 1)
        run.start_sink()
        members(sink_group, 1)
        run.mark("calm")
        assert producer.is_alive(), "the storm ended after the traffic: make the traffic longer"
        figures = run.finish(producer)
    finally:
        codes = run.close()
    assert all(code == 0 for code in codes), codes
    record(figures)
    assert_exact(figures, run.sim.truth["events"])
    t = run.timeline
    write_alert_test("rebalance_storm", run.recorder, t["complete"], [
        {"eval_time": step_at(t["storm"] - 5), "alertname": "TouchpointRebalanceStorm", "exp_alerts": []},
        {"eval_time": step_at(t["calm"] + 5), "alertname": "TouchpointRebalanceStorm", "exp_alerts": firing(
            "TouchpointRebalanceStorm", {"severity": "ticket"},
            "the worker and sink groups keep rebalancing: members joining and leaving",
            "A crash loop or a rolling deploy; every rebalance pauses consumption. Numbers stay exact.")},
    ])


def fill(path, chunk: int = 1 << 20) -> int:
    """Write a ballast file under ``path`` until the file system is full; returns the bytes written."""
    written = 0
    with open(path / "ballast", "wb") as out:
        try:
            while True:
                out.write(b"\0" * chunk)
                out.flush()
                written += chunk
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC
    return written


def test_data_directory_disk_full_clear_error_then_recovery(kafka_bootstrap, tmp_path, unique):
    """The data directory (worker state and the embedded ClickHouse) on a small tmpfs that a ballast file fills:
    the worker stops with an error naming its state directory, the sink pauses naming the store's path; once the
    space is back the sink resumes by itself and the restarted worker rebuilds its state; numbers exact."""
    import subprocess

    data = tmp_path / "data"
    data.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=192m", "tmpfs", str(data)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the disk-full fault ({mounted.stderr.strip()}): run `make chaos` as root")
    run = ChaosRun(kafka_bootstrap, tmp_path, f"{unique}d", customers=300, seed=45,
                   fault="data directory disk full (192 MiB tmpfs) 50 s, then freed")
    port = int(run.env["TOUCHPOINT_WORKER_WEB_PORT"])
    state = data / "worker" / f"{run.env['TOUCHPOINT_WORKER_ID']}-{port}"
    try:
        run.setup()
        worker = run.start_worker()
        sink = run.start_sink()
        worker_log, sink_log = run.procs[0][1], run.procs[1][1]
        producer = run.produce(rate=40)
        wait_until(lambda: progress(run.sql_port, run.db)["windows"] >= 300, timeout=180, interval=1.0,
                   what="the worker's first 300 events windowed")
        run.mark("disk full")
        fill(data)
        code = wait_until(lambda: worker.poll() is not None and (worker.returncode,), timeout=90,
                          what="the worker stopping on the full disk")[0]
        assert code == 1, worker_log.read_text()[-3000:]
        text = worker_log.read_text()
        assert f"the disk holding the worker's state directory {state.resolve()} is full" in text, text[-3000:]
        wait_until(lambda: "no disk space left" in sink_log.read_text(), timeout=60, what="the sink saying the disk is full")
        assert f"data in {data / 'clickhouse'}" in sink_log.read_text()
        run.procs.pop(0)  # the worker's exit is the expected outcome of this fault, not a failure of the run
        end = run.timeline["disk full"] + 50
        while run.recorder.now() < end:  # the fault lasts 50 s; the sink must stay up, paused
            assert sink.poll() is None, sink_log.read_text()[-3000:]
            time.sleep(1)
        (data / "ballast").unlink()
        run.mark("space back")
        run.start_worker()
        figures = run.finish(producer)
    finally:
        codes = run.close()
        subprocess.run(["umount", "-l", str(data)], check=False)
    assert codes == [0, 0], codes
    record(figures)
    assert_exact(figures, run.sim.truth["events"])
    t = run.timeline
    write_alert_test("disk_full", run.recorder, t["complete"], [
        {"eval_time": step_at(t["disk full"] - 5), "alertname": "TouchpointSinkPaused", "exp_alerts": []},
        {"eval_time": step_at(t["disk full"] + 45), "alertname": "TouchpointSinkPaused", "exp_alerts": firing(
            "TouchpointSinkPaused", {"severity": "page"},
            "the sink paused consumption: ClickHouse keeps failing inserts",
            "Lag grows while paused (touchpoint_sink_consumer_lag_messages) and drains by itself once ClickHouse "
            "accepts inserts.")},
        {"eval_time": step_at(t["complete"]), "alertname": "TouchpointSinkPaused", "exp_alerts": []},
    ])
