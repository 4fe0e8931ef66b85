"""Wire form of the worker's own repartition topics: frames of events, sent to a partition chosen by key.

Only the worker writes these topics, and only events that already passed decoding and validation, so they carry
the plain in-memory event dicts as compact JSON instead of Avro: measured on this machine a JSON round trip costs
~9 µs per event against ~30 µs for Avro encode+decode (pickle/marshal are faster still, but loading them from a
topic anyone with write access can fill would let that writer crash or take over the worker).

**Frames.** Faust and aiokafka cost ~0.1 ms of Python per Kafka record consumed or produced, several times the
logic of an event, so a record on these topics carries a *frame*: every event of a short batch that goes to the
same partition, in order. Partition = ``partition_for(key)``, Kafka's murmur2 rule (the one faust used when these
topics carried one keyed record per event), so the identity of the key → partition mapping, which the tables
depend on, does not change with the framing. Frame records have no key.

* identity topic: a JSON array of events (all with an anonymous id);
* journey topic: ``F`` + a JSON array of ``[owner, restitched (0/1), event]``.

Records of the earlier one-event-per-record form (an event object; ``N``/``R`` + event keyed by owner) are still
read, as frames of one, so a worker upgraded over a non-empty topic loses nothing.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator

from touchpoint.dead_letter import KIND_UNDECODABLE
from touchpoint.errors import InvalidEventError

FRAME_MAX_EVENTS = 500  # ~150-250 KB of JSON: well under Kafka's 1 MB default record limit
_RESTITCHED = b"R"
_DIRECT = b"N"
_FRAME = b"F"
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

Routed = tuple[str, bool, dict[str, Any]]  # (journey owner, restitched, event)


# --- partitioning -----------------------------------------------------------------------------------------------


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2) as an unsigned 32-bit int, like aiokafka's."""
    length = len(data)
    m = 0x5BD1E995
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    extra = length % 4
    if extra:
        tail = data[length - extra:]
        if extra == 3:
            h ^= tail[2] << 16
        if extra >= 2:
            h ^= tail[1] << 8
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


class Partitioner:
    """key → partition by Kafka's default rule (``murmur2(key) & 0x7fffffff % n``), with a bounded cache."""

    def __init__(self, partitions: int, cache_size: int = 200_000) -> None:
        self.partitions = partitions
        self._cache: dict[str, int] = {}
        self._cache_size = cache_size

    def __call__(self, key: str) -> int:
        p = self._cache.get(key)
        if p is None:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            p = self._cache[key] = (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % self.partitions
        return p


# --- frames -----------------------------------------------------------------------------------------------------


def encode_event(event: dict[str, Any]) -> bytes:
    return _dumps(event).encode("utf-8")


def chunks(items: list[Any]) -> Iterator[list[Any]]:
    """``items`` in frames of at most FRAME_MAX_EVENTS."""
    for i in range(0, len(items), FRAME_MAX_EVENTS):
        yield items[i:i + FRAME_MAX_EVENTS]


def encode_identity_frame(events: Iterable[dict[str, Any]]) -> bytes:
    return _dumps(list(events)).encode("utf-8")


def check_event(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict) or "event_id" not in event or "event_type" not in event:
        raise InvalidEventError("internal event record without event_id/event_type", kind=KIND_UNDECODABLE)
    return event


def _json(data: bytes | None) -> Any:
    try:
        return json.loads(data) if data else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidEventError(f"not an internal event record: {exc}", kind=KIND_UNDECODABLE) from exc


def decode_identity_frame(data: bytes | None) -> list[Any]:
    """The items of an identity record (a frame, or one event of the earlier form). Check each with ``check_event``.

    Raises InvalidEventError(kind=undecodable) when the record is not JSON of either form.
    """
    value = _json(data)
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise InvalidEventError("identity record is neither a frame (array) nor an event (object)", kind=KIND_UNDECODABLE)
    return value




def encode_journey_frame(items: Iterable[Routed]) -> bytes:
    return _FRAME + _dumps([[owner, 1 if restitched else 0, event] for owner, restitched, event in items]).encode("utf-8")


def decode_journey_frame(data: bytes | None, key: bytes | None) -> list[Any]:
    """The raw items of a journey record; ``check_routed`` turns each into ``(owner, restitched, event)``.

    An earlier one-event record (``N``/``R`` + event, keyed by owner) is a frame of one. Raises
    InvalidEventError(kind=undecodable) when the record has neither form.
    """
    tag = data[:1] if data else b""
    if tag == _FRAME:
        items = _json(data[1:])  # type: ignore[index]
        if not isinstance(items, list):
            raise InvalidEventError("journey frame is not an array", kind=KIND_UNDECODABLE)
        return items
    if tag in (_RESTITCHED, _DIRECT):
        owner = (key or b"").decode("utf-8", "replace")
        return [[owner, 1 if tag == _RESTITCHED else 0, _json(data[1:])]]  # type: ignore[index]
    raise InvalidEventError("journey record without its frame or routing flag", kind=KIND_UNDECODABLE)


def check_routed(item: Any) -> Routed:
    """One journey frame item as ``(owner, restitched, event)``; InvalidEventError when malformed."""
    if not isinstance(item, list) or len(item) != 3 or not isinstance(item[0], str) or not item[0]:
        raise InvalidEventError("journey frame item is not [owner, restitched, event]", kind=KIND_UNDECODABLE)
    return item[0], bool(item[1]), check_event(item[2])


def encode_routed(event: dict[str, Any], restitched: bool) -> bytes:
    """The one-event form (kept for dead letters: a diverted frame item is written as its own record)."""
    return (_RESTITCHED if restitched else _DIRECT) + encode_event(event)


def item_record(item: Any, *, routed: bool) -> bytes:
    """A frame item as its own record, for its dead letter: the one-event form of a journey item (``routed``) or
    of an identity item, else its repr when it is not even JSON-able."""
    try:
        if routed and isinstance(item, list) and len(item) == 3:
            return encode_routed(item[2], bool(item[1]))
        return encode_event(item)
    except (TypeError, ValueError):
        return repr(item).encode("utf-8")
