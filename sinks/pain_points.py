"""Pain points: NPS, CSAT and CES split by what preceded each answer, and outcomes ranked by their lift in bad answers.

Definitions (the same in the simulator's truth, ``producers/simulation/truth_journeys.py``). For every survey answer
(``SURVEY_RESPONSE``, identity-resolved, replays once), look at the same customer's touchpoints with
``answer - lookback <= t < answer`` (``pain_point_lookback_days``, default 30 d), ordered by (occurred_at, event_id):

- ``delivery``: the latest delivery outcome notice: ``delivered`` → ``on_time`` (at or before ``promised_by``) or
  ``late``; ``failed_attempt`` / ``returned`` → ``failed``; none → ``none``.
- ``support``: the latest ticket opened (its first ``opened``) and its first ``resolved`` before the answer:
  ``resolved < 1 h``, ``resolved 1-24 h``, ``resolved > 24 h``, ``unresolved`` (not resolved before the answer),
  ``none``.
- ``checkout``: the latest ``failed`` or ``abandoned`` checkout → that status; else ``none``.
- ``channel``: the channel the answer came through.

A **bad answer** is an NPS detractor (0-6), a CSAT answer below the top two of its scale, or a CES answer in the bottom
three of its scale (high effort). Lift = bad share of the group - bad share of all answers, in percentage points.
Ratios are computed here from the returned counts (never averaged averages).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from touchpoint.sinks.funnels import quote_db

FACTORS = ("delivery", "support", "checkout", "channel")
HOUR_MS = 3_600_000


def pain_points_sql(db: str, lookback_ms: int, params: dict[str, Any]) -> str:
    params["lookback_ms"] = int(lookback_ms)
    return f"""
        SELECT factor, value,
               count() AS responses,
               countIf(bad) AS bad,
               countIf(kind = 'NPS' AND score >= 9) AS nps_promoters,
               countIf(kind = 'NPS' AND score BETWEEN 7 AND 8) AS nps_passives,
               countIf(kind = 'NPS' AND score <= 6) AS nps_detractors,
               countIf(kind = 'CSAT' AND score >= smax - 1) AS csat_satisfied,
               countIf(kind = 'CSAT') AS csat_total,
               toInt64(coalesce(sumIf(score, kind = 'CES'), 0)) AS ces_sum,
               countIf(kind = 'CES') AS ces_count
        FROM (
            SELECT a.kind AS kind, a.score AS score, a.smax AS smax, a.bad AS bad,
                   arrayFilter(x -> x.1 >= a.t - {{lookback_ms:Int64}} AND x.1 < a.t, h.dl) AS d,
                   arrayFilter(x -> x.1 >= a.t - {{lookback_ms:Int64}} AND x.1 < a.t, s.tk) AS k,
                   arrayFilter(x -> x.1 >= a.t - {{lookback_ms:Int64}} AND x.1 < a.t, h.co) AS c,
                   if(empty(d), 'none', d[-1].3) AS delivery,
                   if(empty(k), 'none',
                      if(k[-1].3 = 0 OR k[-1].3 >= a.t, 'unresolved',
                         multiIf(k[-1].3 - k[-1].1 < {HOUR_MS}, 'resolved < 1 h',
                                 k[-1].3 - k[-1].1 <= {24 * HOUR_MS}, 'resolved 1-24 h', 'resolved > 24 h'))) AS support,
                   if(empty(c), 'none', c[-1].3) AS checkout,
                   [('all', ''), ('delivery', delivery), ('support', support), ('checkout', checkout),
                    ('channel', a.channel)] AS splits
            FROM (
                SELECT resolved_id, toInt64(toUnixTimestamp64Milli(occurred_at)) AS t, toString(survey_kind) AS kind,
                       score, scale_max AS smax, bad, toString(channel) AS channel
                FROM {db}.survey_answers
            ) AS a
            LEFT JOIN (
                SELECT resolved_id,
                       arraySort(groupArrayIf(
                           (toInt64(toUnixTimestamp64Milli(occurred_at)), event_id,
                            if(delivery_status = 'delivered', if(occurred_at <= promised_by, 'on_time', 'late'), 'failed')),
                           event_type = 'DELIVERY_NOTICE' AND delivery_status IN ('delivered', 'failed_attempt', 'returned'))) AS dl,
                       arraySort(groupArrayIf(
                           (toInt64(toUnixTimestamp64Milli(occurred_at)), event_id, toString(checkout_status)),
                           event_type = 'CHECKOUT' AND checkout_status IN ('failed', 'abandoned'))) AS co
                FROM {db}.touchpoints_resolved
                WHERE event_type IN ('DELIVERY_NOTICE', 'CHECKOUT')
                GROUP BY resolved_id
            ) AS h USING resolved_id
            LEFT JOIN (
                SELECT resolved_id,
                       arraySort(groupArray((opened, ticket_id, resolved))) AS tk
                FROM (
                    SELECT resolved_id, ticket_id,
                           toInt64(toUnixTimestamp64Milli(minIf(occurred_at, support_action = 'opened'))) AS opened,
                           if(countIf(support_action = 'resolved') = 0, 0,
                              toInt64(toUnixTimestamp64Milli(minIf(occurred_at, support_action = 'resolved')))) AS resolved
                    FROM {db}.touchpoints_resolved
                    WHERE event_type = 'SUPPORT_INTERACTION' AND ticket_id != ''
                    GROUP BY resolved_id, ticket_id
                    HAVING countIf(support_action = 'opened') > 0
                )
                GROUP BY resolved_id
            ) AS s USING resolved_id
        )
        ARRAY JOIN splits AS split
        GROUP BY split.1 AS factor, split.2 AS value"""


def run_pain_points(client: Any, database: str, lookback_days: float = 30.0) -> list[dict[str, Any]]:
    """One row per (factor, value) plus the base row (``factor='all'``): counts, NPS/CSAT/CES, ``bad_pct`` and
    ``lift_pp`` (vs the base), ranked by lift (largest first), then responses."""
    from touchpoint.sinks.funnels import AnalysisInputError

    if not lookback_days > 0:
        raise AnalysisInputError("--lookback-days", f"must be > 0 days, got {lookback_days:g}")
    params: dict[str, Any] = {}
    sql = pain_points_sql(quote_db(database), int(lookback_days * 86_400_000), params)
    result = client.query(sql, parameters=params)
    rows = [dict(zip(result.column_names, r)) for r in result.result_rows]
    base = next((r for r in rows if r["factor"] == "all"), None)
    base_pct = _pct(base["bad"], base["responses"]) if base else None
    out = []
    for r in rows:
        r = {k: (int(v) if isinstance(v, int) else v) for k, v in r.items()}
        responses = r["nps_promoters"] + r["nps_passives"] + r["nps_detractors"]
        r["nps_responses"] = responses
        r["nps"] = _pct(r["nps_promoters"] - r["nps_detractors"], responses)
        r["csat_pct"] = _pct(r["csat_satisfied"], r["csat_total"])
        r["ces_avg"] = None if not r["ces_count"] else r["ces_sum"] / r["ces_count"]
        r["bad_pct"] = _pct(r["bad"], r["responses"])
        r["lift_pp"] = None if r["bad_pct"] is None or base_pct is None else r["bad_pct"] - base_pct
        out.append(r)
    return sorted(out, key=lambda r: (r["factor"] != "all", -(r["lift_pp"] or 0.0), -r["responses"], r["factor"], r["value"]))


def by_factor(rows: Sequence[dict[str, Any]], factor: str) -> dict[str, dict[str, Any]]:
    """The rows of one factor keyed by value (``by_factor(rows, 'delivery')['late']['nps']``)."""
    return {r["value"]: r for r in rows if r["factor"] == factor}


def _pct(num: int, den: int) -> float | None:
    return None if not den else num * 100.0 / den
