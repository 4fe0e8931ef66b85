"""A second `touchpoint run` on a data directory whose embedded store another process holds is refused with the
right advice: which process holds it and how to stop it (before: "Cannot lock file ..." and the hint to check
that CLICKHOUSE_DSN points at a reachable ClickHouse)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.integration

HOLD = """
import sys
import chdb.session
session = chdb.session.Session(sys.argv[1])
session.query("SELECT 1")
print("holding", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


def test_second_run_names_the_process_holding_the_store(kafka_bootstrap: str, tmp_path: Path, unique: str) -> None:
    store = (tmp_path / "clickhouse").resolve()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(store)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding", holder.stderr
        done = run_cli("run", env={"TOUCHPOINT_DATA_DIR": str(tmp_path), "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                                   "TOUCHPOINT_TOPIC_PREFIX": f"tp{unique}"}, timeout=120)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"in use by process {holder.pid}" in done.stderr and f"kill {holder.pid}" in done.stderr, done.stderr
    assert "TOUCHPOINT_DATA_DIR" in done.stderr
    assert "reachable ClickHouse" not in done.stderr and "Cannot lock" not in done.stderr
