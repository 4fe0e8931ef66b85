"""The Grafana dashboard's Prometheus queries against the real metrics (no Grafana server runs here).

Every PromQL expression is parsed by Prometheus's own parser (``promtool check rules`` on a rules file made of them),
every metric it names is in ``touchpoint.metrics.REGISTRY`` with the suffix its type exposes, every label it groups,
matches or shows in a legend is one that metric has, and every ``job`` it selects is a job of prometheus.yml.
The SQL panels are run against the analyst views by tests/integration/analyst/test_dashboard_sql.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from touchpoint.metrics import REGISTRY

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
DASHBOARD = json.loads((DEPLOY / "grafana" / "dashboards" / "touchpoint.json").read_text())
JOBS = [job["job_name"] for job in yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]]
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def metrics() -> dict[str, tuple[str, set[str]]]:
    """Every metric of the registry: name -> (type, label names)."""
    out = {}
    for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001 - the registry has no public listing
        labels = set(getattr(collector, "_labelnames", ()))
        for family in collector.describe():
            out[family.name] = (family.type, labels)
    return out


def prometheus_targets() -> list[tuple[str, dict]]:
    return [(panel["title"], target) for panel in DASHBOARD["panels"] for target in panel["targets"]
            if target.get("datasource", panel.get("datasource", {})).get("type") == "prometheus"]


def test_the_dashboard_has_prometheus_panels():
    assert len(prometheus_targets()) >= 12


def test_prometheus_parses_every_expression(tmp_path):
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: install Debian's `prometheus` package (deploy/local/bootstrap.sh does)"
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:target_{i}", "expr": target["expr"]} for i, (_, target) in enumerate(prometheus_targets())]}]}
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump(rules))
    done = subprocess.run([tool, "check", "rules", str(tmp_path / "dashboard.yml")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("title,target", prometheus_targets(), ids=lambda x: x if isinstance(x, str) else "")
def test_metrics_labels_and_legends_exist(title, target):
    known = metrics()
    expr = target["expr"]
    used: dict[str, set[str]] = {}
    for name in re.findall(r"\btouchpoint_[a-z0-9_]+", expr):
        base = next((b for b in known if name.startswith(b) and name[len(b):] in SUFFIXES[known[b][0]]), None)
        assert base is not None, f"{title}: {name} is not a metric of touchpoint/metrics.py (with its type's suffix)"
        labels = set(known[base][1]) | ({"le"} if name.endswith("_bucket") else set())
        used[name] = labels
    for name, matchers in re.findall(r"\b(touchpoint_[a-z0-9_]+)\{([^}]*)\}", expr):
        for label in re.findall(r"([a-z_]+)\s*[=!]~?", matchers):
            assert label in used[name] | {"job", "instance"}, f"{title}: {name} has no label {label}"
    all_labels = set().union(*used.values()) | {"job", "instance"} if used else {"job", "instance"}
    grouped: set[str] | None = None
    for group in re.findall(r"\bby\s*\(([^)]*)\)", expr):
        labels = {x.strip() for x in group.split(",") if x.strip()}
        assert labels <= all_labels, f"{title}: groups by {sorted(labels - all_labels)}, which no metric of it has"
        grouped = labels if grouped is None else grouped
    aggregated = re.match(r"\s*(histogram_quantile\(\s*[0-9.]+\s*,\s*)?(sum|avg|max|min|count)\b", expr)
    visible = (grouped or set()) - {"le"} if aggregated else all_labels
    for label in re.findall(r"\{\{\s*([a-z_]+)\s*\}\}", target.get("legendFormat", "")):
        assert label in visible, f"{title}: legend shows {label}, which the query does not keep"
    for regex in re.findall(r'job=~"([^"]+)"', expr):
        matched = [job for job in JOBS if re.fullmatch(regex, job)]
        assert {"touchpoint-worker", "touchpoint-sink"} <= set(matched), f"{title}: job=~{regex} selects {matched}"
    for job in re.findall(r'job="([^"]+)"', expr):
        assert job in JOBS, f"{title}: no scrape job {job}"
