"""`touchpoint simulate` as users call it: byte-identical output per seed, JSON Lines `touchpoint produce` reads,
and a truth file that equals the truth of what it wrote."""

from __future__ import annotations

import json

from tests.helpers import run_cli
from touchpoint.producers.simulation.truth import compute_truth
from touchpoint.schemas.json_shape import event_from_json


def test_same_seed_same_bytes_file_and_stdout(tmp_path):
    a = run_cli("simulate", "--customers", "400", "--seed", "8", "--output", str(tmp_path / "a.jsonl"),
                "--truth", str(tmp_path / "truth.json"))
    assert a.returncode == 0, a.stderr
    b = run_cli("simulate", "--customers", "400", "--seed", "8", "--output", "-")
    assert b.returncode == 0, b.stderr
    assert (tmp_path / "a.jsonl").read_bytes() == b.stdout.encode()
    c = run_cli("simulate", "--customers", "400", "--seed", "9", "--output", "-")
    assert c.stdout != b.stdout

    events = [event_from_json(json.loads(line)) for line in b.stdout.splitlines()]
    truth = json.loads((tmp_path / "truth.json").read_text())
    generated = truth.pop("generated")
    assert truth == json.loads(json.dumps(compute_truth(events)))
    assert generated["events_sent"] == len(events) and generated["seed"] == 8
    assert "duplicates" in a.stderr and "out of order" in a.stderr


def test_days_and_start_shape_the_span(tmp_path):
    done = run_cli("simulate", "--customers", "100", "--days", "3", "--start", "2026-03-01", "--output", "-")
    assert done.returncode == 0, done.stderr
    times = [json.loads(line)["occurred_at"] for line in done.stdout.splitlines()]
    assert min(times) >= "2026-03-01" and max(times) <= "2026-03-04"


def test_output_or_produce_is_required():
    done = run_cli("simulate")
    assert done.returncode == 2 and "--output" in done.stderr
