"""The Grafana dashboard's ClickHouse panels run against the analyst views and show the right numbers.

Grafana's ClickHouse plugin expands ``$__timeFilter(col)`` to a range condition on ``col``; here it is expanded the
same way and the panel's ``touchpoint.`` database is the test's own. The metric rows are typed into the test, and
the expected figures computed by hand from them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

DASHBOARD = json.loads((Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "dashboards" /
                        "touchpoint.json").read_text())
HOUR = "2026-11-26 10:00:00"

COLUMNS = ("window_start", "window_seconds", "worker_partition", "event_type", "channel", "campaign_id", "currency",
           "version", "emitted_at", "touchpoints", "checkouts_started", "checkouts_completed", "deliveries_on_time",
           "deliveries_late", "nps_promoters", "nps_passives", "nps_detractors", "ad_spend_minor",
           "attributed_revenue_minor")
ROWS = [
    # two minutes of one hour, on two worker partitions; one minute re-emitted with a higher version (FINAL keeps it)
    ("2026-11-26 10:01:00", 60, 0, "CHECKOUT", "web", "bf", "EUR", 1, HOUR, 99, 99, 0, 0, 0, 0, 0, 0, 0, 0),
    ("2026-11-26 10:01:00", 60, 0, "CHECKOUT", "web", "bf", "EUR", 2, HOUR, 6, 4, 3, 0, 0, 0, 0, 0, 0, 500),
    ("2026-11-26 10:07:00", 60, 1, "DELIVERY_NOTICE", "web", "", "", 1, HOUR, 4, 0, 0, 3, 1, 0, 0, 0, 0, 0),
    ("2026-11-26 10:30:00", 60, 1, "SURVEY_RESPONSE", "web", "", "", 1, HOUR, 4, 0, 0, 0, 0, 2, 1, 1, 0, 0),
    ("2026-11-26 10:42:00", 60, 2, "AD_CLICK", "web", "bf", "EUR", 1, HOUR, 1, 0, 0, 0, 0, 0, 0, 0, 250, 0),
]


def sql_targets() -> dict[str, str]:
    return {panel["title"]: target["rawSql"] for panel in DASHBOARD["panels"] for target in panel["targets"]
            if "rawSql" in target}


def expand(sql: str, database: str) -> str:
    sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 >= toDateTime('2026-11-26 00:00:00', 'UTC') AND "
                 r"\1 <= toDateTime('2026-11-27 00:00:00', 'UTC')", sql)
    assert "$" not in sql, f"an unexpanded Grafana macro: {sql}"
    return re.sub(r"\btouchpoint\.", f"{database}.", sql)


def test_every_sql_panel_reads_the_analyst_views_and_gets_the_numbers(store):
    values = ", ".join("(" + ", ".join(repr(v) for v in row) + ")" for row in ROWS)
    store.command(f"INSERT INTO {store.table('metrics_minute')} ({', '.join(COLUMNS)}) VALUES {values}")
    panels = sql_targets()
    assert len(panels) == 3
    results = {}
    for title, sql in panels.items():
        rows = store.query_rows(expand(sql, store.database))
        assert len(rows) == 1, (title, rows)  # one hour of data
        assert str(rows[0][0]).startswith(HOUR), (title, rows)
        results[title] = rows[0][1:]
    assert results["Touchpoints per hour (analyst view kpi_hour)"] == (15,)  # 6 + 4 + 4 + 1 (version 1 replaced)
    # conversion 3 of 4 checkouts; on time 3 of 4 deliveries; NPS (2 promoters - 1 detractor) / 4 responses
    assert results["Conversion, on-time delivery, NPS per hour (kpi_hour)"] == (75.0, 75.0, 25.0)
    assert results["Ad spend and attributed revenue per hour, minor units (metrics_hour)"] == (250, 500)
