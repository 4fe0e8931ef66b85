-- Audit of erasures (`touchpoint privacy erase`): who asked, when, and how many rows each sink removed.
-- Never the erased data and never the ids: only counts. One row per request and sink pass (a request whose
-- records a sink reads in two polls gives two rows; sum them per request_id).
CREATE TABLE IF NOT EXISTS {database}.privacy_erasures
(
    request_id          String,
    requested_at        DateTime64(3, 'UTC'),
    requested_by        String,
    erased_at           DateTime64(3, 'UTC'),
    ids                 UInt32,
    touchpoints_removed UInt64,
    journeys_removed    UInt64,
    merges_removed      UInt64
)
ENGINE = MergeTree
ORDER BY (requested_at, request_id);
