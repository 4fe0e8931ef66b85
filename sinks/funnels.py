"""Analyst funnels over identity-resolved touchpoints: user-defined steps, a conversion window, an order mode.

A step is ``EVENT_TYPE[:FILTER[,FILTER...]]``; a filter is ``field OP value`` with OP one of ``= != >= <= > <``,
``value`` may list alternatives with ``|`` (``CHECKOUT:status=completed``, ``SURVEY_RESPONSE:survey_kind=NPS,score<=6``,
``PAGE_VIEW:context.utm_medium=cpc``, ``AD_CLICK:channel=social``). Fields are the payload fields of the step's event
type by their contract names, the envelope fields ``channel`` and ``source``, or ``context.KEY``. Event types, fields
and enum values are checked against the newest Avro contract (``touchpoint.schemas``), so the valid values an error
lists are always the contract's.

Definition (the same in the simulator's truth, ``producers/simulation/truth_journeys.py``): a customer's touchpoints
are ordered by (occurred_at, event_id), ties in time broken by ``event_id`` in ClickHouse's UUID order (its lower
64 bits first, then its upper 64 bits: cheaper to sort than the text). A customer enters the funnel with a step-1 event. From each step-1 event the
chain takes, for every next step, the earliest later event matching it (``sequential``), or requires the very next
touchpoint of the customer to match it (``strict``); every step must happen within ``window`` of the chain's step-1
event. A customer's level is the longest chain over their step-1 events; times between steps come from the first
(earliest) chain reaching that level. One event serves at most one step of a chain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from touchpoint.errors import TouchpointError

MODES = ("sequential", "strict")
NO_VALUE = "(none)"  # the breakdown value of customers none of whose touchpoints carries the attribute
BREAKDOWNS = ("channel", "campaign", "platform")  # or context.KEY
ENVELOPE_FIELDS = ("channel", "source")
_OPS = ("!=", ">=", "<=", "=", ">", "<")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONTEXT_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")


class AnalysisInputError(TouchpointError):
    """A usage error in an analysis argument: names the argument, what is wrong and the valid values (CLI exit 2)."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument = argument


@dataclass(frozen=True)
class FieldInfo:
    """A filterable field: its SQL expression, whether it is numeric, and its enum symbols (empty: free text)."""

    sql: str
    numeric: bool
    symbols: tuple[str, ...] = ()


@dataclass(frozen=True)
class Filter:
    field: str
    op: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Step:
    """One parsed, validated funnel step; ``text`` is what the analyst wrote."""

    text: str
    event_type: str
    filters: tuple[Filter, ...]
    name: str = ""  # a readable name (the report's default steps); else the spec is the label

    @property
    def label(self) -> str:
        return self.name or self.text


# ---- the contract: event types and fields ------------------------------------------------------------------

@lru_cache(maxsize=1)
def contract() -> tuple[tuple[str, ...], dict[str, dict[str, FieldInfo]]]:
    """(event types, {event type: {field: FieldInfo}}) from the newest ``touchpoint`` Avro schema."""
    from touchpoint.schemas.registry import expand, get_registry, payload_record_name
    from touchpoint.sinks.rows import payload_column

    raw = expand(get_registry().latest("touchpoint").raw)
    envelope = {f["name"]: f for f in raw["fields"]}
    types: tuple[str, ...] = tuple(envelope["event_type"]["type"]["symbols"])
    branches = {b["name"].rsplit(".", 1)[-1]: b for b in envelope["payload"]["type"] if isinstance(b, dict)}
    fields: dict[str, dict[str, FieldInfo]] = {}
    for event_type in types:
        known: dict[str, FieldInfo] = {name: _info(name, envelope[name]["type"]) for name in ENVELOPE_FIELDS}
        for f in branches.get(payload_record_name(event_type), {}).get("fields", []):
            column = payload_column(event_type, f["name"])
            if column is not None:
                known[f["name"]] = _info(column, f["type"])
        fields[event_type] = known
    return types, fields


