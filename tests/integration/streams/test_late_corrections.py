"""Late contributions become correction rows of their own window, exactly once through SIGKILLs; a future-dated
event cannot push a partition's watermark ahead of the clock (real Kafka, `touchpoint worker` subprocesses).

Metric records are read back from the metrics topic and kept as the sink keeps them (newest version per
window, partition, correction_id and dims: ``harness.metric_totals``). Expected figures are computed here from the
events sent.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

import pytest

from tests.helpers import wait_until
from tests.integration.streams.events import MIN, population
from tests.integration.streams.harness import Pipeline, grand_totals
from tests.integration.streams.test_stream_recovery import _metric, _web_up

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

DAY = 86_400_000
# Components that depend only on the set of events (not on attribution): compared with the expected figures.
EXACT = ("touchpoints", "ad_clicks", "ad_spend_minor", "checkouts_completed", "revenue_minor", "deliveries_delivered",
         "deliveries_on_time", "deliveries_late", "delivery_delay_ms_sum", "nps_promoters", "nps_passives",
         "nps_detractors", "tickets_opened", "tickets_resolved", "resolution_ms_sum", "emails_sent", "emails_opened",
         "emails_clicked")


def _expected(events: list[dict[str, Any]]) -> dict[str, int]:
    """The components straight from the events (each event once; every person has one order, shipment, ticket)."""
    out: Counter[str] = Counter()
    opened: dict[str, int] = {}
    resolved: dict[str, int] = {}
    for e in events:
        out["touchpoints"] += 1
        p, kind = e["payload"], e["event_type"]
        if kind == "AD_CLICK":
            out["ad_clicks"] += 1
            out["ad_spend_minor"] += p["cost_minor"]
        elif kind == "CHECKOUT" and p["status"] == "completed":
            out["checkouts_completed"] += 1
            out["revenue_minor"] += p["amount_minor"]
        elif kind == "DELIVERY_NOTICE" and p["status"] == "delivered":
            out["deliveries_delivered"] += 1
            late = e["occurred_at"] - p["promised_by"]
            out["deliveries_late" if late > 0 else "deliveries_on_time"] += 1
            out["delivery_delay_ms_sum"] += max(late, 0)
        elif kind == "SURVEY_RESPONSE":
            s = p["score"]
            out["nps_promoters" if s >= 9 else "nps_passives" if s >= 7 else "nps_detractors"] += 1
        elif kind == "SUPPORT_INTERACTION":
            (opened if p["action"] == "opened" else resolved)[p["ticket_id"]] = e["occurred_at"]
        elif kind == "EMAIL_ENGAGEMENT":
            out[f"emails_{p['action']}"] += 1
    out["tickets_opened"] = len(opened)
    out["tickets_resolved"] = len(resolved)
    out["resolution_ms_sum"] = sum(resolved[t] - opened[t] for t in resolved)
    return {k: out.get(k, 0) for k in EXACT}


def _two_weeks_shuffled(seed: int, persons: int) -> list[dict[str, Any]]:
    """``population`` with each person moved to a random minute of two weeks, every event in random order."""
    rnd = random.Random(seed)
    events = []
    for person in population(persons, seed=seed):
        shift = rnd.randrange(0, 14 * DAY, MIN)
        for e in person:
            e["occurred_at"] += shift
            if e["event_type"] == "DELIVERY_NOTICE":
                e["payload"]["promised_by"] += shift
            events.append(e)
    rnd.shuffle(events)
    return events


def _correction_records(p: Pipeline) -> int:
    return sum(1 for r in p.read("metrics", "metric_window") if r["correction_id"])


def test_sigkill_three_times_while_late_corrections_flow_keeps_every_total_exact(pipeline_factory: Any) -> None:
    seed = random.SystemRandom().randrange(1_000_000)
    print(f"seed={seed}")
    rnd = random.Random(seed)
    events = _two_weeks_shuffled(seed, persons=300)
    p: Pipeline = pipeline_factory(2)
    thirds = [events[: len(events) // 3], events[len(events) // 3: 2 * len(events) // 3], events[2 * len(events) // 3:]]
    worker = None
    progress: list[float] = []
    for chunk in thirds:
        p.send_events(chunk)
        if worker is None:
            worker = p.start_worker()
        else:
            worker.start()
        wait_until(lambda: _web_up(worker), timeout=90, what="worker web port up")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _metric(worker, "touchpoint_stream_events_processed_total") == 0:
            time.sleep(0.05)
        time.sleep(rnd.uniform(0.0, 1.0))
        assert worker.proc is not None and worker.proc.poll() is None, worker.log()[-3000:]
        progress.append(_metric(worker, "touchpoint_stream_events_processed_total"))
        worker.kill()
    assert worker is not None
    print(f"events processed by each killed run when it was killed: {progress}")
    worker.start()
    want = _expected(events)

    def settled() -> dict[str, int]:
        got = grand_totals(p.metric_totals())
        exact = {k: got.get(k, 0) for k in EXACT}
        assert exact["touchpoints"] == want["touchpoints"], f"seed={seed}: {exact['touchpoints']} of {want['touchpoints']}"
        return got

    got = wait_until(settled, timeout=180, interval=1.0, what="every event in the metric windows")
    assert {k: got.get(k, 0) for k in EXACT} == want, f"seed={seed}"
    assert got.get("late_events", 0) > len(events) // 2, f"seed={seed}: the shuffle should make most events late"
    assert _correction_records(p) > 0
    assert sum(n > 0 for n in progress) >= 2, f"fewer than 2 kills hit a worker that was processing: {progress}"
    assert worker.stop() == 0


def test_a_future_dated_checkout_leaves_the_current_windows_exact_and_beyond_a_day_is_dead_lettered(
        pipeline_factory: Any) -> None:
    from tests.integration.streams.events import checkout

    p: Pipeline = pipeline_factory(1)
    now = int(time.time() * 1000)
    future = checkout(now + 23 * 3_600_000, customer="cust-future", order="o-future", amount=1)
    too_far = checkout(now + 25 * 3_600_000, customer="cust-far", order="o-far", amount=1)
    current = [checkout(now - 60_000 + i * 50, customer=f"cust-{i}", order=f"o-{i}", amount=100 + i) for i in range(1000)]
    p.send_events([future, too_far])  # the harness encodes without the producer's validation
    p.send_events(current)
    worker = p.start_worker()

    def current_windows() -> dict[str, int]:
        totals = p.metric_totals()
        cur: Counter[str] = Counter()
        for key, comps in totals.items():
            if key[0] < now + 3_600_000:
                cur.update(comps)
        assert cur["touchpoints"] == 1000, dict(cur)
        return dict(cur)

    cur = wait_until(current_windows, timeout=120, interval=1.0, what="the 1,000 current checkouts in their windows")
    assert (cur["checkouts_completed"], cur["revenue_minor"]) == (1000, sum(100 + i for i in range(1000)))
    assert cur.get("late_events", 0) == 0  # none went late because of the future-dated one
    assert _correction_records(p) == 0
    assert _metric(worker, "touchpoint_stream_late_events_total") == 0
    future_window = future["occurred_at"] - future["occurred_at"] % MIN
    assert p.metric_totals()[(future_window, "CHECKOUT", "web", "", "EUR")]["touchpoints"] == 1

    def dead() -> list[Any]:
        return p.read("dead-letters")

    (letter,) = wait_until(dead, timeout=60, what="the event dated 25 h ahead in the dead-letter topic")
    headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in letter[2]}
    assert "occurred_at" in headers["dlq.reason"] and "future" in headers["dlq.reason"], headers
    assert worker.stop() == 0
