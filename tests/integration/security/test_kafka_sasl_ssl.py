"""Kafka security for real: the whole pipeline through a SASL_SSL listener (SCRAM-SHA-512, TLS from a test CA),
and the three usual mistakes refused within seconds with a message that names the setting to fix."""

from __future__ import annotations

import signal
import time
import urllib.request

import pytest

from tests.helpers import run_cli, wait_until
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


def _help_texts(env: dict[str, str]) -> str:
    """`--help` of every command and sub-command."""
    commands = [[], ["broker"], ["topics"], ["schemas"], ["sink"], ["produce"], ["simulate"], ["worker"], ["query"],
                ["report"], ["run"], ["demo"], ["bench"], ["topics", "create"], ["sink", "migrate"]]
    return "".join(run_cli(*c, "--help", env=env).stdout for c in commands)


def test_pipeline_through_sasl_ssl_is_exact_and_never_shows_the_password(secure_broker: SecureBroker, tmp_path,
                                                                          unique):
    sim = simulate(SimulationConfig(customers=150, seed=17))
    events = tmp_path / "events.jsonl"
    with events.open("w", encoding="utf-8") as out:
        write_jsonl(sim.arrived, out)
    env = {**namespace_env(secure_broker.bootstrap, tmp_path / "run", unique), **secure_broker.env()}
    # The password as a container secret: a file named by the _FILE variable (the stages inherit it).
    secret = tmp_path / "kafka-password"
    secret.write_text(env.pop("TOUCHPOINT_KAFKA_SASL_PASSWORD") + "\n")
    env["TOUCHPOINT_KAFKA_SASL_PASSWORD_FILE"] = str(secret)
    outputs: list[str] = []

    created = run_cli("topics", "create", env=env)  # admin through the secured listener too
    outputs.append(created.stdout + created.stderr)
    assert created.returncode == 0, outputs[-1]
    log = tmp_path / "run.log"
    run = start(["run"], env, log)
    try:
        produced = run_cli("produce", str(events), env=env, timeout=120)
        outputs.append(produced.stdout + produced.stderr)
        assert produced.returncode == 0, outputs[-1]
        wait_complete(env, sim.truth, procs=[run], logs=[log])
        rep = report(env)
        for port in (env["TOUCHPOINT_WORKER_WEB_PORT"], env["TOUCHPOINT_SINK_METRICS_PORT"]):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
                outputs.append(response.read().decode())
        wait_until(lambda: "events in" in log.read_text(), timeout=30, what="a status line of `touchpoint run`")
    finally:
        assert stop(run, signal.SIGTERM) == 0, log.read_text()[-3000:]
    differ = [(c.name, c.expected, c.actual) for c in compare(rep, sim.truth) if not c.ok]
    assert not differ, f"figures that differ from the simulator's truth: {differ}"

    # A crash: the sink fails inside an insert with an unexpected error and prints its traceback.
    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / "crash_before_insert").touch()
    crashed = run_cli("sink", env={**env, "TOUCHPOINT_SINK_FAULT_DIR": str(faults), "TOUCHPOINT_SINK_GROUP": f"{unique}-crash",
                                   "TOUCHPOINT_CLICKHOUSE_DATABASE": f"{unique}_crash", "TOUCHPOINT_SINK_SQL_PORT": "0"},
                      timeout=120)
    outputs.append(crashed.stdout + crashed.stderr)
    assert crashed.returncode != 0 and "forced crash" in outputs[-1] and "Traceback" in outputs[-1], outputs[-1]
    outputs.append(_help_texts(env))

    logs = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".log", ".out", ".txt")]
    names = {p.name for p in logs}
    assert "run.log" in names and {"worker-0.log", "sink-0.log"} <= names, names  # `run` and its stages' own logs
    texts = {str(p): p.read_text(errors="replace") for p in logs}
    texts.update({f"output {i}": text for i, text in enumerate(outputs)})
    leaked = sorted(name for name, text in texts.items() if secure_broker.password in text)
    assert not leaked, f"the Kafka password appears in {leaked}"
