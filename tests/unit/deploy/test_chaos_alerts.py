"""Each fault of the chaos suite has its alert, proven by `promtool test rules` on the series recorded during that
fault by `make chaos` (deploy/prometheus/chaos/*.yml): the alert is silent before the fault and fires during it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

CHAOS = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "chaos"
FAULT_ALERTS = {
    "clickhouse_unavailable_60s": "TouchpointSinkPaused",
    "broker_sigkill_restart": "TouchpointKafkaUnreachable",
    "worker_state_deleted": "TouchpointWorkerStateRebuilt",
    "rebalance_storm": "TouchpointRebalanceStorm",
    "disk_full": "TouchpointSinkPaused",  # and TouchpointWorkerDown if the stopped worker is not restarted in 2 min
}


@pytest.mark.parametrize("fault", sorted(FAULT_ALERTS))
def test_the_alert_of_each_fault_fires_on_its_recorded_series(fault):
    path = CHAOS / f"{fault}.yml"
    assert path.exists(), f"{path} missing: run `make chaos` (it records the series of every fault)"
    doc = yaml.safe_load(path.read_text())
    checks = doc["tests"][0]["alert_rule_test"]
    assert {c["alertname"] for c in checks} == {FAULT_ALERTS[fault]}
    assert checks[0]["exp_alerts"] == [] and any(c["exp_alerts"] for c in checks)  # silent before, firing during
    assert len(doc["tests"][0]["input_series"]) >= 3  # recorded, not typed in
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: install Debian's `prometheus` package (deploy/local/bootstrap.sh does)"
    done = subprocess.run([tool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
