"""State survives SIGKILL and is split across workers: the final journeys and metric totals equal those of one
uninterrupted worker.

Compared: live journeys (newest version per journey_id, not superseded) without their processing-time fields
(``updated_at``, ``version``), and metric totals (newest version per window key, summed over partitions).
Superseded ids are left out: which provisional ids exist depends on arrival timing, not on the events.
"""

from __future__ import annotations

import random
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_until
from tests.integration.streams.events import interleave, person_partition, population
from tests.integration.streams.harness import Pipeline, grand_totals, stable

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

PERSONS = 400
PARTITIONS = 4


def _events() -> list[dict[str, Any]]:
    return interleave(population(PERSONS, seed=11), seed=12)


def _live(p: Pipeline) -> dict[str, dict[str, Any]]:
    return stable({k: v for k, v in p.journeys().items() if v["merged_into"] is None})


def _settle(p: Pipeline, n_events: int, expected: tuple[dict[str, Any], dict[Any, Any]] | None = None,
            ) -> tuple[dict[str, Any], dict[Any, Any]]:
    """Wait until every event is counted once in the live journeys and in the metric windows.

    While waiting, the failure message says what was seen (and, given the ``expected`` result, which journeys and
    metric cells differ from it) instead of only that the counts did not match.
    """
    def done() -> tuple[dict[str, Any], dict[Any, Any]]:
        live = _live(p)
        totals = p.metric_totals()
        counted = sum(j["event_count"] for j in live.values())
        touchpoints = grand_totals(totals).get("touchpoints")
        seen = f"live journeys={len(live)} event_count sum={counted} touchpoints={touchpoints} (want {n_events})"
        if expected is not None:
            exp_live, exp_totals = expected
            bad_j = sorted(k for k in exp_live.keys() | live.keys() if live.get(k) != exp_live.get(k))
            bad_w = sorted((k for k in exp_totals.keys() | totals.keys() if totals.get(k) != exp_totals.get(k)), key=str)
            seen += f"; {len(bad_j)} journeys differ {bad_j[:5]}; {len(bad_w)} metric cells differ: " + "; ".join(
                f"{k}: got {totals.get(k)} want {exp_totals.get(k)}" for k in bad_w[:3])
        assert counted == n_events and touchpoints == n_events, seen
        return live, totals
    return wait_until(done, timeout=180, interval=1.0, what=f"{n_events} events in live journeys and metric windows")


def _metric(worker: Any, name: str) -> float:
    try:
        text = worker.metrics_text()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def _web_up(worker: Any) -> bool:
    try:
        worker.metrics_text()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def uninterrupted(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[Any, Any]]:
    events = _events()
    p = Pipeline(kafka_bootstrap, tmp_path_factory.mktemp("baseline"), partitions=PARTITIONS)
    p.create_topics()
    p.send_events(events, partition_of=partial(person_partition, partitions=PARTITIONS))
    worker = p.start_worker()
    try:
        result = _settle(p, len(events))
        assert worker.stop() == 0
        # Stopping cleanly sent nothing that changes the result, and committed every event it had handled:
        # a restart re-reads nothing.
        assert (_live(p), p.metric_totals()) == result
        assert p.uncommitted_events() == 0
        return result
    finally:
        if worker.proc and worker.proc.poll() is None:
            worker.proc.kill()


def test_sigkill_at_random_points_then_restart_gives_the_uninterrupted_result(
        pipeline_factory: Any, uninterrupted: tuple[dict[str, Any], dict[Any, Any]]) -> None:
    seed = random.SystemRandom().randrange(2**32)
    print(f"kill delays drawn with seed {seed} (replay: set it here)")  # shown with the output of a failing run
    rnd = random.Random(seed)
    events = _events()
    p: Pipeline = pipeline_factory(PARTITIONS)
    chunks = [events[: len(events) // 3], events[len(events) // 3: 2 * len(events) // 3], events[2 * len(events) // 3:]]
    part = partial(person_partition, partitions=PARTITIONS)
    worker = None
    kills = 0
    progress: list[float] = []  # events the worker had processed in its run when it was killed
    for chunk in chunks + [[]]:
        if chunk:
            p.send_events(chunk, partition_of=part)
        if worker is None:
            worker = p.start_worker()
        else:
            worker.start()
        # Kill at a random point while it processes the new chunk (the last run has no new chunk: it is killed
        # while recovering or replaying).
        wait_until(lambda: _web_up(worker), timeout=90, what="worker web port up")
        deadline = time.monotonic() + (60 if chunk else 5)
        while time.monotonic() < deadline and _metric(worker, "touchpoint_stream_events_processed_total") == 0:
            time.sleep(0.05)
        time.sleep(rnd.uniform(0.0, 1.0))
        assert worker.proc.poll() is None, worker.log()[-3000:]
        progress.append(_metric(worker, "touchpoint_stream_events_processed_total"))
        worker.kill()
        kills += 1
    worker.start()
    live, totals = _settle(p, len(events), uninterrupted)
    assert worker.stop() == 0
    expected_live, expected_totals = uninterrupted
    assert kills == 4
    print(f"events processed by each killed run when it was killed: {progress}")
    assert sum(n > 0 for n in progress) >= 2, f"fewer than 2 kills hit a worker that was processing: {progress}"
    assert live == expected_live
    assert totals == expected_totals
    assert "did not stop cleanly" in (p.logs / f"worker-{worker.web_port}-2.log").read_text()


def test_two_workers_over_four_partitions_give_the_one_worker_result(
        pipeline_factory: Any, uninterrupted: tuple[dict[str, Any], dict[Any, Any]]) -> None:
    """A second worker joins while the first is busy (its partitions and their table state move over), then both
    share the rest; the results equal one uninterrupted worker's."""
    events = _events()
    half = len(events) // 2
    p: Pipeline = pipeline_factory(PARTITIONS)
    part = partial(person_partition, partitions=PARTITIONS)
    first = p.start_worker()
    p.send_events(events[:half], partition_of=part)
    wait_until(lambda: _metric(first, "touchpoint_stream_events_processed_total") > 0, timeout=90,
               what="first worker processing")
    second = p.start_worker()
    wait_until(lambda: p.group_members_with_partitions() == 2, timeout=120, what="both workers holding partitions")
    p.send_events(events[half:], partition_of=part)
    live, totals = _settle(p, len(events), uninterrupted)
    # Both took part: each processed some of the events.
    assert _metric(first, "touchpoint_stream_events_processed_total") > 0
    assert _metric(second, "touchpoint_stream_events_processed_total") > 0
    assert first.stop() == 0 and second.stop() == 0
    assert (live, totals) == uninterrupted
