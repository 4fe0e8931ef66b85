"""The dead-letter contract shared by every stage that reads Kafka.

A dead letter is the *original bytes* of the record (key and value untouched) on the dead-letter topic,
with headers saying why and where it came from. Nothing else about the record is changed, so it can be
inspected or replayed by hand after a fix.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

HEADER_REASON = "dlq.reason"
HEADER_KIND = "dlq.kind"
HEADER_STAGE = "dlq.stage"
HEADER_TOPIC = "dlq.source.topic"
HEADER_PARTITION = "dlq.source.partition"
HEADER_OFFSET = "dlq.source.offset"
HEADER_AT = "dlq.at"
HEADER_INDEX = "dlq.source.index"  # position inside a worker frame (several events share one source offset)

# Reason kinds: a small fixed set, used as a Prometheus label.
KIND_UNDECODABLE = "undecodable"          # not Avro / truncated / not framed
KIND_UNKNOWN_SCHEMA = "unknown_schema"    # framing fine, writer schema not known
KIND_INVALID = "invalid"                  # decoded, but breaks a validation rule
KIND_REJECTED = "rejected_by_store"       # ClickHouse refused the row permanently


@dataclass(frozen=True)
class DeadLetter:
    """One record to divert, with the reason it is diverted."""

    key: bytes | None
    value: bytes | None
    reason: str
    kind: str
    stage: str
    topic: str
    partition: int
    offset: int
    index: int | None = None  # the event's position in a frame record (worker-internal topics only)

    def headers(self) -> list[tuple[str, bytes]]:
        extra = [] if self.index is None else [(HEADER_INDEX, str(self.index).encode())]
        return extra + [
            (HEADER_REASON, self.reason.encode("utf-8", "replace")[:4096]),
            (HEADER_KIND, self.kind.encode()),
            (HEADER_STAGE, self.stage.encode()),
            (HEADER_TOPIC, self.topic.encode()),
            (HEADER_PARTITION, str(self.partition).encode()),
            (HEADER_OFFSET, str(self.offset).encode()),
            (HEADER_AT, str(int(time.time() * 1000)).encode()),
        ]


def parse_headers(headers: list[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Dead-letter headers as a str dict (for tests, `touchpoint` tooling and operators)."""
    out: dict[str, str] = {}
    for name, value in headers or []:
        if name.startswith("dlq.") and value is not None:
            out[name] = value.decode("utf-8", "replace")
    return out


class RatioGuard:
    """Dead-letter share over the last ``window`` records; trips once when it exceeds ``max_ratio``.

    The limit only applies once ``window`` records have been seen (``dead_letter_min_events`` for the worker, ``sink_dead_letter_min_records``
    for the sink), so a
    handful of early bad records cannot stop a worker. O(1) per record.
    """

    def __init__(self, max_ratio: float, window: int) -> None:
        self.max_ratio = max_ratio
        self.window = window
        self._recent: deque[bool] = deque(maxlen=window)
        self._bad = 0
        self.tripped = False

    def record(self, bad: bool) -> bool:
        """Count one record; True exactly once, when the limit is first exceeded."""
        if len(self._recent) == self.window and self._recent[0]:
            self._bad -= 1
        self._recent.append(bad)
        self._bad += bad
        if not self.tripped and len(self._recent) == self.window and self._bad > self.max_ratio * self.window:
            self.tripped = True
            return True
        return False

    @property
    def ratio(self) -> float:
        return self._bad / len(self._recent) if self._recent else 0.0
