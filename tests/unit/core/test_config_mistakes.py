"""Configuration mistakes a new user makes: each is one line naming the setting, its source and what to do; the CLI
exits 2 without a traceback, and every command refuses the same mistake the same way.

On the code before this test, a malformed TOML file raised TOMLDecodeError with a traceback, a TOUCHPOINT_CONFIG
that does not exist (or is a directory) was silently ignored, `query`, `report` and `sink migrate` accepted an
ftp:// DSN (falling back to a default server), both CLICKHOUSE_DSN variables set made one silently win, and
TOUCHPOINT_TOPIC_PARTITIONS=1000000 was accepted (and ended in a traceback later).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from touchpoint.config import load_settings
from touchpoint.errors import ConfigError

_ENTRY = "import sys; sys.argv[0] = 'touchpoint'; from touchpoint.cli.main import main; main()"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No configuration from the developer's shell or working directory leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("TOUCHPOINT_") or name in ("KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_DSN"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def touchpoint(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("TOUCHPOINT_") and k not in ("KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_DSN")}
    # A port nothing listens on: `run` must stop at the configuration, long before it looks for a broker.
    clean.update({"TOUCHPOINT_DATA_DIR": str(cwd / "data"), "COLUMNS": "400"}, **env)
    return subprocess.run([sys.executable, "-c", _ENTRY, *args], env=clean, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def assert_usage_error(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    err = done.stderr.strip()
    assert done.returncode == 2, (done.returncode, done.stdout, err)
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    for text in expected:
        assert text in err, (text, err)
    return err


def test_malformed_toml_names_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "touchpoint-prod.toml"
    config.write_text('topic_prefix = "acme"\nsink_batch_rows = 5000\nclickhouse_dsn = "http://ch:8123\n')
    done = touchpoint("query", "SELECT 1", env={"TOUCHPOINT_CONFIG": str(config)}, cwd=tmp_path)
    assert_usage_error(done, str(config), "line 3", "not valid TOML")


def test_malformed_default_config_file_is_reported_too(tmp_path: Path) -> None:
    (tmp_path / "touchpoint.toml").write_text("topic_prefix = acme\n")
    with pytest.raises(ConfigError, match=r"touchpoint\.toml.*line 1"):
        load_settings()


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_explicit_config_path_must_be_a_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / ("nope.toml" if kind == "missing" else "confdir")
    if kind == "directory":
        path.mkdir()
    done = touchpoint("report", env={"TOUCHPOINT_CONFIG": str(path)}, cwd=tmp_path)
    assert_usage_error(done, f"TOUCHPOINT_CONFIG={path}", "no such file" if kind == "missing" else "is a directory")


def test_empty_config_variable_means_the_default_file(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    monkeypatch.setenv("TOUCHPOINT_CONFIG", "")
    (clean_env / "touchpoint.toml").write_text('topic_prefix = "cwd"\n')
    assert load_settings().topic_prefix == "cwd"


@pytest.mark.parametrize("command", [("query", "SELECT 1"), ("report",), ("sink", "migrate"), ("run",)])
def test_bad_dsn_scheme_is_refused_by_every_command(tmp_path: Path, command: tuple[str, ...]) -> None:
    done = touchpoint(*command, env={"CLICKHOUSE_DSN": "ftp://reader:s3cret@files.example:21/x"}, cwd=tmp_path)
    err = assert_usage_error(done, "clickhouse_dsn", "environment variable CLICKHOUSE_DSN", "chdb:///", "http(s)://")
    assert "s3cret" not in err
    assert "8123" not in err.split("http(s)://")[0]  # no silent fallback to a default server


def test_bad_dsn_in_file_names_the_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('topic_prefix = "acme"\n\nclickhouse_dsn = "mysql://db:3306"\n')
    monkeypatch.setenv("TOUCHPOINT_CONFIG", str(config))
    with pytest.raises(ConfigError, match=rf"clickhouse_dsn=mysql://db:3306 \(from {config} line 3\)"):
        load_settings()


@pytest.mark.parametrize(("plain", "prefixed", "good"), [
    ("CLICKHOUSE_DSN", "TOUCHPOINT_CLICKHOUSE_DSN", "http://ch:8123"),
    ("KAFKA_BOOTSTRAP_SERVERS", "TOUCHPOINT_KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092"),
])
def test_both_variables_of_a_pair_set_differently_is_an_error(monkeypatch: pytest.MonkeyPatch, plain: str,
                                                              prefixed: str, good: str) -> None:
    monkeypatch.setenv(plain, good)
    monkeypatch.setenv(prefixed, "mysql://other" if "DSN" in plain else "kafka-2:9092")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert plain in str(info.value) and prefixed in str(info.value) and "unset one" in str(info.value)

    monkeypatch.setenv(prefixed, good)  # the same value under both names is fine
    settings = load_settings()
    assert (settings.dsn if "DSN" in plain else settings.bootstrap_servers) == good


@pytest.mark.parametrize("variable", ["CLICKHOUSE_DSN", "TOUCHPOINT_CLICKHOUSE_DSN"])
def test_bad_dsn_error_names_the_variable_that_holds_it(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "mysql://db:3306")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert f"environment variable {variable}" in str(info.value)
    assert f"correct or unset {variable}" in str(info.value)


def test_absurd_partition_count_is_a_clear_error(tmp_path: Path) -> None:
    done = touchpoint("topics", "create", env={"TOUCHPOINT_TOPIC_PARTITIONS": "1000000"}, cwd=tmp_path)
    assert_usage_error(done, "topic_partitions=1000000", "environment variable TOUCHPOINT_TOPIC_PARTITIONS", "10000")
