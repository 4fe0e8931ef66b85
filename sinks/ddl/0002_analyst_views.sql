-- Analyst layer: views only (no materialized views), so every figure is computed from the newest
-- snapshot of each metric key and cannot double count replaced versions. See sinks/README.md for which
-- views read FINAL / argMax and why.

-- Newest snapshot per minute key (FINAL), summed across worker partitions.
CREATE VIEW IF NOT EXISTS {database}.metrics_minute_current AS
SELECT
    window_start,
    event_type, channel, campaign_id, currency,
    sum(touchpoints) AS touchpoints,
    sum(ad_clicks) AS ad_clicks,
    sum(ad_spend_minor) AS ad_spend_minor,
    sum(attributed_conversions) AS attributed_conversions,
    sum(attributed_revenue_minor) AS attributed_revenue_minor,
    sum(checkouts_started) AS checkouts_started,
    sum(checkouts_completed) AS checkouts_completed,
    sum(checkouts_abandoned) AS checkouts_abandoned,
    sum(checkouts_failed) AS checkouts_failed,
    sum(revenue_minor) AS revenue_minor,
    sum(deliveries_delivered) AS deliveries_delivered,
    sum(deliveries_on_time) AS deliveries_on_time,
    sum(deliveries_late) AS deliveries_late,
    sum(deliveries_failed) AS deliveries_failed,
    sum(delivery_delay_ms_sum) AS delivery_delay_ms_sum,
    sum(nps_promoters) AS nps_promoters,
    sum(nps_passives) AS nps_passives,
    sum(nps_detractors) AS nps_detractors,
    sum(csat_satisfied) AS csat_satisfied,
    sum(csat_total) AS csat_total,
    sum(ces_sum) AS ces_sum,
    sum(ces_count) AS ces_count,
    sum(tickets_opened) AS tickets_opened,
    sum(tickets_resolved) AS tickets_resolved,
    sum(resolution_ms_sum) AS resolution_ms_sum,
    sum(emails_sent) AS emails_sent,
    sum(emails_opened) AS emails_opened,
    sum(emails_clicked) AS emails_clicked,
    sum(emails_bounced) AS emails_bounced,
    sum(emails_unsubscribed) AS emails_unsubscribed,
    sum(late_events) AS late_events
FROM {database}.metrics_minute FINAL
GROUP BY window_start, event_type, channel, campaign_id, currency;

-- Hour rollup of the newest snapshots (FINAL): exact, additive components only.
CREATE VIEW IF NOT EXISTS {database}.metrics_hour AS
SELECT
    toStartOfHour(window_start) AS hour,
    event_type, channel, campaign_id, currency,
    sum(touchpoints) AS touchpoints,
    sum(ad_clicks) AS ad_clicks,
    sum(ad_spend_minor) AS ad_spend_minor,
    sum(attributed_conversions) AS attributed_conversions,
    sum(attributed_revenue_minor) AS attributed_revenue_minor,
    sum(checkouts_started) AS checkouts_started,
    sum(checkouts_completed) AS checkouts_completed,
    sum(checkouts_abandoned) AS checkouts_abandoned,
    sum(checkouts_failed) AS checkouts_failed,
    sum(revenue_minor) AS revenue_minor,
    sum(deliveries_delivered) AS deliveries_delivered,
    sum(deliveries_on_time) AS deliveries_on_time,
    sum(deliveries_late) AS deliveries_late,
    sum(deliveries_failed) AS deliveries_failed,
    sum(delivery_delay_ms_sum) AS delivery_delay_ms_sum,
    sum(nps_promoters) AS nps_promoters,
    sum(nps_passives) AS nps_passives,
    sum(nps_detractors) AS nps_detractors,
    sum(csat_satisfied) AS csat_satisfied,
    sum(csat_total) AS csat_total,
    sum(ces_sum) AS ces_sum,
    sum(ces_count) AS ces_count,
    sum(tickets_opened) AS tickets_opened,
    sum(tickets_resolved) AS tickets_resolved,
    sum(resolution_ms_sum) AS resolution_ms_sum,
    sum(emails_sent) AS emails_sent,
    sum(emails_opened) AS emails_opened,
    sum(emails_clicked) AS emails_clicked,
    sum(emails_bounced) AS emails_bounced,
    sum(emails_unsubscribed) AS emails_unsubscribed,
    sum(late_events) AS late_events
FROM {database}.metrics_minute FINAL
GROUP BY hour, event_type, channel, campaign_id, currency;

