"""The JSON shape of a touchpoint that the CLI (``touchpoint produce``) accepts and prints.

::

    {"event_id": "<uuid>"            (optional: generated when absent),
     "event_type": "CHECKOUT",
     "occurred_at": "2026-11-25T10:00:00Z" | 1795600800000   (ISO-8601 with a zone, or epoch milliseconds),
     "customer_id": "c-1", "anonymous_id": "a-1"            (optional, at least one of them),
     "channel": "web", "source": "checkout-service",
     "session_id": "s-1", "context": {"utm_campaign": "bf"}  (optional),
     "payload": {...the fields of the event type's payload...}}

Payload times (``promised_by``) accept the same two forms. Money is integer minor units (``amount_minor``:
1299 for 12.99); a float is rejected rather than rounded. Optional fields may be omitted and get their default.
``event_from_json`` converts shapes and names the field that cannot be converted; ``validate_event`` then checks
the contract (the CLI runs both).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from touchpoint.errors import ValidationError
from touchpoint.schemas.registry import expand, get_registry, payload_record_name

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")  # already normal form
_MS = timedelta(milliseconds=1)


def _is_timestamp(schema: Any) -> bool:
    if isinstance(schema, list):
        return any(_is_timestamp(s) for s in schema)
    return isinstance(schema, dict) and schema.get("logicalType") == "timestamp-millis"


def _is_integer(schema: Any) -> bool:
    if isinstance(schema, list):
        return any(_is_integer(s) for s in schema)
    if isinstance(schema, dict):
        return schema.get("type") in ("int", "long")
    return schema in ("int", "long")


class _Shape:
    """What the converter needs to know about the newest touchpoint schema."""

    def __init__(self) -> None:
        raw = expand(get_registry().latest("touchpoint").raw)
        self.envelope_fields = {f["name"]: f for f in raw["fields"]}
        self.event_types: list[str] = self.envelope_fields["event_type"]["type"]["symbols"]
        by_name = {b["name"].rsplit(".", 1)[-1]: b for b in self.envelope_fields["payload"]["type"]
                   if isinstance(b, dict)}
        self.payloads: dict[str, list[dict[str, Any]]] = {
            t: by_name[payload_record_name(t)]["fields"] for t in self.event_types if payload_record_name(t) in by_name
        }
        self.envelope_plan = _plan(list(self.envelope_fields.values()), frozenset({"event_id", "payload"}))
        self.payload_plans = {t: _plan(fields) for t, fields in self.payloads.items()}


@lru_cache(maxsize=1)
def _shape() -> _Shape:
    return _Shape()


def parse_time(value: Any, field: str) -> int:
    """ISO-8601 text with a time zone, or epoch milliseconds (int), as epoch milliseconds."""
    if type(value) is int:
        return value
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(field, f"{value!r} is not an ISO-8601 time (e.g. 2026-11-25T10:00:00Z) "
                                         "or epoch milliseconds") from None
        if dt.tzinfo is None:
            raise ValidationError(field, f"{value!r} has no time zone; add Z or an offset such as +01:00")
        return (dt - _EPOCH) // _MS
    if isinstance(value, float):
        raise ValidationError(field, "epoch milliseconds must be an integer, not a float", value)
    raise ValidationError(field, f"must be an ISO-8601 time or epoch milliseconds, not {type(value).__name__}",
                          value)


def format_time(millis: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC (``2026-11-25T10:00:00Z``, with ``.123`` only when needed)."""
    dt = _EPOCH + timedelta(milliseconds=millis)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if millis % 1000:
        text += f".{millis % 1000:03d}"
    return text + "Z"


class _Field:
    """One field's conversion, decided once per schema rather than per event (the collector's hot path)."""

    __slots__ = ("name", "timestamp", "integer", "required", "default")

    def __init__(self, f: dict[str, Any]) -> None:
        self.name: str = f["name"]
        self.timestamp = _is_timestamp(f["type"])
        self.integer = _is_integer(f["type"])
        self.required = "default" not in f
        self.default = f.get("default")


_Plan = tuple[tuple[_Field, ...], frozenset[str]]


