"""Ground truth of the journey analyses, computed from the simulated events themselves (not the pipeline's code).

Written plainly from the definitions in sinks/README.md ("Journey analysis"), so the ClickHouse queries can be
checked against it: funnel step counts and median step times, stage reach and stalls, NPS/CSAT/CES by the delivery
outcome before the answer, and per-model attribution credit per campaign (exact fractions; time decay in floats).

Every function takes the arrived events (duplicates included; an ``event_id`` counts once) and resolves identities
from the events themselves: an event carrying both ids ties its anonymous id to the customer.
Not part of ``simulate()``'s default truth, so `touchpoint simulate --truth` output is unchanged.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

Event = dict[str, Any]
Match = Callable[[Event], bool]

STAGE_RANK = {"AD_CLICK": 0, "EMAIL_ENGAGEMENT": 0, "PAGE_VIEW": 1, "CHECKOUT": 2, "DELIVERY_NOTICE": 3,
              "SURVEY_RESPONSE": 4}
STAGES = ("awareness", "consideration", "purchase", "fulfilment", "feedback")


def order(event: Event) -> tuple[int, int, int]:
    """(occurred_at, event_id) with event ids compared as ClickHouse compares UUIDs: lower 64 bits, then upper."""
    value = uuid.UUID(event["event_id"]).int
    return event["occurred_at"], value & 0xFFFF_FFFF_FFFF_FFFF, value >> 64


def by_customer(events: Iterable[Event]) -> dict[str, list[Event]]:
    """Unique events per resolved customer, ordered by ``order``."""
    unique: dict[str, Event] = {}
    for e in events:
        unique.setdefault(e["event_id"], e)
    owner = {e["anonymous_id"]: e["customer_id"] for e in unique.values() if e.get("anonymous_id") and e.get("customer_id")}
    out: dict[str, list[Event]] = defaultdict(list)
    for e in unique.values():
        who = e.get("customer_id") or owner.get(e["anonymous_id"]) or e["anonymous_id"]
        out[who].append(e)
    for evs in out.values():
        evs.sort(key=order)
    return dict(out)


def step(event_type: str, **payload: Any) -> Match:
    """A funnel step: the event type and payload fields equal to the given values."""
    return lambda e: e["event_type"] == event_type and all(e["payload"].get(k) == v for k, v in payload.items())


def _lower_median(values: list[int]) -> int | None:
    return sorted(values)[(len(values) - 1) // 2] if values else None


def funnel(events: Iterable[Event], steps: Sequence[Match], window_ms: int, mode: str = "sequential") -> list[dict[str, Any]]:
    """Per step: customers reaching it and the lower median of (step time - previous step time) in ms."""
    return funnel_by(events, steps, window_ms, mode, lambda e: "", missing="").get(
        "", [{"customers": 0, "median_ms": None} for _ in steps])


def funnel_by(events: Iterable[Event], steps: Sequence[Match], window_ms: int, mode: str,
              attribute: Callable[[Event], str], missing: str = "(none)") -> dict[str, list[dict[str, Any]]]:
    """``funnel`` per first-touch value: the attribute of the customer's earliest touchpoint that has one
    (``missing`` if none); only values of customers who did step 1 appear."""
    reached_by: dict[str, list[int]] = {}
    deltas_by: dict[str, list[list[int]]] = {}
    for evs in by_customer(events).values():
        if not any(steps[0](e) for e in evs):
            continue
        value = next((attribute(e) for e in evs if attribute(e)), missing)
        reached = reached_by.setdefault(value, [0] * len(steps))
        deltas = deltas_by.setdefault(value, [[] for _ in steps])
        best: list[int] = []
        for start, e in enumerate(evs):
            if not steps[0](e):
                continue
            chain, pos = [start], start
            for k in range(1, len(steps)):
                nxt = None
                candidates = range(pos + 1, len(evs)) if mode == "sequential" else range(pos + 1, min(pos + 2, len(evs)))
                for j in candidates:
                    if evs[j]["occurred_at"] > e["occurred_at"] + window_ms:
                        break
                    if steps[k](evs[j]):
                        nxt = j
                        break
                if nxt is None:
                    break
                chain.append(nxt)
                pos = nxt
            if len(chain) > len(best):
                best = chain
        for k, idx in enumerate(best):
            reached[k] += 1
            if k:
                deltas[k].append(evs[idx]["occurred_at"] - evs[best[k - 1]]["occurred_at"])
    return {value: [{"customers": reached[k], "median_ms": _lower_median(deltas_by[value][k])} for k in range(len(steps))]
            for value, reached in reached_by.items()}


def stages(events: Iterable[Event]) -> dict[str, dict[str, int]]:
    """Per stage: journeys reaching it, stalled at it, and the lower median dwell (last touch - first touch of the
    stage) of the stalled ones (one journey per customer: the simulated span is shorter than the inactivity gap);
    ``service``: journeys with a support contact / ending with one."""
    out: dict[str, dict[str, Any]] = {s: {"reached": 0, "stalled": 0} for s in (*STAGES, "service")}
    dwell: dict[str, list[int]] = {s: [] for s in out}
    for evs in by_customer(events).values():
        ranks = [STAGE_RANK.get(e["event_type"], -1) for e in evs]
        furthest = max(ranks + [0])
        last = evs[-1]["occurred_at"]
        for i, s in enumerate(STAGES):
            out[s]["reached"] += furthest >= i
            out[s]["stalled"] += furthest == i
            if furthest == i and i in ranks:
                dwell[s].append(last - evs[ranks.index(i)]["occurred_at"])
        out["service"]["reached"] += -1 in ranks
        if evs[-1]["event_type"] == "SUPPORT_INTERACTION":
            out["service"]["stalled"] += 1
            dwell["service"].append(last - evs[ranks.index(-1)]["occurred_at"])
    for s, values in dwell.items():
        out[s]["median_dwell_ms"] = _lower_median(values)
    return out


def delivery_outcome(notice: Event) -> str:
    status = notice["payload"]["status"]
    if status == "delivered":
        return "on_time" if notice["occurred_at"] <= notice["payload"]["promised_by"] else "late"
    return "failed"


def feedback_by_delivery(events: Iterable[Event], lookback_ms: int) -> dict[str, dict[str, int]]:
    """Per delivery outcome before the answer (latest delivered / failed_attempt / returned notice within the
    lookback, else ``none``): NPS promoters/passives/detractors, CSAT satisfied/total, CES sum/count."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for evs in by_customer(events).values():
        for i, answer in enumerate(evs):
            if answer["event_type"] != "SURVEY_RESPONSE":
                continue
            t = answer["occurred_at"]
            outcome = "none"
            for e in evs[:i]:
                if (e["event_type"] == "DELIVERY_NOTICE" and e["payload"]["status"] in ("delivered", "failed_attempt", "returned")
                        and t - lookback_ms <= e["occurred_at"] < t):
                    outcome = delivery_outcome(e)
            p, row = answer["payload"], out[outcome]
            if p["survey_kind"] == "NPS":
                row["nps_" + ("promoters" if p["score"] >= 9 else "passives" if p["score"] >= 7 else "detractors")] += 1
            elif p["survey_kind"] == "CSAT":
                row["csat_total"] += 1
                row["csat_satisfied"] += p["score"] >= p["scale_max"] - 1
            else:
                row["ces_count"] += 1
                row["ces_sum"] += p["score"]
    return {k: dict(v) for k, v in out.items()}


