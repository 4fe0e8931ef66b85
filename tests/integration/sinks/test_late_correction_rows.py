"""Late correction rows in ClickHouse: added to their window in every rollup, a replayed correction counted once,
a window's older snapshot versions still replaced (real Kafka, the sink loop, embedded ClickHouse, real DDL)."""

from __future__ import annotations

import pytest

from touchpoint.sinks.loop import SinkLoop

from tests.integration.sinks.conftest import metric, produce, sink_settings

pytestmark = [pytest.mark.integration]


def test_corrections_add_to_their_window_once_however_often_they_are_delivered(store, pipeline_topics, codec):
    settings = sink_settings(pipeline_topics)
    late = dict(metric(0, 0, 9, "CHECKOUT", checkouts_completed=1, revenue_minor=700), correction_id="e-1@9")
    retract = dict(metric(0, 0, 12, "CHECKOUT", checkouts_completed=-1, revenue_minor=-500), correction_id="e-2@12")
    records = [
        metric(0, 0, 1, "CHECKOUT", checkouts_completed=1, revenue_minor=100),   # replaced by version 2
        metric(0, 0, 2, "CHECKOUT", checkouts_completed=2, revenue_minor=900),   # the window's final snapshot
        late, late,                                                             # a correction and its replay
        retract,                                                                # a late retraction
        metric(60, 1, 3, "CHECKOUT", checkouts_completed=1, revenue_minor=50),  # another hour, another partition
    ]
    values = [codec.encode(r, "metric_window") for r in records]
    produce(settings, settings.metrics_topic, values, keys=[f"k{i}" for i in range(len(values))])
    assert SinkLoop(settings, store).run(idle_exit=2).total_rows() == len(records)
    db = store.database
    # 900 + 700 - 500 in the first minute, + 50 an hour later; 2 + 1 - 1 + 1 conversions
    assert store.query_rows(f"SELECT sum(checkouts_completed), sum(revenue_minor) FROM {db}.metrics_day") == [(3, 1150)]
    assert store.query_rows(f"SELECT sum(revenue_minor) FROM {db}.metrics_hour GROUP BY hour ORDER BY hour") == [(1100,), (50,)]
    assert store.query_rows(f"SELECT sum(revenue_minor) FROM {db}.metrics_minute_current") == [(1150,)]
    assert store.query_rows(f"SELECT sum(checkouts_completed) FROM {db}.kpi_day") == [(3,)]
    assert store.query_rows(f"SELECT correction_id, count() FROM {db}.metrics_minute FINAL GROUP BY correction_id "
                            f"ORDER BY correction_id") == [("", 2), ("e-1@9", 1), ("e-2@12", 1)]
