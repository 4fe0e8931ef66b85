"""`touchpoint privacy erase` without anyone to erase is a usage error (exit 2, no traceback, nothing sent)."""

from __future__ import annotations

from tests.helpers import run_cli


def test_erase_without_ids_is_a_usage_error() -> None:
    done = run_cli("privacy", "erase", env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--customer ID" in done.stderr and "Traceback" not in done.stderr
