"""`touchpoint dead-letters list|show|replay` against a real pipeline: broker, `touchpoint worker`, `touchpoint sink`.

20 poison records of 4 kinds go in beside 30 good events: 8 events with a title longer than the configured
``max_string_bytes`` (worker/invalid, fixable by raising the limit), 5 random byte strings (worker/undecodable),
4 records of an unknown writer schema (worker/unknown_schema) and 3 journey snapshots the journeys table refuses
(sink/rejected_by_store, CHECK version >= 0). After the fix (the limit raised, stages restarted) `replay` brings the
8 fixable events into ClickHouse exactly once; a second replay selects nothing; a forced re-replay of the same 8 is
absorbed by dedup; the other 12 stay dead-lettered.
"""

from __future__ import annotations

import json
import random
import signal
import uuid
from collections import Counter

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.helpers import run_cli, wait_until
from tests.integration.e2e.helpers import namespace_env, settings_of, sql, start, stop
from tests.integration.sinks.conftest import journey, produce, touchpoint
from touchpoint.schemas.codec import AvroCodec

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

SEED = 18


def _cli_json(*args: str, env: dict[str, str]) -> dict:
    done = run_cli("dead-letters", *args, "--json", env=env)
    print("dead-letters", *args, "->", done.stdout[:400])
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
    return json.loads(done.stdout)


def _events_end(settings) -> int:
    c = Consumer(settings.kafka_config(**{"group.id": f"probe-{uuid.uuid4().hex[:6]}"}))
    try:
        return sum(c.get_watermark_offsets(TopicPartition(settings.events_topic, p), timeout=10)[1]
                   for p in range(settings.topic_partitions))
    finally:
        c.close()


def _metric(port: int, name: str) -> float:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#"))


