"""Bytes form of the pure state values for faust tables (use ``value_serializer="raw"`` and these functions).

Each value is turned into nested plain tuples/lists/dicts of str/int/bool/None and written with ``marshal``,
behind a one-byte kind tag and a one-byte format version. Why marshal: for plain data it is the fastest writer
(measured in ``tests/benchmarks/bench_journey_state.py`` on a 294-touch journey: dump 1.2-1.7x faster than pickle
protocol 5 and 5-7x faster than json; loads within +-20% of pickle, 2-4x faster than json), the worker writes a
state on every event and reads it only on a cache miss, and unlike pickle it cannot construct arbitrary objects, so
a corrupted or hostile changelog cannot run code. Marshal version 4 is read by every Python 3 we support; a future
format change bumps ``_VERSION`` and keeps the old reader. Byte-for-byte output is not stable (marshal shares
repeated objects by reference count), so never compare encoded states; compare decoded ones.

Derived caches on ``Journey`` (``path_cache``, ``campaign_cache``) are not stored; they are rebuilt on first use.

Format versions: 2 adds ``Journey.booked`` (what each order/shipment/ticket booked in the metric windows) and
keeps the earliest failure / opening / resolution as (occurred_at, event_id). Version 1 journeys are still read:
their facts are converted (unknown event ids become "") and their bookings are assumed to equal what the facts
give now, so loading books nothing; later corrections of such a fact retract that assumed booking.
"""

from __future__ import annotations

import marshal
from typing import Any

from touchpoint.errors import PermanentError
from touchpoint.streams.identity import AliasState
from touchpoint.streams.journey import Journey, JourneyState
from touchpoint.streams.windows import WindowState

_VERSION = 2
_MARSHAL_VERSION = 4
_JOURNEY, _ALIAS, _WINDOW = b"J", b"A", b"W"


class StateCodecError(PermanentError):
    """A stored state value could not be read (wrong kind, unknown format version or corrupt bytes)."""


def _dump(tag: bytes, data: Any) -> bytes:
    try:
        return tag + bytes((_VERSION,)) + marshal.dumps(data, _MARSHAL_VERSION)
    except ValueError as exc:  # a non-plain value (datetime, UUID, Decimal, ...) slipped into the state
        raise StateCodecError(f"state holds a value that is not plain data ({exc}); events must be in codec form") from exc


def _load(tag: bytes, raw: bytes) -> Any:
    if raw[:1] != tag:
        raise StateCodecError(f"state value has kind {raw[:1]!r}, expected {tag!r}: wrong table or corrupt changelog")
    if raw[1:2] not in (bytes((_VERSION,)), b"\x01"):
        raise StateCodecError(f"state format version {raw[1:2]!r} is not supported by this worker; upgrade it")
    try:
        return marshal.loads(raw[2:])
    except (EOFError, ValueError, TypeError) as exc:
        raise StateCodecError(f"corrupt state value ({exc}); delete the table's local store to rebuild it") from exc


# --- journeys -------------------------------------------------------------------------------------------------


def dumps_journey(state: JourneyState) -> bytes:
    journeys = tuple(
        (j.version, j.summaries, j.counts, j.stage, j.service, j.orders, j.shipments, j.surveys, j.tickets, j.anonymous_ids,
         j.booked)
        for j in state.journeys
    )  # fmt: skip
    return _dump(_JOURNEY, (state.owner, state.is_anonymous, state.merged_into, state.seen, state.pruned_at, journeys,
                            state.retired))


def loads_journey(raw: bytes) -> JourneyState:
    owner, is_anonymous, merged_into, seen, pruned_at, journeys, *rest = _load(_JOURNEY, raw)
    retired = rest[0] if rest else {}  # values written before retired ids were kept have none
    if raw[1:2] == b"\x01":
        return _journey_from_v1(owner, is_anonymous, merged_into, seen, pruned_at, journeys)
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


def _journey_from_v1(owner: str, is_anonymous: bool, merged_into: str | None, seen: dict[str, int], pruned_at: int,
                     journeys: Any) -> JourneyState:
    from touchpoint.streams.contributions import all_fact_keys, booking

    out = []
    for v, summ, counts, stage, service, orders, ships, surveys, tickets, anon in journeys:
        # v1 shipment: [delivered, failed seen (bool), failure counted]; ticket: [opened_at, resolved_at max,
        # first-arrived resolved_at, its channel, resolution counted]
        # (a counted failure sorts first; an uncounted one came after the delivery)
        shipments = {sid: [d, None if not f else (0, "") if counted or d is None else (d[0] + 1, "")]
                     for sid, (d, f, counted) in ships.items()}
        tix = {tid: [(o, "") if o is not None else None, r, (fr, "") if fr is not None else None]
               for tid, (o, r, fr, _, _) in tickets.items()}
        j = Journey(version=v, summaries=summ, counts=counts, stage=stage, service=service, orders=orders,
                    shipments=shipments, surveys=surveys, tickets=tix, anonymous_ids=anon)
        j.booked = {key: b for key in all_fact_keys(j) if (b := booking(j, key, 60_000))}
        out.append(j)
    return JourneyState(owner, is_anonymous, merged_into, seen, pruned_at, out)


# --- aliases --------------------------------------------------------------------------------------------------


def dumps_alias(state: AliasState) -> bytes:
    return _dump(
        _ALIAS,
        (state.anonymous_id, state.customer_id, state.buffer, state.overflow, state.merge_event_id, state.merged_at, state.conflicts),
    )


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


def loads_window(raw: bytes) -> WindowState:
    data = _load(_WINDOW, raw)
    window_start, partition, cells, last_offset, emitted_offset = data[:5]
    return WindowState(window_start, partition, cells, last_offset, emitted_offset, data[5] if len(data) > 5 else "")
