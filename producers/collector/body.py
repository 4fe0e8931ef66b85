"""Splitting a request body into items, within the collector's limits (pure functions, no I/O).

A body is one JSON object, a JSON array of objects, or JSON Lines. Each item keeps its *original bytes* so a
refused item can be dead-lettered exactly as the client sent it. The limits follow Segment's conventions
(32 KB per event, 500 KB per request) and are checked before anything is produced, so an oversize request is
refused whole (413, naming the limit) and never half-accepted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

JSON_TYPES = frozenset({"application/json", "text/plain"})  # text/plain: what sendBeacon sends without a preflight
JSONL_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/x-jsonlines"})
ACCEPTED_TYPES = JSON_TYPES | JSONL_TYPES

_decoder = json.JSONDecoder()
_WHITESPACE = " \t\r\n"


@dataclass(frozen=True, slots=True)
class Limits:
    """The collector's limits; defaults are the settings' (``collector_max_*``)."""

    max_event_bytes: int = 32 * 1024
    max_request_bytes: int = 500 * 1024
    max_events: int = 2500


class BodyError(Exception):
    """The body as a whole cannot be used; ``status`` is the HTTP answer (400, 413, 415)."""

    def __init__(self, status: int, message: str, limit: str | None = None, value: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.limit = limit
        self.value = value

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.limit is not None:
            out["limit"] = self.limit
            out["max"] = self.value
        return out


@dataclass(frozen=True, slots=True)
class Item:
    """One event of a request: its position, original bytes, and the parsed object (or why it did not parse)."""

    index: int
    raw: bytes
    obj: Any = None
    error: str | None = None


def too_large(limits: Limits) -> BodyError:
    return BodyError(413, f"request body is larger than {limits.max_request_bytes} bytes; send fewer events per request",
                     "max_request_bytes", limits.max_request_bytes)


def split_items(body: bytes, content_type: str, limits: Limits) -> list[Item]:
    """The items of ``body``; raises ``BodyError`` for a wrong content type, unparseable JSON or a broken limit.

    JSON Lines items that are not JSON objects come back as items with an ``error`` (refused one by one); in a
    JSON document the whole body must parse, since an item's boundaries are unknown after a syntax error.
    """
    if content_type not in ACCEPTED_TYPES:
        raise BodyError(415, f"content type {content_type or '(none)'!r} is not accepted; send application/json "
                             "(one event or an array), application/x-ndjson (JSON Lines) or text/plain (JSON)")
    if len(body) > limits.max_request_bytes:
        raise too_large(limits)
    items = _split_lines(body) if content_type in JSONL_TYPES else _split_json(body)
    if not items:
        raise BodyError(400, "the body holds no event; send one event, a JSON array of events, or JSON Lines")
    if len(items) > limits.max_events:
        raise BodyError(413, f"{len(items)} events in one request; at most {limits.max_events} are accepted",
                        "max_events", limits.max_events)
    for item in items:
        if len(item.raw) > limits.max_event_bytes:
            raise BodyError(413, f"event [{item.index}] is {len(item.raw)} bytes; an event may be at most "
                                 f"{limits.max_event_bytes} bytes", "max_event_bytes", limits.max_event_bytes)
    return items


def _split_lines(body: bytes) -> list[Item]:
    items: list[Item] = []
    for raw in body.split(b"\n"):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        index = len(items)
        try:
            obj = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            items.append(Item(index, raw, error=f"not JSON: {exc}"[:300]))
            continue
        except RecursionError:
            items.append(Item(index, raw, error="not JSON: nested too deeply"))
            continue
        items.append(Item(index, raw, obj))
    return items


def _split_json(body: bytes) -> list[Item]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(400, f"body is not UTF-8 (byte 0x{body[exc.start]:02x} at position {exc.start})") from None
    start = _skip(text, 0)
    if start == len(text):
        return []
    try:
        if text[start] != "[":
            obj, end = _decoder.raw_decode(text, start)
            if _skip(text, end) != len(text):
                raise BodyError(400, f"malformed JSON: extra data at position {_skip(text, end)}; "
                                     "send several events as an array or as JSON Lines")
            return [Item(0, body, obj)]
        return _split_array(text, start + 1)
    except json.JSONDecodeError as exc:
        raise BodyError(400, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise BodyError(400, "malformed JSON: nested too deeply") from None


def _split_array(text: str, pos: int) -> list[Item]:
    """Elements of the array opening before ``pos``, each with its own source text (raw_decode gives the span)."""
    items: list[Item] = []
    pos = _skip(text, pos)
    if pos < len(text) and text[pos] == "]":
        pos = _skip(text, pos + 1)
        if pos != len(text):
            raise BodyError(400, f"malformed JSON: extra data at position {pos}")
        return items
    while True:
        obj, end = _decoder.raw_decode(text, pos)
        items.append(Item(len(items), text[pos:end].encode("utf-8"), obj))
        pos = _skip(text, end)
        if pos >= len(text):
            raise BodyError(400, "malformed JSON: the array is not closed")
        if text[pos] == "]":
            if _skip(text, pos + 1) != len(text):
                raise BodyError(400, f"malformed JSON: extra data at position {_skip(text, pos + 1)}")
            return items
        if text[pos] != ",":
            raise BodyError(400, f"malformed JSON: expected ',' or ']' at position {pos}")
        pos = _skip(text, pos + 1)


def _skip(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos] in _WHITESPACE:
        pos += 1
    return pos