def test_poison_of_four_kinds_listed_then_the_fixable_replayed_exactly_once(kafka_bootstrap, tmp_path, unique):
    print(f"seed {SEED}")
    rng = random.Random(SEED)
    codec = AvroCodec()
    env = {**namespace_env(kafka_bootstrap, tmp_path / "data", unique), "TOUCHPOINT_MAX_STRING_BYTES": "1024"}
    settings = settings_of(env)
    port, db = int(env["TOUCHPOINT_SINK_SQL_PORT"]), env["TOUCHPOINT_CLICKHOUSE_DATABASE"]
    from touchpoint.kafka_admin import create_topics

    create_topics(settings)
    assert run_cli("sink", "migrate", env=env).returncode == 0

    good = [touchpoint("PAGE_VIEW", i, f"c-{i % 5}") for i in range(30)]
    fixable = [touchpoint("PAGE_VIEW", 100 + i, f"c-{i % 5}", title="x" * 2000) for i in range(8)]
    valid = codec.encode(good[0])
    undecodable = [bytes(rng.randrange(256) for _ in range(40)) for _ in range(5)]
    unknown = [b"\xc3\x01" + rng.randbytes(8) + valid[10:] for _ in range(4)]
    refused = [codec.encode(journey(f"poison-{i}:1", -1), "journey_snapshot") for i in range(3)]
    mixed = [(e["customer_id"], codec.encode(e)) for e in good + fixable]
    mixed += [(f"u-{i}", v) for i, v in enumerate(undecodable + unknown)]
    rng.shuffle(mixed)
    produce(settings, settings.events_topic, [v for _, v in mixed], keys=[k for k, _ in mixed])
    produce(settings, settings.journeys_topic, refused, keys=[f"poison-{i}:1" for i in range(3)])

    logs = [tmp_path / "worker.log", tmp_path / "sink.log"]
    procs = [start(["worker"], env, logs[0]), start(["sink"], env, logs[1])]
    try:
        wait_until(lambda: int(sql(port, f"SELECT count() AS n FROM {db}.touchpoints_resolved")[0]["n"]) == 30,
                   timeout=120, what="the 30 good events stored", interval=0.5)

        def listed() -> dict:
            found = _cli_json("list", env=env)
            assert found["total"] == 20, found
            return found

        listing = wait_until(listed, timeout=60, what="20 dead letters listed", interval=1.0)
    finally:
        codes = [stop(p) for p in procs]
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]

    groups = {(g["stage"], g["kind"], g["event_type"]): g["count"] for g in listing["groups"]}
    assert groups == {("worker", "invalid", "PAGE_VIEW"): 8, ("worker", "undecodable", "-"): 5,
                      ("worker", "unknown_schema", "-"): 4, ("sink", "rejected_by_store", "-"): 3}

    page = _cli_json("show", "--kind", "invalid", "--limit", "5", "--page", "2", env=env)
    assert page["total"] == 8 and len(page["records"]) == 3
    for record in page["records"]:
        assert "max_string_bytes" in record["reason"] and record["source"]["topic"] == settings.events_topic
        assert record["original"]["event_id"] in {e["event_id"] for e in fixable}
    sink_page = _cli_json("show", "--stage", "sink", env=env)["records"]
    assert {r["source"]["topic"] for r in sink_page} == {settings.journeys_topic}
    assert all("VIOLATED_CONSTRAINT" in r["reason"] for r in sink_page)
    assert sorted(r["original"]["journey_id"] for r in sink_page) == [f"poison-{i}:1" for i in range(3)]

    # Without the fix nothing passes re-validation.
    before_fix = _cli_json("replay", "--dry-run", env=env)
    assert before_fix["outcomes"] == {"still_failing": 17, "not_replayable": 3}

    # The fix: the limit raised for every stage and for the replay; the stages restarted.
    fixed = {**env, "TOUCHPOINT_MAX_STRING_BYTES": "4096"}
    end_before = _events_end(settings)
    dry = _cli_json("replay", "--dry-run", env=fixed)
    assert dry["outcomes"] == {"would_replay": 8, "still_failing": 9, "not_replayable": 3}
    assert _events_end(settings) == end_before, "a dry run produced something"

    procs = [start(["worker"], fixed, logs[0]), start(["sink"], fixed, logs[1])]
    fixable_ids = ", ".join(f"'{e['event_id']}'" for e in fixable)

    def stored_fixable() -> dict:
        row = sql(port, f"SELECT count() AS n, uniqExact(event_id) AS u FROM {db}.touchpoints_resolved "
                        f"WHERE event_id IN ({fixable_ids})")[0]
        return {k: int(v) for k, v in row.items()}

    def windowed() -> int:
        return int(sql(port, f"SELECT sum(touchpoints) AS n FROM {db}.metrics_minute_current")[0]["n"])

    try:
        first = _cli_json("replay", env=fixed)
        assert first["outcomes"] == {"replayed": 8, "still_failing": 9, "not_replayable": 3}
        wait_until(lambda: stored_fixable() == {"n": 8, "u": 8} and windowed() == 38, timeout=120,
                   what="the 8 replayed events stored and windowed", interval=1.0)

        # A second replay selects nothing it already replayed; the others stay dead-lettered.
        second = _cli_json("replay", env=fixed)
        assert second["outcomes"] == {"still_failing": 9, "not_replayable": 3}
        remaining = _cli_json("list", env=fixed)
        assert remaining["total"] == 12 and remaining["replayed_left_out"] == 8
        assert Counter({(g["stage"], g["kind"]): g["count"] for g in remaining["groups"]}) == Counter(
            {("worker", "undecodable"): 5, ("worker", "unknown_schema"): 4, ("sink", "rejected_by_store"): 3})

        # Forced: the same 8 re-produced. Dedup on event_id keeps every number unchanged.
        forced = _cli_json("replay", "--include-replayed", "--kind", "invalid", env=fixed)
        assert forced["outcomes"] == {"replayed": 8}
        worker_port = int(env["TOUCHPOINT_WORKER_WEB_PORT"])
        wait_until(lambda: _metric(worker_port, "touchpoint_stream_duplicates_total") >= 8, timeout=90,
                   what="the worker saw the 8 copies as duplicates")
        wait_until(lambda: int(sql(port, f"SELECT count() AS n FROM {db}.touchpoints WHERE event_id IN "
                                         f"({fixable_ids})")[0]["n"]) == 16,
                   timeout=90, what="the sink consumed the 8 re-sent copies", interval=1.0)
        assert stored_fixable() == {"n": 8, "u": 8}
        assert windowed() == 38
        assert _metric(worker_port, "touchpoint_stream_duplicates_total") == 8
    finally:
        codes = [stop(p, signal.SIGTERM) for p in procs]
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]
