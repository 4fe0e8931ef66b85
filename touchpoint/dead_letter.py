"""The dead-letter contract shared by every stage that reads Kafka.

A dead letter is the *original bytes* of the record (key and value untouched) on the dead-letter topic,
with headers saying why and where it came from. Nothing else about the record is changed, so it can be
inspected or replayed by hand after a fix.
"""

from __future__ import annotations

import time
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
