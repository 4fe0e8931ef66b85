"""state_codec: bytes round trips of every state kind, and loud failures on bad bytes."""

from __future__ import annotations

import pytest

from tests.unit.streams.journey_factory import DAY, MIN, T0, MiniPipeline
from tests.unit.streams.test_journey_apply import CFG, rich_journey
from tests.unit.streams.test_stitching_scenario import scenario
from touchpoint.streams import state_codec as sc
from touchpoint.streams.journey import apply, snapshots_of


def filled() -> MiniPipeline:
    p = MiniPipeline()
    p.feed(*scenario())
    p.feed(*rich_journey("c1", base=100))
    p.feed(*[dict(e, customer_id="c1") for e in rich_journey("x", base=200)][:3])
    return p


def test_journey_state_round_trip_is_exact_and_keeps_working() -> None:
    p = filled()
    state = p.journeys["c1"]
    raw = sc.dumps_journey(state)
    back = sc.loads_journey(raw)
    assert back == state
    # the restored state behaves like the original: same duplicate detection, same next snapshot
    dup = rich_journey("c1", base=100)[3]
    assert apply(back, dup, cfg=CFG, now_ms=T0 + 20 * DAY).duplicate
    nxt = dict(rich_journey("c1", base=300)[0], occurred_at=T0 + 5 * DAY)
    a = apply(sc.loads_journey(raw), nxt, cfg=CFG, now_ms=T0 + 20 * DAY)
    b = apply(state, nxt, cfg=CFG, now_ms=T0 + 20 * DAY)
    assert a.snapshot == b.snapshot and a.contributions == b.contributions
    assert snapshots_of(a.state, CFG, 0) == snapshots_of(b.state, CFG, 0)


def test_alias_and_window_round_trip() -> None:
    p = filled()
    alias = p.aliases["a1"]
    assert alias.customer_id == "c1" and alias.buffer
    assert sc.loads_alias(sc.dumps_alias(alias)) == alias
    for window in p.windows.values():
        assert sc.loads_window(sc.dumps_window(window)) == window
    assert any(len(w.cells) > 1 or T0 <= ws < T0 + MIN for ws, w in p.windows.items())


def test_bad_bytes_fail_loudly() -> None:
    p = filled()
    raw = sc.dumps_window(next(iter(p.windows.values())))
    with pytest.raises(sc.StateCodecError, match="expected b'J'"):
        sc.loads_journey(raw)
    with pytest.raises(sc.StateCodecError, match="format version"):
        sc.loads_window(raw[:1] + b"\x63" + raw[2:])
    with pytest.raises(sc.StateCodecError, match="corrupt"):
        sc.loads_window(raw[:2] + b"\xff\x00")
    with pytest.raises(sc.StateCodecError, match="checksum"):
        sc.loads_window(raw[:-1] + bytes((raw[-1] ^ 1,)))


def test_non_plain_values_are_refused_with_a_clear_error() -> None:
    import datetime

    p = filled()
    state = p.journeys["c1"]
    state.seen["x"] = datetime.datetime(2026, 1, 1)  # type: ignore[assignment]
    with pytest.raises(sc.StateCodecError, match="not plain data"):
        sc.dumps_journey(state)
    # the failed write leaves nothing behind for the next one
    del state.seen["x"]
    assert sc.loads_journey(sc.dumps_journey(state)) == state


def test_values_of_the_unreleased_marshal_format_are_refused_with_what_to_do() -> None:
    import marshal

    raw = b"J\x02" + marshal.dumps(("c", False, None, {"e1": 0}, 0, (), {}), 4)
    with pytest.raises(sc.StateCodecError, match=r"format version b'\\x02' is not supported .* delete the table"):
        sc.loads_journey(raw)


def test_tuples_lists_and_tuple_keys_come_back_as_they_were() -> None:
    from touchpoint.streams.windows import WindowState

    window = WindowState(60_000, 3, {("CHECKOUT", "web", "", "EUR"): {"revenue_minor": 2**63 - 1}}, 5, -1)
    back = sc.loads_window(sc.dumps_window(window))
    assert back == window and type(next(iter(back.cells))) is tuple
    p = filled()
    state = p.journeys["c1"]
    back_j = sc.loads_journey(sc.dumps_journey(state))
    assert [type(s) for s in back_j.journeys[0].summaries] == [tuple] * len(state.journeys[0].summaries)
    assert type(back_j.journeys[0].summaries) is list
