"""Pseudonymisation at the source, end to end: the same events through two pipelines, one producing with hashed
identifiers. The hashed run's Kafka topics (read with kcat) and ClickHouse tables hold no raw value of a configured
field, and its journeys and metrics equal the plain run's once the plain ids are hashed by the test itself."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from tests.helpers import run_cli
from tests.integration.e2e.helpers import namespace_env, sql, start, stop, wait_complete
from touchpoint.producers.simulator import SimulationConfig, simulate, write_jsonl

pytestmark = pytest.mark.slow

KEY = "pseudonym-test-key-0123456789abcdef"
FIELDS = "customer_id,anonymous_id,session_id,context.email"
JOURNEY_COLUMNS = ("customer_id, is_anonymous, anonymous_ids, first_touch_at, last_touch_at, event_count, "
                   "path_event_types, path_channels, counts_by_type, stage, converted, orders, revenue_minor")


def _h(value: str) -> str:
    return hmac.new(KEY.encode(), value.encode(), hashlib.sha256).hexdigest()


def _events(tmp_path: Path) -> tuple[Path, dict[str, Any], set[str]]:
    sim = simulate(SimulationConfig(customers=120, seed=23))
    events = []
    for event in sim.arrived:  # an e-mail address in the context of every known customer's events
        if event["customer_id"]:
            event = dict(event, context={**event["context"], "email": f"{event['customer_id']}@mail.example"})
        events.append(event)
    raw = {e[f] for e in events for f in ("customer_id", "anonymous_id", "session_id") if e[f]}
    raw |= {e["context"]["email"] for e in events if "email" in e["context"]}
    path = tmp_path / "events.jsonl"
    with path.open("w", encoding="utf-8") as out:
        write_jsonl(events, out)
    return path, sim.truth, raw


def _pipeline(kafka_bootstrap: str, tmp_path: Path, name: str, events: Path, truth: dict[str, Any],
              produce_args: list[str], extra_env: dict[str, str]) -> dict[str, Any]:
    env = {**namespace_env(kafka_bootstrap, tmp_path / name, name), **extra_env}
    created = run_cli("topics", "create", env=env)
    assert created.returncode == 0, created.stderr
    log = tmp_path / f"{name}.log"
    run = start(["run"], env, log)
    try:
        produced = run_cli("produce", str(events), *produce_args, env=env, timeout=120)
        assert produced.returncode == 0, produced.stdout + produced.stderr
        wait_complete(env, truth, procs=[run], logs=[log])
        port, db = int(env["TOUCHPOINT_SINK_SQL_PORT"]), env["TOUCHPOINT_CLICKHOUSE_DATABASE"]
        out = {
            "journeys": sql(port, f"SELECT {JOURNEY_COLUMNS} FROM {db}.journeys_current"),
            "metrics": sql(port, f"SELECT * FROM {db}.metrics_minute_current ORDER BY ALL"),
            "merges": sql(port, f"SELECT DISTINCT anonymous_id, customer_id FROM {db}.identity_merges ORDER BY ALL"),
            "tables": "".join(json.dumps(sql(port, f"SELECT * FROM {db}.{t}"))
                              for t in ("touchpoints", "journeys", "identity_merges", "metrics_minute")),
        }
    finally:
        assert stop(run, signal.SIGTERM) == 0, log.read_text()[-3000:]
    topics = [t for t in AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics
              if t.startswith(f"e2e-{name}")]
    assert len(topics) >= 5, topics  # the pipeline's topics and the worker's internal ones
    out["kafka"] = b"".join(subprocess.run(
        ["kcat", "-C", "-b", kafka_bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k\t%s\n"],
        capture_output=True, timeout=60, check=True).stdout for topic in topics)
    return out


def _journey_key(row: dict[str, Any]) -> str:
    return json.dumps({**row, "anonymous_ids": sorted(row["anonymous_ids"])}, sort_keys=True)


def test_hashed_ids_never_reach_kafka_or_clickhouse_and_journeys_and_metrics_are_unchanged(kafka_bootstrap, tmp_path,
                                                                                          unique):
    events, truth, raw = _events(tmp_path)
    plain = _pipeline(kafka_bootstrap, tmp_path, f"{unique}p", events, truth, [], {})
    hashed = _pipeline(kafka_bootstrap, tmp_path, f"{unique}h", events, truth, ["--pseudonymise", FIELDS],
                       {"TOUCHPOINT_PSEUDONYMISE_KEY": KEY})

    # The scan can see raw values: the plain run is full of them.
    assert sum(value.encode() in plain["kafka"] for value in raw) == len(raw)
    in_kafka = sorted(value for value in raw if value.encode() in hashed["kafka"])
    in_clickhouse = sorted(value for value in raw if value in hashed["tables"])
    assert not in_kafka, f"{len(in_kafka)} raw values in the hashed run's topics, e.g. {in_kafka[:5]}"
    assert not in_clickhouse, f"{len(in_clickhouse)} raw values in the hashed run's tables, e.g. {in_clickhouse[:5]}"

    assert hashed["metrics"] == plain["metrics"]
    assert hashed["merges"] == sorted(({"anonymous_id": _h(m["anonymous_id"]), "customer_id": _h(m["customer_id"])}
                                       for m in plain["merges"]), key=lambda m: (m["anonymous_id"], m["customer_id"]))
    expected = sorted(_journey_key({**j, "customer_id": _h(j["customer_id"]),
                                    "anonymous_ids": [_h(a) for a in j["anonymous_ids"]]}) for j in plain["journeys"])
    assert len(expected) > 100 and sorted(_journey_key(j) for j in hashed["journeys"]) == expected
