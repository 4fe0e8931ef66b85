"""An unreachable broker gives an error that says what is wrong and what to do (library and CLI)."""

from __future__ import annotations

import pytest

from tests.helpers import free_port, run_cli
from touchpoint.config import load_settings
from touchpoint.errors import BrokerUnavailableError, RetryableError
from touchpoint.kafka_admin import create_topics, wait_for_broker


def test_configured_cluster_unreachable_names_the_variable_and_the_fix(tmp_path) -> None:
    address = f"127.0.0.1:{free_port()}"
    settings = load_settings(kafka_bootstrap_servers=address, data_dir=tmp_path)
    with pytest.raises(BrokerUnavailableError) as info:
        wait_for_broker(settings, timeout=1.0)
    message = str(info.value)
    assert message.startswith(f"KAFKA_BOOTSTRAP_SERVERS={address} is not reachable")
    assert "touchpoint broker start" in message
    assert isinstance(info.value, RetryableError)
    with pytest.raises(BrokerUnavailableError, match="is not reachable"):
        create_topics(settings, timeout=1.0)


def test_local_broker_not_running_says_how_to_start_it(tmp_path) -> None:
    port = free_port()
    settings = load_settings(kafka_bootstrap_servers=None, local_broker_port=port, data_dir=tmp_path)
    with pytest.raises(BrokerUnavailableError) as info:
        wait_for_broker(settings, timeout=1.0)
    assert f"the local Kafka broker at 127.0.0.1:{port} is not reachable" in str(info.value)
    assert "`touchpoint broker start`" in str(info.value) and "KAFKA_BOOTSTRAP_SERVERS" in str(info.value)


def test_cli_exits_1_with_the_message(tmp_path) -> None:
    address = f"127.0.0.1:{free_port()}"
    result = run_cli("topics", "create", "--timeout", "1", env={"KAFKA_BOOTSTRAP_SERVERS": address,
                                                                "TOUCHPOINT_DATA_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert f"KAFKA_BOOTSTRAP_SERVERS={address} is not reachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_bad_config_value_exits_2_naming_the_variable(tmp_path) -> None:
    result = run_cli("topics", "list", env={"TOUCHPOINT_TOPIC_PARTITIONS": "lots", "TOUCHPOINT_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2  # a configuration mistake is a usage error
    assert "TOUCHPOINT_TOPIC_PARTITIONS" in result.stderr
    assert "Traceback" not in result.stderr
