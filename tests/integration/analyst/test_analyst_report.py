"""``build_report`` on a hand-made dataset with exactly known answers (see dataset.py for the workings)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest

from touchpoint.sinks.report import build_report
from touchpoint.sinks.report_html import write_html

pytestmark = pytest.mark.integration


def test_totals_are_exact(loaded: Any) -> None:
    r = build_report(loaded.client, loaded.database)
    t = r["totals"]
    # 38 distinct events; the replayed NPS answer of c2 (a second insert) counts once
    assert t["touchpoints"] == 38
    assert (t["customers"], t["anonymous_visitors"], t["identity_merges"], r["identity_merges"]) == (4, 2, 1, 1)
    assert (t["ad_clicks"], t["ad_spend_minor"]) == (4, {"EUR": 200, "USD": 120})
    assert (t["checkouts_started"], t["checkouts_completed"], t["checkouts_abandoned"], t["checkouts_failed"]) == (5, 3, 1, 1)
    assert t["conversion_rate"] == 3 / 5 and t["abandonment_rate"] == 1 / 5
    assert t["revenue_minor"] == r["revenue_minor"] == {"EUR": 8000, "USD": 2000}
    assert (t["deliveries_delivered"], t["deliveries_on_time"], t["deliveries_late"], t["deliveries_failed"]) == (2, 1, 1, 1)
    assert (t["on_time_pct"], t["delivery_delay_ms_sum"]) == (50.0, 3 * 3_600_000)
    # NPS to the point: promoters c1 (10), c4 (9); passive c3 (8); detractor c2 (3, replayed once)
    assert (t["nps_promoters"], t["nps_passives"], t["nps_detractors"], t["nps_responses"]) == (2, 1, 1, 4)
    assert t["nps"] == 25.0
    assert (t["csat_satisfied"], t["csat_total"], t["csat_pct"]) == (1, 2, 50.0)
    assert (t["ces_sum"], t["ces_count"], t["ces_avg"]) == (7, 2, 3.5)
    # tickets: t1 2 h, t2 30 min, t3 never resolved
    assert (t["tickets_opened"], t["tickets_resolved"], t["resolution_ms_sum"]) == (3, 2, 9_000_000)
    assert (t["avg_resolution_seconds"], t["p90_resolution_seconds"]) == (4500.0, 7200.0)
    assert (t["emails_sent"], t["emails_opened"], t["emails_clicked"]) == (3, 2, 1)
    assert (t["open_rate"], t["ctr"]) == (2 / 3, 1 / 3)


def test_funnel_is_identity_resolved(loaded: Any) -> None:
    funnel = build_report(loaded.client, loaded.database)["funnel"]
    assert [s["step"] for s in funnel] == ["ad_click", "checkout_started", "checkout_completed", "delivered", "surveyed"]
    # ad click: c1 (as a1, stitched), c2, c3, a2; started: c1, c2, c3; completed/delivered/surveyed: c1, c2
    assert [s["customers"] for s in funnel] == [4, 3, 2, 2, 2]
    assert [s["pct_of_first"] for s in funnel] == [100.0, 75.0, 50.0, 50.0, 50.0]


def test_funnel_window_bounds_the_steps(loaded: Any) -> None:
    # with a 1-hour window c1 and c2 still complete their checkout, but their deliveries come hours later
    funnel = build_report(loaded.client, loaded.database, funnel_window_days=1 / 24)["funnel"]
    assert [s["customers"] for s in funnel] == [4, 3, 2, 0, 0]


def test_metric_views_keep_the_newest_snapshot(loaded: Any) -> None:
    r = build_report(loaded.client, loaded.database)
    m = r["totals_from_metrics"]
    # CHECKOUT key: version 4 replaces version 3; SURVEY key on partition 0: version 2 replaces 1; partitions add up
    assert (m["touchpoints"], m["ad_clicks"], m["checkouts_started"], m["checkouts_completed"]) == (9, 2, 1, 1)
    assert (m["nps_promoters"], m["nps_passives"], m["nps_detractors"], m["nps"]) == (1, 1, 1, 0.0)
    assert (m["csat_pct"], m["ces_avg"]) == (100.0, 2.0)
    days = {d["day"]: d for d in r["daily"]}
    assert list(days) == ["2026-03-02", "2026-03-03"]
    assert (days["2026-03-02"]["touchpoints"], days["2026-03-02"]["conversion_rate"]) == (4, 1.0)
    assert (days["2026-03-03"]["nps"], days["2026-03-03"]["nps_responses"], days["2026-03-03"]["csat_pct"]) == (0.0, 3, 100.0)
    # resolution per day of resolution, from raw touchpoints
    assert (days["2026-03-02"]["avg_resolution_seconds"], days["2026-03-03"]["p90_resolution_seconds"]) == (1800.0, 7200.0)
    assert r["campaigns"] == [{"campaign_id": "spring", "currency": "EUR", "clicks": 2, "spend_minor": 200,
                               "attributed_conversions": 1, "attributed_revenue_minor": 3000, "conversion_rate": 0.5,
                               "cost_per_conversion_minor": 200.0}]


def test_top_paths_use_current_journeys(loaded: Any) -> None:
    paths = build_report(loaded.client, loaded.database)["top_paths"]
    # c1's version 2 replaces version 1; a1's journey was stitched into c1 and is not counted
    assert paths == [
        {"path": "AD_CLICK > CHECKOUT > CHECKOUT", "journeys": 3, "converted_journeys": 2, "conversion_pct": pytest.approx(200 / 3)},
        {"path": "AD_CLICK > PAGE_VIEW", "journeys": 1, "converted_journeys": 0, "conversion_pct": 0.0},
    ]


def test_report_through_the_read_only_port_equals_the_direct_one(loaded: Any, sql_server: Any) -> None:
    direct = build_report(loaded.client, loaded.database)
    analyst = clickhouse_connect.get_client(host="127.0.0.1", port=sql_server.port)
    try:
        over_http = build_report(analyst, loaded.database)
    finally:
        analyst.close()
    direct.pop("generated_at")
    over_http.pop("generated_at")
    assert over_http == direct


def test_empty_store_reports_zeros_and_no_ratios(store: Any) -> None:
    t = build_report(store.client, store.database)["totals"]
    assert t["touchpoints"] == 0 and t["revenue_minor"] == {}
    assert t["nps"] is None and t["conversion_rate"] is None and t["p90_resolution_seconds"] is None


def test_html_report_has_the_charts(loaded: Any, tmp_path: Path) -> None:
    path = write_html(build_report(loaded.client, loaded.database), tmp_path / "out" / "report.html")
    page = path.read_text(encoding="utf-8")
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.DOTALL)
    titles = [ET.fromstring(svg).findtext("{http://www.w3.org/2000/svg}title") for svg in svgs]
    assert titles[0].startswith("Funnel")
    assert {"NPS", "CSAT %", "CES (avg)", "On-time delivery %"} <= set(titles)
    assert any(t.startswith("Campaign conversion") for t in titles)
    assert "25.0" in page and "Checkout started" in page and "AD_CLICK &gt; CHECKOUT &gt; CHECKOUT" in page
    assert "<script" not in page
