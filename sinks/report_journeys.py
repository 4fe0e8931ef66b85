"""The report's journey-analysis sections: the funnel the data supports, stage drop-off, pain points, attribution.

``journey_sections(client, database, options)`` returns the keys ``build_report`` adds (stable; add, never rename):

- ``journey_funnel``: {``steps`` (specs), ``window_days``, ``mode``, ``rows`` (see ``funnels.as_dicts``)} — the
  default funnel keeps the candidate steps (ad click → page view → checkout started → completed → delivered →
  surveyed) that the stored touchpoints hold, so order data without ad clicks still gets checkout → delivered → surveyed;
- ``stages``: ``stages.run_stages`` rows; ``pain_points``: ``pain_points.run_pain_points`` rows;
- ``attribution``: {``touches``, ``lookback_days``, ``half_life_days``, ``by_campaign``, ``by_channel``} with
  rows of every model, each naming its ``model``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from touchpoint.sinks import attribution, funnels, pain_points, stages


def _default(name: str) -> Any:
    from touchpoint.config import Settings

    return Settings.model_fields[name].default


@dataclass(frozen=True)
class JourneyOptions:
    """The settings the sections use; defaults are the settings' own defaults (touchpoint/config.py)."""

    funnel_window_days: float = _default("funnel_window_days")
    attribution_touches: str = _default("attribution_touches")
    attribution_lookback_days: float = _default("attribution_lookback_days")
    attribution_half_life_days: float = _default("attribution_half_life_days")
    pain_point_lookback_days: float = _default("pain_point_lookback_days")
    journey_inactivity_days: float = _default("journey_inactivity_days")

    @classmethod
    def from_settings(cls, settings: Any) -> JourneyOptions:
        return cls(**{name: getattr(settings, name) for name in cls.__dataclass_fields__})


def journey_sections(client: Any, database: str, options: JourneyOptions | None = None) -> dict[str, Any]:
    """The sections' numbers (keys in the module docstring); read-only queries only."""
    o = options or JourneyOptions()
    steps = funnels.default_steps(client, database)
    funnel_rows = (funnels.as_dicts(funnels.run_funnel(client, database, steps, o.funnel_window_days))
                   if len(steps) >= 2 else [])
    touches = attribution.parse_touches(o.attribution_touches)
    by = {f"by_{key}": attribution.as_dicts(attribution.run_attribution(
        client, database, touches=touches, by=key, lookback_days=o.attribution_lookback_days,
        half_life_days=o.attribution_half_life_days)) for key in attribution.BY}
    return {
        "journey_funnel": {"steps": [s.text for s in steps], "window_days": o.funnel_window_days,
                           "mode": "sequential", "rows": funnel_rows},
        "stages": stages.run_stages(client, database, o.journey_inactivity_days),
        "pain_points": pain_points.run_pain_points(client, database, o.pain_point_lookback_days),
        "attribution": {"touches": o.attribution_touches, "lookback_days": o.attribution_lookback_days,
                        "half_life_days": o.attribution_half_life_days, **by},
    }


def funnel_chart(report: dict[str, Any]) -> str:
    """The report's funnel chart: bars of the steps the data holds."""
    from touchpoint.sinks.report import format_number
    from touchpoint.sinks.report_html import bar_chart

    jf = report["journey_funnel"]
    return bar_chart([(r["label"], float(r["customers"]),
                       f'{r["customers"]:,} ({format_number(r["pct_of_first"], 1, "%")})') for r in jf["rows"]],
                     # The steps are the bars' labels; a title listing them all would run past the chart.
                     (f'Funnel ({len(jf["rows"])} steps, customers, {jf["window_days"]:g} d)' if jf["rows"]
                      else "Funnel (too few event types)"))


def render_html(report: dict[str, Any]) -> str:
    """HTML of the sections (for ``report_html``): funnel bars and tables; every attributed number names its model."""
    from touchpoint.sinks.report import format_minor, format_number
    from touchpoint.sinks.report_html import _table

    if "journey_funnel" not in report:
        return ""
    jf = report["journey_funnel"]
    funnel_rows = [(f'{r["step"]}. {r["label"]}', r["customers"], format_number(r["pct_of_first"], 1, "%"),
                    format_number(r["pct_of_previous"], 1, "%"), format_number(r["median_seconds_from_previous"], 0, " s"))
                   for r in jf["rows"]]
    stage_rows = [(r["stage"], r["reached"], r["stalled"], r["still_open"],
                   format_number(r["median_dwell_seconds"], 0, " s"),
                   ", ".join(f'{t["touchpoint"]} {t["journeys"]}' for t in r["last_touchpoints"]) or "—")
                  for r in report["stages"]]
    pain_rows = [("all answers" if r["factor"] == "all" else f'{r["factor"]}: {r["value"]}', r["responses"],
                  format_number(r["bad_pct"], 1, "%"),
                  "—" if r["factor"] == "all" or r["lift_pp"] is None else f'{r["lift_pp"]:+.1f} pp',
                  f'{format_number(r["nps"])} ({r["nps_responses"]})',
                  f'{format_number(r["csat_pct"], 1, "%")} ({r["csat_total"]})',
                  f'{format_number(r["ces_avg"], 2)} ({r["ces_count"]})') for r in report["pain_points"]]
    att = report["attribution"]
    parts = [f'<h2>Funnel steps (window {jf["window_days"]:g} d, identity-resolved customers)</h2>',
             _table(("step", "customers", "of first", "of previous", "median from previous"), funnel_rows,
                    (False, True, True, True, True)),
             "<h2>Journey stages</h2>",
             _table(("stage", "reached", "stalled", "still open", "median dwell", "last touchpoints before a stall"),
                    stage_rows, (False, True, True, True, True, False)),
             "<h2>Pain points (bad-answer share vs all answers)</h2>",
             _table(("preceded by", "answers", "bad answers", "lift", "NPS (n)", "CSAT (n)", "CES (n)"), pain_rows,
                    (False, True, True, True, True, True, True))]
    for key in attribution.BY:
        rows = [(r["model"], r["key"], r["currency"], f'{r["conversions"]:,.3f}',
                 format_minor(r["attributed_revenue_minor"]), format_minor(r["spend_minor"] or None),
                 format_minor(r["cost_per_conversion_minor"]), format_number(r["roas"], 2))
                for r in att[f"by_{key}"]]
        parts.append(f'<h2>Attribution by {key} (lookback {att["lookback_days"]:g} d, time-decay half-life '
                     f'{att["half_life_days"]:g} d)</h2>')
        parts.append(_table(("model", key, "currency", "conversions", "revenue", "spend", "cost / conversion", "ROAS"),
                            rows, (False, False, False, True, True, True, True, True)))
    return "".join(parts)