def _info(column: str, avro_type: Any) -> FieldInfo:
    branches = avro_type if isinstance(avro_type, list) else [avro_type]
    for b in branches:
        if isinstance(b, dict) and b.get("type") == "enum":
            return FieldInfo(column, False, tuple(b["symbols"]))
        if b in ("int", "long") or (isinstance(b, dict) and b.get("type") in ("int", "long")):
            return FieldInfo(column, True)
    return FieldInfo(column, False)


def event_types() -> tuple[str, ...]:
    return contract()[0]


# ---- parsing ----------------------------------------------------------------------------------------------

def parse_step(text: str, argument: str = "--step") -> Step:
    """``CHECKOUT:status=completed`` → Step; raises AnalysisInputError naming the argument and the valid values."""
    types, fields = contract()
    head, _, rest = text.strip().partition(":")
    event_type = head.strip().upper()
    if event_type not in types:
        raise AnalysisInputError(argument, f"unknown event type {head.strip()!r} in step {text!r}; valid event types: "
                                           f"{', '.join(types)}")
    filters = []
    for part in [p for p in rest.split(",") if p.strip()] if rest else []:
        op = next((o for o in _OPS if o in part), None)
        if op is None:
            raise AnalysisInputError(argument, f"filter {part.strip()!r} in step {text!r} has no operator; write "
                                               f"field=value (operators: {' '.join(_OPS)})")
        name, _, value = (s.strip() for s in part.partition(op))
        info = field_info(event_type, name, argument, text)
        values = tuple(v.strip() for v in value.split("|"))
        if not all(values):
            raise AnalysisInputError(argument, f"filter {part.strip()!r} in step {text!r} has an empty value")
        if info.symbols:
            bad = [v for v in values if v not in info.symbols]
            if bad:
                raise AnalysisInputError(argument, f"{name}={bad[0]!r} is not a value of {event_type}.{name}; valid "
                                                   f"values: {', '.join(info.symbols)}")
        if op in (">=", "<=", ">", "<"):
            if not info.numeric or len(values) != 1:
                raise AnalysisInputError(argument, f"{op} needs a numeric field and one number (in {text!r}); "
                                                   f"numeric fields of {event_type}: "
                                                   f"{', '.join(n for n, i in fields[event_type].items() if i.numeric)}")
        if info.numeric:
            for v in values:
                if not re.fullmatch(r"-?[0-9]+", v):
                    raise AnalysisInputError(argument, f"{name} is a number; {v!r} (in {text!r}) is not an integer")
        filters.append(Filter(name, op, values))
    return Step(text.strip(), event_type, tuple(filters))


def field_info(event_type: str, name: str, argument: str, text: str) -> FieldInfo:
    """The field ``name`` of ``event_type`` (payload field, envelope field or ``context.KEY``)."""
    if name.startswith("context."):
        key = name[len("context."):]
        if not _CONTEXT_KEY.match(key):
            raise AnalysisInputError(argument, f"context key {key!r} (in {text!r}) must be letters, digits, _ . -")
        return FieldInfo("", False)
    known = contract()[1][event_type]
    if name not in known:
        raise AnalysisInputError(argument, f"unknown field {name!r} of {event_type} in step {text!r}; valid fields: "
                                           f"{', '.join(known)}, context.KEY")
    return known[name]


def parse_steps(texts: Sequence[str], argument: str = "--step") -> list[Step]:
    if len(texts) < 2:
        raise AnalysisInputError(argument, f"a funnel needs at least 2 steps, got {len(texts)}")
    return [parse_step(t, argument) for t in texts]


def check_window(days: float, argument: str = "--window-days") -> float:
    if not days > 0:
        raise AnalysisInputError(argument, f"must be > 0 days, got {days:g}")
    return days


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise AnalysisInputError("--mode", f"unknown order mode {mode!r}; valid values: {', '.join(MODES)}")
    return mode


