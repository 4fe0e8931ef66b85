"""The customer sections of the report on the hand-written history: the numbers in ``build_report(...)["customers"]``,
durations shown as durations, and the HTML page rendered by a real headless browser (Debian's chromium through
Playwright): screenshot taken, no console errors, every section present, every chart label inside its chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.analyst.test_customers_scenarios import AS_OF, load
from touchpoint.sinks.customers import CustomerParams
from touchpoint.sinks.report import build_report
from touchpoint.sinks.report_html import write_html

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SECTIONS = ("customers-churn", "customers-lifecycle", "customers-cohorts", "customers-sales-cycle", "customers-at-risk")


@pytest.fixture(params=["month", "week"])
def report(store: Any, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The report by month (6 periods) and by week (the last 12 of 26: crowded axes)."""
    load(store)
    return build_report(store.client, store.database, customer_params=CustomerParams(period=request.param, as_of_ms=AS_OF))


def test_report_carries_the_customer_sections(report: dict[str, Any]) -> None:
    c = report["customers"]
    if c["params"]["period"] == "week":
        assert len(c["churn"]) == len(c["lifecycle"]) == 12 and c["churn"][-1]["period_start"] == "2026-06-29"
        return
    assert [(r["period_start"], r["active_at_start"], r["churned"]) for r in c["churn"]][3:5] == [
        ("2026-04-01", 4, 2), ("2026-05-01", 6, 1)]
    assert [r["resurrecting"] for r in c["lifecycle"]] == [0, 0, 0, 1, 0, 0]
    assert [x["customers"] for x in c["cohorts"]["cohorts"]] == [3, 1, 3, 1]
    assert [r["customer_id"] for r in c["at_risk"]] == ["B", "C"] and c["at_risk_total"] == 2
    assert c["sales_cycle"]["customer_level"]["customers"] == 8
    assert c["summary"]["repeat_purchase_rate"] == 0.25
    json.dumps(report)  # --json prints it


def test_html_report_renders_in_a_real_browser(report: dict[str, Any], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    page_path = write_html(report, tmp_path / "report.html")
    text = page_path.read_text(encoding="utf-8")
    assert "<script" not in text
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_path.as_uri())
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            present = [s for s in SECTIONS if page.locator(f"h2#{s}").count() == 1]
            # every text of every chart lies inside its svg (axes and labels fully visible)
            outside = page.evaluate("""() => {
                const bad = [];
                for (const svg of document.querySelectorAll('svg')) {
                    const box = svg.getBoundingClientRect();
                    for (const t of svg.querySelectorAll('text')) {
                        const r = t.getBoundingClientRect();
                        if (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5)
                            bad.push(svg.querySelector('title').textContent + ': ' + t.textContent);
                    }
                }
                return bad;
            }""")
            # and no two texts of one chart overlap (crowded axis labels)
            overlapping = page.evaluate("""() => {
                const bad = [];
                for (const svg of document.querySelectorAll('svg')) {
                    const boxes = [...svg.querySelectorAll('text')].map(t => [t.textContent, t.getBoundingClientRect()]);
                    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
                        const [a, p] = boxes[i], [b, q] = boxes[j];
                        if (p.left < q.right - 0.5 && q.left < p.right - 0.5 && p.top < q.bottom - 0.5 && q.top < p.bottom - 0.5)
                            bad.push(a + ' / ' + b);
                    }
                }
                return bad;
            }""")
            heat_cells = page.locator("table.cohorts td.heat").count()
            body = page.inner_text("body")
        finally:
            browser.close()
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert errors == []
    assert present == list(SECTIONS)
    assert outside == []
    assert overlapping == []
    if report["customers"]["params"]["period"] == "month":
        assert heat_cells == 6 + 4 + 3 + 1  # Jan..Jun, Mar..Jun, Apr..Jun, Jun
    assert "nps_detractor" in body and "2 d 12 h" in body and "resurrecting" in body
