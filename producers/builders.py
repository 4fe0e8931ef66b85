"""Typed builders for touchpoints: one frozen dataclass per payload, and ``touchpoint(...)`` for the envelope.

The builders turn Python values (enums, ``datetime``, ``uuid.UUID``) into the in-memory event form of
``touchpoint.schemas.codec`` (a plain dict shaped like the Avro record, times as int epoch milliseconds,
enums as their symbol text) and check it with ``touchpoint.schemas.validation.validate_event``, so a
mistake raises ``ValidationError`` naming the field before anything reaches Kafka.

    >>> event = touchpoint(
    ...     Checkout(order_id="o-1", status=CheckoutStatus.COMPLETED, amount_minor=12_990, currency="BRL", item_count=2),
    ...     source="checkout-service", customer_id="c-42", channel=Channel.WEB,
    ... )
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any, ClassVar, Mapping, TypeAlias

from touchpoint.errors import ValidationError
from touchpoint.schemas.validation import SURVEY_SCALES, validate_event

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MILLISECOND = timedelta(milliseconds=1)

Timestamp: TypeAlias = "datetime | int"
"""A point in time: a timezone-aware ``datetime`` or int epoch milliseconds."""


class EventType(StrEnum):
    AD_CLICK = "AD_CLICK"
    PAGE_VIEW = "PAGE_VIEW"
    EMAIL_ENGAGEMENT = "EMAIL_ENGAGEMENT"
    CHECKOUT = "CHECKOUT"
    DELIVERY_NOTICE = "DELIVERY_NOTICE"
    SURVEY_RESPONSE = "SURVEY_RESPONSE"
    SUPPORT_INTERACTION = "SUPPORT_INTERACTION"


class Channel(StrEnum):
    WEB = "web"
    APP = "app"
    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    SOCIAL = "social"
    IN_STORE = "in_store"
    PHONE = "phone"
    CHAT = "chat"
    CARRIER = "carrier"
    OTHER = "other"


class EmailAction(StrEnum):
    SENT = "sent"
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED = "bounced"
    UNSUBSCRIBED = "unsubscribed"


class CheckoutStatus(StrEnum):
    STARTED = "started"
    PAYMENT_SUBMITTED = "payment_submitted"
    COMPLETED = "completed"
    FAILED = "failed"
    ABANDONED = "abandoned"


class DeliveryStatus(StrEnum):
    LABEL_CREATED = "label_created"
    SHIPPED = "shipped"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    FAILED_ATTEMPT = "failed_attempt"
    RETURNED = "returned"
    DELAYED = "delayed"


class SurveyKind(StrEnum):
    NPS = "NPS"
    CSAT = "CSAT"
    CES = "CES"


class SupportKind(StrEnum):
    TICKET = "ticket"
    CHAT = "chat"
    CALL = "call"


class SupportAction(StrEnum):
    OPENED = "opened"
    REPLIED = "replied"
    RESOLVED = "resolved"
    REOPENED = "reopened"


# --- coercion helpers: Python values -> the in-memory event form --------------------------------------


def to_epoch_ms(value: object, name: str) -> int:
    """A timezone-aware ``datetime`` or int epoch milliseconds, as int epoch milliseconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValidationError(name, "datetime must be timezone-aware (e.g. datetime.now(timezone.utc))", value)
        return (value - _EPOCH) // _MILLISECOND  # exact: float timestamps lose the last millisecond
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValidationError(name, f"must be a datetime or int epoch milliseconds, not {type(value).__name__}", value)


def _symbol(enum: type[StrEnum], value: object, name: str) -> str:
    if isinstance(value, enum):
        return value.value
    if isinstance(value, str):
        try:
            return enum(value).value
        except ValueError:
            pass
    allowed = ", ".join(m.value for m in enum)
    raise ValidationError(name, f"must be one of {allowed}; got {value!r}", value)


def _event_id(value: object) -> str:
    if value is None:
        return str(uuid.uuid4())
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))  # canonical lower-case form, as the contract wants
        except ValueError:
            pass
    raise ValidationError("event_id", f"must be a UUID (uuid.UUID or its text), got {value!r}", value)


def _minor_units(value: object, name: str) -> int:
    # Money never travels as float: 0.1 + 0.2 != 0.3, and a silently rounded price is worse than an error.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValidationError(name, f"must be an int amount in minor units (cents), not {type(value).__name__}", value)