def breakdown_sql(breakdown: str | None, params: dict[str, Any]) -> str:
    """SQL of a customer's first-touch value of the breakdown (their earliest touchpoint carrying it)."""
    if breakdown is None:
        return "''"
    if breakdown.startswith("context.") and _CONTEXT_KEY.match(breakdown[len("context."):]):
        params["bd_key"] = breakdown[len("context."):]
        column = "context[{bd_key:String}]"
    elif breakdown in BREAKDOWNS:
        column = {"channel": "toString(channel)", "campaign": "toString(campaign_id)", "platform": "toString(platform)"}[breakdown]
    else:
        raise AnalysisInputError("--breakdown", f"unknown breakdown {breakdown!r}; valid values: "
                                                f"{', '.join(BREAKDOWNS)}, context.KEY")
    return f"argMinIf({column}, (occurred_at, event_id), {column} != '')"


# ---- SQL ---------------------------------------------------------------------------------------------------

def step_sql(step: Step, prefix: str, params: dict[str, Any]) -> str:
    """The step's condition over a ``touchpoints`` row; values travel as query parameters."""
    parts = [f"event_type = {{{prefix}t:String}}"]
    params[f"{prefix}t"] = step.event_type
    known = contract()[1][step.event_type]
    for n, f in enumerate(step.filters):
        p = f"{prefix}f{n}"
        if f.field.startswith("context."):
            params[f"{p}k"] = f.field[len("context."):]
            column = f"context[{{{p}k:String}}]"
            info = FieldInfo(column, False)
        else:
            info = known[f.field]
            column = info.sql
        if info.numeric:
            if f.op in ("=", "!="):
                params[p] = [int(v) for v in f.values]
                parts.append(f"{'NOT ' if f.op == '!=' else ''}has({{{p}:Array(Int64)}}, toInt64(ifNull({column}, -9223372036854775808)))")
            else:
                params[p] = int(f.values[0])
                parts.append(f"ifNull({column} {f.op} {{{p}:Int64}}, 0)")
        else:
            params[p] = list(f.values)
            parts.append(f"toString({column}) {'NOT IN' if f.op == '!=' else 'IN'} {{{p}:Array(String)}}")
    return "(" + " AND ".join(parts) + ")"