-- Day rollup of the newest snapshots (FINAL): exact, additive components only.
CREATE VIEW IF NOT EXISTS {database}.metrics_day AS
SELECT
    toDate(window_start) AS day,
    event_type, channel, campaign_id, currency,
    sum(touchpoints) AS touchpoints,
    sum(ad_clicks) AS ad_clicks,
    sum(ad_spend_minor) AS ad_spend_minor,
    sum(attributed_conversions) AS attributed_conversions,
    sum(attributed_revenue_minor) AS attributed_revenue_minor,
    sum(checkouts_started) AS checkouts_started,
    sum(checkouts_completed) AS checkouts_completed,
    sum(checkouts_abandoned) AS checkouts_abandoned,
    sum(checkouts_failed) AS checkouts_failed,
    sum(revenue_minor) AS revenue_minor,
    sum(deliveries_delivered) AS deliveries_delivered,
    sum(deliveries_on_time) AS deliveries_on_time,
    sum(deliveries_late) AS deliveries_late,
    sum(deliveries_failed) AS deliveries_failed,
    sum(delivery_delay_ms_sum) AS delivery_delay_ms_sum,
    sum(nps_promoters) AS nps_promoters,
    sum(nps_passives) AS nps_passives,
    sum(nps_detractors) AS nps_detractors,
    sum(csat_satisfied) AS csat_satisfied,
    sum(csat_total) AS csat_total,
    sum(ces_sum) AS ces_sum,
    sum(ces_count) AS ces_count,
    sum(tickets_opened) AS tickets_opened,
    sum(tickets_resolved) AS tickets_resolved,
    sum(resolution_ms_sum) AS resolution_ms_sum,
    sum(emails_sent) AS emails_sent,
    sum(emails_opened) AS emails_opened,
    sum(emails_clicked) AS emails_clicked,
    sum(emails_bounced) AS emails_bounced,
    sum(emails_unsubscribed) AS emails_unsubscribed,
    sum(late_events) AS late_events
FROM {database}.metrics_minute FINAL
GROUP BY day, event_type, channel, campaign_id, currency;

-- Headline KPIs per hour: ratios derived from summed components, never averaged averages. Percentages 0-100; NULL when the denominator is 0.
CREATE VIEW IF NOT EXISTS {database}.kpi_hour AS
SELECT
    hour,
    sum(touchpoints) AS touchpoints,
    sum(ad_clicks) AS ad_clicks,
    sum(attributed_conversions) AS attributed_conversions,
    sum(checkouts_started) AS checkouts_started,
    sum(checkouts_completed) AS checkouts_completed,
    sum(checkouts_abandoned) AS checkouts_abandoned,
    sum(checkouts_failed) AS checkouts_failed,
    sum(deliveries_delivered) AS deliveries_delivered,
    sum(deliveries_on_time) AS deliveries_on_time,
    sum(deliveries_late) AS deliveries_late,
    sum(deliveries_failed) AS deliveries_failed,
    sum(delivery_delay_ms_sum) AS delivery_delay_ms_sum,
    sum(nps_promoters) AS nps_promoters,
    sum(nps_passives) AS nps_passives,
    sum(nps_detractors) AS nps_detractors,
    sum(csat_satisfied) AS csat_satisfied,
    sum(csat_total) AS csat_total,
    sum(ces_sum) AS ces_sum,
    sum(ces_count) AS ces_count,
    sum(tickets_opened) AS tickets_opened,
    sum(tickets_resolved) AS tickets_resolved,
    sum(resolution_ms_sum) AS resolution_ms_sum,
    sum(emails_sent) AS emails_sent,
    sum(emails_opened) AS emails_opened,
    sum(emails_clicked) AS emails_clicked,
    sum(emails_bounced) AS emails_bounced,
    sum(emails_unsubscribed) AS emails_unsubscribed,
    sum(late_events) AS late_events,
    if(checkouts_started = 0, NULL, checkouts_completed / checkouts_started * 100) AS conversion_pct,
    if(checkouts_started = 0, NULL, checkouts_abandoned / checkouts_started * 100) AS abandonment_pct,
    if(deliveries_on_time + deliveries_late = 0, NULL, deliveries_on_time / (deliveries_on_time + deliveries_late) * 100) AS on_time_pct,
    nps_promoters + nps_passives + nps_detractors AS nps_responses,
    if(nps_responses = 0, NULL, (nps_promoters - nps_detractors) / nps_responses * 100) AS nps,
    if(csat_total = 0, NULL, csat_satisfied / csat_total * 100) AS csat_pct,
    if(ces_count = 0, NULL, ces_sum / ces_count) AS ces_avg,
    if(tickets_resolved = 0, NULL, resolution_ms_sum / tickets_resolved / 1000) AS avg_resolution_seconds,
    if(emails_sent = 0, NULL, emails_opened / emails_sent * 100) AS email_open_pct,
    if(emails_sent = 0, NULL, emails_clicked / emails_sent * 100) AS email_ctr_pct,
    if(emails_opened = 0, NULL, emails_clicked / emails_opened * 100) AS email_click_to_open_pct
