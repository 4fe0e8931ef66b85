"""Errors a newcomer meets say what is wrong and what to do, and exit 1 (2 for usage)."""

from __future__ import annotations

import pytest

from tests.helpers import free_port, free_port_pair, run_cli


def test_unreachable_broker(tmp_path):
    port = free_port()  # nothing listens there
    done = run_cli("run", env={"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}", "TOUCHPOINT_DATA_DIR": str(tmp_path)},
                   timeout=120)
    assert done.returncode == 1
    message = done.stderr
    assert f"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{port} is not reachable" in message
    assert "touchpoint broker start" in message  # what to do
    assert "Traceback" not in message


@pytest.mark.parametrize("dsn,expect", [
    ("postgres://db:5432/x", "is not a ClickHouse address"),
    ("clickhouse.example:8123", "is not a ClickHouse address"),
])
def test_wrong_dsn(kafka_bootstrap, tmp_path, dsn, expect):
    done = run_cli("run", env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "CLICKHOUSE_DSN": dsn,
                               "TOUCHPOINT_DATA_DIR": str(tmp_path)}, timeout=120)
    assert done.returncode == 2  # a settings mistake is a usage error
    assert expect in done.stderr and "CLICKHOUSE_DSN" in done.stderr and "chdb:///" in done.stderr
    assert "Traceback" not in done.stderr


def test_unreachable_clickhouse_server(kafka_bootstrap, tmp_path, unique):
    port = free_port()
    done = run_cli("run", env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                               "CLICKHOUSE_DSN": f"http://default:secret@127.0.0.1:{port}",
                               "TOUCHPOINT_TOPIC_PREFIX": f"err{unique}", "TOUCHPOINT_DATA_DIR": str(tmp_path)},
                   timeout=180)
    assert done.returncode == 1
    assert "touchpoint sink migrate" in done.stderr and f"127.0.0.1:{port}" in done.stderr
    assert "secret" not in done.stderr  # the password is never printed
    assert "Traceback" not in done.stderr.split("failed", 1)[0]


@pytest.mark.parametrize("var,value,names", [
    ("TOUCHPOINT_TOPIC_PARTITIONS", "zero", "topic_partitions"),
    ("TOUCHPOINT_PRODUCER_COMPRESSION", "brotli", "producer_compression"),
    ("TOUCHPOINT_DEAD_LETTER_MAX_RATIO", "2", "dead_letter_max_ratio"),
])
@pytest.mark.parametrize("command", [["run"], ["demo"], ["simulate", "--produce"], ["bench"]])
def test_bad_config_value(tmp_path, var, value, names, command):
    done = run_cli(*command, env={var: value, "TOUCHPOINT_DATA_DIR": str(tmp_path),
                                  "TOUCHPOINT_LOCAL_BROKER_PORT": str(free_port_pair())}, timeout=60)
    assert done.returncode == 2, done.stderr  # a settings mistake is a usage error
    assert "bad configuration" in done.stderr and names in done.stderr and var in done.stderr
    assert "Traceback" not in done.stderr


def test_usage_errors_exit_2():
    assert run_cli("simulate").returncode == 2
    done = run_cli("demo", "--customers", "many")
    assert done.returncode == 2 and "--customers" in done.stderr
    assert run_cli("run", "--workers", "0").returncode == 2


def test_more_sinks_than_the_embedded_store_allows(tmp_path):
    done = run_cli("run", "--sinks", "2", env={"TOUCHPOINT_DATA_DIR": str(tmp_path)}, timeout=60)
    assert done.returncode == 1
    assert "--sinks" in done.stderr and "CLICKHOUSE_DSN" in done.stderr