def customer_levels_sql(db: str, steps: Sequence[Step], window_ms: int, mode: str, breakdown: str | None,
                        params: dict[str, Any]) -> str:
    """One row per customer who did step 1: ``resolved_id, bd, level, t1..tK`` (epoch ms of the chain, 0 = not reached)."""
    k = len(steps)
    conds = [step_sql(s, f"s{i}", params) for i, s in enumerate(steps, start=1)]
    params["window_ms"] = int(window_ms)
    flags = ", ".join(f"{c} AS c{i}" for i, c in enumerate(conds, start=1))
    any_step = " OR ".join(f"c{i}" for i in range(1, k + 1))
    # strict needs every touchpoint of the customer (the very next one must match); sequential only the matching ones
    collect = "groupArray" if mode == "strict" else "groupArrayIf"
    cond_arg = "" if mode == "strict" else f", {any_step}"
    tup = ", ".join(f"c{i}" for i in range(1, k + 1))
    params["funnel_step_kinds"] = sorted({s.event_type for s in steps})
    prefilter = "" if mode == "strict" else "WHERE event_type IN {funnel_step_kinds:Array(String)}"
    if breakdown is None:
        join = ""
    else:
        join = (f"LEFT JOIN (SELECT resolved_id, {breakdown_sql(breakdown, params)} AS bd_ "
                f"FROM {db}.touchpoints_resolved GROUP BY resolved_id) AS b USING resolved_id")
    positions = ", ".join(f"arrayFilter((j, x) -> tupleElement(x, {i + 2}), arrayEnumerate(ev), ev) AS p{i}"
                          for i in range(1, k + 1))
    step_times = ", ".join(f"arrayMap(j -> ts[j], p{i}) AS tp{i}" for i in range(2, k + 1))
    plist = ", ".join(f"p{i}" for i in range(2, k + 1))
    # Plain arraySort of (time, event_id, ...) tuples orders by (time, event_id), a unique pair (measured ~2x faster
    # than a lambda key; the UUID itself ~1.7x faster than its text). One subquery per step: each chain array is computed once (ClickHouse expands aliases, so
    # chaining them in one SELECT would recompute the earlier chains for every later one). Chains are arrays of
    # positions in the customer's sorted events, one per step-1 event; 0 = the chain stopped before this step.
    sql = f"""
        SELECT resolved_id, bd, ts, p1, arrayMap(j -> ts[j], p1) AS st, {plist}, {step_times}, p1 AS ch1
        FROM (
            SELECT resolved_id, bd, arrayMap(x -> x.1, ev) AS ts, {positions}
            FROM (
                SELECT resolved_id, {'any(bd_)' if breakdown is not None else "''"} AS bd,
                       arraySort({collect}((toInt64(toUnixTimestamp64Milli(occurred_at)), event_id,
                                            {tup}){cond_arg})) AS ev
                FROM (SELECT resolved_id, occurred_at, event_id, {flags} FROM {db}.touchpoints_resolved {prefilter}) AS r
                {join}
                GROUP BY resolved_id
                HAVING countIf(c1) > 0
            )
        )"""
    for i in range(2, k + 1):
        if mode == "strict":
            nxt = (f"if(prev != 0 AND has(p{i}, prev + 1) AND ts[prev + 1] <= t0 + {{window_ms:Int64}}, prev + 1, 0)")
        else:
            nxt = f"if(prev = 0, 0, arrayFirst((j, tj) -> j > prev AND tj <= t0 + {{window_ms:Int64}}, p{i}, tp{i}))"
        sql = f"SELECT *, arrayMap((t0, prev) -> {nxt}, st, ch{i - 1}) AS ch{i} FROM ({sql})"
    levels = " + ".join(f"(c{i}_ > 0)" for i in range(1, k + 1))
    lambda_args = ", ".join(f"c{i}_" for i in range(1, k + 1))
    chain_list = ", ".join(f"ch{i}" for i in range(1, k + 1))
    times = ", ".join(f"if(level >= {i}, ts[ch{i}[best]], 0) AS t{i}" for i in range(1, k + 1))
    return f"""
        SELECT resolved_id, bd, level, {times}
        FROM (
            SELECT *, arrayMax(levels) AS level, arrayFirstIndex(l -> l = level, levels) AS best
            FROM (SELECT *, arrayMap(({lambda_args}) -> {levels}, {chain_list}) AS levels FROM ({sql}))
        )"""


@dataclass(frozen=True)
class FunnelStep:
    step: int
    label: str
    customers: int
    pct_of_first: float | None
    pct_of_previous: float | None
    median_ms_from_previous: int | None


