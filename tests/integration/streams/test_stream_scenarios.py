"""Scenario tests of `touchpoint worker` through the real broker, answers known in advance.

Each test: its own topics and worker id; events produced with confluent-kafka + AvroCodec; the worker runs as a
subprocess exactly as users start it; results are read back from the journeys and metrics topics (newest version
per key, as the sink keeps them).
"""

from __future__ import annotations

import random
import signal
import time

import pytest

from tests.helpers import wait_until
from tests.integration.streams.events import MIN, T0, ad_click, checkout, delivery, nps, page_view
from tests.integration.streams.harness import Pipeline, grand_totals, stable

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def scenario(anon: str = "anon-1", customer: str = "cust-1") -> list[dict]:
    """Anonymous ad click + page view, login at checkout, a late delivery, an NPS of 6."""
    return [
        ad_click(T0, anon=anon, campaign="spring"),
        page_view(T0 + 1_000, anon=anon),
        checkout(T0 + 2 * MIN, customer=customer, anon=anon),
        delivery(T0 + 3 * MIN, customer=customer, promised_by=T0 + 2 * MIN + 30_000),
        nps(T0 + 4 * MIN, customer=customer, score=6),
    ]


EXPECTED_JOURNEY = {
    "journey_id": f"cust-1:{T0}",
    "customer_id": "cust-1",
    "is_anonymous": False,
    "merged_into": None,
    "first_touch_at": T0,
    "last_touch_at": T0 + 4 * MIN,
    "anonymous_ids": ["anon-1"],
    "path": [
        {"event_type": "AD_CLICK", "channel": "social", "occurred_at": T0},
        {"event_type": "PAGE_VIEW", "channel": "web", "occurred_at": T0 + 1_000},
        {"event_type": "CHECKOUT", "channel": "web", "occurred_at": T0 + 2 * MIN},
        {"event_type": "DELIVERY_NOTICE", "channel": "carrier", "occurred_at": T0 + 3 * MIN},
        {"event_type": "SURVEY_RESPONSE", "channel": "email", "occurred_at": T0 + 4 * MIN},
    ],
    "path_truncated": 0,
    "event_count": 5,
    "counts_by_type": {"AD_CLICK": 1, "PAGE_VIEW": 1, "CHECKOUT": 1, "DELIVERY_NOTICE": 1, "SURVEY_RESPONSE": 1},
    "stage": "feedback",
    "service_contacted": False,
    "first_touch_campaign": "spring",
    "first_touch_channel": "social",
    "last_touch_campaign": "spring",
    "last_touch_channel": "web",
    "converted": True,
    "converted_at": T0 + 2 * MIN,
    "time_to_convert_ms": 2 * MIN,
    "orders": 1,
    "revenue_minor": 4999,
    "currency": "EUR",
    "deliveries_on_time": 0,
    "deliveries_late": 1,
    "deliveries_failed": 0,
    "delivery_delay_ms_sum": 30_000,
    "nps_score": 6,
    "csat_score": None,
    "ces_score": None,
    "support_tickets_opened": 0,
    "support_tickets_resolved": 0,
    "resolution_ms_sum": 0,
}

EXPECTED_METRICS = {
    (T0, "AD_CLICK", "social", "spring", "EUR"): {"touchpoints": 1, "ad_clicks": 1, "ad_spend_minor": 120},
    (T0, "PAGE_VIEW", "web", "", ""): {"touchpoints": 1},
    (T0 + 2 * MIN, "CHECKOUT", "web", "", "EUR"): {"touchpoints": 1},  # the order's components: next line
    (T0 + 2 * MIN, "CHECKOUT", "web", "spring", "EUR"): {
        "checkouts_completed": 1, "revenue_minor": 4999,
        "attributed_conversions": 1, "attributed_revenue_minor": 4999,
    },
    (T0 + 3 * MIN, "DELIVERY_NOTICE", "carrier", "", ""): {
        "touchpoints": 1, "deliveries_delivered": 1, "deliveries_late": 1, "delivery_delay_ms_sum": 30_000,
    },
    (T0 + 4 * MIN, "SURVEY_RESPONSE", "email", "", ""): {"touchpoints": 1, "nps_detractors": 1},
}


