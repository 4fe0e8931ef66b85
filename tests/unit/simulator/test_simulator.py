"""The journey simulator: deterministic, realistic in the ways the pipeline cares about, and its truth is right."""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from datetime import datetime, timezone

import pytest

from touchpoint.producers.simulation.arrival import arrival_stats, identity_key
from touchpoint.producers.simulation.truth import compute_truth, dedup, nps_by_delivery_outcome
from touchpoint.producers.simulator import SimulationConfig, simulate, write_jsonl
from touchpoint.schemas.codec import AvroCodec


@pytest.fixture(scope="module")
def sim():
    return simulate(SimulationConfig(customers=3_000, seed=11))


def test_same_seed_same_events_other_seed_other_events():
    a = simulate(SimulationConfig(customers=400, seed=5)).arrived
    b = simulate(SimulationConfig(customers=400, seed=5)).arrived
    c = simulate(SimulationConfig(customers=400, seed=6)).arrived
    assert a == b
    assert [e["event_id"] for e in a] != [e["event_id"] for e in c]


def test_same_seed_byte_identical_json_lines():
    outs = []
    for _ in range(2):
        buf = io.StringIO()
        write_jsonl(simulate(SimulationConfig(customers=300, seed=9)).arrived, buf)
        outs.append(buf.getvalue().encode())
    assert outs[0] == outs[1]
    assert len(outs[0].splitlines()) > 1000


def test_a_person_does_not_depend_on_how_many_are_simulated():
    small = {e["event_id"] for e in simulate(SimulationConfig(customers=50, seed=3)).arrived}
    large = {e["event_id"] for e in simulate(SimulationConfig(customers=120, seed=3)).arrived}
    assert small < large


def test_every_event_keeps_the_contract(sim):
    codec = AvroCodec()
    for event in sim.arrived[:5000]:
        assert codec.decode(codec.encode(event)) == event
    start, end = sim.config.start_ms, sim.config.end_ms
    assert all(start <= e["occurred_at"] <= end for e in sim.arrived)
    for e in sim.arrived:
        assert e["customer_id"] or e["anonymous_id"]
        p = e["payload"]
        if e["event_type"] == "SURVEY_RESPONSE":
            assert p["scale_min"] <= p["score"] <= p["scale_max"]
        if e["event_type"] in ("CHECKOUT", "AD_CLICK"):
            assert p["currency"] in {"BRL", "EUR", "USD"}
            assert (p.get("amount_minor") or p.get("cost_minor")) > 0


def test_anonymous_visitors_log_in_later(sim):
    events = dedup(sim.arrived)
    anonymous = {e["anonymous_id"] for e in events if e["anonymous_id"]}
    login = {}
    for e in events:
        if e["anonymous_id"] and e["customer_id"]:
            login.setdefault(e["anonymous_id"], e["occurred_at"])
    assert 0.3 < len(login) / len(anonymous) < 0.85  # some stay anonymous, most who visit again log in
    # every stitched visitor did something anonymously before logging in
    before = {e["anonymous_id"] for e in events
              if e["anonymous_id"] and not e["customer_id"] and e["anonymous_id"] in login
              and e["occurred_at"] < login[e["anonymous_id"]]}
    assert before == set(login)
    assert sim.truth["identity_merges"] == len(login)


def test_duplicates_and_out_of_order_have_realistic_bounded_shares(sim):
    stats = arrival_stats(sim.arrived)
    sent = stats["events_sent"]
    assert 0.005 < stats["duplicates_sent"] / sent < 0.03
    assert 0.01 < stats["out_of_order"] / sent < 0.15
    ids = Counter(e["event_id"] for e in sim.arrived)
    assert max(ids.values()) == 2  # duplicates are exact re-sends of one event
    # bounded disorder: no event arrives after an event of its key more than 10 minutes later
    latest: dict[str, int] = defaultdict(int)
    for e in sim.arrived:
        key = identity_key(e)
        assert latest[key] - e["occurred_at"] <= 10 * 60_000
        latest[key] = max(latest[key], e["occurred_at"])


def test_order_lifecycles_are_in_order(sim):
    steps: dict[str, dict[str, int]] = defaultdict(dict)
    for e in dedup(sim.arrived):
        p = e["payload"]
        if e["event_type"] == "CHECKOUT":
            steps[p["order_id"]].setdefault(p["status"], e["occurred_at"])
        elif e["event_type"] == "DELIVERY_NOTICE":
            steps[p["order_id"]].setdefault(p["status"], e["occurred_at"])
    order = ["started", "payment_submitted", "completed", "label_created", "shipped", "out_for_delivery", "delivered"]
    checked = 0
    for seen in steps.values():
        times = [seen[s] for s in order if s in seen]
        assert times == sorted(times)
        checked += "delivered" in seen
    assert checked > 100


def test_late_deliveries_make_lower_nps(sim):
    means = nps_by_delivery_outcome(sim.arrived)
    assert means["late"] is not None and means["on_time"] is not None
    assert means["on_time"] - means["late"] > 1.5
    deliveries = sim.truth["deliveries"]
    late_share = deliveries["late"] / deliveries["delivered"]
    assert 0.05 < late_share < 0.3


def test_support_resolution_times_are_realistic(sim):
    support = sim.truth["support"]
    assert support["opened"] >= 30 and 0.8 < support["resolved"] / support["opened"] <= 1
    avg_hours = support["resolution_avg_ms"] / 3_600_000
    assert 1 < avg_hours < 48  # chats in minutes, tickets in about a day


def test_truth_counts_each_event_once_and_matches_an_independent_count(sim):
    events = sim.arrived
    assert compute_truth(events) == compute_truth(dedup(events)) == compute_truth(events + events[:500])
    unique = {e["event_id"]: e for e in events}.values()
    truth = sim.truth
    assert truth["events"] == len(unique)
    assert truth["orders"] == sum(1 for e in unique if e["event_type"] == "CHECKOUT" and e["payload"]["status"] == "completed")
    revenue = Counter()
    for e in unique:
        if e["event_type"] == "CHECKOUT" and e["payload"]["status"] == "completed":
            revenue[e["payload"]["currency"]] += e["payload"]["amount_minor"]
    assert truth["revenue_minor"] == dict(revenue)
    scores = [e["payload"]["score"] for e in unique if e["event_type"] == "SURVEY_RESPONSE" and e["payload"]["survey_kind"] == "NPS"]
    promoters, detractors = sum(s >= 9 for s in scores), sum(s <= 6 for s in scores)
    assert truth["nps"]["score"] == round((promoters - detractors) / len(scores) * 100, 2)
    assert truth["generated"]["duplicates_sent"] == len(events) - len(unique)


def test_truth_survives_the_json_lines_round_trip(sim):
    from touchpoint.schemas.json_shape import event_from_json

    buf = io.StringIO()
    write_jsonl(sim.arrived[:4000], buf)
    parsed = [event_from_json(json.loads(line)) for line in buf.getvalue().splitlines()]
    assert parsed == sim.arrived[:4000]


def test_start_moves_the_span():
    start = datetime(2026, 6, 1, tzinfo=timezone.utc)
    sim = simulate(SimulationConfig(customers=50, seed=1, days=2, start=start))
    low = int(start.timestamp() * 1000)
    assert all(low <= e["occurred_at"] <= low + 2 * 86_400_000 for e in sim.arrived)


def test_fast_enough_for_a_demo():
    import time

    t0 = time.perf_counter()
    simulate(SimulationConfig(customers=3_000, seed=2))
    assert time.perf_counter() - t0 < 10
