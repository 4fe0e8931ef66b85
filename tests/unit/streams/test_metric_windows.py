"""windows: offsets make replays no-ops, lateness, snapshots."""

from __future__ import annotations

import pytest

from tests.unit.streams.journey_factory import HOUR, MIN, T0, MiniPipeline, page_view
from touchpoint.streams import windows as w
from touchpoint.streams.journey import Contribution
from touchpoint.streams.state_codec import dumps_journey, loads_journey

A = ("PAGE_VIEW", "web", "", "")
B = ("AD_CLICK", "social", "spring", "EUR")


def test_absorb_adds_components_and_replayed_offsets_are_no_ops() -> None:
    win = w.absorb(None, Contribution(T0, A, {"touchpoints": 1}), 10, partition=3)
    win = w.absorb(win, [Contribution(T0, B, {"touchpoints": 1, "ad_clicks": 1}), Contribution(T0, A, {"touchpoints": 1})], 11)
    before = w.snapshots(win, emitted_at=5)
    for offset in (10, 11, 3):  # a replay after a crash re-delivers old offsets
        win = w.absorb(win, Contribution(T0, A, {"touchpoints": 1}), offset)
    assert w.snapshots(win, emitted_at=5) == before
    assert [(r["event_type"], r["touchpoints"], r["ad_clicks"], r["version"], r["partition"]) for r in before] == [
        ("AD_CLICK", 1, 1, 12, 3),
        ("PAGE_VIEW", 2, 0, 12, 3),
    ]
    win = w.absorb(win, Contribution(T0, A, {"touchpoints": 1}), 12)
    assert [r["touchpoints"] for r in w.snapshots(win, emitted_at=6)] == [1, 3]


def test_absorb_refuses_a_contribution_of_another_window() -> None:
    win = w.absorb(None, Contribution(T0, A, {"touchpoints": 1}), 0)
    with pytest.raises(ValueError, match="absorbed into window"):
        w.absorb(win, Contribution(T0 + MIN, A, {"touchpoints": 1}), 1)


def test_dirty_and_closed() -> None:
    win = w.absorb(None, Contribution(T0, A, {"touchpoints": 1}), 0)
    assert w.is_dirty(win)
    win = w.mark_emitted(win)
    assert not w.is_dirty(win)
    win = w.absorb(win, Contribution(T0, A, {"touchpoints": 1}), 1)
    assert w.is_dirty(win)
    assert not w.is_closed(win, T0 + MIN + HOUR, HOUR)  # exactly at the allowed lateness: still open
    assert w.is_closed(win, T0 + MIN + HOUR + 1, HOUR)
    assert not w.is_closed(win, None, HOUR)


def test_plan_turns_late_contributions_into_late_counts_in_the_watermark_window() -> None:
    wm = T0 + 2 * HOUR + 30_000
    on_time = Contribution(T0 + HOUR + MIN, A, {"touchpoints": 1})  # ends T0+1h02m, +1h >= wm
    late = Contribution(T0, A, {"touchpoints": 1})
    no_touch = Contribution(T0, A, {"resolution_ms_sum": 5})
    pl = w.plan([on_time, late, no_touch], wm, allowed_lateness_ms=HOUR)
    assert pl.late == 1
    assert pl.by_window == {
        T0 + HOUR + MIN: [on_time],
        T0 + 2 * HOUR: [Contribution(T0 + 2 * HOUR, A, {"late_events": 1})],
    }


def test_late_event_beyond_allowed_lateness_is_counted_not_dropped() -> None:
    p = MiniPipeline(allowed_lateness_ms=HOUR)
    p.feed(page_view(1, T0 + 2 * HOUR, customer="c"))
    p.feed(page_view(2, T0 + HOUR + 30_000, customer="c", channel="app"))  # within lateness
    p.feed(page_view(3, T0, customer="c", channel="app"))  # window ended 1h59m before the watermark
    assert p.late == 1
    rows = [(r["window_start"], r["channel"], r["touchpoints"], r["late_events"]) for r in p.metric_rows()]
    assert rows == [
        (T0 + HOUR, "app", 1, 0),
        (T0 + 2 * HOUR, "app", 0, 1),  # the late event, in the watermark's window, with its own dims
        (T0 + 2 * HOUR, "web", 1, 0),
    ]
    # the journey still has all three touches
    (snap,) = p.live().values()
    assert snap["event_count"] == 3 and snap["first_touch_at"] == T0


def test_replay_after_a_crash_that_kept_windows_but_lost_journeys_counts_nothing_twice() -> None:
    """The app writes watermark, windows, then the journey; a crash can keep the windows of the last events but
    lose their journey writes. Replaying those offsets re-derives the contributions; the windows skip them."""
    events = [page_view(i, T0 + i * 7 * MIN, customer=f"c{i % 3}") for i in range(40)]
    events += [page_view(100 + i, T0 + i * MIN, customer="late") for i in range(5)]  # late ones at the end
    clean = MiniPipeline()
    clean.feed(*events)

    crashed = MiniPipeline()
    crashed.feed(*events[:25])
    stored = {k: dumps_journey(v) for k, v in crashed.journeys.items()}  # journeys persisted up to here
    committed = crashed.offset
    crashed.feed(*events[25:42])  # windows and watermark persisted further
    crashed.journeys = {k: loads_journey(v) for k, v in stored.items()}
    crashed.offset = committed  # restart from the last journey write
    crashed.replaying = True
    crashed.feed(*events[25:])

    def strip(rows: list[dict]) -> list[dict]:  # type: ignore[type-arg]
        return [{k: v for k, v in r.items() if k != "emitted_at"} for r in rows]

    assert strip(crashed.metric_rows()) == strip(clean.metric_rows())
    assert {k: v["event_count"] for k, v in crashed.live().items()} == {k: v["event_count"] for k, v in clean.live().items()}
    assert clean.totals()["touchpoints"] == 40 and clean.totals()["late_events"] == 5


def test_by_cell_regroups_a_plan_per_window_and_dims() -> None:
    c1 = Contribution(T0, A, {"touchpoints": 1})
    c2 = Contribution(T0, B, {"touchpoints": 1})
    c3 = Contribution(T0, A, {"resolution_ms_sum": 4})
    c4 = Contribution(T0 + MIN, A, {"touchpoints": 1})
    pl = w.plan([c1, c2, c3, c4], T0 + MIN, allowed_lateness_ms=HOUR)
    assert w.by_cell(pl) == {(T0, A): [c1, c3], (T0, B): [c2], (T0 + MIN, A): [c4]}
    cell = w.absorb(None, [c1, c3], 7, window_start=T0, partition=2)
    assert [(r["campaign_id"], r["touchpoints"], r["resolution_ms_sum"], r["version"]) for r in w.snapshots(cell, emitted_at=0)] == [
        ("", 1, 4, 8)
    ]
