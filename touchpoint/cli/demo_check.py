"""The demo's two checks: "is everything simulated queryable yet?" and "does the report equal the truth?"."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from touchpoint.config import Settings
from touchpoint.errors import TouchpointError
from touchpoint.cli.pipeline import StoreReader
from touchpoint.cli.supervise import StopSignal, Supervisor


@dataclass(frozen=True)
class Check:
    name: str
    expected: Any
    actual: Any
    source: str = "raw events"  # or "worker windows"

    @property
    def ok(self) -> bool:
        if isinstance(self.expected, float) or isinstance(self.actual, float):
            try:
                return abs(float(self.expected) - float(self.actual)) < 0.01
            except (TypeError, ValueError):
                return False
        return bool(self.expected == self.actual)


def store_progress(reader: StoreReader, database: str) -> dict[str, int]:
    """Counts that grow while the pipeline catches up (and stop changing once it has)."""
    row = reader.rows(
        f"SELECT (SELECT uniqExact(event_id) FROM {database}.touchpoints) AS raw_events, "
        f"(SELECT sum(touchpoints) FROM {database}.metrics_minute_current) AS metric_touchpoints, "
        f"(SELECT count() FROM {database}.journeys) AS journey_snapshots, "
        f"(SELECT uniqExact(anonymous_id) FROM {database}.identity_merges) AS merges"
    )[0]
    return {k: int(v or 0) for k, v in row.items()}


def wait_queryable(reader: StoreReader, settings: Settings, truth: dict[str, Any], timeout: float, stop: StopSignal,
                   supervisor: Supervisor | None, progress: Callable[[int], None], settle_polls: int = 3) -> dict[str, int]:
    """Poll until every simulated event is in the raw table and in the metric windows, every merge is recorded,
    and nothing has changed for `settle_polls` polls (journey snapshots and metric versions have landed)."""
    target = truth["events"]
    deadline = time.monotonic() + timeout
    seen: dict[str, int] = {}
    last_error = ""
    same = 0
    while not stop.stopping:
        if supervisor is not None:
            supervisor.check()
        try:
            now = store_progress(reader, settings.clickhouse_database)
        except Exception as exc:  # noqa: BLE001 - the sink may not serve yet; the deadline bounds the wait
            last_error = str(exc)[:200]
            now = {}
        if now:
            progress(min(now["raw_events"], now["metric_touchpoints"]))
            complete = (now["raw_events"] == target and now["metric_touchpoints"] == target
                        and now["merges"] == truth["identity_merges"])
            same = same + 1 if complete and now == seen else 0
            seen = now
            if same >= settle_polls:
                return now
        if time.monotonic() > deadline:
            raise TouchpointError(
                f"not everything is queryable after {timeout:.0f}s: raw events {seen.get('raw_events')}/{target}, "
                f"metric touchpoints {seen.get('metric_touchpoints')}/{target}, merges {seen.get('merges')}/"
                f"{truth['identity_merges']}{'; last error: ' + last_error if last_error else ''}. "
                f"See the worker and sink logs in {settings.data_dir / 'logs'}"
            )
        stop.wait(1.0)
    return seen


def _get(report: dict[str, Any], path: str) -> Any:
    node: Any = report
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return "(missing)"
        node = node[part]
    return node


# (figure, path in the simulator's truth, key in build_report's totals / totals_from_metrics)
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("touchpoints", "events", "touchpoints"),
    ("ad clicks", "ad_clicks", "ad_clicks"),
    ("checkouts started", "checkouts.started", "checkouts_started"),
    ("checkouts completed", "checkouts.completed", "checkouts_completed"),
    ("checkouts abandoned", "checkouts.abandoned", "checkouts_abandoned"),
    ("checkouts failed", "checkouts.failed", "checkouts_failed"),
    ("deliveries delivered", "deliveries.delivered", "deliveries_delivered"),
    ("deliveries on time", "deliveries.on_time", "deliveries_on_time"),
    ("deliveries late", "deliveries.late", "deliveries_late"),
    ("deliveries failed", "deliveries.failed", "deliveries_failed"),
    ("delivery delay (ms)", "deliveries.delay_ms_sum", "delivery_delay_ms_sum"),
    ("on-time %", "deliveries.on_time_pct", "on_time_pct"),
    ("NPS promoters", "nps.promoters", "nps_promoters"),
    ("NPS passives", "nps.passives", "nps_passives"),
    ("NPS detractors", "nps.detractors", "nps_detractors"),
    ("NPS", "nps.score", "nps"),
    ("CSAT satisfied", "csat.satisfied", "csat_satisfied"),
    ("CSAT answers", "csat.responses", "csat_total"),
    ("CSAT %", "csat.pct", "csat_pct"),
    ("CES answers", "ces.responses", "ces_count"),
    ("CES sum", "ces.sum", "ces_sum"),
    ("CES average", "ces.average", "ces_avg"),
    ("tickets opened", "support.opened", "tickets_opened"),
    ("tickets resolved", "support.resolved", "tickets_resolved"),
    ("resolution time sum (ms)", "support.resolution_ms_sum", "resolution_ms_sum"),
    ("emails sent", "emails.sent", "emails_sent"),
    ("emails opened", "emails.opened", "emails_opened"),
    ("emails clicked", "emails.clicked", "emails_clicked"),
    ("emails bounced", "emails.bounced", "emails_bounced"),
    ("emails unsubscribed", "emails.unsubscribed", "emails_unsubscribed"),
)
# Only in the raw totals (the metric windows do not carry them).
RAW_ONLY: tuple[tuple[str, str, str], ...] = (
    ("customers", "customers", "customers"),
    ("anonymous visitors", "anonymous_visitors", "anonymous_visitors"),
    ("identity merges", "identity_merges", "identity_merges"),
)


def compare(report: dict[str, Any], truth: dict[str, Any]) -> list[Check]:
    """Every headline figure next to the simulator's truth: from the raw events (what the sink stored) and from
    the worker's metric windows (what the stream processor computed)."""
    checks = [Check(name, _get(truth, t), _get(report, f"totals.{r}")) for name, t, r in FIGURES + RAW_ONLY]
    for what, key in (("revenue", "revenue_minor"), ("ad spend", "ad_spend_minor")):
        amounts = truth[key]
        reported = _get(report, f"totals.{key}")
        for currency in sorted(set(amounts) | set(reported if isinstance(reported, dict) else {})):
            checks.append(Check(f"{what} {currency} (minor units)", amounts.get(currency, 0),
                                _get(report, f"totals.{key}.{currency}")))
    checks += [Check(name, _get(truth, t), _get(report, f"totals_from_metrics.{r}"), "worker windows")
               for name, t, r in FIGURES]
    return checks
