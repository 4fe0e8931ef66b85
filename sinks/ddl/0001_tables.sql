-- Base tables. `{database}` is replaced by settings.clickhouse_database; `{raw_ttl}` by the TTL clause
-- built from settings.raw_ttl_days (empty when 0). Every table carries the Kafka coordinates of the
-- record it came from: the sink derives its restart position from them (see sinks/README.md).

-- Raw touchpoints: one row per event, payload fields flattened into typed columns.
-- Strings that the contract allows to be null are '' here; numbers where 0 is meaningful stay Nullable.
CREATE TABLE IF NOT EXISTS {database}.touchpoints
(
    event_id        UUID,
    event_type      LowCardinality(String),
    occurred_at     DateTime64(3, 'UTC'),
    customer_id     String,
    anonymous_id    String,
    identity_key    String MATERIALIZED if(customer_id != '', customer_id, anonymous_id),
    channel         LowCardinality(String),
    source          LowCardinality(String),
    session_id      String,
    context         Map(LowCardinality(String), String),
    -- AD_CLICK (campaign_id also EMAIL_ENGAGEMENT; currency also CHECKOUT)
    campaign_id     LowCardinality(String),
    ad_id           String,
    platform        LowCardinality(String),
    placement       LowCardinality(String),
    cost_minor      Int64,
    currency        LowCardinality(String),
    -- PAGE_VIEW
    url             String,
    page_type       LowCardinality(String),
    title           String,
    referrer        String,
    product_id      String,
    -- EMAIL_ENGAGEMENT
    message_id      String,
    email_action    LowCardinality(String),
    link_url        String,
    -- CHECKOUT (order_id also DELIVERY_NOTICE, SURVEY_RESPONSE, SUPPORT_INTERACTION)
    order_id        String,
    checkout_status LowCardinality(String),
    amount_minor    Int64,
    item_count      Int32,
    payment_method  LowCardinality(String),
    failure_reason  String,
    -- DELIVERY_NOTICE
    shipment_id     String,
    carrier         LowCardinality(String),
    delivery_status LowCardinality(String),
    promised_by     Nullable(DateTime64(3, 'UTC')),
    -- SURVEY_RESPONSE
    survey_kind     LowCardinality(String),
    score           Nullable(Int16),
    scale_min       Nullable(Int16),
    scale_max       Nullable(Int16),
    comment         String,
    rated_event_id  String,
    -- SUPPORT_INTERACTION
    ticket_id       String,
    support_kind    LowCardinality(String),
    support_action  LowCardinality(String),
    support_topic   LowCardinality(String),
    -- where the record came from
    kafka_topic     LowCardinality(String),
    kafka_partition Int32,
    kafka_offset    Int64,
    INDEX idx_kafka_offset kafka_offset TYPE minmax GRANULARITY 4,
    -- Guards: a row breaking them is rejected by the store and dead-lettered by the sink.
    CONSTRAINT occurred_at_in_range CHECK occurred_at >= '2000-01-01 00:00:00'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (identity_key, occurred_at, event_id)
{raw_ttl}
SETTINGS non_replicated_deduplication_window = 10000;

-- Journey snapshots: the highest version per journey_id wins.
CREATE TABLE IF NOT EXISTS {database}.journeys
(
    journey_id               String,
    customer_id              String,
    is_anonymous             Bool,
    merged_into              String,
    version                  Int64,
    updated_at               DateTime64(3, 'UTC'),
    first_touch_at           DateTime64(3, 'UTC'),
    last_touch_at            DateTime64(3, 'UTC'),
    anonymous_ids            Array(String),
    path_event_types         Array(LowCardinality(String)),
    path_channels            Array(LowCardinality(String)),
    path_occurred_at         Array(DateTime64(3, 'UTC')),
    path_truncated           Int32,
    event_count              Int32,
    counts_by_type           Map(LowCardinality(String), Int32),
    stage                    LowCardinality(String),
    service_contacted        Bool,
    first_touch_campaign     String,
    first_touch_channel      LowCardinality(String),
    last_touch_campaign      String,
    last_touch_channel       LowCardinality(String),
    converted                Bool,
    converted_at             Nullable(DateTime64(3, 'UTC')),
    time_to_convert_ms       Nullable(Int64),
    orders                   Int32,
    revenue_minor            Int64,
    currency                 LowCardinality(String),
    deliveries_on_time       Int32,
    deliveries_late          Int32,
    deliveries_failed        Int32,
    delivery_delay_ms_sum    Int64,
    nps_score                Nullable(Int16),
    csat_score               Nullable(Int16),
    ces_score                Nullable(Int16),
    support_tickets_opened   Int32,
    support_tickets_resolved Int32,
    resolution_ms_sum        Int64,
    kafka_topic              LowCardinality(String),
    kafka_partition          Int32,
    kafka_offset             Int64,
    CONSTRAINT journey_version_non_negative CHECK version >= 0
)
ENGINE = ReplacingMergeTree(version)
ORDER BY journey_id
SETTINGS non_replicated_deduplication_window = 10000;

-- Metric components per minute x worker partition x dimensions: the highest version per key wins.
CREATE TABLE IF NOT EXISTS {database}.metrics_minute
(
    window_start             DateTime64(3, 'UTC'),
    window_seconds           Int32,
    worker_partition         Int32,
    event_type               LowCardinality(String),
    channel                  LowCardinality(String),
    campaign_id              LowCardinality(String),
    currency                 LowCardinality(String),
    version                  Int64,
    emitted_at               DateTime64(3, 'UTC'),
    touchpoints              Int64,
    ad_clicks                Int64,
    ad_spend_minor           Int64,
    attributed_conversions   Int64,
    attributed_revenue_minor Int64,
    checkouts_started        Int64,
    checkouts_completed      Int64,
    checkouts_abandoned      Int64,
    checkouts_failed         Int64,
    revenue_minor            Int64,
    deliveries_delivered     Int64,
    deliveries_on_time       Int64,
    deliveries_late          Int64,
    deliveries_failed        Int64,
    delivery_delay_ms_sum    Int64,
    nps_promoters            Int64,
    nps_passives             Int64,
    nps_detractors           Int64,
    csat_satisfied           Int64,
    csat_total               Int64,
    ces_sum                  Int64,
    ces_count                Int64,
    tickets_opened           Int64,
    tickets_resolved         Int64,
    resolution_ms_sum        Int64,
    emails_sent              Int64,
    emails_opened            Int64,
    emails_clicked           Int64,
    emails_bounced           Int64,
    emails_unsubscribed      Int64,
    late_events              Int64,
    kafka_topic              LowCardinality(String),
    kafka_partition          Int32,
    kafka_offset             Int64,
    CONSTRAINT metric_version_non_negative CHECK version >= 0,
    CONSTRAINT window_seconds_positive CHECK window_seconds > 0
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, worker_partition, event_type, channel, campaign_id, currency)
SETTINGS non_replicated_deduplication_window = 10000;

-- Identity stitching audit: the newest merge per anonymous_id wins.
CREATE TABLE IF NOT EXISTS {database}.identity_merges
(
    anonymous_id      String,
    customer_id       String,
    merged_at         DateTime64(3, 'UTC'),
    event_id          String,
    event_occurred_at DateTime64(3, 'UTC'),
    events_moved      Int32,
    kafka_topic       LowCardinality(String),
    kafka_partition   Int32,
    kafka_offset      Int64
)
ENGINE = ReplacingMergeTree(merged_at)
ORDER BY anonymous_id
SETTINGS non_replicated_deduplication_window = 10000;
