"""Produce touchpoints from JSON Lines (the documented JSON shape, see ``schemas/README.md``).

Every line is judged on its own: a line that is not UTF-8, not JSON, not an object, or not a valid touchpoint is
reported with its line number and reason and nothing is produced for it; every other line is still sent.
Blank lines are skipped; a UTF-8 byte-order mark before the first line is ignored. Guarantee: that of
``TouchpointProducer`` (at-least-once, ordered per key); running the same file twice produces every event twice,
with the same ``event_id`` when the file carries them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from touchpoint.errors import ValidationError
from touchpoint.schemas.json_shape import event_from_json

from touchpoint.producers.producer import DeliveryError, DeliveryReport, TouchpointProducer

_REASON_LIMIT = 300  # a 1 MB bad value must not become a 1 MB error message
_KEPT_FAILURES = 20
_BOM = b"\xef\xbb\xbf"  # UTF-8 byte-order mark


@dataclass(frozen=True, slots=True)
class InvalidLine:
    """A line that was not produced, and why."""

    line: int
    reason: str
    field: str | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(slots=True)
class JsonlSummary:
    """What ``produce_jsonl`` did: lines read, events sent and delivered, lines refused, deliveries failed."""

    lines: int = 0
    sent: int = 0
    delivered: int = 0
    invalid: list[InvalidLine] = field(default_factory=list)
    failed: int = 0
    failures: list[DeliveryError] = field(default_factory=list)  # the first few, for the report
    undelivered: int = 0

    @property
    def ok(self) -> bool:
        return not self.invalid and not self.failed and not self.undelivered


def _short(text: str) -> str:
    return text if len(text) <= _REASON_LIMIT else text[:_REASON_LIMIT] + f"... ({len(text)} characters)"


def parse_line(raw: bytes, number: int) -> dict[str, Any] | InvalidLine | None:
    """One JSON Lines record as an in-memory touchpoint (not yet validated), an ``InvalidLine``, or None if blank."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return InvalidLine(number, f"not UTF-8: byte 0x{raw[exc.start]:02x} at position {exc.start}")
    if not text.strip():
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return InvalidLine(number, f"not JSON: {exc.msg} at column {exc.colno}")
    except RecursionError:
        return InvalidLine(number, "not JSON: nested too deeply")
    if not isinstance(obj, dict):
        return InvalidLine(number, f"not a JSON object (got {type(obj).__name__}); each line must be one touchpoint")
    try:
        event: dict[str, Any] = event_from_json(obj)
    except ValidationError as exc:
        return InvalidLine(number, _short(str(exc)), exc.field)
    return event


def produce_jsonl(
    lines: Iterable[bytes],
    producer: TouchpointProducer,
    *,
    on_invalid: Callable[[InvalidLine], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    progress_every: int = 1000,
    flush_timeout: float | None = 60.0,
    summary: JsonlSummary | None = None,
) -> JsonlSummary:
    """Send every valid line of ``lines`` (bytes, one record each) with ``producer`` and wait for delivery.

    ``on_invalid(line)`` is called for each refused line as it is found; ``on_progress(lines, bytes)`` every
    ``progress_every`` lines. Returns the summary once every sent event has a delivery result, or once
    ``flush_timeout`` passed: then the events still in flight are given up (``undelivered`` counts them), so the
    call never waits longer. Pass your own ``summary`` to keep the counts if the call is interrupted.
    """
    summary = summary if summary is not None else JsonlSummary()
    giving_up = False

    # One callback for the whole run (not a closure per line): it only has to count.
    def delivered(error: DeliveryError | None, report: DeliveryReport | None) -> None:
        if giving_up:
            return  # purged after the flush timeout: counted as undelivered
        if error is None:
            summary.delivered += 1
        else:
            summary.failed += 1
            if len(summary.failures) < _KEPT_FAILURES:
                summary.failures.append(error)

    send = producer.send
    number = 0
    read = 0
    for number, raw in enumerate(lines, start=1):
        read += len(raw)
        if number == 1 and raw.startswith(_BOM):  # exports from spreadsheet tools start with one
            raw = raw[len(_BOM):]
        parsed = parse_line(raw.rstrip(b"\r\n"), number)
        if isinstance(parsed, dict):
            try:
                send(parsed, delivered)
                summary.sent += 1
            except ValidationError as exc:
                parsed = InvalidLine(number, _short(str(exc)), exc.field)
        if isinstance(parsed, InvalidLine):
            summary.invalid.append(parsed)
            if on_invalid is not None:
                on_invalid(parsed)
        if on_progress is not None and number % progress_every == 0:
            on_progress(number, read)
    summary.lines = number
    summary.undelivered = producer.flush(flush_timeout)
    if summary.undelivered:
        giving_up = True
        producer.abort()
    if on_progress is not None:
        on_progress(number, read)
    return summary
