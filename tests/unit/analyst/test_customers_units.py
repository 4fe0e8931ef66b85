"""Pure parts of the customer layer: parameter validation, period starts, durations for people, and the CLI's
choices staying equal to the library's (one source: a drift fails here)."""

from __future__ import annotations

import datetime as dt

import pytest

from touchpoint.cli import customers as cli
from touchpoint.sinks import customer_periods as cp
from touchpoint.sinks import customers as cq
from touchpoint.sinks.report_customers import format_duration


def test_cli_choices_are_the_library_choices() -> None:
    assert tuple(p.value for p in cli.Period) == cq.PERIODS
    assert tuple(a.value for a in cli.Activity) == cq.ACTIVITIES == ("any", "purchase")
    assert tuple(c.value for c in cli.CohortBy) == cq.COHORT_BASES
    assert tuple(b.value for b in cli.Breakdown) == cq.BREAKDOWNS


def test_bad_parameters_name_the_argument_and_the_valid_values() -> None:
    with pytest.raises(cq.CustomerQueryError, match=r"period='year'.*month, week"):
        cq.CustomerParams(period="year")
    with pytest.raises(cq.CustomerQueryError, match=r"inactivity_days=0"):
        cq.CustomerParams(inactivity_days=0)
    with pytest.raises(cq.CustomerQueryError, match=r"activity='login'.*any, purchase"):
        cq.CustomerParams(activity="login")
    with pytest.raises(cq.CustomerQueryError, match=r"quiet_share=1.5"):
        cq.CustomerParams(quiet_share=1.5)
    with pytest.raises(cq.CustomerQueryError, match=r"by='country'.*campaign, channel, platform"):
        cq.sales_cycle(None, "db", by="country")


def test_period_starts_cover_first_to_last() -> None:
    assert cp.period_starts("month", dt.date(2025, 11, 15), dt.date(2026, 2, 1)) == [
        dt.date(2025, 11, 1), dt.date(2025, 12, 1), dt.date(2026, 1, 1), dt.date(2026, 2, 1)]
    assert cp.period_starts("week", dt.date(2026, 3, 4), dt.date(2026, 3, 16)) == [
        dt.date(2026, 3, 2), dt.date(2026, 3, 9), dt.date(2026, 3, 16)]


def test_durations_read_as_durations() -> None:
    assert format_duration(120_577_000) == "1 d 9 h"
    assert format_duration(2 * 86_400_000) == "2 d"
    assert format_duration(86_400_000 * 3 - 1_000) == "3 d"
    assert format_duration(3 * 3_600_000 + 12 * 60_000) == "3 h 12 min"
    assert format_duration(245_000) == "4 min 5 s"
    assert format_duration(12_400) == "12 s"
    assert format_duration(None) == "—"
