"""validate_event: each rule, with the exact field path and rule text a user sees."""

from __future__ import annotations

import time
from typing import Any, Callable

import pytest

from touchpoint.errors import ValidationError
from touchpoint.schemas.examples import EVENT_TYPES, example_event, example_journey_snapshot
from touchpoint.schemas.validation import validate_event, validate_record


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_examples_are_valid(event_type: str) -> None:
    validate_event(example_event(event_type))


def _error(event: Any, **kw: Any) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        validate_event(event, **kw)
    return err.value


def _mutated(event_type: str, change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    event = example_event(event_type)
    change(event)
    return event


CASES = [
    # (event type, mutation, field, rule fragment)
    ("CHECKOUT", lambda e: e.pop("source"), "source", "required field is missing"),
    ("CHECKOUT", lambda e: e["payload"].pop("order_id"), "payload.order_id", "required field is missing"),
    ("CHECKOUT", lambda e: e.update(source=None), "source", "must be a string, not null"),
    ("CHECKOUT", lambda e: e.update(occurred_at="2026-11-25T10:00:00Z"), "occurred_at",
     "must be epoch milliseconds (int), not str"),
    ("CHECKOUT", lambda e: e["payload"].update(item_count="2"), "payload.item_count", "must be an integer (int), not str"),
    ("CHECKOUT", lambda e: e["payload"].update(item_count=2**31), "payload.item_count", "out of the int range"),
    ("CHECKOUT", lambda e: e["payload"].update(amount_minor=True), "payload.amount_minor", "not bool"),
    ("CHECKOUT", lambda e: e["payload"].update(amount_minor=12.5), "payload.amount_minor", "not a float"),
    ("CHECKOUT", lambda e: e.update(channel="fax"), "channel", "'fax' is not one of web, app"),
    ("CHECKOUT", lambda e: e["payload"].update(status="paid"), "payload.status", "'paid' is not one of started"),
    ("CHECKOUT", lambda e: e.update(context={"country": 1}), "context.country", "must be a string, not int"),
    ("CHECKOUT", lambda e: e.update(context=["x"]), "context", "must be an object"),
    ("CHECKOUT", lambda e: e.update(extra=1), "extra", "unknown field of Touchpoint"),
    ("CHECKOUT", lambda e: e["payload"].update(coupon="X"), "payload",
     "does not match event_type CHECKOUT (Checkout): unexpected field(s) coupon"),
    ("CHECKOUT", lambda e: e.update(event_type="REFUND"), "event_type", "'REFUND' is not one of AD_CLICK"),
    ("CHECKOUT", lambda e: e.update(event_type="AD_CLICK"), "payload",
     "does not match event_type AD_CLICK (AdClick): unexpected field(s) amount_minor"),
    ("CHECKOUT", lambda e: e.update(payload=None), "payload", "must be an object (Checkout), not null"),
    ("CHECKOUT", lambda e: e.update(customer_id=None, anonymous_id=None), "customer_id",
     "customer_id or anonymous_id is required"),
    ("CHECKOUT", lambda e: e.update(customer_id="", anonymous_id=None), "customer_id",
     "customer_id or anonymous_id is required"),
    ("CHECKOUT", lambda e: e["payload"].update(amount_minor=-1), "payload.amount_minor", "must be >= 0, got -1"),
    ("CHECKOUT", lambda e: e["payload"].update(item_count=-2), "payload.item_count", "must be >= 0, got -2"),
    ("AD_CLICK", lambda e: e["payload"].update(cost_minor=-5), "payload.cost_minor", "must be >= 0, got -5"),
    ("CHECKOUT", lambda e: e["payload"].update(currency="eur"), "payload.currency", "'eur' is not an ISO-4217 code"),
    ("AD_CLICK", lambda e: e["payload"].update(currency="EURO"), "payload.currency", "'EURO' is not an ISO-4217 code"),
    ("CHECKOUT", lambda e: e.update(event_id="not-a-uuid"), "event_id", "must be a UUID"),
    ("CHECKOUT", lambda e: e.update(event_id="9F2C4E1A-3B5D-4C6E-8F70-A1B2C3D4E5F6"), "event_id", "lower-case canonical form"),
    ("CHECKOUT", lambda e: e.update(occurred_at=1_700_000_000), "occurred_at", "is before 2000-01-01"),
    ("CHECKOUT", lambda e: e.update(occurred_at=int(time.time() * 1000) + 2 * 86_400_000), "occurred_at",
     "more than a day in the future"),
    ("SURVEY_RESPONSE", lambda e: e["payload"].update(score=11), "payload.score", "11 is outside the NPS scale [0, 10]"),
    ("SURVEY_RESPONSE", lambda e: e["payload"].update(score=-1), "payload.score", "outside the NPS scale"),
    ("SURVEY_RESPONSE", lambda e: e["payload"].update(survey_kind="CSAT", score=3), "payload.scale_min",
     "CSAT scale is 1-5, got 0-10"),
    ("SURVEY_RESPONSE", lambda e: e["payload"].update(survey_kind="CES", scale_min=1, scale_max=5, score=3),
     "payload.scale_max", "CES scale is 1-7, got 1-5"),
    ("SURVEY_RESPONSE", lambda e: e["payload"].update(survey_kind="CSAT", scale_min=1, scale_max=5, score=0),
     "payload.score", "0 is outside the CSAT scale [1, 5]"),
    ("DELIVERY_NOTICE", lambda e: e["payload"].update(promised_by=1_800_000), "payload.promised_by",
     "before 2000-01-01"),
    ("PAGE_VIEW", lambda e: e["payload"].update(title="é" * 40_000), "payload.title",
     "string of 80000 UTF-8 bytes is longer than the limit of 65536"),
    ("PAGE_VIEW", lambda e: e.update(context={"k" * 70_000: "v"}), "context['" , "key string of 70000 UTF-8 bytes"),
]


@pytest.mark.parametrize(("event_type", "change", "field", "rule"), CASES,
                         ids=[f"{c[2]}:{c[3][:30]}" for c in CASES])
def test_each_rule_names_field_and_rule(event_type: str, change: Callable[[dict[str, Any]], Any], field: str,
                                        rule: str) -> None:
    err = _error(_mutated(event_type, change))
    assert err.field.startswith(field), err
    assert rule in err.rule, err
    assert str(err).startswith(f"{err.field}: ")


def test_one_id_is_enough() -> None:
    validate_event(_mutated("PAGE_VIEW", lambda e: e.update(customer_id=None)))
    validate_event(_mutated("PAGE_VIEW", lambda e: e.update(anonymous_id=None)))


def test_optional_fields_may_be_omitted() -> None:
    event = example_event("CHECKOUT")
    for name in ("customer_id", "session_id", "context"):
        del event[name]
    del event["payload"]["payment_method"]
    validate_event(event)


def test_standard_scales_are_accepted() -> None:
    for kind, lo, hi in (("NPS", 0, 10), ("CSAT", 1, 5), ("CES", 1, 7)):
        for score in (lo, hi):
            validate_event(_mutated("SURVEY_RESPONSE", lambda e: e["payload"].update(
                survey_kind=kind, scale_min=lo, scale_max=hi, score=score)))


def test_string_limit_is_configurable_and_counts_utf8_bytes() -> None:
    event = _mutated("PAGE_VIEW", lambda e: e["payload"].update(title="€" * 100))  # 300 bytes
    validate_event(event, max_string_bytes=300)
    err = _error(event, max_string_bytes=299)
    assert err.field == "payload.title" and "300 UTF-8 bytes" in err.rule
    big = _mutated("PAGE_VIEW", lambda e: e["payload"].update(url="x" * (1 << 20)))  # the 1 MB string
    assert _error(big).field == "payload.url"


def test_not_an_object() -> None:
    assert _error("CHECKOUT").field == "(event)"


def test_validate_record_checks_other_schemas() -> None:
    snapshot = example_journey_snapshot()
    validate_record(snapshot, "journey_snapshot")
    snapshot["path"][1]["channel"] = None
    with pytest.raises(ValidationError) as err:
        validate_record(snapshot, "journey_snapshot")
    assert err.value.field == "path[1].channel"


def test_fast_path_never_accepts_what_the_precise_checker_rejects() -> None:
    """The generated fast check may only say "certainly valid"; random damage must reach the precise checker."""
    import random

    from touchpoint.schemas.validation import _checks

    fast, precise = _checks("touchpoint", 64)
    assert all(_checks("touchpoint", 65536)[0](example_event(t)) for t in EVENT_TYPES)  # valid ones take it
    rng = random.Random(3)
    junk: list[Any] = [None, 1, -1, 2**40, 2**70, 1.5, True, "", "x" * 17, "y" * 65, "é" * 20, [], {}, {"a": 1},
                       "AD_CLICK", "CHECKOUT", "web", "NPS", "started"]
    rejected = 0
    for i in range(5000):
        event = example_event(EVENT_TYPES[i % len(EVENT_TYPES)])
        for _ in range(rng.randint(1, 3)):
            payload = event.get("payload")
            target = payload if isinstance(payload, dict) and rng.random() < 0.5 else event
            key = rng.choice(list(target) + ["extra"])
            if rng.random() < 0.2:
                target.pop(key, None)
            else:
                target[key] = rng.choice(junk)
        try:
            precise(event)
        except ValidationError:
            rejected += 1
            assert not fast(event), event
    assert rejected > 3000