def _payload_dict(obj: Any, enums: Mapping[str, type[StrEnum]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name in enums and value is not None:
            value = _symbol(enums[f.name], value, f"payload.{f.name}")
        out[f.name] = value
    return out


# --- payloads -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdClick:
    """AD_CLICK: a click on a paid ad; ``cost_minor`` in minor units of ``currency``."""

    EVENT_TYPE: ClassVar[EventType] = EventType.AD_CLICK
    campaign_id: str
    ad_id: str
    platform: str
    cost_minor: int
    currency: str
    placement: str | None = None

    def to_payload(self) -> dict[str, Any]:
        out = _payload_dict(self, {})
        out["cost_minor"] = _minor_units(self.cost_minor, "payload.cost_minor")
        return out


@dataclass(frozen=True, slots=True)
class PageView:
    """PAGE_VIEW: a page or app screen seen."""

    EVENT_TYPE: ClassVar[EventType] = EventType.PAGE_VIEW
    url: str
    page_type: str
    title: str | None = None
    referrer: str | None = None
    product_id: str | None = None

    def to_payload(self) -> dict[str, Any]:
        return _payload_dict(self, {})


@dataclass(frozen=True, slots=True)
class EmailEngagement:
    """EMAIL_ENGAGEMENT: one step of a campaign email's life (``link_url`` for clicks)."""

    EVENT_TYPE: ClassVar[EventType] = EventType.EMAIL_ENGAGEMENT
    campaign_id: str
    message_id: str
    action: EmailAction | str
    link_url: str | None = None

    def to_payload(self) -> dict[str, Any]:
        return _payload_dict(self, {"action": EmailAction})


@dataclass(frozen=True, slots=True)
class Checkout:
    """CHECKOUT: a step of an order's checkout; ``amount_minor`` in minor units of ``currency``."""

    EVENT_TYPE: ClassVar[EventType] = EventType.CHECKOUT
    order_id: str
    status: CheckoutStatus | str
    amount_minor: int
    currency: str
    item_count: int
    payment_method: str | None = None
    failure_reason: str | None = None

    def to_payload(self) -> dict[str, Any]:
        out = _payload_dict(self, {"status": CheckoutStatus})
        out["amount_minor"] = _minor_units(self.amount_minor, "payload.amount_minor")
        return out


@dataclass(frozen=True, slots=True)
class DeliveryNotice:
    """DELIVERY_NOTICE: a carrier status change; a delivery after ``promised_by`` is late."""

    EVENT_TYPE: ClassVar[EventType] = EventType.DELIVERY_NOTICE
    order_id: str
    shipment_id: str
    carrier: str
    status: DeliveryStatus | str
    promised_by: datetime | int

    def to_payload(self) -> dict[str, Any]:
        out = _payload_dict(self, {"status": DeliveryStatus})
        out["promised_by"] = to_epoch_ms(self.promised_by, "payload.promised_by")
        return out


@dataclass(frozen=True, slots=True)
class SurveyResponse:
    """SURVEY_RESPONSE: an NPS/CSAT/CES answer. The scale defaults to the kind's (NPS 0-10, CSAT 1-5, CES 1-7)."""

    EVENT_TYPE: ClassVar[EventType] = EventType.SURVEY_RESPONSE
    survey_kind: SurveyKind | str
    score: int
    scale_min: int | None = None
    scale_max: int | None = None
    comment: str | None = None
    order_id: str | None = None
    rated_event_id: str | None = None

    def to_payload(self) -> dict[str, Any]:
        out = _payload_dict(self, {"survey_kind": SurveyKind})
        if out["survey_kind"] is None:
            raise ValidationError("payload.survey_kind", "is required (NPS, CSAT or CES)")
        low, high = SURVEY_SCALES[out["survey_kind"]]
        if out["scale_min"] is None:
            out["scale_min"] = low
        if out["scale_max"] is None:
            out["scale_max"] = high
        return out


@dataclass(frozen=True, slots=True)
class SupportInteraction:
    """SUPPORT_INTERACTION: a step of a support ticket, chat or call (opened and resolved share ``ticket_id``)."""

    EVENT_TYPE: ClassVar[EventType] = EventType.SUPPORT_INTERACTION
    ticket_id: str
    kind: SupportKind | str
    action: SupportAction | str
    topic: str | None = None
    order_id: str | None = None

    def to_payload(self) -> dict[str, Any]:
        return _payload_dict(self, {"kind": SupportKind, "action": SupportAction})


Payload: TypeAlias = "AdClick | PageView | EmailEngagement | Checkout | DeliveryNotice | SurveyResponse | SupportInteraction"
PAYLOAD_TYPES: tuple[type, ...] = (
    AdClick, PageView, EmailEngagement, Checkout, DeliveryNotice, SurveyResponse, SupportInteraction,
)


# --- envelope -------------------------------------------------------------------------------------------


def touchpoint(
    payload: Payload,
    *,
    source: str,
    customer_id: str | None = None,
    anonymous_id: str | None = None,
    channel: Channel | str = Channel.OTHER,
    occurred_at: datetime | int | None = None,
    event_id: uuid.UUID | str | None = None,
    session_id: str | None = None,
    context: Mapping[str, str] | None = None,
    max_string_bytes: int = 65536,
) -> dict[str, Any]:
    """Build one touchpoint in the in-memory event form, validated.

    ``event_id`` defaults to a fresh uuid4 (the dedup key: keep it when you retry a send), ``occurred_at``
    to now. At least one of ``customer_id`` / ``anonymous_id`` is required; both on one event stitch them.
    Raises ``ValidationError(field, rule)`` on the first mistake.
    """
    if not isinstance(payload, PAYLOAD_TYPES):
        raise ValidationError("payload", f"must be one of {', '.join(t.__name__ for t in PAYLOAD_TYPES)}", payload)
    event: dict[str, Any] = {
        "event_id": _event_id(event_id),
        "event_type": payload.EVENT_TYPE.value,
        "occurred_at": time.time_ns() // 1_000_000 if occurred_at is None else to_epoch_ms(occurred_at, "occurred_at"),
        "customer_id": customer_id,
        "anonymous_id": anonymous_id,
        "channel": _symbol(Channel, channel, "channel"),
        "source": source,
        "session_id": session_id,
        "context": dict(context) if context else {},
        "payload": payload.to_payload(),
    }
    validate_event(event, max_string_bytes)
    return event


__all__ = [
    "AdClick",
    "Channel",
    "Checkout",
    "CheckoutStatus",
    "DeliveryNotice",
    "DeliveryStatus",
    "EmailAction",
    "EmailEngagement",
    "EventType",
    "PAYLOAD_TYPES",
    "PageView",
    "Payload",
    "SURVEY_SCALES",
    "SupportAction",
    "SupportInteraction",
    "SupportKind",
    "SurveyKind",
    "SurveyResponse",
    "Timestamp",
    "to_epoch_ms",
    "touchpoint",
]
