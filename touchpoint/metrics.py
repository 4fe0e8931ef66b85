"""Every Prometheus metric of the pipeline, defined once: ``touchpoint_<stage>_<what>_<unit>``.

Stages import the objects they update from here; nothing else creates a metric. Each service serves
``REGISTRY`` on its own ``/metrics`` endpoint (see ``serve``).
"""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_LAG_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)
_BATCH_BUCKETS = (1, 10, 100, 1000, 5000, 10000, 25000, 50000, 100000, 250000)

# --- producers -----------------------------------------------------------------------------
PRODUCER_EVENTS_PRODUCED = Counter(
    "touchpoint_producer_events_produced_total", "Events acknowledged by Kafka, by event type.", ["event_type"], registry=REGISTRY
)
PRODUCER_EVENTS_FAILED = Counter(
    "touchpoint_producer_events_failed_total",
    "Events not produced, by event type and reason (validation, delivery).",
    ["event_type", "reason"],
    registry=REGISTRY,
)
PRODUCER_SEND_LATENCY = Histogram(
    "touchpoint_producer_send_latency_seconds", "From send() to delivery acknowledgement.", buckets=_LATENCY_BUCKETS, registry=REGISTRY
)

# --- streams (worker) ------------------------------------------------------------------------
STREAM_EVENTS_PROCESSED = Counter(
    "touchpoint_stream_events_processed_total", "Events applied to journeys and windows, by event type.", ["event_type"], registry=REGISTRY
)
STREAM_DUPLICATES = Counter("touchpoint_stream_duplicates_total", "Events ignored because their event_id was already seen.", registry=REGISTRY)
STREAM_SUPPRESSED = Counter(
    "touchpoint_stream_events_suppressed_total",
    "Events dropped because their customer or anonymous id was erased (touchpoint privacy erase).", registry=REGISTRY,
)
STREAM_DEAD_LETTERS = Counter(
    "touchpoint_stream_dead_letters_total", "Records sent to the dead-letter topic by the worker, by reason kind.", ["reason"], registry=REGISTRY
)
STREAM_EVENT_LAG = Histogram(
    "touchpoint_stream_event_lag_seconds", "Processing time minus event time (occurred_at).", buckets=_LAG_BUCKETS, registry=REGISTRY
)
STREAM_JOURNEYS_OPEN = Gauge("touchpoint_stream_journeys_open", "Journeys held by this worker's partitions.", registry=REGISTRY)
STREAM_MERGES = Counter("touchpoint_stream_identity_merges_total", "Anonymous ids stitched to a customer.", registry=REGISTRY)
STREAM_LATE_EVENTS = Counter(
    "touchpoint_stream_late_events_total", "Events older than the allowed lateness (added to their own window as corrections).", registry=REGISTRY
)
STREAM_WINDOWS_HELD = Gauge(
    "touchpoint_stream_windows_held",
    "Metric windows (and late corrections not yet deleted) held in state by this worker; bounded by the allowed lateness.",
    registry=REGISTRY,
)
STREAM_CONSUMER_LAG = Gauge(
    "touchpoint_stream_consumer_lag_messages", "Events-topic messages not yet read by this worker (its partitions), by topic.",
    ["topic"], registry=REGISTRY,
)
STREAM_RECOVERY_SECONDS = Gauge("touchpoint_stream_table_recovery_seconds", "Duration of the last table recovery.", registry=REGISTRY)
STREAM_REBALANCES = Counter(
    "touchpoint_stream_rebalances_total", "Partition assignments this worker's events consumer received (one per rebalance of its group).",
    registry=REGISTRY,
)
STREAM_STATE_REBUILT = Gauge(
    "touchpoint_stream_state_rebuilt",
    "1 when this worker started without local state (its disk lost, or state discarded after an unclean stop) and rebuilds "
    "its tables from their changelog topics.",
    registry=REGISTRY,
)

