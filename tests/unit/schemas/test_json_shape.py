"""The JSON shape the CLI accepts: conversions, defaults, and errors that name the field."""

from __future__ import annotations

import re
from typing import Any

import pytest

from touchpoint.errors import ValidationError
from touchpoint.schemas.examples import EVENT_TYPES, example_event
from touchpoint.schemas.json_shape import event_from_json, event_to_json, format_time, parse_time
from touchpoint.schemas.validation import validate_event

MINIMAL = {
    "event_type": "CHECKOUT",
    "occurred_at": "2026-11-25T10:00:00Z",
    "customer_id": "c-1",
    "channel": "web",
    "source": "checkout-service",
    "payload": {"order_id": "o-1", "status": "completed", "amount_minor": 1299, "currency": "EUR", "item_count": 1},
}


def _error(obj: Any) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        event_from_json(obj)
    return err.value


def test_minimal_object_gets_defaults_and_an_event_id() -> None:
    event = event_from_json(MINIMAL)
    validate_event(event)
    assert re.fullmatch(r"[0-9a-f-]{36}", event["event_id"])
    assert event["occurred_at"] == 1_795_600_800_000
    assert (event["anonymous_id"], event["session_id"], event["context"]) == (None, None, {})
    assert event["payload"]["payment_method"] is None and event["payload"]["failure_reason"] is None
    assert list(event) == ["event_id", "event_type", "occurred_at", "customer_id", "anonymous_id", "channel",
                           "source", "session_id", "context", "payload"]
    assert event_from_json(MINIMAL)["event_id"] != event["event_id"]


@pytest.mark.parametrize(("text", "millis"), [
    ("2026-11-25T10:00:00Z", 1_795_600_800_000),
    ("2026-11-25T10:00:00.250Z", 1_795_600_800_250),
    ("2026-11-25T11:00:00+01:00", 1_795_600_800_000),
    (1_795_600_800_000, 1_795_600_800_000),
])
def test_times_accept_iso_or_epoch_millis(text: Any, millis: int) -> None:
    assert event_from_json({**MINIMAL, "occurred_at": text})["occurred_at"] == millis
    delivery = {**MINIMAL, "event_type": "DELIVERY_NOTICE", "payload": {
        "order_id": "o", "shipment_id": "s", "carrier": "dhl", "status": "shipped", "promised_by": text}}
    assert event_from_json(delivery)["payload"]["promised_by"] == millis


@pytest.mark.parametrize(("value", "rule"), [
    ("2026-11-25T10:00:00", "has no time zone"),
    ("yesterday", "is not an ISO-8601 time"),
    (1.7e12, "must be an integer, not a float"),
    (True, "not bool"),
])
def test_bad_times_name_the_field(value: Any, rule: str) -> None:
    err = _error({**MINIMAL, "occurred_at": value})
    assert err.field == "occurred_at" and rule in err.rule


def test_float_money_is_rejected_not_rounded() -> None:
    err = _error({**MINIMAL, "payload": {**MINIMAL["payload"], "amount_minor": 12.99}})
    assert err.field == "payload.amount_minor"
    assert err.rule.startswith("money is integer minor units (e.g. 1299 for 12.99), not a float")
    err = _error({**MINIMAL, "payload": {**MINIMAL["payload"], "item_count": 1.0}})
    assert err.field == "payload.item_count" and "not a float" in err.rule


@pytest.mark.parametrize(("obj", "field", "rule"), [
    ([], "(event)", "must be a JSON object"),
    ({k: v for k, v in MINIMAL.items() if k != "event_type"}, "event_type", "required field is missing"),
    ({**MINIMAL, "event_type": "REFUND"}, "event_type", "unknown event type 'REFUND'"),
    ({k: v for k, v in MINIMAL.items() if k != "source"}, "source", "required field is missing"),
    ({k: v for k, v in MINIMAL.items() if k != "payload"}, "payload", "required field is missing"),
    ({**MINIMAL, "payload": "x"}, "payload", "must be an object"),
    ({**MINIMAL, "ocurred_at": 1}, "ocurred_at", "unknown field"),
    ({**MINIMAL, "payload": {**MINIMAL["payload"], "coupon": "x"}}, "payload.coupon", "unknown field"),
    ({**MINIMAL, "payload": {k: v for k, v in MINIMAL["payload"].items() if k != "currency"}},
     "payload.currency", "required field is missing"),
    ({**MINIMAL, "event_id": "nope"}, "event_id", "is not a UUID"),
])
def test_shape_errors_name_the_field(obj: Any, field: str, rule: str) -> None:
    err = _error(obj)
    assert err.field == field and rule in err.rule, err


def test_event_id_is_normalised_to_lower_case() -> None:
    event = event_from_json({**MINIMAL, "event_id": "9F2C4E1A-3B5D-4C6E-8F70-A1B2C3D4E5F6"})
    assert event["event_id"] == "9f2c4e1a-3b5d-4c6e-8f70-a1b2c3d4e5f6"
    validate_event(event)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_event_to_json_is_the_inverse(event_type: str) -> None:
    event = example_event(event_type, i=123)
    shaped = event_to_json(event)
    assert shaped["occurred_at"] == "2026-11-25T10:00:00.123Z"
    assert event_from_json(shaped) == event
    assert event["occurred_at"] == 1_795_600_800_123  # the input is not modified


def test_format_and_parse_time() -> None:
    assert format_time(0) == "1970-01-01T00:00:00Z"
    assert parse_time(format_time(1_795_600_800_001), "t") == 1_795_600_800_001
