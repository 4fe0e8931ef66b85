-- Late corrections: a late event's contributions reach metrics_minute as additive correction rows of the
-- minute they belong to, beside that window's snapshot rows.
--
-- metrics_minute then holds two kinds of rows per (window_start, worker_partition, event_type, channel,
-- campaign_id, currency):
--   * correction_id = ''  : the window's snapshot. The worker re-sends it with a growing version while the
--                           window is open; ReplacingMergeTree(version) / FINAL keeps the newest.
--   * correction_id != '' : one late event's contributions to that (closed) window, emitted once by the worker
--                           after the window closed (every component, including fact bookings and their
--                           retractions). correction_id = <event_id>@<position of the event in the worker's
--                           journey topic partition>: a replay of the same event after a crash or a rebalance
--                           produces the same id, version and components, so FINAL keeps exactly one row; a
--                           different event never shares it.
-- A contribution is in exactly one of the two: the worker decides "late or not" from a watermark that a replay
-- recomputes identically (streams/README.md, "Late corrections").
--
-- Adding correction_id to the sorting key (a column added in the same ALTER may be appended to ORDER BY; the
-- primary key stays as it was) makes every correction its own key. Rows written before this migration get ''.
ALTER TABLE {database}.metrics_minute
    ADD COLUMN IF NOT EXISTS correction_id String,
    MODIFY ORDER BY (window_start, worker_partition, event_type, channel, campaign_id, currency, correction_id);

-- The analyst views need no change and are not replaced here: every rollup and KPI view reads, directly or
-- through another view, `metrics_minute FINAL` and SUMS the components over whatever it groups by, so each
-- window's newest snapshot and each correction (one row per identity after FINAL) are added once:
--   metrics_minute_current  <- metrics_minute FINAL (sum over worker partitions and corrections)
--   metrics_hour, metrics_day <- metrics_minute FINAL (sum per hour / day)
--   kpi_hour, kpi_day       <- metrics_hour, metrics_day (sums, ratios of sums at query time)
--   campaign_performance    <- metrics_day
--   email_campaigns         <- touchpoints (distinct message_id per action: exact without windows or FINAL)
-- Once the pipeline has caught up, each component summed over metrics_minute FINAL equals the same component
-- computed from the raw touchpoints, whatever the arrival order and age of the events.