# --- sinks -----------------------------------------------------------------------------------
SINK_ROWS_INSERTED = Counter("touchpoint_sink_rows_inserted_total", "Rows inserted into ClickHouse, by table.", ["table"], registry=REGISTRY)
SINK_BATCH_ROWS = Histogram("touchpoint_sink_batch_rows", "Rows per insert batch.", ["table"], buckets=_BATCH_BUCKETS, registry=REGISTRY)
SINK_INSERT_LATENCY = Histogram(
    "touchpoint_sink_insert_latency_seconds", "Duration of one ClickHouse insert.", ["table"], buckets=_LATENCY_BUCKETS, registry=REGISTRY
)
SINK_INSERT_FAILURES = Counter(
    "touchpoint_sink_insert_failures_total", "Failed inserts, by table and kind (retryable, permanent).", ["table", "kind"], registry=REGISTRY
)
SINK_INSERT_RETRIES = Counter("touchpoint_sink_insert_retries_total", "Insert attempts that were retries.", ["table"], registry=REGISTRY)
SINK_CONSUMER_LAG = Gauge("touchpoint_sink_consumer_lag_messages", "Messages behind the log end, by topic.", ["topic"], registry=REGISTRY)
SINK_DEAD_LETTERS = Counter("touchpoint_sink_dead_letters_total", "Records the sink sent to the dead-letter topic, by reason.", ["reason"], registry=REGISTRY)
SINK_RECORDS_SKIPPED = Counter(
    "touchpoint_sink_records_skipped_total",
    "Records the sink consumed without inserting, by reason (already_stored: at or below the store's offset; "
    "invalid_event: an events-topic record the worker dead-letters; erased: a record of an erased id; "
    "tombstone: a deleted journey's compaction marker).",
    ["reason"],
    registry=REGISTRY,
)
SINK_PENDING_ROWS = Gauge("touchpoint_sink_pending_rows", "Rows consumed and held in batches, not yet inserted.", registry=REGISTRY)
SINK_PAUSED = Gauge("touchpoint_sink_paused", "1 while the sink has paused consumption because ClickHouse is failing.", registry=REGISTRY)
SINK_REBALANCES = Counter(
    "touchpoint_sink_rebalances_total", "Partition assignments the sink received (one per rebalance of its group).", registry=REGISTRY
)
SINK_KAFKA_BROKERS_UP = Gauge(
    "touchpoint_sink_kafka_brokers_up",
    "Kafka brokers the sink's consumer is connected to (librdkafka state UP, every 5 s); 0 while Kafka is unreachable.",
    registry=REGISTRY,
)
SINK_SQL_QUERIES = Counter(
    "touchpoint_sink_sql_queries_total",
    "Requests to the read-only SQL port, by outcome (ok, refused: a write or a forbidden setting, error: the query failed).",
    ["outcome"],
    registry=REGISTRY,
)
SINK_SQL_QUERY_SECONDS = Histogram(
    "touchpoint_sink_sql_query_seconds", "Duration of a read-only SQL port request that ran a statement.",
    buckets=_LATENCY_BUCKETS, registry=REGISTRY,
)


# --- collector (HTTP) --------------------------------------------------------------------------
COLLECTOR_REQUESTS = Counter(
    "touchpoint_collector_requests_total", "Requests answered by the collector, by path and HTTP status.", ["path", "status"], registry=REGISTRY
)
COLLECTOR_EVENTS_ACCEPTED = Counter(
    "touchpoint_collector_events_accepted_total", "Events acknowledged by Kafka and answered as accepted, by event type.",
    ["event_type"], registry=REGISTRY,
)
COLLECTOR_EVENTS_REJECTED = Counter(
    "touchpoint_collector_events_rejected_total",
    "Events refused by the collector, by event type and reason (invalid, not_json, type_not_allowed, channel_not_allowed).",
    ["event_type", "reason"], registry=REGISTRY,
)
COLLECTOR_REQUEST_LATENCY = Histogram(
    "touchpoint_collector_request_latency_seconds", "From the request's arrival to its answer (POST /v1/batch).",
    buckets=_LATENCY_BUCKETS, registry=REGISTRY,
)
COLLECTOR_PRODUCE_LATENCY = Histogram(
    "touchpoint_collector_produce_latency_seconds", "From queuing a request's events to Kafka acknowledging all of them.",
    buckets=_LATENCY_BUCKETS, registry=REGISTRY,
)
COLLECTOR_IN_FLIGHT = Gauge(
    "touchpoint_collector_requests_in_flight", "POST /v1/batch requests being handled (reading, producing, awaiting acks).",
    registry=REGISTRY,
)
COLLECTOR_READY = Gauge("touchpoint_collector_ready", "1 while the collector's last Kafka check answered.", registry=REGISTRY)

def lag_by_topic(stats_json: str, assigned: set[tuple[str, int]]) -> dict[str, int]:
    """Messages behind the log end per topic, over the ``assigned`` (topic, partition)s, from librdkafka's
    statistics JSON (``stats_cb``); an unknown lag (-1, before the first fetch) counts as 0."""
    try:
        stats = json.loads(stats_json)
    except ValueError:
        return {}
    return {topic: sum(max(p.get("consumer_lag", -1), 0) for pid, p in data.get("partitions", {}).items()
                       if pid != "-1" and (topic, int(pid)) in assigned)
            for topic, data in stats.get("topics", {}).items()}


def brokers_up(stats_json: str) -> int | None:
    """Brokers in state UP in librdkafka's statistics JSON (bootstrap placeholders and internal ones left out)."""
    try:
        brokers = json.loads(stats_json).get("brokers", {})
    except ValueError:
        return None
    return sum(1 for b in brokers.values() if b.get("nodeid", -1) >= 0 and b.get("state") == "UP")


def serve(port: int, addr: str = "127.0.0.1") -> None:
    """Serve REGISTRY on http://addr:port/metrics in a background thread."""
    start_http_server(port, addr=addr, registry=REGISTRY)