def run_funnel(client: Any, database: str, steps: Sequence[Step], window_days: float, mode: str = "sequential",
               breakdown: str | None = None) -> dict[str, list[FunnelStep]]:
    """Per breakdown value ('' without a breakdown): the steps with customers, % of first, % of previous and the
    median (lower median, exact) time from the previous step in ms."""
    check_window(window_days)
    check_mode(mode)
    params: dict[str, Any] = {}
    db = quote_db(database)
    k = len(steps)
    inner = customer_levels_sql(db, steps, int(window_days * 86_400_000), mode, breakdown, params)
    aggregates = ", ".join(
        f"countIf(level >= {i}) AS n{i}, "
        + (f"quantileExactLowIf(0.5)(t{i} - t{i - 1}, level >= {i}) AS m{i}" if i > 1 else "0 AS m1")
        for i in range(1, k + 1))
    result = client.query(f"SELECT bd, {aggregates} FROM ({inner}) GROUP BY bd ORDER BY bd", parameters=params)
    out: dict[str, list[FunnelStep]] = {}
    rows: dict[str, dict[int, tuple[int, int | None]]] = {}
    for row in result.result_rows:
        bd, values = str(row[0]) or (NO_VALUE if breakdown is not None else ""), row[1:]
        rows[bd] = {i: (int(values[2 * (i - 1)]), int(values[2 * (i - 1) + 1]) if i > 1 and values[2 * (i - 1)] else None)
                    for i in range(1, k + 1)}
    if not rows and breakdown is None:
        rows[""] = {}
    for bd, by_step in sorted(rows.items()):
        first = by_step.get(1, (0, None))[0]
        previous = first
        out[bd] = []
        for i, s in enumerate(steps, start=1):
            customers, median = by_step.get(i, (0, None))
            out[bd].append(FunnelStep(i, s.label, customers, _pct(customers, first), _pct(customers, previous),
                                      median))
            previous = customers
    return out


def dropped_at(client: Any, database: str, steps: Sequence[Step], window_days: float, step: int,
               mode: str = "sequential") -> list[str]:
    """Customer ids that reached step ``step - 1`` but not ``step`` (sorted)."""
    check_window(window_days)
    check_mode(mode)
    if not 2 <= step <= len(steps):
        raise AnalysisInputError("--dropped-at", f"must be a step number from 2 to {len(steps)}, got {step}")
    params: dict[str, Any] = {"lvl": step - 1}
    inner = customer_levels_sql(quote_db(database), steps, int(window_days * 86_400_000), mode, None, params)
    result = client.query(f"SELECT resolved_id FROM ({inner}) WHERE level = {{lvl:Int64}} ORDER BY resolved_id",
                          parameters=params)
    return [str(r[0]) for r in result.result_rows]


def _pct(num: int, den: int) -> float | None:
    return None if not den else num * 100.0 / den


def quote_db(database: str) -> str:
    if not _IDENT.match(database):
        raise AnalysisInputError("TOUCHPOINT_CLICKHOUSE_DATABASE", f"{database!r} is not a plain identifier")
    return f"`{database}`"


# ---- the report's default funnel ---------------------------------------------------------------------------

# Candidate steps in journey order; the default funnel keeps those the data holds (at least one event).
DEFAULT_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("AD_CLICK", "Ad click"), ("PAGE_VIEW", "Page view"), ("CHECKOUT:status=started", "Checkout started"),
    ("CHECKOUT:status=completed", "Checkout completed"), ("DELIVERY_NOTICE:status=delivered", "Delivered"),
    ("SURVEY_RESPONSE", "Surveyed"),
)


def default_steps(client: Any, database: str) -> list[Step]:
    """The candidate steps that match at least one stored touchpoint, in journey order: order data without ad
    clicks still gets checkout → delivered → surveyed."""
    params: dict[str, Any] = {}
    steps = [replace(parse_step(spec), name=name) for spec, name in DEFAULT_CANDIDATES]
    counts = ", ".join(f"countIf({step_sql(s, f's{i}', params)}) > 0" for i, s in enumerate(steps))
    present = client.query(f"SELECT {counts} FROM {quote_db(database)}.touchpoints", parameters=params).result_rows[0]
    return [s for s, here in zip(steps, present) if here]


def as_dicts(funnel: Mapping[str, list[FunnelStep]]) -> list[dict[str, Any]]:
    """JSON-ready rows: {breakdown, step, label, customers, pct_of_first, pct_of_previous, median_seconds_from_previous}."""
    return [{"breakdown": bd, "step": s.step, "label": s.label, "customers": s.customers,
             "pct_of_first": s.pct_of_first, "pct_of_previous": s.pct_of_previous,
             "median_seconds_from_previous": None if s.median_ms_from_previous is None
             else s.median_ms_from_previous / 1000}
            for bd, steps in funnel.items() for s in steps]
