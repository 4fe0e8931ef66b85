"""Bytes form of the pure state values for faust tables (use ``value_serializer="raw"`` and these functions).

Layout of every value: a one-byte kind tag (``J`` journey, ``A`` alias, ``W`` window), a one-byte format version,
a CRC-32 (4 bytes, little endian) of everything else, then the state as nested plain data in MessagePack.

Guarantees, because the bytes are read back from a Kafka changelog that anyone with write access could fill:

- decoding cannot run code or build objects other than str/int/float/bool/None/bytes/list/tuple/dict
  (MessagePack has no object or code opcodes; extension types other than our tuple marker are refused);
- every bad input (wrong kind, unknown version, truncated, bit-flipped, random) raises ``StateCodecError`` and
  nothing else: the CRC catches every flip of up to 32 bits and the MessagePack reader bounds lengths by the input
  size and nesting by a fixed depth, so hostile bytes neither crash nor hang nor allocate beyond their own size;
- a valid state round-trips exactly, including tuple vs list (tuples are written as an array whose first item is
  a marker extension, so dict keys such as window dims come back hashable).

Why MessagePack and not marshal: marshal's docs say it is not secure against malicious data and its format may
change between Python versions. Encoding costs more (a Python callback per tuple): see
``tests/benchmarks/bench_journey_state.py`` for the figures next to marshal. The worker writes a state on every
event and reads it only on a cache miss. Nothing older than this format was released, so there is no reader for
earlier versions; the next format change bumps ``_VERSION`` and keeps this reader.

Derived caches on ``Journey`` (``path_cache``, ``campaign_cache``) are not stored; they are rebuilt on first use.
"""

from __future__ import annotations

import functools
import struct
import zlib
from typing import Any, Callable, TypeVar

import msgpack

from touchpoint.errors import PermanentError
from touchpoint.streams.identity import AliasState
from touchpoint.streams.journey import Journey, JourneyState
from touchpoint.streams.windows import WindowState

_VERSION = 3
_JOURNEY, _ALIAS, _WINDOW = b"J", b"A", b"W"
_CRC = struct.Struct("<I")
_HEADER = 2 + _CRC.size
_TUPLE = msgpack.ExtType(1, b"")  # first item of an array that was a tuple

T = TypeVar("T")


class StateCodecError(PermanentError):
    """A stored state value could not be read (wrong kind, unknown format version or corrupt bytes)."""


def _tuple_as_array(value: Any) -> Any:
    if type(value) is tuple:
        return [_TUPLE, *value]
    raise TypeError(f"{type(value).__name__} is not plain data")


def _array(items: list[Any]) -> Any:
    if items and items[0] is _TUPLE:  # _refuse_ext hands out this very object
        return tuple(items[1:])
    return items


def _refuse_ext(code: int, data: bytes) -> Any:
    if (code, data) != (_TUPLE.code, _TUPLE.data):
        raise ValueError(f"unknown extension type {code}")
    return _TUPLE


_packer = msgpack.Packer(strict_types=True, use_bin_type=True, unicode_errors="surrogatepass", default=_tuple_as_array)


def _dump(tag: bytes, data: Any) -> bytes:
    try:
        body: bytes = _packer.pack(data)
    except (TypeError, ValueError, OverflowError) as exc:  # a datetime, UUID, Decimal, int >= 2**64 ... in the state
        _packer.reset()
        raise StateCodecError(f"state holds a value that is not plain data ({exc}); events must be in codec form") from exc
    head = tag + bytes((_VERSION,))
    return head + _CRC.pack(zlib.crc32(body, zlib.crc32(head))) + body


