"""Decoded records -> rows: every column in table order, payload fields in the right columns, nulls handled."""

from __future__ import annotations

import calendar
import datetime as dt
import random
import re

import pytest

from touchpoint.schemas.examples import EVENT_TYPES, example_event
from touchpoint.sinks.migrations import load_migrations
from touchpoint.sinks.rows import (
    JOURNEY_COLUMNS,
    MERGE_COLUMNS,
    METRIC_COLUMNS,
    TOUCHPOINT_COLUMNS,
    journey_row,
    merge_row,
    metric_row,
    month_of_millis,
    touchpoint_row,
)
from tests.integration.sinks.conftest import journey, merge, metric


def ddl_columns(table: str) -> list[str]:
    """Insertable column names of ``table`` as declared in the migrations (MATERIALIZED ones excluded)."""
    sql = next(m for m in load_migrations() if m.version == 1).sql
    body = sql.split(f"CREATE TABLE IF NOT EXISTS {{database}}.{table}\n(", 1)[1].split("\n)", 1)[0]
    names = []
    for line in body.splitlines():
        line = line.strip()
        if not line or line.startswith(("--", "INDEX", "CONSTRAINT")) or " MATERIALIZED " in line:
            continue
        names.append(line.split()[0])
    for m in load_migrations():  # columns added later by ALTER TABLE ... ADD COLUMN, in migration order
        for stmt in m.statements():
            if stmt.startswith(f"ALTER TABLE {{database}}.{table}"):
                names += re.findall(r"ADD COLUMN (?:IF NOT EXISTS )?(\w+)", stmt)
    return names


@pytest.mark.parametrize("table,columns", [("touchpoints", TOUCHPOINT_COLUMNS), ("journeys", JOURNEY_COLUMNS),
                                           ("metrics_minute", METRIC_COLUMNS), ("identity_merges", MERGE_COLUMNS)])
def test_row_columns_match_the_ddl(table, columns):
    assert list(columns) == ddl_columns(table)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_touchpoint_row_puts_payload_fields_in_their_columns(event_type):
    event = example_event(event_type, customer_id=None, anonymous_id="a-1")
    row = dict(zip(TOUCHPOINT_COLUMNS, touchpoint_row(event, "tp.events", 3, 42)))
    assert len(row) == len(TOUCHPOINT_COLUMNS)
    assert row["customer_id"] == "" and row["anonymous_id"] == "a-1"
    assert (row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]) == ("tp.events", 3, 42)
    payload = event["payload"]
    renamed = {"status": {"CHECKOUT": "checkout_status", "DELIVERY_NOTICE": "delivery_status"},
               "action": {"EMAIL_ENGAGEMENT": "email_action", "SUPPORT_INTERACTION": "support_action"},
               "kind": {"SUPPORT_INTERACTION": "support_kind"}, "topic": {"SUPPORT_INTERACTION": "support_topic"}}
    filled = set()
    for field, value in payload.items():
        column = renamed.get(field, {}).get(event_type, field)
        filled.add(column)
        expected = value if value is not None or column in ("promised_by", "score", "scale_min", "scale_max") else ""
        assert row[column] == expected, column
    # every other payload column holds its empty value
    for column in ("ad_id", "url", "message_id", "shipment_id", "ticket_id", "survey_kind", "checkout_status"):
        if column not in filled:
            assert row[column] == "", column
    for column in ("score", "promised_by"):
        if column not in filled:
            assert row[column] is None


def test_journey_row_splits_path_and_keeps_null_scores():
    snap = journey("c-1:5", 4, path=[{"event_type": "AD_CLICK", "channel": "web", "occurred_at": 1},
                                     {"event_type": "CHECKOUT", "channel": "app", "occurred_at": 2}],
                   nps_score=0, csat_score=None, merged_into=None, currency=None)
    row = dict(zip(JOURNEY_COLUMNS, journey_row(snap, "tp.journeys", 0, 7)))
    assert row["path_event_types"] == ["AD_CLICK", "CHECKOUT"] and row["path_channels"] == ["web", "app"]
    assert row["path_occurred_at"] == [1, 2]
    assert row["nps_score"] == 0 and row["csat_score"] is None
    assert row["merged_into"] == "" and row["currency"] == "" and row["version"] == 4


def test_metric_row_renames_partition_and_defaults_missing_components():
    window = metric(2, 3, 9, nps_promoters=4)
    window.pop("late_events", None)
    row = dict(zip(METRIC_COLUMNS, metric_row(window, "tp.metrics", 1, 5)))
    assert row["worker_partition"] == 3 and row["kafka_partition"] == 1
    assert row["nps_promoters"] == 4 and row["late_events"] == 0


def test_merge_row():
    record = merge("a-1", "c-1")
    row = dict(zip(MERGE_COLUMNS, merge_row(record, "tp.m", 0, 1)))
    assert row["anonymous_id"] == "a-1" and row["customer_id"] == "c-1" and row["kafka_offset"] == 1


def test_month_of_millis_matches_the_calendar():
    rng = random.Random(7)
    samples = [0, 951_782_400_000, 4_102_444_799_999] + [rng.randrange(-10**12, 5 * 10**12) for _ in range(2000)]
    for millis in samples:
        d = dt.datetime.fromtimestamp(millis / 1000, tz=dt.timezone.utc) if millis >= 0 else \
            dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=millis)
        assert month_of_millis(millis) == d.year * 100 + d.month, millis
    # month boundaries exactly
    start = calendar.timegm((2026, 12, 1, 0, 0, 0)) * 1000
    assert month_of_millis(start - 1) == 202611 and month_of_millis(start) == 202612