def _weights(model: str, ages_ms: list[int], half_life_ms: int) -> list[Any]:
    n = len(ages_ms)
    if model == "first_touch":
        return [Fraction(int(i == 0)) for i in range(n)]
    if model == "last_touch":
        return [Fraction(int(i == n - 1)) for i in range(n)]
    if model == "linear":
        return [Fraction(1, n)] * n
    if model == "position_based":
        if n <= 2:
            return [Fraction(1, n)] * n
        return [Fraction(2, 5) if i in (0, n - 1) else Fraction(1, 5) / (n - 2) for i in range(n)]
    raw = [2.0 ** (-age / half_life_ms) for age in ages_ms]
    return [w / sum(raw) for w in raw]


def attribution(events: Iterable[Event], is_touch: Match, lookback_ms: int, half_life_ms: int,
                models: Sequence[str], key: Callable[[Event], str] = lambda e: e["payload"]["campaign_id"]
                ) -> dict[str, dict[str, Any]]:
    """{model: {key: credit}} for every completed checkout: the customer's touches with conv - lookback <= t < conv,
    ordered by (occurred_at, event_id); a conversion without touches goes to ``(none)``."""
    out: dict[str, dict[str, Any]] = {m: defaultdict(Fraction) for m in models}
    for evs in by_customer(events).values():
        touches = [e for e in evs if is_touch(e)]
        for conv in evs:
            if not (conv["event_type"] == "CHECKOUT" and conv["payload"]["status"] == "completed"):
                continue
            t = conv["occurred_at"]
            window = [e for e in touches if t - lookback_ms <= e["occurred_at"] < t]
            for m in models:
                if not window:
                    out[m]["(none)"] += 1
                    continue
                for e, w in zip(window, _weights(m, [t - e["occurred_at"] for e in window], half_life_ms)):
                    out[m][key(e)] += w
    return {m: {k: v for k, v in credit.items() if v} for m, credit in out.items()}


def ad_spend(events: Iterable[Event]) -> dict[tuple[str, str], int]:
    """Ad-click cost per (campaign, currency), each event once."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for evs in by_customer(events).values():
        for e in evs:
            if e["event_type"] == "AD_CLICK":
                out[(e["payload"]["campaign_id"], e["payload"]["currency"])] += e["payload"]["cost_minor"]
    return dict(out)


def conversions(events: Iterable[Event]) -> int:
    return sum(1 for evs in by_customer(events).values() for e in evs
               if e["event_type"] == "CHECKOUT" and e["payload"]["status"] == "completed")


def as_plain(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Fractions as floats (for printing and approximate comparison)."""
    return {k: (as_plain(v) if isinstance(v, Mapping) else float(v)) for k, v in mapping.items()}
