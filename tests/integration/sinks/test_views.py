"""Analyst views give exactly the expected numbers from crafted snapshots and events (ratios of sums)."""

from __future__ import annotations

import datetime as dt

import pytest

from touchpoint.schemas.examples import BASE_MILLIS
from touchpoint.sinks.loop import SinkLoop

from tests.integration.sinks.conftest import journey, merge, metric, produce, sink_settings, touchpoint

DAY = dt.datetime.fromtimestamp(BASE_MILLIS / 1000, tz=dt.timezone.utc).date()


@pytest.fixture
def loaded(store, pipeline_topics, codec):
    settings = sink_settings(pipeline_topics)
    windows = [
        metric(0, 0, 1, checkouts_started=1, nps_promoters=100),  # replaced by version 2: must not count
        metric(0, 0, 2, checkouts_started=4, checkouts_completed=1, checkouts_abandoned=2, deliveries_on_time=3,
               deliveries_late=1, nps_promoters=5, nps_passives=2, nps_detractors=3, csat_satisfied=4, csat_total=5,
               ces_sum=20, ces_count=5, tickets_resolved=2, resolution_ms_sum=7_200_000, emails_sent=10,
               emails_opened=4, emails_clicked=1),
        metric(0, 1, 1, checkouts_started=1, checkouts_completed=1),
        metric(61, 0, 1, nps_promoters=1),
        metric(0, 2, 3, "AD_CLICK", ad_clicks=10, ad_spend_minor=500, attributed_conversions=2,
               attributed_revenue_minor=3000) | {"campaign_id": "camp", "currency": "EUR"},
    ]
    produce(settings, settings.metrics_topic, [codec.encode(w, "metric_window") for w in windows],
            keys=[f"{w['window_start']}-{w['partition']}" for w in windows])
    events = [
        touchpoint("SUPPORT_INTERACTION", 0, ticket_id="t-1", action="opened"),
        touchpoint("SUPPORT_INTERACTION", 60, ticket_id="t-1", action="resolved"),
        touchpoint("SUPPORT_INTERACTION", 1, ticket_id="t-2", action="opened"),
        touchpoint("SUPPORT_INTERACTION", 121, ticket_id="t-2", action="resolved"),
        touchpoint("SUPPORT_INTERACTION", 2, ticket_id="t-3", action="opened"),
        touchpoint("SUPPORT_INTERACTION", 32, ticket_id="t-3", action="resolved"),
        touchpoint("SUPPORT_INTERACTION", 42, ticket_id="t-3", action="reopened"),
        touchpoint("EMAIL_ENGAGEMENT", 3, None, "a-1", campaign_id="mail", message_id="m-1", action="sent"),
        touchpoint("EMAIL_ENGAGEMENT", 4, None, "a-1", campaign_id="mail", message_id="m-1", action="opened"),
        touchpoint("EMAIL_ENGAGEMENT", 5, None, "a-1", campaign_id="mail", message_id="m-1", action="opened"),
        touchpoint("EMAIL_ENGAGEMENT", 6, None, "a-1", campaign_id="mail", message_id="m-1", action="clicked"),
        touchpoint("EMAIL_ENGAGEMENT", 7, None, "a-2", campaign_id="mail", message_id="m-2", action="sent"),
    ]
    produce(settings, settings.events_topic, [codec.encode(e) for e in events],
            keys=[e["customer_id"] or e["anonymous_id"] for e in events])
    snaps = [
        journey("c-1:1", 1, path=[{"event_type": "AD_CLICK", "channel": "web", "occurred_at": BASE_MILLIS}]),
        journey("c-1:1", 2, converted=True, path=[{"event_type": "AD_CLICK", "channel": "web", "occurred_at": BASE_MILLIS},
                                                  {"event_type": "CHECKOUT", "channel": "web", "occurred_at": BASE_MILLIS + 1}]),
        journey("a-1:1", 1, customer_id="a-1", is_anonymous=True),                    # stitched: in identity_merges
        journey("a-2:1", 1, customer_id="a-2", is_anonymous=True),                    # still anonymous: stays
        journey("a-3:1", 1, customer_id="a-3", is_anonymous=True),
        journey("a-3:1", 2, customer_id="a-3", is_anonymous=True, merged_into="c-3"),  # superseded
    ]
    produce(settings, settings.journeys_topic, [codec.encode(s, "journey_snapshot") for s in snaps],
            keys=[s["customer_id"] for s in snaps])
    produce(settings, settings.merges_topic, [codec.encode(merge("a-1", "c-1"), "identity_merge")], keys=["c-1"])
    stats = SinkLoop(settings, store).run(idle_exit=2)
    assert stats.total_rows() == len(windows) + len(events) + len(snaps) + 1
    return store


