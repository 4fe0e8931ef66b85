"""deploy/ stays true to the code: settings, commands, ports and metric names it uses exist; promtool accepts it.

No Docker engine or Kubernetes runs here, so this is what keeps compose and the manifests exact.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from touchpoint.cli.main import app
from touchpoint.config import Settings
from touchpoint.metrics import REGISTRY

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
K8S = [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]
DEFAULTS = Settings.model_construct()


def setting_env_names() -> dict[str, str]:
    """Every environment variable Settings reads -> field name."""
    names: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        names[f"TOUCHPOINT_{name.upper()}"] = name
        alias = field.validation_alias
        for choice in getattr(alias, "choices", []) or []:
            if isinstance(choice, str) and choice.isupper():
                names[choice] = name
    return names


def pipeline_services() -> dict[str, dict]:
    return {name: svc for name, svc in COMPOSE["services"].items() if str(svc.get("image", "")).startswith("touchpoint")}


def k8s_containers() -> list[dict]:
    out = []
    for doc in K8S:
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        out += spec.get("containers", []) + spec.get("initContainers", [])
    return out


def compose_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for svc in pipeline_services().values():
        env.update({k: str(v) for k, v in (svc.get("environment") or {}).items()})
    return env


def k8s_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for doc in K8S:
        if doc["metadata"]["name"] not in ("touchpoint-settings", "touchpoint-secrets"):
            continue  # not an environment source (e.g. the collector's keys file, mounted as a file)
        if doc["kind"] == "ConfigMap":
            env.update(doc["data"])
        if doc["kind"] == "Secret":
            env.update(doc.get("stringData", {}))
    return env


@pytest.mark.parametrize("source", ["compose", "k8s"])
def test_every_variable_is_a_setting_with_a_valid_value(source):
    env = compose_env() if source == "compose" else k8s_env()
    known = setting_env_names()
    assert env, "no pipeline environment found"
    unknown = sorted(set(env) - set(known))
    assert not unknown, f"{source} sets variables that are not Settings fields: {unknown}"
    # the values load as Settings (types and validators pass)
    Settings(**{known[k]: v for k, v in env.items()})


def commands() -> set[tuple[str, ...]]:
    found = set()
    for svc in pipeline_services().values():
        found.add(tuple(svc["command"]))
    for container in k8s_containers():
        found.add(tuple(container["command"]))
    return found


def test_every_command_exists_in_the_cli():
    runner = CliRunner()
    cmds = commands()
    assert ("touchpoint", "worker") in cmds and ("touchpoint", "sink") in cmds
    for cmd in cmds:
        assert cmd[0] == "touchpoint"
        words = [w for w in cmd[1:] if not w.startswith("-")]
        words = [w for w in words if not w.isdigit()]
        result = runner.invoke(app, [*words, "--help"])
        assert result.exit_code == 0, f"`{' '.join(cmd)}`: {result.output}"
        options = [w.split("=")[0] for w in cmd[1:] if w.startswith("--")]
        for option in options:
            assert option in result.output, f"`{' '.join(cmd)}` uses {option}, which `--help` does not list"


def test_ports_match_the_settings_defaults():
    worker_port, sink_port = DEFAULTS.worker_web_port, DEFAULTS.sink_metrics_port
    services = pipeline_services()
    assert services["worker"]["environment"]["TOUCHPOINT_WORKER_WEB_PORT"] == str(worker_port)
    assert services["worker"]["expose"] == [str(worker_port)]
    assert services["sink"]["environment"]["TOUCHPOINT_SINK_METRICS_PORT"] == str(sink_port)
    assert services["sink"]["expose"] == [str(sink_port)]
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    ports = {job["job_name"]: job["dns_sd_configs"][0]["port"] for job in prom["scrape_configs"] if "dns_sd_configs" in job}
    collector_port = DEFAULTS.collector_port
    assert services["collector"]["environment"]["TOUCHPOINT_COLLECTOR_PORT"] == str(collector_port)
    assert ports == {"touchpoint-worker": worker_port, "touchpoint-sink": sink_port, "touchpoint-collector": collector_port}
    cm = k8s_env()
    assert cm["TOUCHPOINT_WORKER_WEB_PORT"] == str(worker_port) and cm["TOUCHPOINT_SINK_METRICS_PORT"] == str(sink_port)
    for doc in K8S:
        annotations = doc.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations", {})
        if "prometheus.io/port" in annotations:
            name = doc["metadata"]["name"]
            expected = worker_port if "worker" in name else collector_port if "collector" in name else sink_port
            assert annotations["prometheus.io/port"] == str(expected)


def test_every_pipeline_service_is_scraped():
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    scraped = {cfg["names"][0] for job in prom["scrape_configs"] for cfg in job.get("dns_sd_configs", [])}
    long_running = {name for name, svc in pipeline_services().items() if svc.get("restart") != "no"}
    assert long_running == scraped == {"worker", "sink", "collector"}


def registry_names() -> set[str]:
    names = set()
    for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001 - the registry has no public listing
        for metric in collector.describe():
            names.add(metric.name)
    return names


def metric_names_in(text: str) -> set[str]:
    found = set(re.findall(r"touchpoint_[a-z_]+", text))
    return {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in found}


def test_alerts_and_dashboard_use_real_metrics():
    known = registry_names()
    alerts = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "touchpoint.json").read_text())
    exprs = " ".join(t.get("expr", "") for p in dashboard["panels"] for t in p["targets"])
    for where, text in (("alerts.yml", alerts), ("dashboard", exprs)):
        used = metric_names_in(text) - {"touchpoint_worker", "touchpoint_sink"}
        assert used, where
        assert used <= known, f"{where} uses unknown metrics {sorted(used - known)}"
    rules = yaml.safe_load(alerts)["groups"][0]["rules"]
    alert_text = " ".join(r["expr"] for r in rules)
    for required in ("touchpoint_stream_dead_letters_total", "touchpoint_sink_consumer_lag_messages",
                     'up{job="touchpoint-worker"}', "touchpoint_sink_insert_failures_total"):
        assert required in alert_text


def _promtool() -> str:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: install Debian's `prometheus` package (deploy/local/bootstrap.sh does)"
    return tool


def test_promtool_accepts_the_rules():
    done = subprocess.run([_promtool(), "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_config(tmp_path):
    # The config names the rules file by its in-container path; check it with the path pointing here.
    config = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    assert "/etc/prometheus/alerts.yml" in config
    (tmp_path / "prometheus.yml").write_text(config.replace("/etc/prometheus/alerts.yml", str(DEPLOY / "prometheus" / "alerts.yml")))
    done = subprocess.run([_promtool(), "check", "config", str(tmp_path / "prometheus.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_mounts_what_exists():
    for name in ("prometheus", "grafana"):
        for volume in COMPOSE["services"][name]["volumes"]:
            local = volume.split(":")[0]
            assert (DEPLOY / local).exists(), f"{name} mounts {local}, which deploy/ does not have"
    dockerfile = COMPOSE["x-pipeline"]["build"]["dockerfile"]
    assert (ROOT / dockerfile).exists()
    kafka = COMPOSE["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:4.")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert compose_env()["KAFKA_BOOTSTRAP_SERVERS"] == kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"].split("//")[1]
