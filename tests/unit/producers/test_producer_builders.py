"""Typed builders: Python values in, the codec's in-memory event form out, mistakes named by field."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from touchpoint.errors import ValidationError
from touchpoint.producers import (
    AdClick,
    Channel,
    Checkout,
    CheckoutStatus,
    DeliveryNotice,
    DeliveryStatus,
    EmailAction,
    EmailEngagement,
    EventType,
    PageView,
    SupportAction,
    SupportInteraction,
    SupportKind,
    SurveyKind,
    SurveyResponse,
    to_epoch_ms,
    touchpoint,
)
from touchpoint.schemas.codec import AvroCodec

WHEN = datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=timezone.utc)
WHEN_MS = 1_795_600_800_123

ONE_OF_EACH = [
    AdClick(campaign_id="bf", ad_id="ad-1", platform="google", cost_minor=85, currency="EUR", placement="search"),
    PageView(url="https://shop.example/p/1", page_type="product", product_id="p-1"),
    EmailEngagement(campaign_id="bf", message_id="m-1", action=EmailAction.CLICKED, link_url="https://x"),
    Checkout(order_id="o-1", status=CheckoutStatus.COMPLETED, amount_minor=12_990, currency="BRL", item_count=2),
    DeliveryNotice(order_id="o-1", shipment_id="s-1", carrier="dhl", status=DeliveryStatus.DELIVERED, promised_by=WHEN),
    SurveyResponse(survey_kind=SurveyKind.CSAT, score=4, comment="ok"),
    SupportInteraction(ticket_id="t-1", kind=SupportKind.CHAT, action=SupportAction.RESOLVED, topic="delivery"),
]


@pytest.mark.parametrize("payload", ONE_OF_EACH, ids=lambda p: type(p).__name__)
def test_every_payload_builds_a_valid_event_that_encodes_and_decodes_to_itself(payload: object) -> None:
    event = touchpoint(payload, source="tests", customer_id="c-1", channel=Channel.WEB, occurred_at=WHEN)  # type: ignore[arg-type]
    assert event["event_type"] == type(payload).EVENT_TYPE.value  # type: ignore[attr-defined]
    assert event["occurred_at"] == WHEN_MS
    codec = AvroCodec()
    assert codec.decode(codec.encode(event)) == event


def test_enums_and_times_become_plain_symbols_and_epoch_millis() -> None:
    event = touchpoint(ONE_OF_EACH[4], source="carrier-hook", anonymous_id="a-1", channel="carrier", occurred_at=WHEN_MS)  # type: ignore[arg-type]
    assert event["channel"] == "carrier" and type(event["channel"]) is str
    assert event["payload"]["status"] == "delivered" and type(event["payload"]["status"]) is str
    assert event["payload"]["promised_by"] == WHEN_MS
    assert event["event_type"] == EventType.DELIVERY_NOTICE == "DELIVERY_NOTICE"


def test_event_id_and_occurred_at_are_filled_when_absent() -> None:
    before = time.time_ns() // 1_000_000
    first = touchpoint(PageView("u", "home"), source="s", anonymous_id="a")
    second = touchpoint(PageView("u", "home"), source="s", anonymous_id="a")
    after = time.time_ns() // 1_000_000
    assert uuid.UUID(first["event_id"]).version == 4
    assert first["event_id"] != second["event_id"]
    assert before <= first["occurred_at"] <= after


def test_given_event_id_is_kept_in_canonical_form() -> None:
    given = uuid.uuid4()
    assert touchpoint(PageView("u", "home"), source="s", anonymous_id="a", event_id=given)["event_id"] == str(given)
    upper = str(given).upper()
    assert touchpoint(PageView("u", "home"), source="s", anonymous_id="a", event_id=upper)["event_id"] == str(given)


def test_survey_scale_defaults_to_the_kind() -> None:
    nps = touchpoint(SurveyResponse(SurveyKind.NPS, 0), source="s", customer_id="c")["payload"]
    ces = touchpoint(SurveyResponse("CES", 7), source="s", customer_id="c")["payload"]
    assert (nps["scale_min"], nps["scale_max"]) == (0, 10)
    assert (ces["scale_min"], ces["scale_max"]) == (1, 7)


@pytest.mark.parametrize(
    ("build", "field", "words"),
    [
        (lambda: touchpoint(SurveyResponse(SurveyKind.NPS, 11), source="s", customer_id="c"), "payload.score", "outside"),
        (lambda: touchpoint(SurveyResponse("STARS", 3), source="s", customer_id="c"), "payload.survey_kind", "NPS"),
        (lambda: touchpoint(Checkout("o", CheckoutStatus.STARTED, -1, "EUR", 1), source="s", customer_id="c"), "payload.amount_minor", ">= 0"),
        (lambda: touchpoint(Checkout("o", CheckoutStatus.STARTED, 12.5, "EUR", 1), source="s", customer_id="c"), "payload.amount_minor", "minor units"),  # type: ignore[arg-type]
        (lambda: touchpoint(Checkout("o", "shipped", 1, "EUR", 1), source="s", customer_id="c"), "payload.status", "completed"),
        (lambda: touchpoint(AdClick("c", "a", "meta", 5, "euro"), source="s", customer_id="c"), "payload.currency", "ISO-4217"),
        (lambda: touchpoint(PageView("u", "home"), source="s"), "customer_id", "anonymous_id"),
        (lambda: touchpoint(PageView("u", "home"), source="s", customer_id="c", channel="fax"), "channel", "web"),
        (lambda: touchpoint(PageView("u", "home"), source="s", customer_id="c", occurred_at=datetime(2026, 1, 1)), "occurred_at", "timezone"),
        (lambda: touchpoint(PageView("u", "home"), source="s", customer_id="c", occurred_at=1.5e12), "occurred_at", "epoch milliseconds"),  # type: ignore[arg-type]
        (lambda: touchpoint(PageView("u", "home"), source="s", customer_id="c", event_id="nope"), "event_id", "UUID"),
        (lambda: touchpoint(PageView("u", None), source="s", customer_id="c"), "payload.page_type", ""),  # type: ignore[arg-type]
        (lambda: touchpoint(PageView("u" * 70_000, "home"), source="s", customer_id="c"), "payload.url", ""),
        (lambda: touchpoint({"url": "u"}, source="s", customer_id="c"), "payload", "PageView"),  # type: ignore[arg-type]
        (lambda: touchpoint(PageView("u", "home"), source="s", customer_id="c",
                            occurred_at=datetime.now(timezone.utc) + timedelta(days=3)), "occurred_at", "future"),
    ],
)
def test_mistakes_raise_validation_error_naming_the_field(build: object, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        build()  # type: ignore[operator]
    assert caught.value.field == field
    assert words in str(caught.value)


def test_payloads_are_immutable() -> None:
    click = ONE_OF_EACH[0]
    with pytest.raises(AttributeError):
        click.cost_minor = 1  # type: ignore[misc]


def test_to_epoch_ms_accepts_offsets() -> None:
    assert to_epoch_ms(WHEN.astimezone(timezone(timedelta(hours=-3))), "t") == WHEN_MS
    with pytest.raises(ValidationError):
        to_epoch_ms(True, "t")


def test_datetimes_convert_to_the_exact_millisecond() -> None:
    # datetime.timestamp() is a float: int(ts * 1000) gives ...497 for this instant.
    when = datetime(2004, 7, 25, 11, 49, 27, 498000, tzinfo=timezone.utc)
    assert to_epoch_ms(when, "t") == 1_090_756_167_498
    assert to_epoch_ms(when + timedelta(microseconds=999), "t") == 1_090_756_167_498  # truncates, never rounds up
