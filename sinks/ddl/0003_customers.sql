-- Customer layer: one row per identity-resolved customer, their activity, purchases, experience signals and
-- sales cycle. Plain views over `touchpoints_resolved` (touchpoints FINAL: a replayed event_id counts once;
-- anonymous history stitched to its customer through identity_merges, argMax), so every figure stays exact
-- under duplicates, late events and replays. Period figures (churn, lifecycle, cohorts) are computed at query
-- time from these views by touchpoint.sinks.customers (SQL in sinks/README.md).

-- Customer-initiated touchpoints: every touchpoint except e-mails we sent or that bounced and carrier notices
-- (they happen without the customer doing anything). `is_purchase` marks completed checkouts. The activity that keeps a customer "active".
CREATE VIEW IF NOT EXISTS {database}.customer_activity AS
SELECT
    resolved_id AS customer_id,
    occurred_at,
    event_id,
    event_type,
    event_type = 'CHECKOUT' AND checkout_status = 'completed' AS is_purchase,
    email_action = 'unsubscribed' AS is_unsubscribe,
    is_identified,
    order_id,
    amount_minor,
    toString(currency) AS currency
FROM {database}.touchpoints_resolved
WHERE NOT (event_type = 'EMAIL_ENGAGEMENT' AND email_action IN ('sent', 'bounced'))
  AND event_type != 'DELIVERY_NOTICE';

-- One row per identity-resolved customer. First-touch attributes are those of the customer's first touchpoint of
-- any kind (anonymous history included; ties broken by event_id); '' when that touchpoint has none.
CREATE VIEW IF NOT EXISTS {database}.customers AS
SELECT
    customer_id, is_identified, first_touch_at, last_touch_at, first_purchase_at, last_purchase_at, orders,
    revenue_minor, last_nps_score, last_csat_score, support_contacts, support_tickets, unsubscribed, unsubscribed_at,
    first_touch.1 AS first_touch_campaign,
    first_touch.2 AS first_touch_channel,
    first_touch.3 AS first_touch_platform
FROM
(
    SELECT
        resolved_id AS customer_id,
        max(is_identified) AS is_identified,
        min(occurred_at) AS first_touch_at,
        max(occurred_at) AS last_touch_at,
        minIf(toNullable(occurred_at), is_purchase) AS first_purchase_at,
        maxIf(toNullable(occurred_at), is_purchase) AS last_purchase_at,
        toInt64(countIf(is_purchase)) AS orders,
        sumMapIf(map(toString(currency), amount_minor), is_purchase) AS revenue_minor,
        argMaxIf(score, (occurred_at, event_id), survey_kind = 'NPS') AS last_nps_score,
        argMaxIf(score, (occurred_at, event_id), survey_kind = 'CSAT') AS last_csat_score,
        toInt64(countIf(event_type = 'SUPPORT_INTERACTION')) AS support_contacts,
        toInt64(uniqExactIf(ticket_id, event_type = 'SUPPORT_INTERACTION' AND ticket_id != '')) AS support_tickets,
        countIf(email_action = 'unsubscribed') > 0 AS unsubscribed,
        minIf(toNullable(occurred_at), email_action = 'unsubscribed') AS unsubscribed_at,
        -- one argMin over a tuple: three separate ones cost three comparisons of the (time, id) key per row
        argMin((toString(campaign_id), toString(channel), toString(platform)), (occurred_at, event_id)) AS first_touch
    FROM
    (
        SELECT *, event_type = 'CHECKOUT' AND checkout_status = 'completed' AS is_purchase
        FROM {database}.touchpoints_resolved
    )
    GROUP BY resolved_id
);

-- Customer-level sales cycle: first touchpoint of any kind (anonymous history included) -> first completed
-- checkout, one row per customer who bought.
CREATE VIEW IF NOT EXISTS {database}.sales_cycles AS
SELECT
    customer_id,
    first_touch_at,
    assumeNotNull(first_purchase_at) AS first_purchase_at,
    dateDiff('millisecond', first_touch_at, assumeNotNull(first_purchase_at)) AS cycle_ms,
    first_touch_campaign,
    first_touch_channel,
    first_touch_platform
FROM {database}.customers
WHERE orders > 0;

-- Experience signals, one row per signal (the newest per customer is their "last experience"):
-- NPS answer (detractor 0-6 is bad), CSAT answer (the bottom two answers of the scale are bad), a delivered
-- parcel (late = after promised_by is bad), a failed delivery attempt or return (bad), a support ticket opened or
-- reopened (bad until resolved) or resolved (good).
CREATE VIEW IF NOT EXISTS {database}.customer_experiences AS
SELECT
    resolved_id AS customer_id,
    occurred_at,
    event_id,
    multiIf(
        survey_kind = 'NPS', if(score <= 6, 'nps_detractor', if(score <= 8, 'nps_passive', 'nps_promoter')),
        survey_kind = 'CSAT', if(score <= scale_min + 1, 'csat_dissatisfied', if(score >= scale_max - 1, 'csat_satisfied', 'csat_neutral')),
        delivery_status = 'delivered', if(occurred_at > promised_by, 'delivery_late', 'delivery_on_time'),
        delivery_status IN ('failed_attempt', 'returned'), 'delivery_failed',
        support_action IN ('opened', 'reopened'), 'ticket_unresolved',
        'ticket_resolved') AS signal,
    signal IN ('nps_detractor', 'csat_dissatisfied', 'delivery_late', 'delivery_failed', 'ticket_unresolved') AS is_bad,
    order_id,
    ticket_id
FROM {database}.touchpoints_resolved
WHERE (event_type = 'SURVEY_RESPONSE' AND survey_kind IN ('NPS', 'CSAT') AND score IS NOT NULL)
   OR (event_type = 'DELIVERY_NOTICE' AND delivery_status IN ('delivered', 'failed_attempt', 'returned'))
   OR (event_type = 'SUPPORT_INTERACTION' AND support_action IN ('opened', 'reopened', 'resolved'));
