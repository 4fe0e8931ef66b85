"""touchpoint.producers: the producer SDK.

Build touchpoints with the typed builders, send them with ``TouchpointProducer``::

    from touchpoint.producers import Checkout, CheckoutStatus, Channel, TouchpointProducer, touchpoint

    with TouchpointProducer.from_settings() as producer:
        producer.send(touchpoint(Checkout(order_id="o-1", status=CheckoutStatus.COMPLETED, amount_minor=12_990,
                                          currency="BRL", item_count=2),
                                 source="checkout-service", customer_id="c-42", channel=Channel.WEB))

Guarantee: at-least-once, idempotent producer per session, ordered per customer (key = customer_id, else
anonymous_id); duplicates are possible after a producer restart or a re-send, consumers dedup on ``event_id``.
"""

from touchpoint.producers.builders import (
    PAYLOAD_TYPES,
    SURVEY_SCALES,
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
    to_epoch_ms,
    touchpoint,
)
from touchpoint.producers.jsonl import InvalidLine, JsonlSummary, parse_line, produce_jsonl
from touchpoint.producers.producer import (
    DeliveryCallback,
    DeliveryError,
    DeliveryFuture,
    DeliveryReport,
    TouchpointProducer,
    producer_config,
)

__all__ = [
    "PAYLOAD_TYPES",
    "SURVEY_SCALES",
    "AdClick",
    "Channel",
    "Checkout",
    "CheckoutStatus",
    "DeliveryCallback",
    "DeliveryError",
    "DeliveryFuture",
    "DeliveryNotice",
    "DeliveryReport",
    "DeliveryStatus",
    "EmailAction",
    "EmailEngagement",
    "EventType",
    "InvalidLine",
    "JsonlSummary",
    "PageView",
    "Payload",
    "SupportAction",
    "SupportInteraction",
    "SupportKind",
    "SurveyKind",
    "SurveyResponse",
    "TouchpointProducer",
    "parse_line",
    "produce_jsonl",
    "producer_config",
    "to_epoch_ms",
    "touchpoint",
]
