"""deploy/clickhouse-cluster/ stays consistent: its settings exist, its cluster is the one the pipeline names, every
replica is a service with its own shard/replica macros, and the sinks run as a group of two."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from touchpoint.config import Settings

HERE = Path(__file__).resolve().parents[3] / "deploy" / "clickhouse-cluster"
COMPOSE = yaml.safe_load((HERE / "docker-compose.cluster.yml").read_text())
CONFIG = ET.parse(HERE / "config.d" / "cluster.xml").getroot()


def test_pipeline_variables_are_settings_and_name_the_configured_cluster():
    fields = {f"TOUCHPOINT_{name.upper()}" for name in Settings.model_fields}
    services = COMPOSE["services"]
    for name in ("migrate", "worker", "sink"):
        env = services[name]["environment"]
        assert {k for k in env if k.startswith("TOUCHPOINT_")} <= fields, name
        assert env["TOUCHPOINT_CLICKHOUSE_CLUSTER"] == "two_shards"
        assert env["CLICKHOUSE_DSN"].split("@")[1].split(":")[0] in services
    assert services["sink"]["deploy"]["replicas"] == 2
    assert services["migrate"]["command"] == ["touchpoint", "sink", "migrate"]


def test_two_shards_of_two_replicas_each_a_service_with_its_own_macros():
    shards = CONFIG.findall("./remote_servers/two_shards/shard")
    assert len(shards) == 2
    services = COMPOSE["services"]
    seen = set()
    for number, shard in enumerate(shards, start=1):
        assert shard.findtext("internal_replication") == "true"
        hosts = [r.findtext("host") for r in shard.findall("replica")]
        assert len(hosts) == 2
        for host in hosts:
            env = services[host]["environment"]
            assert env["CH_SHARD"] == str(number) and env["CH_REPLICA"] == host
            seen.add((env["CH_SHARD"], env["CH_REPLICA"]))
    assert len(seen) == 4
    macros = {m.tag: m.get("from_env") for m in CONFIG.find("macros")}
    assert macros == {"shard": "CH_SHARD", "replica": "CH_REPLICA"}
    assert CONFIG.findtext("./zookeeper/node/host") in services
