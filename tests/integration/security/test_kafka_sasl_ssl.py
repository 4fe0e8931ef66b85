"""Kafka security for real: the whole pipeline through a SASL_SSL listener (SCRAM-SHA-512, TLS from a test CA),
and the three usual mistakes refused within seconds with a message that names the setting to fix."""

from __future__ import annotations

import signal
import time

import pytest

from tests.helpers import run_cli
from tests.integration.e2e.helpers import namespace_env, report, start, stop, wait_complete
from tests.integration.security.conftest import SecureBroker
from touchpoint.cli.demo_check import compare
from touchpoint.producers.simulator import SimulationConfig, simulate, write_jsonl

pytestmark = pytest.mark.slow

# What each mistake changes in the correct settings, and the variable its message must name.
MISTAKES = {
    "wrong password": ({"TOUCHPOINT_KAFKA_SASL_PASSWORD": "not-the-password"}, "TOUCHPOINT_KAFKA_SASL_PASSWORD"),
    "unknown CA": ({"TOUCHPOINT_KAFKA_SSL_CA_LOCATION": "{other_ca}"}, "TOUCHPOINT_KAFKA_SSL_CA_LOCATION"),
    "PLAINTEXT client": ({"TOUCHPOINT_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
                          "TOUCHPOINT_KAFKA_SSL_CA_LOCATION": ""}, "TOUCHPOINT_KAFKA_SECURITY_PROTOCOL"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_a_wrong_security_setting_is_refused_quickly_naming_the_setting(secure_broker: SecureBroker, tmp_path,
                                                                       unique, mistake):
    change, variable = MISTAKES[mistake]
    env = {**namespace_env(secure_broker.bootstrap, tmp_path, unique), **secure_broker.env()}
    env.update({k: v.format(other_ca=secure_broker.tls.other_ca) for k, v in change.items()})
    env = {k: v for k, v in env.items() if v != ""}
    for command in (["topics", "create"], ["worker"]):
        began = time.monotonic()
        done = run_cli(*command, env=env, timeout=60)
        took = time.monotonic() - began
        output = done.stdout + done.stderr
        assert done.returncode == 1, output
        assert variable in output, output
        assert "Traceback" not in output, output
        assert secure_broker.password not in output
        assert took < 20, f"`touchpoint {' '.join(command)}` took {took:.1f}s to refuse ({mistake})"


def test_produce_worker_sink_query_through_sasl_ssl_are_exact(secure_broker: SecureBroker, tmp_path, unique):
    sim = simulate(SimulationConfig(customers=150, seed=17))
    events = tmp_path / "events.jsonl"
    with events.open("w", encoding="utf-8") as out:
        write_jsonl(sim.arrived, out)
    env = {**namespace_env(secure_broker.bootstrap, tmp_path / "run", unique), **secure_broker.env()}
    created = run_cli("topics", "create", env=env)  # admin through the secured listener too
    assert created.returncode == 0, created.stdout + created.stderr
    log = tmp_path / "run.log"
    run = start(["run"], env, log)
    try:
        produced = run_cli("produce", str(events), env=env, timeout=120)
        assert produced.returncode == 0, produced.stdout + produced.stderr
        wait_complete(env, sim.truth, procs=[run], logs=[log])
        rep = report(env)
    finally:
        assert stop(run, signal.SIGTERM) == 0, log.read_text()[-3000:]
    differ = [(c.name, c.expected, c.actual) for c in compare(rep, sim.truth) if not c.ok]
    assert not differ, f"figures that differ from the simulator's truth: {differ}"