FROM {database}.metrics_hour
GROUP BY hour;

-- Headline KPIs per day (same definitions as kpi_hour).
CREATE VIEW IF NOT EXISTS {database}.kpi_day AS
SELECT
    day,
    sum(touchpoints) AS touchpoints,
    sum(ad_clicks) AS ad_clicks,
    sum(attributed_conversions) AS attributed_conversions,
    sum(checkouts_started) AS checkouts_started,
    sum(checkouts_completed) AS checkouts_completed,
    sum(checkouts_abandoned) AS checkouts_abandoned,
    sum(checkouts_failed) AS checkouts_failed,
    sum(deliveries_delivered) AS deliveries_delivered,
    sum(deliveries_on_time) AS deliveries_on_time,
    sum(deliveries_late) AS deliveries_late,
    sum(deliveries_failed) AS deliveries_failed,
    sum(delivery_delay_ms_sum) AS delivery_delay_ms_sum,
    sum(nps_promoters) AS nps_promoters,
    sum(nps_passives) AS nps_passives,
    sum(nps_detractors) AS nps_detractors,
    sum(csat_satisfied) AS csat_satisfied,
    sum(csat_total) AS csat_total,
    sum(ces_sum) AS ces_sum,
    sum(ces_count) AS ces_count,
    sum(tickets_opened) AS tickets_opened,
    sum(tickets_resolved) AS tickets_resolved,
    sum(resolution_ms_sum) AS resolution_ms_sum,
    sum(emails_sent) AS emails_sent,
    sum(emails_opened) AS emails_opened,
    sum(emails_clicked) AS emails_clicked,
    sum(emails_bounced) AS emails_bounced,
    sum(emails_unsubscribed) AS emails_unsubscribed,
    sum(late_events) AS late_events,
    if(checkouts_started = 0, NULL, checkouts_completed / checkouts_started * 100) AS conversion_pct,
    if(checkouts_started = 0, NULL, checkouts_abandoned / checkouts_started * 100) AS abandonment_pct,
    if(deliveries_on_time + deliveries_late = 0, NULL, deliveries_on_time / (deliveries_on_time + deliveries_late) * 100) AS on_time_pct,
    nps_promoters + nps_passives + nps_detractors AS nps_responses,
    if(nps_responses = 0, NULL, (nps_promoters - nps_detractors) / nps_responses * 100) AS nps,
    if(csat_total = 0, NULL, csat_satisfied / csat_total * 100) AS csat_pct,
    if(ces_count = 0, NULL, ces_sum / ces_count) AS ces_avg,
    if(tickets_resolved = 0, NULL, resolution_ms_sum / tickets_resolved / 1000) AS avg_resolution_seconds,
    if(emails_sent = 0, NULL, emails_opened / emails_sent * 100) AS email_open_pct,
    if(emails_sent = 0, NULL, emails_clicked / emails_sent * 100) AS email_ctr_pct,
    if(emails_opened = 0, NULL, emails_clicked / emails_opened * 100) AS email_click_to_open_pct
FROM {database}.metrics_day
GROUP BY day;

-- Campaign spend and attributed conversions per day (FINAL via metrics_day). Money stays per currency.
CREATE VIEW IF NOT EXISTS {database}.campaign_performance AS
SELECT
    day,
    campaign_id,
    currency,
    sum(ad_clicks) AS ad_clicks,
    sum(ad_spend_minor) AS ad_spend_minor,
    sum(attributed_conversions) AS attributed_conversions,
    sum(attributed_revenue_minor) AS attributed_revenue_minor,
    if(ad_clicks = 0, NULL, attributed_conversions / ad_clicks * 100) AS conversion_pct,
    if(attributed_conversions = 0, NULL, ad_spend_minor / attributed_conversions) AS cost_per_conversion_minor,
    if(ad_spend_minor = 0, NULL, attributed_revenue_minor / ad_spend_minor) AS roas
FROM {database}.metrics_day
WHERE campaign_id != ''
GROUP BY day, campaign_id, currency;

