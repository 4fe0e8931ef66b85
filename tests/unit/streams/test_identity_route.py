"""identity.route: the alias state of one anonymous id."""

from __future__ import annotations

from tests.unit.streams.journey_factory import MIN, T0, ad_click, checkout, eid, page_view
from touchpoint.streams.identity import AliasState, RoutedEvent, identity_key, merge_marker, route

NOW = T0 + 999


def keys(result) -> list[tuple[str, str, bool]]:  # type: ignore[no-untyped-def]
    return [(o.journey_key, o.event["event_id"], o.restitched) for o in result.outputs]


def test_identity_key_prefers_the_anonymous_id() -> None:
    assert identity_key(page_view(1, T0, anon="a", customer="c")) == "a"
    assert identity_key(page_view(1, T0, customer="c")) == "c"
    assert identity_key(page_view(1, T0, anon="a")) == "a"


def test_customer_only_event_passes_through_untouched() -> None:
    ev = checkout(1, T0, customer="c")
    r = route(None, ev, NOW)
    assert r.outputs == [RoutedEvent("c", ev, False)]
    assert (r.alias, r.merge, r.conflict, r.changed) == (None, None, False, False)


def test_anonymous_events_are_buffered_then_moved_at_login() -> None:
    click, view = ad_click(1, T0, anon="a"), page_view(2, T0 + MIN, anon="a")
    r1 = route(None, click, NOW)
    assert keys(r1) == [("a", eid(1), False)] and r1.changed
    r2 = route(r1.alias, view, NOW)
    assert keys(r2) == [("a", eid(2), False)]
    assert list(r2.alias.buffer) == [eid(1), eid(2)]

    login = page_view(3, T0 + 2 * MIN, anon="a", customer="c")
    r3 = route(r2.alias, login, NOW + 5)
    assert r3.merge == {"anonymous_id": "a", "customer_id": "c", "merged_at": NOW + 5, "event_id": eid(3),
                        "event_occurred_at": T0 + 2 * MIN, "events_moved": 2}  # fmt: skip
    assert keys(r3) == [("c", eid(1), True), ("c", eid(2), True), ("c", eid(3), False), ("a", f"merge:a:{eid(3)}", False)]
    # re-emitted anonymous events now name their customer; the originals are not modified
    assert [o.event["customer_id"] for o in r3.outputs[:3]] == ["c", "c", "c"]
    assert click["customer_id"] is None
    assert r3.outputs[3].event == merge_marker("a", "c", login)

    later = page_view(4, T0 + 3 * MIN, anon="a")
    r4 = route(r3.alias, later, NOW + 6)
    assert keys(r4) == [("c", eid(4), False)] and r4.outputs[0].event["customer_id"] == "c"
    assert r4.merge is None and not r4.changed

    same = checkout(5, T0 + 4 * MIN, anon="a", customer="c")
    r5 = route(r4.alias, same, NOW + 7)
    assert keys(r5) == [("c", eid(5), False)] and r5.merge is None


def test_replays_are_idempotent() -> None:
    click = ad_click(1, T0, anon="a")
    alias = route(None, click, NOW).alias
    again = route(alias, click, NOW + 1)
    assert not again.changed and list(again.alias.buffer) == [eid(1)]

    login = page_view(2, T0 + MIN, anon="a", customer="c")
    first = route(again.alias, login, NOW + 2)
    replay = route(first.alias, login, NOW + 3)
    assert replay.outputs == first.outputs  # lost sends after a crash come back
    assert replay.merge is None  # but no second merge record
    assert replay.alias.merged_at == NOW + 2


def test_conflicting_login_first_login_wins() -> None:
    alias = route(None, ad_click(1, T0, anon="a"), NOW).alias
    alias = route(alias, page_view(2, T0 + MIN, anon="a", customer="alice"), NOW).alias
    other = page_view(3, T0 + 2 * MIN, anon="a", customer="bob")
    r = route(alias, other, NOW)
    assert r.conflict is True and r.changed is True and r.merge is None
    assert keys(r) == [("bob", eid(3), False)]  # the event stays with the customer it names
    assert r.alias.customer_id == "alice" and r.alias.conflicts == 1
    # later anonymous-only events still follow the first login
    assert keys(route(r.alias, page_view(4, T0 + 3 * MIN, anon="a"), NOW)) == [("alice", eid(4), False)]


def test_buffer_overflow_is_counted_and_only_buffered_events_move() -> None:
    alias: AliasState | None = None
    for n in range(1, 6):
        alias = route(alias, page_view(n, T0 + n, anon="a"), NOW, buffer_limit=3).alias
    assert alias is not None and alias.overflow == 2 and list(alias.buffer) == [eid(1), eid(2), eid(3)]
    r = route(alias, page_view(9, T0 + MIN, anon="a", customer="c"), NOW, buffer_limit=3)
    assert r.merge["events_moved"] == 3
    assert [k for k in keys(r) if k[2]] == [("c", eid(1), True), ("c", eid(2), True), ("c", eid(3), True)]


def test_login_as_first_event_of_an_anonymous_id() -> None:
    login = page_view(1, T0, anon="a", customer="c")
    r = route(None, login, NOW)
    assert r.merge is not None and r.merge["events_moved"] == 0
    assert keys(r) == [("c", eid(1), False), ("a", f"merge:a:{eid(1)}", False)]


def test_replay_of_a_buffered_event_after_the_login_goes_where_it_went_first() -> None:
    """After a crash or rebalance the identity step re-reads events it already routed. An anonymous event
    buffered before the login must go to the anonymous journey again (which dedups it), not to the customer as
    a new event: that copy could overtake the restitched one and count the event's metrics twice."""
    click = ad_click(1, T0, anon="a")
    r1 = route(None, click, NOW)
    login = page_view(2, T0 + MIN, anon="a", customer="c")
    r2 = route(r1.alias, login, NOW + 1)
    assert keys(r2)[:1] == [("c", eid(1), True)]
    replay = route(r2.alias, click, NOW + 2)
    assert keys(replay) == [("a", eid(1), False)]
    assert replay.merge is None and not replay.changed
    # a new anonymous event after the login still goes to the customer
    assert keys(route(r2.alias, page_view(3, T0 + 2 * MIN, anon="a"), NOW + 3)) == [("c", eid(3), False)]