def _load(tag: bytes, raw: bytes) -> Any:
    if raw[:1] != tag:
        raise StateCodecError(f"state value has kind {raw[:1]!r}, expected {tag!r}: wrong table or corrupt changelog")
    if raw[1:2] != bytes((_VERSION,)):
        raise StateCodecError(f"state format version {raw[1:2]!r} is not supported by this worker (it reads "
                              f"{_VERSION}); delete the table's local store and changelog topic, or run the worker "
                              "version that wrote it")
    if len(raw) < _HEADER or _CRC.unpack_from(raw, 2)[0] != zlib.crc32(memoryview(raw)[_HEADER:], zlib.crc32(raw[:2])):
        raise StateCodecError("corrupt state value (checksum mismatch); delete the table's local store to rebuild it")
    try:
        return msgpack.unpackb(raw[_HEADER:], list_hook=_array, ext_hook=_refuse_ext, raw=False, strict_map_key=False,
                               unicode_errors="surrogatepass")
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as exc:
        raise StateCodecError(f"corrupt state value ({exc}); delete the table's local store to rebuild it") from exc


def _typed_errors(loads: Callable[[bytes], T]) -> Callable[[bytes], T]:
    """A value of the right kind whose shape does not fit the state (wrong arity or types) is corrupt too."""

    @functools.wraps(loads)
    def checked(raw: bytes) -> T:
        try:
            return loads(raw)
        except StateCodecError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise StateCodecError(f"corrupt state value: its shape does not fit {loads.__name__} ({exc}); delete "
                                  "the table's local store to rebuild it") from exc

    return checked


# --- journeys -------------------------------------------------------------------------------------------------


def dumps_journey(state: JourneyState) -> bytes:
    journeys = tuple(
        (j.version, j.summaries, j.counts, j.stage, j.service, j.orders, j.shipments, j.surveys, j.tickets, j.anonymous_ids,
         j.booked)
        for j in state.journeys
    )  # fmt: skip
    return _dump(_JOURNEY, (state.owner, state.is_anonymous, state.merged_into, state.seen, state.pruned_at, journeys,
                            state.retired))


@_typed_errors
def loads_journey(raw: bytes) -> JourneyState:
    owner, is_anonymous, merged_into, seen, pruned_at, journeys, retired = _load(_JOURNEY, raw)
    return JourneyState(
        owner=owner,
        is_anonymous=is_anonymous,
        merged_into=merged_into,
        seen=seen,
        pruned_at=pruned_at,
        journeys=[
            Journey(
                version=v, summaries=summ, counts=counts, stage=stage, service=service, orders=orders,
                shipments=ships, surveys=surveys, tickets=tickets, anonymous_ids=anon, booked=booked,
            )  # fmt: skip
            for v, summ, counts, stage, service, orders, ships, surveys, tickets, anon, booked in journeys
        ],
        retired=retired,
    )


# --- aliases --------------------------------------------------------------------------------------------------


def dumps_alias(state: AliasState) -> bytes:
    return _dump(
        _ALIAS,
        (state.anonymous_id, state.customer_id, state.buffer, state.overflow, state.merge_event_id, state.merged_at, state.conflicts),
    )


@_typed_errors
def loads_alias(raw: bytes) -> AliasState:
    anonymous_id, customer_id, buffer, overflow, merge_event_id, merged_at, conflicts = _load(_ALIAS, raw)
    return AliasState(anonymous_id, customer_id, buffer, overflow, merge_event_id, merged_at, conflicts)


# --- windows --------------------------------------------------------------------------------------------------


def dumps_window(state: WindowState) -> bytes:
    """A window is a 5-tuple; a correction window (``correction_id`` set) appends its id (a 6-tuple), so windows
    stored by an older worker read unchanged."""
    data: tuple[Any, ...] = (state.window_start, state.partition, state.cells, state.last_offset, state.emitted_offset)
    if state.correction_id:
        data += (state.correction_id,)
    return _dump(_WINDOW, data)


@_typed_errors
def loads_window(raw: bytes) -> WindowState:
    data = _load(_WINDOW, raw)
    window_start, partition, cells, last_offset, emitted_offset = data[:5]
    return WindowState(window_start, partition, cells, last_offset, emitted_offset, data[5] if len(data) > 5 else "")
