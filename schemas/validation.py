"""Validation of in-memory touchpoints before they are encoded and sent.

``validate_event`` runs per event in the producer (100k events/s on two cores), so the structural checks are
compiled once from the newest Avro schema into plain closures (no fastavro.validation, which walks the schema
per call and stops at "invalid" without saying where), and the semantic rules are a few comparisons. Every
error is a ``ValidationError(field, rule)`` whose field is the dotted path (``payload.score``,
``context.utm_source``) and whose rule says what is expected.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache
from typing import Any, Callable

from touchpoint.errors import ValidationError
from touchpoint.schemas._fastcheck import compile_fast
from touchpoint.schemas.registry import LocalRegistry, expand, get_registry, payload_record_name

Checker = Callable[[Any], None]

MIN_EVENT_MILLIS = 946_684_800_000        # 2000-01-01T00:00:00Z: anything earlier is a unit or clock bug
MAX_FUTURE_MILLIS = 86_400_000            # occurred_at may be at most one day ahead of this host's clock
SURVEY_SCALES: dict[str, tuple[int, int]] = {"NPS": (0, 10), "CSAT": (1, 5), "CES": (1, 7)}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_CURRENCY = re.compile(r"[A-Z]{3}\Z")
_uuid_match = _UUID.match
_time = time.time
_INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_MISSING = object()


def _fail(field: str, rule: str, value: object = None) -> ValidationError:
    return ValidationError(field, rule, value)


def _join(name: str, inner: str) -> str:
    if not inner:
        return name
    return f"{name}{inner}" if inner.startswith("[") else f"{name}.{inner}"


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


# --- compiling a schema into checkers ------------------------------------------------------------------------

def _compile(schema: Any, max_bytes: int) -> Checker:
    if isinstance(schema, list):
        return _compile_union(schema, max_bytes)
    if isinstance(schema, str):
        schema = {"type": schema}
    kind = schema["type"]
    if isinstance(kind, (dict, list)):
        return _compile(kind, max_bytes)
    logical = schema.get("logicalType")
    if kind == "string":
        quick = max_bytes // 4  # a str of at most this many characters cannot exceed max_bytes in UTF-8

        def check_string(v: Any) -> None:
            if type(v) is not str:
                raise _fail("", f"must be a string, not {_type_name(v)}", v)
            if len(v) > quick and len(v.encode("utf-8", "surrogatepass")) > max_bytes:
                raise _fail("", f"string of {len(v.encode('utf-8', 'surrogatepass'))} UTF-8 bytes is longer "
                                f"than the limit of {max_bytes} (max_string_bytes)")
        return check_string
    if kind in ("int", "long"):
        lo, hi = _INT_RANGE[kind]
        floor = MIN_EVENT_MILLIS if logical == "timestamp-millis" else lo
        what = "epoch milliseconds (int)" if logical == "timestamp-millis" else f"an integer ({kind})"

        def check_int(v: Any) -> None:
            if type(v) is not int:
                if type(v) is float:
                    raise _fail("", f"must be {what}, not a float", v)
                raise _fail("", f"must be {what}, not {_type_name(v)}", v)
            if v < floor or v > hi:
                if floor == MIN_EVENT_MILLIS and v >= lo:
                    raise _fail("", f"{v} is before 2000-01-01 (epoch milliseconds expected; seconds given?)", v)
                raise _fail("", f"{v} is out of the {kind} range", v)
        return check_int
    if kind in ("float", "double"):
        def check_float(v: Any) -> None:
            if type(v) not in (float, int):
                raise _fail("", f"must be a number, not {_type_name(v)}", v)
        return check_float
    if kind == "boolean":
        def check_bool(v: Any) -> None:
            if type(v) is not bool:
                raise _fail("", f"must be true or false, not {_type_name(v)}", v)
        return check_bool
    if kind == "null":
        def check_null(v: Any) -> None:
            if v is not None:
                raise _fail("", f"must be null, not {_type_name(v)}", v)
        return check_null
    if kind in ("bytes", "fixed"):
        size = schema.get("size")

        def check_bytes(v: Any) -> None:
            if type(v) is not bytes or (size is not None and len(v) != size):
                raise _fail("", f"must be {'%d ' % size if size else ''}bytes, not {_type_name(v)}", v)
        return check_bytes
    if kind == "enum":
        symbols = frozenset(schema["symbols"])
        listing = ", ".join(schema["symbols"])

        def check_enum(v: Any) -> None:
            if type(v) is not str or v not in symbols:
                raise _fail("", f"{v!r} is not one of {listing}", v)
        return check_enum
    if kind == "array":
        item = _compile(schema["items"], max_bytes)

        def check_array(v: Any) -> None:
            if type(v) not in (list, tuple):
                raise _fail("", f"must be an array, not {_type_name(v)}", v)
            for i, x in enumerate(v):
                try:
                    item(x)
                except ValidationError as e:
                    raise _fail(_join(f"[{i}]", e.field), e.rule, e.value) from None
        return check_array
    if kind == "map":
        value_check = _compile(schema["values"], max_bytes)
        key_check = _compile("string", max_bytes)

        def check_map(v: Any) -> None:
            if type(v) is not dict:
                raise _fail("", f"must be an object (string keys), not {_type_name(v)}", v)
            for k, x in v.items():
                try:
                    key_check(k)
                except ValidationError as e:
                    raise _fail(f"[{k!r}]", f"key {e.rule}", k) from None
                try:
                    value_check(x)
                except ValidationError as e:
                    raise _fail(_join(str(k), e.field), e.rule, e.value) from None
        return check_map
    if kind in ("record", "error"):
        return _compile_record(schema, max_bytes)
    raise ValueError(f"unsupported Avro type {kind!r}")


def _compile_union(branches: list[Any], max_bytes: int) -> Checker:
    if len(branches) == 2 and "null" in branches:
        other = _compile(branches[1] if branches[0] == "null" else branches[0], max_bytes)

        def check_optional(v: Any) -> None:
            if v is not None:
                other(v)
        return check_optional
    checks = [_compile(b, max_bytes) for b in branches]

    def check_union(v: Any) -> None:
        for c in checks:
            try:
                c(v)
                return
            except ValidationError:
                continue
        raise _fail("", f"matches none of the union's types ({_type_name(v)} given)", v)
    return check_union


def _compile_record(schema: dict[str, Any], max_bytes: int,
                    special: dict[str, Callable[[Any, dict[str, Any]], None]] | None = None) -> Checker:
    """special: field name -> check(value, whole record), for fields whose type depends on another field."""
    fields: list[tuple[str, Any, bool]] = []
    for f in schema["fields"]:
        check: Any = (special or {}).get(f["name"]) or _compile(f["type"], max_bytes)
        fields.append((f["name"], check, "default" in f))
    specials = frozenset(special or ())
    allowed = frozenset(f["name"] for f in schema["fields"])
    n_fields = len(fields)
    record_name = str(schema["name"]).rsplit(".", 1)[-1]

    def check_record(rec: Any) -> None:
        if type(rec) is not dict:
            raise _fail("", f"must be an object ({record_name}), not {_type_name(rec)}", rec)
        for name, check, has_default in fields:
            v = rec.get(name, _MISSING)
            if v is _MISSING:
                if has_default:
                    continue
                raise _fail(name, "required field is missing")
            try:
                if name in specials:
                    check(v, rec)
                else:
                    check(v)
            except ValidationError as e:
                raise _fail(_join(name, e.field), e.rule, e.value) from None
        if len(rec) > n_fields or not rec.keys() <= allowed:
            extra = sorted(str(k) for k in rec.keys() - allowed)
            if extra:
                raise _fail(extra[0], f"unknown field of {record_name} (unknown: {', '.join(extra)})")
    return check_record


def _touchpoint_checker(raw: dict[str, Any], max_bytes: int) -> Checker:
    """The envelope checker: the payload is checked against the record its event_type names."""
    expanded = raw
    payload_field = next(f for f in expanded["fields"] if f["name"] == "payload")
    symbols = next(f for f in expanded["fields"] if f["name"] == "event_type")["type"]["symbols"]
    by_name = {str(b["name"]).rsplit(".", 1)[-1]: b for b in payload_field["type"] if isinstance(b, dict)}
    branch_checks: dict[str, Checker] = {}
    branch_fields: dict[str, frozenset[str]] = {}
    for symbol in symbols:
        rec = by_name.get(payload_record_name(symbol))
        if rec is not None:
            branch_checks[symbol] = _compile_record(rec, max_bytes)
            branch_fields[symbol] = frozenset(f["name"] for f in rec["fields"])

    def check_payload(v: Any, event: dict[str, Any]) -> None:
        event_type = event.get("event_type")
        if not isinstance(event_type, str) or event_type not in branch_checks:
            # a symbol without its payload record: `touchpoint schemas check` reports the schema
            raise _fail("", f"the schema has no payload record for event_type {event_type}")
        check = branch_checks[event_type]
        if type(v) is dict:
            extra = v.keys() - branch_fields[event_type]
            if extra:
                looks_like = [payload_record_name(s) for s, fs in branch_fields.items()
                              if s != event_type and v.keys() <= fs]
                hint = f"; it looks like a {' or '.join(looks_like)} payload" if looks_like else ""
                raise _fail("", f"does not match event_type {event_type} ({payload_record_name(event_type)}): "
                                f"unexpected field(s) {', '.join(sorted(map(str, extra)))}{hint}", v)
        check(v)

    return _compile_record(expanded, max_bytes, special={"payload": check_payload})


@lru_cache(maxsize=32)
def _checks(schema: str, max_bytes: int, registry: LocalRegistry | None = None) -> tuple[Callable[[Any], bool], Checker]:
    """(fast, precise) checks of the newest version of ``schema``; see _fastcheck for how they combine."""
    reg = registry or get_registry()
    raw = expand(reg.latest(schema).raw)
    if schema != "touchpoint":
        return compile_fast(raw, max_bytes, MIN_EVENT_MILLIS), _compile_record(raw, max_bytes)
    symbols = next(f for f in raw["fields"] if f["name"] == "event_type")["type"]["symbols"]
    payload = next(f for f in raw["fields"] if f["name"] == "payload")
    by_name = {str(b["name"]).rsplit(".", 1)[-1]: b for b in payload["type"] if isinstance(b, dict)}
    branches = {s: compile_fast(by_name[payload_record_name(s)], max_bytes, MIN_EVENT_MILLIS)
                for s in symbols if payload_record_name(s) in by_name}
    fast = compile_fast(raw, max_bytes, MIN_EVENT_MILLIS, union_field=("payload", "event_type", branches))
    return fast, _touchpoint_checker(raw, max_bytes)


_TOUCHPOINT_CHECKS: dict[int, tuple[Callable[[Any], bool], Checker]] = {}


# --- public API ---------------------------------------------------------------------------------------------

def validate_record(record: Any, schema: str = "touchpoint", registry: LocalRegistry | None = None,
                    max_string_bytes: int = 65536) -> None:
    """Structural check of ``record`` against the newest version of ``schema`` (types, required fields,
    unknown fields, enum symbols, int ranges, string length). Raises ``ValidationError(field, rule)``."""
    fast, precise = _checks(schema, max_string_bytes, registry)
    if not fast(record):
        precise(record)


def validate_event(event: Any, max_string_bytes: int = 65536) -> None:
    """Check a touchpoint against its contract; raises ``ValidationError(field, rule)`` at the first violation.

    Structural: every required field present, types as in the Avro schema, no unknown fields, event_type a known
    symbol, payload the record event_type names. Semantic: event_id a lower-case canonical UUID; customer_id or
    anonymous_id non-empty; occurred_at between 2000-01-01 and one day ahead of now; amounts, costs and item
    counts >= 0; currency three upper-case letters (ISO-4217 shape); survey score within [scale_min, scale_max]
    and the scale the standard one for its kind (NPS 0-10, CSAT 1-5, CES 1-7); no string longer than
    ``max_string_bytes`` UTF-8 bytes.
    """
    checks = _TOUCHPOINT_CHECKS.get(max_string_bytes)
    if checks is None:
        checks = _TOUCHPOINT_CHECKS[max_string_bytes] = _checks("touchpoint", max_string_bytes)
    if not checks[0](event):
        if type(event) is not dict:
            raise _fail("(event)", f"must be an object, not {_type_name(event)}", event)
        checks[1](event)  # raises with the field and the rule

    event_id = event["event_id"]
    if _uuid_match(event_id) is None:
        raise _fail("event_id", "must be a UUID in lower-case canonical form (8-4-4-4-12 hex digits)", event_id)
    if not (event.get("customer_id") or event.get("anonymous_id")):
        raise _fail("customer_id", "customer_id or anonymous_id is required (both are null or empty)")
    occurred_at = event["occurred_at"]
    if occurred_at > _time() * 1000 + MAX_FUTURE_MILLIS:
        raise _fail("occurred_at", f"{occurred_at} is more than a day in the future (epoch milliseconds expected; "
                                   "microseconds given, or a wrong clock?)", occurred_at)
    rule = _SEMANTIC.get(event["event_type"])
    if rule is not None:
        rule(event["payload"])


def _non_negative(payload: dict[str, Any], name: str) -> None:
    v = payload[name]
    if v < 0:
        raise _fail(f"payload.{name}", f"must be >= 0, got {v}", v)


def _currency(payload: dict[str, Any]) -> None:
    v = payload["currency"]
    if _CURRENCY.match(v) is None:
        raise _fail("payload.currency", f"{v!r} is not an ISO-4217 code (three upper-case letters, e.g. EUR)", v)


def _ad_click(p: dict[str, Any]) -> None:
    _non_negative(p, "cost_minor")
    _currency(p)


def _checkout(p: dict[str, Any]) -> None:
    _non_negative(p, "amount_minor")
    _non_negative(p, "item_count")
    _currency(p)


def _survey(p: dict[str, Any]) -> None:
    kind, lo, hi, score = p["survey_kind"], p["scale_min"], p["scale_max"], p["score"]
    std = SURVEY_SCALES[kind]
    if (lo, hi) != std:
        field = "payload.scale_min" if lo != std[0] else "payload.scale_max"
        raise _fail(field, f"{kind} scale is {std[0]}-{std[1]}, got {lo}-{hi}", (lo, hi))
    if not lo <= score <= hi:
        raise _fail("payload.score", f"{score} is outside the {kind} scale [{lo}, {hi}]", score)


_SEMANTIC: dict[str, Callable[[dict[str, Any]], None]] = {
    "AD_CLICK": _ad_click,
    "CHECKOUT": _checkout,
    "SURVEY_RESPONSE": _survey,
}
