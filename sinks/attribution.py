"""Multi-touch attribution of conversions to campaigns and channels, computed in ClickHouse at query time.

Definitions (the same in the simulator's truth, ``producers/simulation/truth_journeys.py``):

- A **conversion** is a ``CHECKOUT`` touchpoint with status ``completed`` (one per completed order event; replays
  count once: ``touchpoints_resolved`` reads ``FINAL``). Its value is the order's ``amount_minor`` in its currency.
- Its **touches** are the same identity-resolved customer's marketing touchpoints (``attribution_touches``: step
  specs as in funnels, default ad clicks and clicked campaign e-mails) with ``conversion - lookback <= t < conversion``,
  ordered by (occurred_at, event_id). A touch's campaign is its ``campaign_id``, its channel the touchpoint's channel.
- **Models** give the n touches weights summing to 1: ``first_touch`` (all to the first), ``last_touch`` (all to the
  last), ``linear`` (1/n each), ``time_decay`` (2^(-age/half-life), normalised; age = conversion time - touch time),
  ``position_based`` (40 % first, 40 % last, 20 % shared by the middle; n = 1: 100 %, n = 2: 50/50).
  A conversion without touches in the lookback is credited whole to ``(none)``.
- **Exact sums**: each conversion hands out exactly 1,000,000 micro-credits: each touch gets round(weight × 10^6),
  and the rounding remainder (a few micro-credits, + or -) goes to the touch with the largest share (the earliest of
  equals). So the credit of every model adds up to the number of conversions exactly, in integers.
- **Money**: attributed revenue = Σ amount × credit; spend = the campaign's (or channel's) ad-click cost, per
  currency; cost per conversion = spend / credit, ROAS = attributed revenue / spend, both per currency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from touchpoint.sinks.funnels import AnalysisInputError, Step, parse_step, quote_db, step_sql

MODELS = ("first_touch", "last_touch", "linear", "time_decay", "position_based")
BY = ("campaign", "channel")
MICRO = 1_000_000
NONE_KEY = "(none)"

_WEIGHTS = {
    "first_touch": "arrayMap(i -> toFloat64(i = 1), idx)",
    "last_touch": "arrayMap(i -> toFloat64(i = n), idx)",
    "linear": "arrayMap(i -> 1 / n, idx)",
    "time_decay": "arrayMap(x -> x / arraySum(decay), decay)",
    "position_based": "arrayMap(i -> multiIf(n = 1, 1., n = 2, 0.5, i = 1 OR i = n, 0.4, 0.2 / (n - 2)), idx)",
}


def check_models(models: Sequence[str]) -> list[str]:
    bad = [m for m in models if m not in MODELS]
    if bad or not models:
        raise AnalysisInputError("--model", f"unknown attribution model {bad[0] if bad else ''!r}; valid values: "
                                            f"{', '.join(MODELS)}")
    return list(models)


def check_by(by: str) -> str:
    if by not in BY:
        raise AnalysisInputError("--by", f"unknown breakdown {by!r}; valid values: {', '.join(BY)}")
    return by


def parse_touches(spec: str, argument: str = "attribution_touches") -> list[Step]:
    """``AD_CLICK;EMAIL_ENGAGEMENT:action=clicked`` → steps (``;`` separates touch kinds)."""
    parts = [p for p in spec.split(";") if p.strip()]
    if not parts:
        raise AnalysisInputError(argument, "needs at least one event type, e.g. AD_CLICK;EMAIL_ENGAGEMENT:action=clicked")
    return [parse_step(p, argument) for p in parts]


@dataclass(frozen=True)
class Credit:
    """Attributed conversions of one key (campaign or channel) under one model, in one conversion currency."""

    model: str
    key: str
    currency: str
    credit_micro: int
    revenue_minor: float
    spend_minor: int

    @property
    def conversions(self) -> float:
        return self.credit_micro / MICRO

    @property
    def cost_per_conversion_minor(self) -> float | None:
        return None if not self.credit_micro or not self.spend_minor else self.spend_minor / self.conversions

    @property
    def roas(self) -> float | None:
        return None if not self.spend_minor else self.revenue_minor / self.spend_minor


def attribution_sql(db: str, touches: Sequence[Step], models: Sequence[str], by: str, lookback_ms: int,
                    half_life_ms: int, params: dict[str, Any]) -> str:
    """Rows (model, key, currency, credit_micro, revenue_micro) for every model in ``models``."""
    touch_cond = " OR ".join(step_sql(s, f"t{i}", params) for i, s in enumerate(touches))
    key = "toString(campaign_id)" if by == "campaign" else "toString(channel)"
    params.update(lookback_ms=int(lookback_ms), half_life_ms=int(half_life_ms), models=list(models))
    if len(models) == 1:
        weights = _WEIGHTS[models[0]]
    else:
        weights = "multiIf(" + ", ".join(f"model = '{m}', {_WEIGHTS[m]}" for m in models[:-1]) + \
                  f", {_WEIGHTS[models[-1]]})"
    return f"""
        SELECT model, key, currency, toInt64(sum(micro)) AS credit_micro, toInt64(sum(micro * amount)) AS revenue_micro
        FROM (
            SELECT model, currency, amount,
                   if(n = 0, ['{NONE_KEY}'], arrayMap(x -> x.3, w)) AS keys,
                   if(n = 0, [{MICRO}], arrayMap(r -> toInt64(round(r * {MICRO})), {weights})) AS rounded,
                   arrayMap((r, i) -> r + if(i = arrayFirstIndex(v -> v = arrayMax(rounded), rounded),
                                              {MICRO} - arraySum(rounded), 0), rounded, arrayEnumerate(rounded)) AS micros
            FROM (
                SELECT c.ct AS ct, c.amount AS amount, c.currency AS currency,
                       arrayFilter(x -> x.1 >= ct - {{lookback_ms:Int64}} AND x.1 < ct, t.tt) AS w,
                       length(w) AS n, range(1, n + 1) AS idx,
                       arrayMap(x -> exp2(-(ct - x.1) / {{half_life_ms:Int64}}), w) AS decay
                FROM (
                    SELECT resolved_id, toInt64(toUnixTimestamp64Milli(occurred_at)) AS ct,
                           toInt64(amount_minor) AS amount, toString(currency) AS currency
                    FROM {db}.conversions
                ) AS c
                LEFT JOIN (
                    SELECT resolved_id,
                           arraySort(groupArray((toInt64(toUnixTimestamp64Milli(occurred_at)),
                                                                  event_id, {key}))) AS tt
                    FROM {db}.touchpoints_resolved
                    WHERE {touch_cond}
                    GROUP BY resolved_id
                ) AS t USING resolved_id
            )
            ARRAY JOIN {{models:Array(String)}} AS model
        )
        ARRAY JOIN keys AS key, micros AS micro
        GROUP BY model, key, currency
        HAVING credit_micro != 0"""


def run_attribution(client: Any, database: str, *, touches: Sequence[Step], models: Sequence[str] = MODELS,
                    by: str = "campaign", lookback_days: float = 30.0, half_life_days: float = 7.0) -> list[Credit]:
    """Credit per (model, key, currency), ordered by model (as in MODELS), credit descending, key."""
    models = check_models(models)
    by = check_by(by)
    if not lookback_days > 0:
        raise AnalysisInputError("--lookback-days", f"must be > 0 days, got {lookback_days:g}")
    if not half_life_days > 0:
        raise AnalysisInputError("--half-life-days", f"must be > 0 days, got {half_life_days:g}")
    db = quote_db(database)
    params: dict[str, Any] = {}
    sql = attribution_sql(db, touches, models, by, int(lookback_days * 86_400_000), int(half_life_days * 86_400_000),
                          params)
    rows = client.query(sql, parameters=params).result_rows
    key = "toString(campaign_id)" if by == "campaign" else "toString(channel)"
    spend = {(str(k), str(c)): int(m) for k, c, m in client.query(
        f"SELECT {key} AS k, toString(currency) AS c, toInt64(sum(cost_minor)) AS m FROM {db}.touchpoints FINAL "
        "WHERE event_type = 'AD_CLICK' GROUP BY k, c").result_rows}
    out = [Credit(str(m), str(k), str(c), int(cm), int(rm) / MICRO, spend.get((str(k), str(c)), 0))
           for m, k, c, cm, rm in rows]
    order = {m: i for i, m in enumerate(MODELS)}
    return sorted(out, key=lambda r: (order[r.model], -r.credit_micro, r.key, r.currency))


def as_dicts(credits: Sequence[Credit]) -> list[dict[str, Any]]:
    """JSON-ready rows; ``model`` is named on every row."""
    return [{"model": c.model, "key": c.key, "currency": c.currency, "conversions": c.conversions,
             "credit_micro": c.credit_micro, "attributed_revenue_minor": c.revenue_minor, "spend_minor": c.spend_minor,
             "cost_per_conversion_minor": c.cost_per_conversion_minor, "roas": c.roas} for c in credits]