def _metric_value(text: str, name: str, labels: str = "") -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + (labels or "")) and not line.startswith("#"):
            head, _, value = line.rpartition(" ")
            if labels or head == name or head.startswith(name + "{"):
                total += float(value)
    return total


def _settled(p: Pipeline, events: int) -> dict:
    """Journeys once the live ones (not superseded) hold ``events`` events in total."""
    def check() -> dict | None:
        j = p.journeys()
        live = sum(s["event_count"] for s in j.values() if s["merged_into"] is None)
        return j if live == events else None
    return wait_until(check, timeout=90, what=f"live journeys holding {events} events")


def test_scenario_gives_the_exact_journey_metrics_and_merge(pipeline: Pipeline) -> None:
    events = scenario()
    # The anonymous touches first (producers key them by anonymous id, the login by customer id: another
    # partition, so without this the login may overtake them and they would go straight to the customer).
    pipeline.send_events(events[:2])
    worker = pipeline.start_worker()
    _settled(pipeline, 2)
    pipeline.send_events(events[2:])

    journeys = _settled(pipeline, 5)
    # Live journeys: exactly one. Others are superseded ids (anonymous journey, or an id renamed when an earlier
    # touch arrived later) and all point to the customer.
    assert [k for k, v in journeys.items() if v["merged_into"] is None] == [f"cust-1:{T0}"]
    assert {v["merged_into"] for v in journeys.values()} == {None, "cust-1"}
    got = {k: v for k, v in journeys[f"cust-1:{T0}"].items() if k not in ("updated_at", "version")}
    assert got == EXPECTED_JOURNEY
    anon = journeys[f"anon-1:{T0}"]
    assert (anon["merged_into"], anon["is_anonymous"], anon["event_count"]) == ("cust-1", True, 2)

    wait_until(lambda: pipeline.metric_totals() == EXPECTED_METRICS, timeout=30,
               what=f"metric windows == {EXPECTED_METRICS}")
    merges = pipeline.read("identity-merges", "identity_merge")
    assert [(m["anonymous_id"], m["customer_id"], m["event_id"], m["event_occurred_at"], m["events_moved"])
            for m in merges] == [("anon-1", "cust-1", events[2]["event_id"], T0 + 2 * MIN, 2)]

    text = worker.metrics_text()
    assert _metric_value(text, "touchpoint_stream_events_processed_total", '{event_type="AD_CLICK"}') == 1
    assert _metric_value(text, "touchpoint_stream_events_processed_total") == 5
    assert _metric_value(text, "touchpoint_stream_identity_merges_total") == 1
    assert _metric_value(text, "touchpoint_stream_event_lag_seconds_count") == 5
    assert _metric_value(text, "touchpoint_stream_duplicates_total") == 0
    assert worker.stop(signal.SIGINT) == 0, worker.log()[-3000:]


def test_duplicates_change_nothing(pipeline: Pipeline) -> None:
    events = scenario()
    pipeline.send_events(events[:2])
    worker = pipeline.start_worker()
    _settled(pipeline, 2)
    pipeline.send_events(events[2:])
    before = _settled(pipeline, 5)
    wait_until(lambda: pipeline.metric_totals() == EXPECTED_METRICS, timeout=30, what="scenario metrics")

    pipeline.send_events(events)  # every event again, same event ids
    pipeline.send_events([events[1], events[3]])
    # 7 resent events. A replayed login also re-sends the anonymous events it stitched: those internal copies are
    # duplicates too, but not input events, so the counter (and `touchpoint run`'s "processed") leaves them out.
    wait_until(lambda: _metric_value(worker.metrics_text(), "touchpoint_stream_duplicates_total") >= 7,
               timeout=30, what="7 duplicates counted")
    time.sleep(3)  # the re-sent copies come after the login they follow
    assert _metric_value(worker.metrics_text(), "touchpoint_stream_duplicates_total") == 7
    assert worker.stop() == 0  # flushes everything
    after = pipeline.journeys()
    assert {k: (v["version"], {f: x for f, x in v.items() if f != "updated_at"}) for k, v in after.items()} == {
        k: (v["version"], {f: x for f, x in v.items() if f != "updated_at"}) for k, v in before.items()}
    assert pipeline.metric_totals() == EXPECTED_METRICS


