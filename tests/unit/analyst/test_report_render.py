"""Pure parts of the report: ratios from components, HTML charts, rich rendering."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

from rich.console import Console

from touchpoint.cli.query import render_report
from touchpoint.sinks.report import derive
from touchpoint.sinks.report_html import bar_chart, line_chart, render_html

ZERO = dict.fromkeys((
    "checkouts_started", "checkouts_completed", "checkouts_abandoned", "deliveries_on_time", "deliveries_late",
    "nps_promoters", "nps_passives", "nps_detractors", "csat_satisfied", "csat_total", "ces_sum", "ces_count",
    "tickets_resolved", "resolution_ms_sum", "emails_sent", "emails_opened", "emails_clicked"), 0)


def test_ratios_are_ratios_of_sums_and_none_without_denominator() -> None:
    # two days: NPS 100 on 1 answer and 0 on 3 answers; the total is (2-1)/4*100 = 25, not the mean (50)
    day1 = {**ZERO, "nps_promoters": 1}
    day2 = {**ZERO, "nps_promoters": 1, "nps_passives": 1, "nps_detractors": 1}
    total = {k: day1[k] + day2[k] for k in ZERO}
    assert derive(day1)["nps"] == 100.0
    assert derive(day2)["nps"] == 0.0
    assert derive(total)["nps"] == 25.0
    d = derive({**ZERO, "checkouts_started": 8, "checkouts_completed": 2, "checkouts_abandoned": 4, "ces_sum": 9,
                "ces_count": 2, "deliveries_on_time": 3, "deliveries_late": 1, "tickets_resolved": 2,
                "resolution_ms_sum": 5000, "emails_sent": 10, "emails_opened": 4, "emails_clicked": 1})
    assert (d["conversion_rate"], d["abandonment_rate"], d["ces_avg"], d["on_time_pct"]) == (0.25, 0.5, 4.5, 75.0)
    assert (d["avg_resolution_seconds"], d["open_rate"], d["ctr"], d["click_to_open_rate"]) == (2.5, 0.4, 0.1, 0.25)
    empty = derive(ZERO)
    assert all(empty[k] is None for k in ("nps", "csat_pct", "ces_avg", "conversion_rate", "on_time_pct", "open_rate"))


def test_charts_are_well_formed_svg_with_escaped_labels() -> None:
    bars = bar_chart([("<script>", 3.0, "3"), ("b & c", 1.0, "1")], "funnel")
    root = ET.fromstring(bars)
    assert root.tag.endswith("svg")
    assert "<script>" not in bars and "&lt;script&gt;" in bars
    assert len(root.findall("{http://www.w3.org/2000/svg}rect")) == 2
    line = line_chart([("d1", 10.0), ("d2", None), ("d3", 30.0), ("d4", 20.0)], "NPS")
    root = ET.fromstring(line)
    assert len(root.findall("{http://www.w3.org/2000/svg}circle")) == 3  # the gap has no point
    assert "no data" in line_chart([("d1", None)], "empty")


def _report() -> dict:
    totals = {**ZERO, **derive(ZERO), "touchpoints": 5, "customers": 2, "nps": 25.0, "revenue_minor": {"EUR": 1234},
              "identity_merges": 1, "p90_resolution_seconds": None, "avg_resolution_seconds": None}
    return {"database": "db<1>", "generated_at": "2026-03-03T00:00:00+00:00", "totals": totals,
            "funnel": [{"step": "ad_click", "label": "Ad click", "customers": 4, "pct_of_first": 100.0, "pct_of_previous": 100.0}],
            "daily": [{"day": "2026-03-02", "touchpoints": 5, "conversion_rate": 0.5, "nps": 25.0, "csat_pct": None,
                       "ces_avg": None, "on_time_pct": 50.0, "open_rate": None, "ctr": None,
                       "avg_resolution_seconds": None, "p90_resolution_seconds": None}],
            "top_paths": [{"path": "AD_CLICK > CHECKOUT", "journeys": 2, "converted_journeys": 1, "conversion_pct": 50.0}],
            "campaigns": [{"campaign_id": "spring", "currency": "EUR", "clicks": 2, "spend_minor": 200,
                           "attributed_conversions": 1, "attributed_revenue_minor": 3000, "conversion_rate": 0.5,
                           "cost_per_conversion_minor": 200.0}],
            "email_campaigns": [{"campaign_id": "news", "sent": 3, "opened": 2, "clicked": 1, "open_rate": 2 / 3, "ctr": 1 / 3}]}


def test_html_page_is_self_contained() -> None:
    page = render_html(_report())
    assert page.count("<svg") >= 3
    assert "db&lt;1&gt;" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # nothing fetched from the network
    assert "<script" not in page


def test_rich_rendering_shows_the_headline_figures() -> None:
    buf = io.StringIO()
    render_report(_report(), Console(file=buf, width=160, color_system=None))
    text = buf.getvalue()
    for expected in ("NPS", "25.0", "12.34 EUR", "Ad click", "AD_CLICK > CHECKOUT", "spring", "66.7%"):
        assert expected in text, expected
