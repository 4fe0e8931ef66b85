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

    @property
    def ok(self) -> bool:
        if isinstance(self.expected, float) or isinstance(self.actual, float):
            try:
                return abs(float(self.expected) - float(self.actual)) < 0.01
            except (TypeError, ValueError):
                return False
        return self.expected == self.actual


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


# (figure, path in the simulator's truth, path in build_report's JSON)
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("touchpoints", "events", "totals.touchpoints"),
    ("checkouts started", "checkouts.started", "totals.checkouts_started"),
    ("checkouts completed", "checkouts.completed", "totals.checkouts_completed"),
    ("checkouts abandoned", "checkouts.abandoned", "totals.checkouts_abandoned"),
    ("checkouts failed", "checkouts.failed", "totals.checkouts_failed"),
    ("deliveries on time", "deliveries.on_time", "totals.deliveries_on_time"),
    ("deliveries late", "deliveries.late", "totals.deliveries_late"),
    ("deliveries failed", "deliveries.failed", "totals.deliveries_failed"),
    ("NPS promoters", "nps.promoters", "totals.nps_promoters"),
    ("NPS passives", "nps.passives", "totals.nps_passives"),
    ("NPS detractors", "nps.detractors", "totals.nps_detractors"),
    ("NPS", "nps.score", "totals.nps"),
    ("CSAT satisfied", "csat.satisfied", "totals.csat_satisfied"),
    ("CSAT answers", "csat.responses", "totals.csat_total"),
    ("CES answers", "ces.responses", "totals.ces_count"),
    ("CES sum", "ces.sum", "totals.ces_sum"),
    ("tickets opened", "support.opened", "totals.tickets_opened"),
    ("tickets resolved", "support.resolved", "totals.tickets_resolved"),
    ("resolution time sum (ms)", "support.resolution_ms_sum", "totals.resolution_ms_sum"),
    ("emails sent", "emails.sent", "totals.emails_sent"),
    ("emails opened", "emails.opened", "totals.emails_opened"),
    ("emails clicked", "emails.clicked", "totals.emails_clicked"),
    ("emails bounced", "emails.bounced", "totals.emails_bounced"),
    ("ad clicks", "ad_clicks", "totals.ad_clicks"),
    ("identity merges", "identity_merges", "identity_merges"),
)


def compare(report: dict[str, Any], truth: dict[str, Any]) -> list[Check]:
    """Every headline figure of the report next to the simulator's truth."""
    checks = [Check(name, _get(truth, t), _get(report, r)) for name, t, r in FIGURES]
    for currency, amount in truth["revenue_minor"].items():
        checks.append(Check(f"revenue {currency} (minor units)", amount, _get(report, f"revenue_minor.{currency}")))
    return checks
