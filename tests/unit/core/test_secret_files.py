"""Secret settings from files (`*_FILE` variables, as container secrets are mounted) and never shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from touchpoint.config import load_settings
from touchpoint.errors import ConfigError


@pytest.fixture(autouse=True)
def _no_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOUCHPOINT_CONFIG", os.devnull)
    for name in ("CLICKHOUSE_DSN", "TOUCHPOINT_CLICKHOUSE_DSN", "TOUCHPOINT_KAFKA_SASL_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def test_password_and_dsn_are_read_from_files_without_the_trailing_newline(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kafka").write_text("file-s3cret\n")
    (tmp_path / "dsn").write_text("https://app:dsn-s3cret@ch.internal:8443/\r\n")
    monkeypatch.setenv("TOUCHPOINT_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "kafka"))
    monkeypatch.setenv("CLICKHOUSE_DSN_FILE", str(tmp_path / "dsn"))
    s = load_settings()
    assert s.kafka_sasl_password is not None and s.kafka_sasl_password.get_secret_value() == "file-s3cret"
    assert s.dsn == "https://app:dsn-s3cret@ch.internal:8443/"
    shown = repr(s) + str(s.redacted())
    assert "file-s3cret" not in shown and "dsn-s3cret" not in shown


def test_a_variable_set_directly_wins_over_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kafka").write_text("from-file")
    monkeypatch.setenv("TOUCHPOINT_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "kafka"))
    monkeypatch.setenv("TOUCHPOINT_KAFKA_SASL_PASSWORD", "from-env")
    s = load_settings()
    assert s.kafka_sasl_password is not None and s.kafka_sasl_password.get_secret_value() == "from-env"


def test_an_unreadable_secret_file_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOUCHPOINT_KAFKA_SSL_KEY_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="TOUCHPOINT_KAFKA_SSL_KEY_PASSWORD_FILE=.*missing cannot be read"):
        load_settings()


def test_only_secret_settings_have_file_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "prefix").write_text("from-file")
    monkeypatch.setenv("TOUCHPOINT_TOPIC_PREFIX_FILE", str(tmp_path / "prefix"))
    assert load_settings().topic_prefix == "touchpoint"
