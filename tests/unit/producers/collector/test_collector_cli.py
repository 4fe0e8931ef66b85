"""`touchpoint collect keygen` and `touchpoint collect` with a broken keys file (no broker needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from typer.testing import CliRunner

from tests.helpers import TOUCHPOINT, run_cli
from touchpoint.cli.main import app
from touchpoint.producers.collector.keys import KeyStore


def test_keygen_prints_a_key_and_an_entry_that_admits_it(tmp_path: Path):
    keys = tmp_path / "keys.toml"
    with keys.open("w") as out:
        done = subprocess.run([str(TOUCHPOINT), "collect", "keygen", "--source", "checkout-service",
                               "--event-types", "CHECKOUT", "--channels", "web,app"], stdout=out,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    key = done.stderr.split()[-1]
    assert key.startswith("tpk_") and key not in keys.read_text(), "only the digest goes to the keys file"
    allowed = KeyStore(keys).lookup(key)
    assert allowed is not None
    assert (allowed.source, allowed.event_types, allowed.channels) == ("checkout-service", {"CHECKOUT"}, {"web", "app"})


def test_keygen_refuses_an_unknown_event_type():
    result = CliRunner().invoke(app, ["collect", "keygen", "--source", "s", "--event-types", "PAGEVIEW"])
    assert result.exit_code == 2 and "PAGEVIEW unknown" in result.output


def test_a_broken_keys_file_stops_the_collector_with_what_to_fix(tmp_path: Path):
    keys = tmp_path / "keys.toml"
    keys.write_text('[[key]]\nsource = "shop"\nsha256 = "not-a-digest"\n')
    done = run_cli("collect", env={"TOUCHPOINT_COLLECTOR_KEYS_FILE": str(keys), "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"},
                   timeout=60)
    assert done.returncode == 1, done.stderr
    assert f"{keys} key entry #1: `sha256` must be 64 lower-case hex digits" in done.stderr
    assert "Traceback" not in done.stderr
