"""Consumer lag from librdkafka statistics: only the partitions this process holds, unknown lag counted as 0."""

from __future__ import annotations

import json

from touchpoint.metrics import lag_by_topic


def _stats(partitions: dict[str, dict[str, int]]) -> str:
    return json.dumps({"topics": {"t.events": {"partitions": partitions}, "t.journeys": {"partitions": {"0": {"consumer_lag": 7}}}}})


def test_lag_sums_the_assigned_partitions_only() -> None:
    stats = _stats({"0": {"consumer_lag": 120}, "1": {"consumer_lag": 30}, "2": {"consumer_lag": 999}, "-1": {"consumer_lag": 5}})
    assert lag_by_topic(stats, {("t.events", 0), ("t.events", 1)}) == {"t.events": 150, "t.journeys": 0}


def test_unknown_lag_counts_as_zero_and_garbage_gives_nothing() -> None:
    assert lag_by_topic(_stats({"0": {"consumer_lag": -1}, "1": {}}), {("t.events", 0), ("t.events", 1)})["t.events"] == 0
    assert lag_by_topic("not json", {("t.events", 0)}) == {}