def one(store, sql):
    rows = store.query_rows(sql)
    assert len(rows) == 1, rows
    return rows[0]


def test_kpi_day_ratios_are_ratios_of_sums_over_the_newest_snapshots(loaded):
    db = loaded.database
    row = one(loaded, f"SELECT day, checkouts_started, checkouts_completed, conversion_pct, abandonment_pct, on_time_pct, "
                      f"nps_responses, nps, csat_pct, ces_avg, avg_resolution_seconds, email_open_pct, email_ctr_pct, "
                      f"email_click_to_open_pct FROM {db}.kpi_day")
    assert row[:3] == (DAY, 5, 2)
    assert row[3] == pytest.approx(40.0) and row[4] == pytest.approx(40.0) and row[5] == pytest.approx(75.0)
    assert row[6] == 11 and row[7] == pytest.approx(300 / 11)
    assert row[8] == pytest.approx(80.0) and row[9] == pytest.approx(4.0) and row[10] == pytest.approx(3600.0)
    assert row[11:] == pytest.approx((40.0, 10.0, 25.0))
    hours = loaded.query_rows(f"SELECT nps_responses, nps FROM {db}.kpi_hour ORDER BY hour")
    assert hours == [(10, pytest.approx(20.0)), (1, pytest.approx(100.0))]
    # no data for a ratio -> NULL, not 0
    assert hours and one(loaded, f"SELECT csat_pct FROM {db}.kpi_hour ORDER BY hour DESC LIMIT 1") == (None,)


def test_campaign_performance(loaded):
    row = one(loaded, f"SELECT campaign_id, currency, ad_clicks, ad_spend_minor, attributed_conversions, conversion_pct, "
                      f"cost_per_conversion_minor, roas FROM {loaded.database}.campaign_performance")
    assert row == ("camp", "EUR", 10, 500, 2, pytest.approx(20.0), pytest.approx(250.0), pytest.approx(6.0))


def test_email_campaigns_count_distinct_messages(loaded):
    row = one(loaded, f"SELECT campaign_id, emails_sent, emails_opened, emails_clicked, open_pct, ctr_pct, "
                      f"click_to_open_pct FROM {loaded.database}.email_campaigns")
    assert row == ("mail", 2, 1, 1, pytest.approx(50.0), pytest.approx(50.0), pytest.approx(100.0))


def test_time_to_resolution_avg_and_p90_from_per_ticket_durations(loaded):
    db = loaded.database
    tickets = loaded.query_rows(f"SELECT ticket_id, is_resolved, resolution_ms FROM {db}.support_tickets ORDER BY ticket_id")
    assert tickets == [("t-1", 1, 60_000), ("t-2", 1, 120_000), ("t-3", 0, None)]
    row = one(loaded, f"SELECT tickets_resolved, avg_resolution_seconds, p90_resolution_seconds FROM {db}.resolution_time_day")
    assert row == (2, pytest.approx(90.0), pytest.approx(120.0))


def test_current_journeys_exclude_stitched_anonymous_journeys_and_keep_the_newest_version(loaded):
    db = loaded.database
    rows = loaded.query_rows(f"SELECT journey_id, version, converted FROM {db}.journeys_current ORDER BY journey_id")
    assert rows == [("a-2:1", 1, False), ("c-1:1", 2, True)]
    paths = loaded.query_rows(f"SELECT path, journeys, converted_journeys FROM {db}.journey_paths ORDER BY path")
    assert paths == [("AD_CLICK", 1, 0), ("AD_CLICK > CHECKOUT", 1, 1)]


def test_touchpoints_resolved_maps_stitched_anonymous_ids(loaded):
    rows = loaded.query_rows(f"SELECT anonymous_id, resolved_id, is_identified, count() FROM {loaded.database}.touchpoints_resolved "
                             f"WHERE event_type = 'EMAIL_ENGAGEMENT' GROUP BY ALL ORDER BY ALL")
    assert rows == [("a-1", "c-1", 1, 4), ("a-2", "a-2", 0, 1)]
