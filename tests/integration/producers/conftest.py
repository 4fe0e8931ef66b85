"""Fixtures of the producer integration tests: read a topic back with a plain confluent-kafka consumer."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message

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
    Payload,
    SupportAction,
    SupportInteraction,
    SupportKind,
    SurveyKind,
    SurveyResponse,
    touchpoint,
)

pytestmark = pytest.mark.integration

ConsumeAll = Callable[..., list[Message]]


@pytest.fixture
def consume_all(kafka_bootstrap: str, unique: str) -> ConsumeAll:
    """``consume_all(topic, expected, timeout=60)``: every record of ``topic`` from the beginning.

    Reads until ``expected`` records arrived, then keeps reading until the topic has been quiet for a second,
    so a test sees extra records too (it must not pass just because it stopped reading early).
    """

    def consume(topic: str, expected: int, timeout: float = 60.0) -> list[Message]:
        consumer = Consumer({
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"{unique}-{topic}-reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        })
        consumer.subscribe([topic])
        records: list[Message] = []
        deadline = time.monotonic() + timeout
        quiet_since = None
        try:
            while time.monotonic() < deadline:
                batch = consumer.consume(num_messages=2000, timeout=0.5)
                fresh = [m for m in batch if m.error() is None]
                errors = [e for e in (m.error() for m in batch) if e is not None and e.code() != KafkaError._PARTITION_EOF]
                assert not errors, f"consumer errors: {errors}"
                records.extend(fresh)
                if len(records) >= expected:
                    if fresh:
                        quiet_since = time.monotonic()
                    elif quiet_since is None:
                        quiet_since = time.monotonic()
                    elif time.monotonic() - quiet_since >= 1.0:
                        break
            else:
                pytest.fail(f"read {len(records)} of {expected} records from {topic} within {timeout:g}s", pytrace=False)
        finally:
            consumer.close()
        return records

    return consume


START = datetime(2026, 11, 1, tzinfo=timezone.utc)
TEXTS = ["plain", "ação rápida ✓", "😀 emoji", "quote \" and \\ backslash", "", "x" * 300]


def _maybe(rng: random.Random, value: Any) -> Any:
    return value if rng.random() < 0.6 else None


def _payload(rng: random.Random, kind: EventType, i: int) -> Payload:
    text = rng.choice(TEXTS)
    if kind is EventType.AD_CLICK:
        return AdClick(f"camp-{rng.randrange(20)}", f"ad-{i}", rng.choice(["google", "meta", "tiktok"]),
                       rng.randrange(0, 10_000), rng.choice(["EUR", "BRL", "USD"]), placement=_maybe(rng, "feed"))
    if kind is EventType.PAGE_VIEW:
        return PageView(f"https://shop.example/p/{i}?q={text}", rng.choice(["home", "product", "cart"]),
                        title=_maybe(rng, text), referrer=_maybe(rng, "https://search.example"), product_id=_maybe(rng, f"p-{i}"))
    if kind is EventType.EMAIL_ENGAGEMENT:
        return EmailEngagement(f"camp-{rng.randrange(20)}", f"m-{i}", rng.choice(list(EmailAction)),
                               link_url=_maybe(rng, "https://shop.example/bf"))
    if kind is EventType.CHECKOUT:
        return Checkout(f"o-{i}", rng.choice(list(CheckoutStatus)), rng.randrange(0, 2**40), "EUR", rng.randrange(0, 50),
                        payment_method=_maybe(rng, "credit_card"), failure_reason=_maybe(rng, text))
    if kind is EventType.DELIVERY_NOTICE:
        return DeliveryNotice(f"o-{i}", f"s-{i}", "dhl", rng.choice(list(DeliveryStatus)),
                              promised_by=START + timedelta(days=rng.randrange(10), milliseconds=rng.randrange(86_400_000)))
    if kind is EventType.SURVEY_RESPONSE:
        survey = rng.choice(list(SurveyKind))
        low, high = {"NPS": (0, 10), "CSAT": (1, 5), "CES": (1, 7)}[survey.value]
        return SurveyResponse(survey, rng.randint(low, high), comment=_maybe(rng, text), order_id=_maybe(rng, f"o-{i}"))
    return SupportInteraction(f"t-{i}", rng.choice(list(SupportKind)), rng.choice(list(SupportAction)),
                              topic=_maybe(rng, "delivery"), order_id=_maybe(rng, f"o-{i}"))


def _make_events(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` valid touchpoints cycling through every type, over 300 customers and 100 anonymous visitors."""
    rng = random.Random(seed)
    kinds = list(EventType)
    events = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        who = rng.random()
        customer = f"cust-{rng.randrange(300)}" if who < 0.8 else None
        anonymous = f"anon-{rng.randrange(100)}" if who >= 0.6 else None  # 0.6-0.8: both ids (a stitching event)
        events.append(touchpoint(
            _payload(rng, kind, i),
            source=rng.choice(["web-shop", "checkout-service", "carrier-hook"]),
            customer_id=customer,
            anonymous_id=anonymous,
            channel=rng.choice(list(Channel)),
            occurred_at=START + timedelta(milliseconds=i * 997 + rng.randrange(997)),
            session_id=_maybe(rng, f"sess-{rng.randrange(1000)}"),
            context={"utm_campaign": f"camp-{rng.randrange(20)}", "country": rng.choice(["BR", "DE", "ÅLAND"])}
            if rng.random() < 0.7 else None,
        ))
    return events


@pytest.fixture
def make_events() -> Callable[..., list[dict[str, Any]]]:
    """``make_events(n, seed=7)``: n valid touchpoints built with the SDK's builders, every type in turn."""
    return _make_events
