"""A second sink joining the group mid-stream: partitions move, nothing is lost or stored twice."""

from __future__ import annotations

import threading

from touchpoint.sinks.loop import SinkLoop

from tests.helpers import wait_until
from tests.integration.sinks.conftest import sink_settings
from tests.integration.sinks.test_faults import count_rows, group_lag, produce_events


def test_rebalance_mid_stream_keeps_rows_exact(store, pipeline_topics, codec):
    settings = sink_settings(pipeline_topics, sink_batch_seconds=2.0)  # pending rows exist when partitions move
    first = SinkLoop(settings, store)
    threads = [threading.Thread(target=first.run, daemon=True)]
    threads[0].start()
    second = SinkLoop(settings, store)
    try:
        ids = produce_events(settings, codec, 0, 1500)
        wait_until(lambda: first.batcher.pending_rows() > 0 or count_rows(store)[0] > 0, timeout=60,
                   what="first sink consuming")
        threads.append(threading.Thread(target=second.run, daemon=True))
        threads[1].start()
        wait_until(lambda: second._assigned, timeout=60, what="second sink assigned partitions")
        ids += produce_events(settings, codec, 1500, 1500)
        wait_until(lambda: count_rows(store) == (3000, 3000), timeout=90, what="3000 distinct rows")
        wait_until(lambda: group_lag(settings) == 0, timeout=30, what="everything committed")
    finally:
        first.stop()
        second.stop()
        for thread in threads:
            thread.join(30)
    assert first.stats.total_rows() > 0 and second.stats.total_rows() > 0
    assert count_rows(store) == (3000, 3000)
    stored = {str(r[0]) for r in store.query_rows(f"SELECT event_id FROM {store.table('touchpoints')}")}
    assert stored == set(ids)
