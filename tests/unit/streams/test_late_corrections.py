"""Late contributions become correction windows of their own minute: window rows + correction rows give the
hand-worked windows for every arrival order, even when every window closes at once; corrections carry a
replay-stable identity; the watermark claim of an event is capped at the clock plus the allowed skew."""

from __future__ import annotations

import itertools
from collections import defaultdict

from tests.unit.streams.journey_factory import MIN, T0, MiniPipeline, eid, page_view
from tests.unit.streams.test_attribution_order import ISSUE_EXPECTED, Cell, issue_case
from touchpoint.streams import windows as w
from touchpoint.streams.contributions import Contribution
from touchpoint.streams.state_codec import _WINDOW, _dump, dumps_window, loads_window


def summed(p: MiniPipeline) -> dict[Cell, dict[str, int]]:
    """What the sink's views sum per (window_start, dims): window rows plus correction rows (late_events aside)."""
    out: dict[Cell, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in p.metric_rows() + p.correction_rows():
        cell = out[(row["window_start"], (row["event_type"], row["channel"], row["campaign_id"], row["currency"]))]
        for name in w.COMPONENTS:
            if name != "late_events":
                cell[name] += row[name]
    return {k: {n: v for n, v in comps.items() if v} for k, comps in out.items() if any(comps.values())}


def test_every_arrival_order_with_zero_lateness_sums_to_the_hand_worked_windows() -> None:
    late_orders = 0
    for order in itertools.permutations(issue_case()):
        p = MiniPipeline(allowed_lateness_ms=0, codec=True)
        p.feed(*order)
        assert summed(p) == ISSUE_EXPECTED, [e["event_id"][-1] for e in order]
        late_orders += p.late > 0
        assert sum(r["late_events"] for r in p.metric_rows()) == p.late
    assert late_orders > 600  # most orders had late events: the corrections were exercised


def test_a_correction_row_carries_its_identity_and_a_replay_changes_nothing() -> None:
    p = MiniPipeline(allowed_lateness_ms=0)
    p.feed(page_view(1, T0 + 10 * MIN, customer="c"), page_view(2, T0, customer="c", channel="app"))
    (row,) = p.correction_rows()
    assert (row["window_start"], row["channel"], row["touchpoints"]) == (T0, "app", 1)
    assert row["correction_id"] == f"{eid(2)}@1" and row["version"] == 2  # the 2nd item (offset 1) of the topic
    window = p.corrections[(T0, row["correction_id"])]
    again = w.absorb(window, Contribution(T0, ("PAGE_VIEW", "app", "", ""), {"touchpoints": 1}), 1)  # replayed offset
    assert w.snapshots(again, emitted_at=0)[0]["touchpoints"] == 1
    assert w.correction_id("e", 5) != w.correction_id("e", 6)


def test_correction_windows_round_trip_and_older_windows_still_load() -> None:
    win = w.absorb(None, Contribution(T0, ("PAGE_VIEW", "web", "", ""), {"touchpoints": 1}), 7, correction_id="e@7")
    assert loads_window(dumps_window(win)) == win
    old = _dump(_WINDOW, (T0, 2, {("PAGE_VIEW", "web", "", ""): {"touchpoints": 3}}, 9, 9))  # a window stored before
    loaded = loads_window(old)
    assert (loaded.correction_id, loaded.last_offset, loaded.partition) == ("", 9, 2)


def test_an_event_claims_at_most_the_clock_plus_the_skew() -> None:
    now, skew = T0, 300_000
    assert w.capped(now + 23 * 3_600_000, now, skew) == now + skew
    assert w.capped(now - 5, now, skew) == now - 5
    assert w.capped(now + skew, now, skew) == now + skew
    wm = w.advance_watermark(None, w.capped(now + 23 * 3_600_000, now, skew))
    # a current event is not late behind a watermark held to now + 5 min (allowed lateness 1 h)
    assert not w.is_late(w.window_start_of(now - MIN), wm, 3_600_000)