-- Email campaign funnel per day from raw touchpoints. Counts DISTINCT message_id per action, which is
-- both the usual definition (an email opened twice is one open) and insensitive to duplicate rows, so
-- this view needs no FINAL.
CREATE VIEW IF NOT EXISTS {database}.email_campaigns AS
SELECT
    toDate(occurred_at) AS day,
    campaign_id,
    uniqExactIf(message_id, email_action = 'sent') AS emails_sent,
    uniqExactIf(message_id, email_action = 'opened') AS emails_opened,
    uniqExactIf(message_id, email_action = 'clicked') AS emails_clicked,
    uniqExactIf(message_id, email_action = 'bounced') AS emails_bounced,
    uniqExactIf(message_id, email_action = 'unsubscribed') AS emails_unsubscribed,
    if(emails_sent = 0, NULL, emails_opened / emails_sent * 100) AS open_pct,
    if(emails_sent = 0, NULL, emails_clicked / emails_sent * 100) AS ctr_pct,
    if(emails_opened = 0, NULL, emails_clicked / emails_opened * 100) AS click_to_open_pct
FROM {database}.touchpoints
WHERE event_type = 'EMAIL_ENGAGEMENT'
GROUP BY day, campaign_id;

-- One row per support ticket from raw touchpoints. Only min/max/any aggregates and a distinct count:
-- duplicate rows cannot change them, so no FINAL. resolved_at is the last resolution; a ticket reopened
-- after its last resolution is not resolved.
CREATE VIEW IF NOT EXISTS {database}.support_tickets AS
SELECT
    ticket_id,
    any(identity_key) AS identity_key,
    any(support_kind) AS support_kind,
    any(support_topic) AS support_topic,
    minIf(occurred_at, support_action = 'opened') AS opened_at,
    maxIf(occurred_at, support_action = 'resolved') AS resolved_at,
    countIf(support_action = 'opened') > 0 AS has_opened,
    countIf(support_action = 'resolved') > 0
        AND maxIf(occurred_at, support_action = 'resolved') >= maxIf(occurred_at, support_action = 'reopened') AS is_resolved,
    if(has_opened AND is_resolved, dateDiff('millisecond', opened_at, resolved_at), NULL) AS resolution_ms,
    uniqExact(event_id) AS interactions
FROM {database}.touchpoints
WHERE event_type = 'SUPPORT_INTERACTION' AND ticket_id != ''
GROUP BY ticket_id;

-- Time to resolution per day of resolution: average and p90 over per-ticket durations (exact quantile).
CREATE VIEW IF NOT EXISTS {database}.resolution_time_day AS
SELECT
    toDate(resolved_at) AS day,
    count() AS tickets_resolved,
    avg(resolution_ms) / 1000 AS avg_resolution_seconds,
    quantileExact(0.9)(resolution_ms) / 1000 AS p90_resolution_seconds
FROM {database}.support_tickets
WHERE resolution_ms IS NOT NULL
GROUP BY day;

-- Current journeys: newest version per journey (FINAL), without anonymous journeys that were stitched
-- into a customer (merged_into set on their newest snapshot, or their owner listed in identity_merges).
CREATE VIEW IF NOT EXISTS {database}.journeys_current AS
SELECT *
FROM {database}.journeys FINAL
WHERE merged_into = ''
  AND NOT (is_anonymous AND customer_id IN (SELECT anonymous_id FROM {database}.identity_merges));

-- Top journey paths (event types in order) over current journeys.
CREATE VIEW IF NOT EXISTS {database}.journey_paths AS
SELECT
    arrayStringConcat(path_event_types, ' > ') AS path,
    count() AS journeys,
    countIf(converted) AS converted_journeys,
    converted_journeys / journeys * 100 AS conversion_pct
FROM {database}.journeys_current
GROUP BY path;

-- Identity-resolved touchpoints: one row per event (FINAL), with resolved_id = the customer id, else the
-- customer the anonymous id was stitched to (newest merge, argMax), else the anonymous id.
CREATE VIEW IF NOT EXISTS {database}.touchpoints_resolved AS
SELECT
    t.*,
    if(t.customer_id != '', t.customer_id, if(m.customer_id != '', m.customer_id, t.anonymous_id)) AS resolved_id,
    t.customer_id != '' OR m.customer_id != '' AS is_identified
FROM {database}.touchpoints AS t FINAL
LEFT JOIN
(
    SELECT anonymous_id, argMax(customer_id, merged_at) AS customer_id
    FROM {database}.identity_merges
    GROUP BY anonymous_id
) AS m ON t.anonymous_id = m.anonymous_id;
