"""Funnel-step and attribution-touch specs: parsed against the Avro contract, bad ones named with the valid values."""

from __future__ import annotations

import pytest

from touchpoint.sinks.attribution import check_by, check_models, parse_touches
from touchpoint.sinks.funnels import AnalysisInputError, Filter, check_mode, check_window, parse_step, parse_steps


def test_a_step_with_filters_on_payload_envelope_and_context() -> None:
    step = parse_step("checkout:status=completed|failed,channel!=app,context.utm_medium=cpc,amount_minor>=1000")
    assert step.event_type == "CHECKOUT"
    assert step.filters == (Filter("status", "=", ("completed", "failed")), Filter("channel", "!=", ("app",)),
                            Filter("context.utm_medium", "=", ("cpc",)), Filter("amount_minor", ">=", ("1000",)))


def test_every_event_type_of_the_contract_is_a_valid_step() -> None:
    for event_type in ("AD_CLICK", "PAGE_VIEW", "EMAIL_ENGAGEMENT", "CHECKOUT", "DELIVERY_NOTICE", "SURVEY_RESPONSE",
                       "SUPPORT_INTERACTION"):
        assert parse_step(event_type).event_type == event_type


@pytest.mark.parametrize("spec,names", [
    ("AD_CLIK", ["unknown event type 'AD_CLIK'", "AD_CLICK, PAGE_VIEW, EMAIL_ENGAGEMENT, CHECKOUT"]),
    ("CHECKOUT:state=completed", ["unknown field 'state' of CHECKOUT", "status", "amount_minor", "context.KEY"]),
    ("CHECKOUT:status=complete", ["'complete' is not a value of CHECKOUT.status",
                                  "started, payment_submitted, completed, failed, abandoned"]),
    ("SURVEY_RESPONSE:score>=high", ["score is a number", "'high'"]),
    ("PAGE_VIEW:url>=3", [">= needs a numeric field"]),
    ("SURVEY_RESPONSE:score", ["has no operator"]),
    ("EMAIL_ENGAGEMENT:action=read", ["sent, opened, clicked, bounced, unsubscribed"]),
])
def test_bad_steps_name_the_argument_and_the_valid_values(spec: str, names: list[str]) -> None:
    with pytest.raises(AnalysisInputError) as err:
        parse_step(spec)
    assert err.value.argument == "--step"
    for name in names:
        assert name in str(err.value)


def test_windows_modes_models_and_breakdowns_are_checked() -> None:
    with pytest.raises(AnalysisInputError, match="--window-days: must be > 0 days, got 0"):
        check_window(0)
    with pytest.raises(AnalysisInputError, match="--window-days: must be > 0 days, got -3"):
        check_window(-3)
    with pytest.raises(AnalysisInputError, match="valid values: sequential, strict"):
        check_mode("any")
    with pytest.raises(AnalysisInputError, match="--model.*valid values: first_touch, last_touch, linear, time_decay, position_based"):
        check_models(["u_shaped"])
    with pytest.raises(AnalysisInputError, match="--by.*valid values: campaign, channel"):
        check_by("platform")
    with pytest.raises(AnalysisInputError, match="at least 2 steps"):
        parse_steps(["AD_CLICK"])


def test_touch_specs_are_separated_by_semicolons() -> None:
    touches = parse_touches("AD_CLICK; EMAIL_ENGAGEMENT:action=clicked")
    assert [(t.event_type, t.filters) for t in touches] == [
        ("AD_CLICK", ()), ("EMAIL_ENGAGEMENT", (Filter("action", "=", ("clicked",)),))]
    with pytest.raises(AnalysisInputError, match="attribution_touches"):
        parse_touches(" ; ")
