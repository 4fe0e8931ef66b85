"""Drop-off by journey stage over current journeys (``journeys_current``: newest snapshot per journey, FINAL, stitched
anonymous journeys excluded).

Stages are the journey contract's ``Stage`` symbols (awareness, consideration, purchase, fulfilment, feedback — the
last two are the post-purchase phase), in order, plus ``service`` (support contacts, alongside the others).
Definitions (the same in the simulator's truth, ``producers/simulation/truth_journeys.py``):

- **reached**: journeys whose furthest stage is at or beyond the stage (service: ``service_contacted``);
- **stalled**: journeys whose furthest stage is the stage — nothing further happened within the inactivity gap, or
  the journey is still open (``still_open``: last touch within the gap of the newest touch in the data);
  service: journeys whose last touch is a support interaction;
- **median dwell**: exact lower median of (last touch - first touch of the stage) over the stalled journeys, from the
  journey path (for a path truncated at ``journey_path_limit`` the kept steps);
- **last touchpoints**: the most common last path steps (event type and channel) of the stalled journeys.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from touchpoint.sinks.funnels import AnalysisInputError, event_types, quote_db

SERVICE = "service"
SERVICE_EVENT = "SUPPORT_INTERACTION"


@lru_cache(maxsize=1)
def stage_names() -> tuple[str, ...]:
    """The ``Stage`` enum of the newest journey-snapshot contract, in order."""
    from touchpoint.schemas.registry import expand, get_registry

    raw = expand(get_registry().latest("journey_snapshot").raw)
    stage = next(f for f in raw["fields"] if f["name"] == "stage")
    return tuple(stage["type"]["symbols"])


@lru_cache(maxsize=1)
def stage_of_event_type() -> dict[str, int]:
    """Event type → index of the stage it reaches (-1: none, i.e. service), the worker's own rule.

    Imported from the worker's rules module (a dependency-free constant table) so the dwell time uses exactly the
    rule that set each journey's ``stage``: one source. The contract carries the stage names, not this mapping."""
    from touchpoint.streams.stages import stage_rank

    return {t: stage_rank({"event_type": t}) for t in event_types()}


def run_stages(client: Any, database: str, gap_days: float = 30.0, top: int = 3) -> list[dict[str, Any]]:
    """One row per stage: ``stage, reached, stalled, still_open, median_dwell_seconds, last_touchpoints``
    (list of {``touchpoint``, ``journeys``})."""
    if not gap_days > 0:
        raise AnalysisInputError("journey_inactivity_days", f"must be > 0 days, got {gap_days:g}")
    db = quote_db(database)
    names = stage_names()
    mapping = stage_of_event_type()
    params: dict[str, Any] = {"names": list(names), "event_type_list": list(mapping), "event_type_rank": list(mapping.values()),
                              "gap_ms": int(gap_days * 86_400_000), "service": SERVICE_EVENT,
                              "stage_names": [*names, SERVICE], "stage_idx": [*range(len(names)), -1],
                              "stage_pos": list(range(len(names) + 1))}
    full = f"""
        SELECT stage_name,
               countIf(toUInt8(if(stage_idx = -1, toUInt8(service_contacted), toUInt8(rank >= stage_idx)))) AS reached,
               countIf(stalled) AS stalled_journeys,
               countIf(stalled AND toUnixTimestamp64Milli(last_touch_at) + {{gap_ms:Int64}} >= {{newest_ms:Int64}}) AS still_open,
               quantileExactLowIf(0.5)(dwell_ms, stalled) AS median_dwell_ms,
               countIf(stalled AND dwell_ms IS NOT NULL) AS timed
        FROM ({{inner}})
        GROUP BY stage_pos, stage_name
        ORDER BY stage_pos"""
    inner = f"""
            SELECT stage_pos, stage_name, stage_idx, rank, last_touch_at, last_step, service_contacted,
                   toUInt8(if(stage_idx = -1, toString(path_event_types[-1]) = {{service:String}}, rank = stage_idx)) AS stalled,
                   arrayFirstIndex(r -> r = stage_idx, step_ranks) AS entered,
                   if(entered = 0, NULL, toUnixTimestamp64Milli(last_touch_at) - path_ms[entered]) AS dwell_ms
            FROM (
                SELECT indexOf({{names:Array(String)}}, toString(stage)) - 1 AS rank, last_touch_at, service_contacted,
                       arrayMap(t -> transform(toString(t), {{event_type_list:Array(String)}}, {{event_type_rank:Array(Int64)}}, toInt64(-2)),
                                path_event_types) AS step_ranks,
                       arrayMap(t -> toUnixTimestamp64Milli(t), path_occurred_at) AS path_ms,
                       path_event_types,
                       concat(toString(path_event_types[-1]), ' (', toString(path_channels[-1]), ')') AS last_step
                FROM {db}.journeys_current
            )
            ARRAY JOIN {{stage_names:Array(String)}} AS stage_name, {{stage_idx:Array(Int64)}} AS stage_idx,
                       {{stage_pos:Array(Int64)}} AS stage_pos"""
    params["newest_ms"] = int(client.query(
        f"SELECT toInt64(toUnixTimestamp64Milli(max(last_touch_at))) FROM {db}.journeys_current").result_rows[0][0] or 0)
    result = client.query(full.replace("{inner}", inner), parameters=params)
    last = client.query(f"""
        SELECT stage_name, last_step, count() AS journeys FROM ({inner}) WHERE stalled
        GROUP BY stage_name, last_step ORDER BY journeys DESC, last_step""", parameters=params).result_rows
    tops: dict[str, list[dict[str, Any]]] = {}
    for name, step, journeys in last:
        if len(tops.setdefault(str(name), [])) < top:
            tops[str(name)].append({"touchpoint": str(step), "journeys": int(journeys)})
    out = []
    for name, reached, stalled, still_open, median, timed in result.result_rows:
        out.append({"stage": str(name), "reached": int(reached), "stalled": int(stalled), "still_open": int(still_open),
                    "median_dwell_seconds": None if not timed else int(median) / 1000,
                    "last_touchpoints": tops.get(str(name), [])})
    return out
