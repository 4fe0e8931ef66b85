"""`touchpoint run` end to end, and the same traffic through separately started stages (two workers).

Each run is a real process tree (`touchpoint run` supervising `touchpoint worker` and `touchpoint sink`) on the
session's Kafka broker, with its own topics, consumer groups, embedded ClickHouse path and ports.
"""

from __future__ import annotations

import signal

import pytest

from tests.integration.e2e.helpers import (
    comparable, namespace_env, produce_in_background, report, settings_of, start, stop, wait_complete,
)
from touchpoint.cli.demo_check import compare
from touchpoint.producers.simulator import SimulationConfig, produce, simulate

pytestmark = pytest.mark.slow

SIM = SimulationConfig(customers=600, seed=31)


@pytest.fixture(scope="module")
def sim():
    return simulate(SIM)


def assert_report_equals_truth(rep, truth):
    differ = [(c.name, c.expected, c.actual) for c in compare(rep, truth) if not c.ok]
    assert not differ, f"figures that differ from the simulator's truth: {differ}"


def test_run_then_separate_stages_with_two_workers_give_the_same_numbers(kafka_bootstrap, tmp_path, unique, sim):
    # 1. `touchpoint run`
    env_run = namespace_env(kafka_bootstrap, tmp_path / "run", f"{unique}r")
    run_log = tmp_path / "run.log"
    run = start(["run"], env_run, run_log)
    try:
        produce(sim.arrived, settings_of(env_run))
        wait_complete(env_run, sim.truth, procs=[run], logs=[run_log])
        by_run = report(env_run)
    finally:
        assert stop(run, signal.SIGTERM) == 0, run_log.read_text()[-3000:]
    assert_report_equals_truth(by_run, sim.truth)

    # 2. the stages on their own, as production runs them: two workers sharing the partitions, one sink
    env = namespace_env(kafka_bootstrap, tmp_path / "stages", f"{unique}s")
    from touchpoint.kafka_admin import create_topics
    from tests.helpers import free_port, run_cli

    create_topics(settings_of(env))
    migrated = run_cli("sink", "migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log", tmp_path / "sink.log"]
    procs = [
        start(["worker"], env, logs[0]),
        start(["worker"], {**env, "TOUCHPOINT_WORKER_WEB_PORT": str(free_port())}, logs[1]),
        start(["sink"], env, logs[2]),
    ]
    try:
        produce(sim.arrived, settings_of(env))
        wait_complete(env, sim.truth, procs=procs, logs=logs)
        by_stages = report(env)
    finally:
        codes = [stop(p) for p in procs]
    assert codes == [0, 0, 0], [log.read_text()[-2000:] for log in logs]
    a, b = comparable(by_run), comparable(by_stages)
    differ = sorted(k for k in a if a[k] != b.get(k))
    assert not differ, {k: {"run": a[k], "stages": b.get(k)} for k in differ}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_stream_loses_nothing(kafka_bootstrap, tmp_path, unique, sim, sig):
    env = namespace_env(kafka_bootstrap, tmp_path / "data", unique)
    log = tmp_path / "run.log"
    run = start(["run"], env, log)
    try:
        # traffic keeps arriving while the pipeline is stopped and restarted, as it would in production
        # ~7,300 events at 400/s: the pipeline is stopped while the producer is still sending
        sender = produce_in_background(sim.arrived, settings_of(env), rate=400)
        from tests.helpers import wait_until
        from tests.integration.e2e.helpers import progress

        port, db = int(env["TOUCHPOINT_SINK_SQL_PORT"]), env["TOUCHPOINT_CLICKHOUSE_DATABASE"]
        wait_until(lambda: progress(port, db)["raw"] > 300, timeout=180, what="the first events stored")
        before = progress(port, db)
        mid_stream = sender.is_alive()
        assert stop(run, sig) == 0, log.read_text()[-3000:]
        run = start(["run"], env, log)
        sender.join(120)
        assert not sender.errors  # type: ignore[attr-defined]
        wait_complete(env, sim.truth, procs=[run], logs=[log])
        rep = report(env)
    finally:
        assert stop(run, signal.SIGTERM) == 0, log.read_text()[-3000:]
    assert mid_stream and before["raw"] < sim.truth["events"], "the signal came after everything was stored"
    assert_report_equals_truth(rep, sim.truth)
    assert rep["totals"]["touchpoints"] == sim.truth["events"]  # nothing lost, nothing twice

