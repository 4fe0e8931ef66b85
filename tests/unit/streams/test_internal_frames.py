"""Frames on the worker's repartition topics: partitioning, round trips, the earlier one-event form, bad input."""

from __future__ import annotations

import random

import pytest

from touchpoint.errors import InvalidEventError
from touchpoint.streams import internal


def test_murmur2_partitioning_matches_kafkas_default_partitioner() -> None:
    """Frames must land where faust (aiokafka's murmur2, the Java rule) put one-event records: tables depend on it."""
    from aiokafka.partitioner import DefaultPartitioner, murmur2

    rnd = random.Random(5)
    part = internal.Partitioner(7)
    for n in range(64):
        data = bytes(rnd.randrange(256) for _ in range(n))
        assert internal.murmur2(data) == murmur2(data)
    for key in ("cust-1", "anon-42", "ü-ñ", "x" * 100):
        assert part(key) == DefaultPartitioner()(key.encode(), list(range(7)), list(range(7)))
    # Java's Utils.murmur2 test vectors (as unsigned ints)
    assert internal.murmur2(b"21") == (-973932308) & 0xFFFFFFFF
    assert internal.murmur2(b"foobar") == (-790332482) & 0xFFFFFFFF


def test_journey_frame_round_trip_and_the_one_event_form() -> None:
    e1 = {"event_id": "1", "event_type": "PAGE_VIEW", "occurred_at": 5}
    e2 = {"event_id": "2", "event_type": "AD_CLICK", "occurred_at": 6}
    raw = internal.encode_journey_frame([("c1", False, e1), ("a9", True, e2)])
    assert [internal.check_routed(i) for i in internal.decode_journey_frame(raw, None)] == [
        ("c1", False, e1), ("a9", True, e2)]
    old = internal.encode_routed(e2, True)  # written by a worker of the earlier form, keyed by owner
    assert [internal.check_routed(i) for i in internal.decode_journey_frame(old, b"a9")] == [("a9", True, e2)]


def test_identity_frame_round_trip_and_the_one_event_form() -> None:
    e1 = {"event_id": "1", "event_type": "PAGE_VIEW", "anonymous_id": "a"}
    assert internal.decode_identity_frame(internal.encode_identity_frame([e1, e1])) == [e1, e1]
    assert internal.decode_identity_frame(internal.encode_event(e1)) == [e1]


@pytest.mark.parametrize("raw", [b"", b"\x00\x01garbage", b"F{not json", b"F{}", b"Xsomething", None])
def test_undecodable_journey_records_raise_a_clear_error(raw: bytes | None) -> None:
    with pytest.raises(InvalidEventError) as err:
        internal.decode_journey_frame(raw, b"k")
    assert err.value.kind == "undecodable"


@pytest.mark.parametrize("item", [["c1", 0], [None, 0, {"event_id": "1", "event_type": "X"}], ["c1", 0, {"no": "id"}], "x"])
def test_a_malformed_frame_item_is_rejected_alone(item: object) -> None:
    with pytest.raises(InvalidEventError):
        internal.check_routed(item)


def test_frames_are_chunked_below_the_record_limit() -> None:
    items = list(range(internal.FRAME_MAX_EVENTS * 2 + 3))
    chunks = list(internal.chunks(items))
    assert [len(c) for c in chunks] == [internal.FRAME_MAX_EVENTS, internal.FRAME_MAX_EVENTS, 3]
    assert sum(chunks, []) == items