def test_out_of_order_arrival_gives_the_in_order_journey(pipeline: Pipeline) -> None:
    in_order = scenario("anon-a", "cust-a")
    shuffled = scenario("anon-b", "cust-b")
    random.Random(7).shuffle(shuffled)
    shuffled.reverse()
    pipeline.send_events(in_order)
    pipeline.send_events(shuffled)
    worker = pipeline.start_worker()

    journeys = _settled(pipeline, 10)
    a, b = journeys[f"cust-a:{T0}"], journeys[f"cust-b:{T0}"]
    differs = {"journey_id", "customer_id", "anonymous_ids", "updated_at", "version"}
    assert {k: v for k, v in a.items() if k not in differs} == {k: v for k, v in b.items() if k not in differs}
    assert {k: v for k, v in a.items() if k not in ("updated_at", "version")} == {
        **EXPECTED_JOURNEY, "journey_id": f"cust-a:{T0}", "customer_id": "cust-a", "anonymous_ids": ["anon-a"]}
    assert b["anonymous_ids"] == ["anon-b"]
    assert worker.stop() == 0


def test_two_customers_interleaved_on_one_partition_stay_apart(pipeline: Pipeline) -> None:
    x = [checkout(T0 + i * MIN, customer="cust-x", order=f"ox{i}", amount=1000) for i in range(4)]
    y = [page_view(T0 + i * MIN + 500, customer="cust-y") for i in range(3)] + [
        checkout(T0 + 5 * MIN, customer="cust-y", order="oy", amount=7)]
    interleaved = [e for pair in zip(x, y) for e in pair]
    pipeline.send_events(interleaved, partition=0)
    worker = pipeline.start_worker()

    journeys = _settled(pipeline, 8)
    jx, jy = journeys[f"cust-x:{T0}"], journeys[f"cust-y:{T0 + 500}"]
    assert (jx["event_count"], jx["orders"], jx["revenue_minor"], jx["counts_by_type"]) == (4, 4, 4000, {"CHECKOUT": 4})
    assert (jy["event_count"], jy["orders"], jy["revenue_minor"]) == (4, 1, 7)
    assert jy["counts_by_type"] == {"PAGE_VIEW": 3, "CHECKOUT": 1}
    assert jy["time_to_convert_ms"] == 5 * MIN - 500 and jx["time_to_convert_ms"] == 0
    assert worker.stop() == 0


def test_event_beyond_allowed_lateness_is_counted_late_and_kept(pipeline: Pipeline) -> None:
    on_time = [page_view(T0 + 3 * 3600_000, customer="cust-l"), page_view(T0 + 3 * 3600_000 + MIN, customer="cust-l")]
    late = page_view(T0, customer="cust-l")  # 3 h before the watermark, allowed lateness 1 h
    within = page_view(T0 + 2 * 3600_000 + 30 * MIN, customer="cust-l")  # 31 min behind: still updates its window
    pipeline.send_events(on_time)
    pipeline.send_events([late, within])
    worker = pipeline.start_worker()

    journeys = _settled(pipeline, 4)
    (journey,) = [j for j in journeys.values() if j["merged_into"] is None]
    assert journey["event_count"] == 4 and journey["first_touch_at"] == T0  # kept in the journey
    wm_window = T0 + 3 * 3600_000 + MIN
    expected = {
        (T0, "PAGE_VIEW", "web", "", ""): {"touchpoints": 1},  # a correction row of its own (closed) window
        (T0 + 3 * 3600_000, "PAGE_VIEW", "web", "", ""): {"touchpoints": 1},
        (wm_window, "PAGE_VIEW", "web", "", ""): {"touchpoints": 1, "late_events": 1},
        (T0 + 2 * 3600_000 + 30 * MIN, "PAGE_VIEW", "web", "", ""): {"touchpoints": 1},
    }
    wait_until(lambda: pipeline.metric_totals() == expected, timeout=30, what=f"metrics == {expected}")
    assert _metric_value(worker.metrics_text(), "touchpoint_stream_late_events_total") == 1
    assert grand_totals(pipeline.metric_totals())["late_events"] == 1
    assert worker.stop() == 0
    assert stable(pipeline.journeys()) == stable(journeys)  # clean stop sent nothing new
