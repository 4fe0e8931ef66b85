-- Journey analysis building blocks (sinks/README.md, "Journey analysis"). Plain views over touchpoints_resolved
-- (touchpoints FINAL + argMax of the identity merges), so a replayed event counts once and an anonymous visitor
-- stitched to a customer is that customer. Funnels, stage drop-off, pain points and attribution are queries over
-- these (sinks/funnels.py, stages.py, pain_points.py, attribution.py).

-- Conversions: one row per completed checkout, with the order's value.
CREATE VIEW IF NOT EXISTS {database}.conversions AS
SELECT
    resolved_id,
    event_id,
    occurred_at,
    order_id,
    amount_minor,
    currency,
    channel
FROM {database}.touchpoints_resolved
WHERE event_type = 'CHECKOUT' AND checkout_status = 'completed';

-- Survey answers with the bad-answer flag used by pain points: NPS detractor (0-6), CSAT below the top two of its
-- scale, CES in the bottom three of its scale (high effort).
CREATE VIEW IF NOT EXISTS {database}.survey_answers AS
SELECT
    resolved_id,
    event_id,
    occurred_at,
    survey_kind,
    toInt32(score) AS score,
    toInt32(scale_min) AS scale_min,
    toInt32(scale_max) AS scale_max,
    channel,
    order_id,
    multiIf(survey_kind = 'NPS', score <= 6, survey_kind = 'CSAT', score <= scale_max - 2,
            survey_kind = 'CES', score <= scale_min + 2, 0) AS bad
FROM {database}.touchpoints_resolved
WHERE event_type = 'SURVEY_RESPONSE' AND score IS NOT NULL;
