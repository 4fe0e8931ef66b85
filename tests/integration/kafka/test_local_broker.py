"""The local Kafka broker: `touchpoint broker start|stop|status` on free ports, a real produce/consume round trip,
and the Python API other code uses (ensure_broker, LocalBroker)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from tests.helpers import free_port_pair, run_cli, wait_until
from touchpoint.config import load_settings
from touchpoint.errors import BrokerUnavailableError
from touchpoint.kafka_admin import TOPICS, create_topics
from touchpoint.local_broker import LocalBroker, broker_for, ensure_broker


def _round_trip(bootstrap: str, topic: str, n: int = 100) -> None:
    """Produce n keyed records with acks=all and read the same records back, in order per partition."""
    sent = [(f"customer-{i % 7}".encode(), f"value-{i}".encode()) for i in range(n)]
    delivered: list[str] = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for key, value in sent:
        producer.produce(topic, value=value, key=key,
                         on_delivery=lambda err, msg: delivered.append("ok" if err is None else str(err)))
    assert producer.flush(30) == 0
    assert delivered == ["ok"] * n

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{topic}", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    received: list[tuple[bytes, bytes]] = []
    try:
        def all_read() -> int:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                received.append((msg.key(), msg.value()))
            return len(received) >= n and len(received)

        wait_until(all_read, timeout=60, what=f"{n} records back from {topic}")
    finally:
        consumer.close()
    assert sorted(received) == sorted(sent)
    for key in {k for k, _ in sent}:  # one key -> one partition -> produce order kept
        assert [v for k, v in received if k == key] == [v for k, v in sent if k == key]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_broker_cli_start_status_stop_with_round_trip(tmp_path: Path, unique: str) -> None:
    port = free_port_pair()
    env = {"TOUCHPOINT_DATA_DIR": str(tmp_path), "TOUCHPOINT_LOCAL_BROKER_PORT": str(port),
           "TOUCHPOINT_TOPIC_PREFIX": f"tp{unique}"}
    broker = LocalBroker(tmp_path / "kafka", port)
    try:
        before = run_cli("broker", "status", env=env)
        assert before.returncode == 1, before.stdout + before.stderr
        assert "not running" in before.stdout

        started = run_cli("broker", "start", env=env)
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"running on 127.0.0.1:{port}" in started.stdout
        assert _port_open(port)
        # Logging is configured: the broker's log is in the data dir and nothing complains about log4j.
        assert (tmp_path / "kafka" / "logs" / "server.log").read_text().count("Kafka Server started") == 1
        assert "log4j" not in (tmp_path / "kafka" / "logs" / "kafka.out").read_text().lower()

        status = run_cli("broker", "status", env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        pid = broker.status().pid
        assert pid is not None
        assert f"Kafka 4.1.1 running on 127.0.0.1:{port} (pid {pid})" in status.stdout

        again = run_cli("broker", "start", env=env)
        assert again.returncode == 0 and "Already running" in again.stdout
        assert broker.status().pid == pid  # no second broker

        topics = run_cli("topics", "create", env=env)
        assert topics.returncode == 0, topics.stdout + topics.stderr
        _round_trip(f"127.0.0.1:{port}", f"tp{unique}.events")

        stopped = run_cli("broker", "stop", env=env)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert "Stopped" in stopped.stdout
        assert not broker.is_running()
        assert not _port_open(port)
        after = run_cli("broker", "status", env=env)
        assert after.returncode == 1 and "not running" in after.stdout
    finally:
        broker.stop()


def test_broker_commands_start_nothing_when_a_cluster_is_configured(tmp_path: Path, kafka_bootstrap: str) -> None:
    env = {"TOUCHPOINT_DATA_DIR": str(tmp_path), "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    for command in ("start", "stop"):
        result = run_cli("broker", command, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"external Kafka cluster is configured (KAFKA_BOOTSTRAP_SERVERS={kafka_bootstrap})" in result.stdout
    status = run_cli("broker", "status", env=env)
    assert status.returncode == 0 and f"{kafka_bootstrap} is reachable" in status.stdout
    assert not (tmp_path / "kafka").exists()


def test_ensure_broker_starts_the_local_broker_once_and_reuses_it(tmp_path: Path, unique: str) -> None:
    port = free_port_pair()
    settings = load_settings(data_dir=tmp_path, local_broker_port=port, topic_prefix=f"tp{unique}",
                             kafka_bootstrap_servers=None)
    broker = LocalBroker(tmp_path / "kafka", port)
    try:
        assert ensure_broker(settings, output=None) == f"127.0.0.1:{port}"
        pid = broker.status().pid
        assert pid is not None
        assert ensure_broker(settings, output=None) == f"127.0.0.1:{port}"
        assert broker.status().pid == pid
        report = create_topics(settings)
        assert len(report.created) == 5
        _round_trip(settings.bootstrap_servers, settings.journeys_topic, n=20)
        with broker_for(settings, output=None) as bootstrap:  # already running: left running
            assert bootstrap == settings.bootstrap_servers
        assert broker.status().pid == pid
    finally:
        assert broker.stop() is True
    assert not broker.is_running()
    with broker_for(settings, output=None):  # started here: stopped on exit, data kept
        assert broker.is_running()
        assert create_topics(settings).existing == [settings.topic(spec.name) for spec in TOPICS]
    assert not broker.is_running()


def test_ensure_broker_uses_the_configured_cluster_without_starting_anything(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, kafka_bootstrap_servers="kafka-1.example:9092,kafka-2.example:9092")
    assert ensure_broker(settings, output=None) == "kafka-1.example:9092,kafka-2.example:9092"
    assert not (tmp_path / "kafka").exists()


def test_start_on_a_busy_port_fails_clearly(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broker = LocalBroker(tmp_path / "kafka", port)
        with pytest.raises(BrokerUnavailableError, match=f"port {port} on 127.0.0.1 is already in use"):
            broker.start(timeout=30, output=None)
    assert not broker.is_running()