def _plan(fields: list[dict[str, Any]], skip: frozenset[str] = frozenset()) -> _Plan:
    return tuple(_Field(f) for f in fields if f["name"] not in skip), frozenset(f["name"] for f in fields)


def _record_from_json(obj: dict[str, Any], plan: _Plan, prefix: str) -> dict[str, Any]:
    fields, names = plan
    out: dict[str, Any] = {}
    for f in fields:
        name = f.name
        if name not in obj:
            if f.required:
                raise ValidationError(f"{prefix}{name}", "required field is missing")
            default = f.default
            out[name] = dict(default) if isinstance(default, dict) else (
                list(default) if isinstance(default, list) else default)
            continue
        value = obj[name]
        if value is not None:
            if f.timestamp:
                value = parse_time(value, f"{prefix}{name}")
            elif f.integer and isinstance(value, float):
                if name.endswith("_minor"):
                    raise ValidationError(f"{prefix}{name}", f"money is integer minor units (e.g. 1299 for 12.99), "
                                                             f"not a float ({value!r})", value)
                raise ValidationError(f"{prefix}{name}", f"must be an integer, not a float ({value!r})", value)
        out[name] = value
    if not obj.keys() <= names:
        unknown = sorted(set(obj) - names)
        raise ValidationError(f"{prefix}{unknown[0]}", f"unknown field (unknown: {', '.join(unknown)})")
    return out


def event_from_json(obj: Any) -> dict[str, Any]:
    """The in-memory touchpoint for one JSON object of the documented shape (see module docstring).

    Raises ``ValidationError`` naming the field when the shape cannot be converted. Does not check the
    contract's rules; run ``validate_event`` on the result.
    """
    if not isinstance(obj, dict):
        raise ValidationError("(event)", f"must be a JSON object, not {type(obj).__name__}")
    shape = _shape()
    event_type = obj.get("event_type")
    if not isinstance(event_type, str) or event_type not in shape.payloads:
        if "event_type" not in obj:
            raise ValidationError("event_type", "required field is missing")
        raise ValidationError("event_type", f"unknown event type {event_type!r}; expected one of "
                                            f"{', '.join(shape.event_types)}", event_type)
    event = _record_from_json(obj, shape.envelope_plan, "")
    event_id = obj.get("event_id")
    if event_id is None:
        event_id = str(uuid.uuid4())
    elif isinstance(event_id, str) and _CANONICAL_UUID.match(event_id) is None:
        try:
            parsed = uuid.UUID(event_id)
        except ValueError:
            raise ValidationError("event_id", f"{event_id!r} is not a UUID", event_id) from None
        if len(event_id) == 36:   # canonical 8-4-4-4-12 text in either case: normalise to lower case
            event_id = str(parsed)
    ordered: dict[str, Any] = {}
    for name in shape.envelope_fields:
        if name == "event_id":
            ordered[name] = event_id
        elif name == "payload":
            payload = obj.get("payload")
            if not isinstance(payload, dict):
                if "payload" not in obj:
                    raise ValidationError("payload", "required field is missing")
                raise ValidationError("payload", f"must be an object, not {type(payload).__name__}")
            ordered[name] = _record_from_json(payload, shape.payload_plans[event_type], "payload.")
        else:
            ordered[name] = event[name]
    return ordered


def event_to_json(event: dict[str, Any]) -> dict[str, Any]:
    """The JSON shape of an in-memory touchpoint (times as ISO-8601 UTC); inverse of ``event_from_json``."""
    shape = _shape()
    out = dict(event)
    for name, f in shape.envelope_fields.items():
        if name in out and out[name] is not None and _is_timestamp(f["type"]):
            out[name] = format_time(out[name])
    fields = shape.payloads.get(str(event.get("event_type")))
    payload = event.get("payload")
    if fields is not None and isinstance(payload, dict):
        payload = dict(payload)
        for f in fields:
            if payload.get(f["name"]) is not None and _is_timestamp(f["type"]):
                payload[f["name"]] = format_time(payload[f["name"]])
        out["payload"] = payload
    return out
