"""`touchpoint privacy erase` while the pipeline runs: ten customers (and the anonymous ids stitched to them) leave
every table and view, the other customers' numbers and the metric windows stay as they were, the worker forgets
their state, their later touchpoints are dropped and counted, and a SIGKILL of the worker during the erase ends
the same once the erase is rerun."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli, wait_until
from tests.integration.e2e.helpers import namespace_env, settings_of, sql, start, stop, wait_complete
from touchpoint.producers.simulator import SimulationConfig, produce, simulate
from touchpoint.streams.topology import ALIAS_TABLE, JOURNEY_TABLE, changelog_topic

pytestmark = pytest.mark.slow

SEED = 41
TABLES_AND_VIEWS = ("touchpoints", "journeys", "identity_merges", "journeys_current", "touchpoints_resolved")
JOURNEY_COLUMNS = "journey_id, customer_id, anonymous_ids, event_count, path_event_types, stage, orders, revenue_minor"


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _worker_pid(run_pid: int) -> int:
    for child in _children(run_pid):
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"worker" in cmdline:
            return child
    raise AssertionError(f"no `touchpoint worker` child of {run_pid}")


def _suppressed(port: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("touchpoint_stream_events_suppressed_total "):
                return float(line.split()[1])
    return 0.0


def _others(port: int, db: str, erased: set[str]) -> dict[str, Any]:
    """What the test compares before and after: every row not of an erased id, and the metric windows."""
    touch = sql(port, f"SELECT customer_id, anonymous_id, event_type, count() AS n FROM {db}.touchpoints "
                      "GROUP BY ALL ORDER BY ALL")
    journeys = sql(port, f"SELECT {JOURNEY_COLUMNS} FROM {db}.journeys_current ORDER BY journey_id")
    return {
        "touchpoints": [r for r in touch if r["customer_id"] not in erased and r["anonymous_id"] not in erased],
        "journeys": [j for j in journeys if j["customer_id"] not in erased and not set(j["anonymous_ids"]) & erased],
        "metrics": sql(port, f"SELECT * FROM {db}.metrics_minute_current ORDER BY ALL"),
    }


def _last_value_sizes(bootstrap: str, topic: str) -> dict[str, int]:
    """key -> value size of its last record (-1: a tombstone), read with kcat."""
    out = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k\t%S\n"],
                         capture_output=True, timeout=60, check=True).stdout.decode("utf-8", "replace")
    last: dict[str, int] = {}
    for line in out.splitlines():
        key, _, size = line.rpartition("\t")
        last[key] = int(size)
    return last


def test_erase_ten_customers_while_the_pipeline_runs(kafka_bootstrap, tmp_path, unique):
    sim = simulate(SimulationConfig(customers=200, seed=SEED))
    env = namespace_env(kafka_bootstrap, tmp_path / "run", unique)
    settings = settings_of(env)
    port, db = int(env["TOUCHPOINT_SINK_SQL_PORT"]), env["TOUCHPOINT_CLICKHOUSE_DATABASE"]
    assert run_cli("topics", "create", env=env).returncode == 0
    log = tmp_path / "run.log"
    run = start(["run"], env, log)
    try:
        produce(sim.arrived, settings)
        wait_complete(env, sim.truth, procs=[run], logs=[log])

        customers = sorted({e["customer_id"] for e in sim.arrived if e["customer_id"]})
        stitched = {e["customer_id"] for e in sim.arrived if e["customer_id"] and e["anonymous_id"]}
        rng = random.Random(SEED)
        chosen = rng.sample(sorted(stitched), 6) + rng.sample(sorted(set(customers) - stitched), 4)
        anonymous = {e["anonymous_id"] for e in sim.arrived if e["customer_id"] in chosen and e["anonymous_id"]}
        erased = set(chosen) | anonymous
        assert len(anonymous) >= 6, f"seed {SEED}: too few stitched anonymous ids"
        before = _others(port, db, erased)
        assert sum(1 for r in sql(port, f"SELECT customer_id FROM {db}.touchpoints")
                   if r["customer_id"] in erased) > 0

        # First request for half of them, and the worker killed right after it.
        first = run_cli("privacy", "erase", *[a for c in chosen[:5] for a in ("--customer", c)], "--wait", "0", env=env)
        assert first.returncode == 0, first.stderr
        os.kill(_worker_pid(run.pid), signal.SIGKILL)
        # Rerun for all ten: the end state is the one of an erase that was never interrupted.
        done = run_cli("privacy", "erase", *[a for c in chosen for a in ("--customer", c)], env=env)
        assert done.returncode == 0 and "erased:" in done.stderr, done.stdout + done.stderr
        again = run_cli("privacy", "erase", *[a for c in chosen for a in ("--customer", c)], env=env)
        assert "erased: 0 touchpoint rows, 0 journey rows, 0 identity merges" in again.stderr, again.stderr

        for name in TABLES_AND_VIEWS:
            dump = json.dumps(sql(port, f"SELECT * FROM {db}.{name}"))
            assert not [i for i in erased if i in dump], f"erased ids still in {name}"
        after = _others(port, db, erased)
        assert after == before, "the other customers' rows or the metric windows changed"
        audit = sql(port, f"SELECT sum(touchpoints_removed) AS t, max(ids) AS ids FROM {db}.privacy_erasures")[0]
        theirs = [e["event_id"] for e in sim.arrived if e["customer_id"] in erased or e["anonymous_id"] in erased]
        # Every stored copy counts; a re-sent copy (same event_id) may already have been merged away by ClickHouse.
        assert len(set(theirs)) <= int(audit["t"]) <= len(theirs), (audit, len(set(theirs)), len(theirs))

        # Later touchpoints: 4 of erased ids are dropped and counted, those of a kept customer arrive. First one
        # event of the kept customer shows that the restarted worker is processing again (it waits for the killed
        # member's session to expire before it gets its partitions).
        kept = next(c for c in customers if c not in erased)
        worker_port = env["TOUCHPOINT_WORKER_WEB_PORT"]
        template = next(e for e in sim.arrived if e["event_type"] == "PAGE_VIEW")

        def later(customer_id: str | None, anonymous_id: str | None = None) -> dict[str, Any]:
            return dict(template, event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                        customer_id=customer_id, anonymous_id=anonymous_id, session_id=None)

        def kept_events() -> int:
            rows = sql(port, f"SELECT sum(event_count) AS n FROM {db}.journeys_current WHERE customer_id = '{kept}'")
            return int(rows[0]["n"] or 0)

        count = kept_events()
        produce([later(kept)], settings)
        wait_until(lambda: kept_events() == count + 1, timeout=150, interval=0.5,
                   what="the restarted worker processing a new event of a kept customer")
        base = _suppressed(worker_port)
        produce([later(chosen[0]), later(chosen[1]), later(chosen[7]), later(None, sorted(anonymous)[0]),
                 later(kept), later(kept)], settings)
        wait_until(lambda: kept_events() == count + 3, timeout=60, interval=0.5,
                   what="the kept customer's two later events in its journey")

        def four_suppressed() -> bool:
            delta = _suppressed(worker_port) - base
            assert delta <= 4, f"{delta} suppressed events counted, 4 sent"
            return delta == 4

        wait_until(four_suppressed, timeout=30, what="4 suppressed events counted")
        for name in TABLES_AND_VIEWS:
            dump = json.dumps(sql(port, f"SELECT * FROM {db}.{name}"))
            assert not [i for i in erased if i in dump], f"erased ids back in {name} after later touchpoints"
    finally:
        assert stop(run, signal.SIGTERM) == 0, log.read_text()[-3000:]

    # The worker forgot them: the last changelog record of each erased id's journey state / alias is a tombstone.
    journeys = _last_value_sizes(kafka_bootstrap, changelog_topic(settings, JOURNEY_TABLE))
    aliases = _last_value_sizes(kafka_bootstrap, changelog_topic(settings, ALIAS_TABLE))
    held = {f"j:{i}": journeys[f"j:{i}"] for i in erased if f"j:{i}" in journeys}
    held.update({i: aliases[i] for i in erased if i in aliases})
    assert len(held) >= len(chosen), held
    assert {k: v for k, v in held.items() if v != -1} == {}, "state of erased ids not forgotten"
