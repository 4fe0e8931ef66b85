"""The README's demo command, run as a user would: a fresh copy of the repository, a fresh virtual environment,
`make demo`. It must exit 0, say every figure matches, and the numbers in its store must equal the simulator's truth.

Heavy (a virtual environment from scratch, its own Kafka broker): marked slow. pip's wheel cache and the Kafka jar
cache (~/.cache) are shared with the machine, as a returning user's would be, which keeps it to a few minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import free_port, free_port_pair
from touchpoint.cli.demo_check import compare
from touchpoint.producers.simulator import SimulationConfig, simulate

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]


def fresh_clone(dest: Path) -> Path:
    """The files a clone of this tree has: tracked plus not-ignored new files (what the next commit holds)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def test_make_demo_in_a_fresh_clone(tmp_path):
    clone = fresh_clone(tmp_path / "touchpoint-pipeline")
    assert not (clone / ".venv").exists() and (clone / "Makefile").exists()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TOUCHPOINT_") and k not in ("KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_DSN", "VIRTUAL_ENV")}
    # only the ports differ from a user's machine: tests share it, so nothing may sit on the default ports
    env.update({
        "TOUCHPOINT_LOCAL_BROKER_PORT": str(free_port_pair()),
        "TOUCHPOINT_WORKER_WEB_PORT": str(free_port()),
        "TOUCHPOINT_SINK_METRICS_PORT": str(free_port()),
        "TOUCHPOINT_SINK_SQL_PORT": str(free_port()),
        "COLUMNS": "200",
        "PATH": ":".join(p for p in env.get("PATH", "").split(":") if "/.venv/" not in p),
    })
    try:
        done = subprocess.run(["make", "demo"], cwd=clone, env=env, capture_output=True, text=True, timeout=900,
                              stdin=subprocess.DEVNULL)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-6000:]
        assert "figures match the simulator's truth" in output and "DIFFERS" not in output, output[-6000:]

        # Independently: the store the demo left behind holds exactly the truth of the default simulation.
        probe = (
            "import json, clickhouse_connect\n"
            "from touchpoint.config import load_settings\n"
            "from touchpoint.sinks.report import build_report\n"
            "c = clickhouse_connect.get_client(dsn=load_settings().dsn)\n"
            "dbs = [r[0] for r in c.query(\"SELECT name FROM system.databases WHERE name LIKE 'demo_%' ORDER BY name\").result_rows]\n"
            "print(json.dumps(build_report(c, dbs[-1]), default=str))\n"
        )
        read = subprocess.run([str(clone / ".venv" / "bin" / "python"), "-c", probe], cwd=clone, env=env,
                              capture_output=True, text=True, timeout=300)
        assert read.returncode == 0, read.stderr[-3000:]
        report = json.loads(read.stdout.strip().splitlines()[-1])
        truth = simulate(SimulationConfig(customers=2_000, seed=1)).truth
        differ = [(c.name, c.expected, c.actual) for c in compare(report, truth) if not c.ok]
        assert not differ, differ
    finally:
        touchpoint = clone / ".venv" / "bin" / "touchpoint"
        if touchpoint.exists():
            subprocess.run([str(touchpoint), "broker", "stop"], cwd=clone, env=env, capture_output=True, timeout=120)
