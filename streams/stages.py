"""Stage and phase rules: which part of the customer journey a single touchpoint belongs to.

Journey practice splits a journey into before purchase (awareness, consideration), purchase, after purchase
(fulfilment, feedback) and the service phase that can happen at any time. A journey's ``stage`` is the furthest of
the five ordered phases any of its events reached; support contacts set ``service_contacted`` instead, because
service is not a step on the way to a purchase.
"""

from __future__ import annotations

from typing import Any, Final

STAGES: Final[tuple[str, ...]] = ("awareness", "consideration", "purchase", "fulfilment", "feedback")

AD_CLICK: Final = "AD_CLICK"
PAGE_VIEW: Final = "PAGE_VIEW"
EMAIL_ENGAGEMENT: Final = "EMAIL_ENGAGEMENT"
CHECKOUT: Final = "CHECKOUT"
DELIVERY_NOTICE: Final = "DELIVERY_NOTICE"
SURVEY_RESPONSE: Final = "SURVEY_RESPONSE"
SUPPORT_INTERACTION: Final = "SUPPORT_INTERACTION"

# Every checkout status reaches "purchase" (a started checkout is already the purchase phase); conversion is a
# separate flag that needs status "completed".
_STAGE_RANK: Final[dict[str, int]] = {
    AD_CLICK: 0,
    EMAIL_ENGAGEMENT: 0,
    PAGE_VIEW: 1,
    CHECKOUT: 2,
    DELIVERY_NOTICE: 3,
    SURVEY_RESPONSE: 4,
    SUPPORT_INTERACTION: -1,
}

DELIVERED: Final = "delivered"
DELIVERY_FAILED_STATUSES: Final[frozenset[str]] = frozenset({"failed_attempt", "returned"})


def stage_rank(event: dict[str, Any]) -> int:
    """Index into STAGES of the phase this event reaches; -1 for events that reach none (support, unknown)."""
    return _STAGE_RANK.get(event["event_type"], -1)


def is_service(event: dict[str, Any]) -> bool:
    """Support interactions make up the service phase."""
    return bool(event["event_type"] == SUPPORT_INTERACTION)


def campaign_of(event: dict[str, Any]) -> str | None:
    """Marketing campaign this touch carries: the ad's or email's campaign_id, else the utm_campaign of the context."""
    etype = event["event_type"]
    if etype == AD_CLICK or etype == EMAIL_ENGAGEMENT:
        campaign = event["payload"].get("campaign_id")
        if campaign:
            return str(campaign)
    context = event.get("context")
    if context:
        utm = context.get("utm_campaign")
        if utm:
            return str(utm)
    return None


def nps_bucket(score: int) -> str:
    """NPS component for a 0-10 answer: promoters 9-10, passives 7-8, detractors 0-6."""
    if score >= 9:
        return "nps_promoters"
    if score >= 7:
        return "nps_passives"
    return "nps_detractors"


def csat_satisfied(score: int, scale_max: int) -> bool:
    """CSAT counts the top two answers of the scale as satisfied (4-5 on the usual 1-5 scale)."""
    return score >= scale_max - 1


EMAIL_COMPONENT: Final[dict[str, str]] = {
    "sent": "emails_sent",
    "opened": "emails_opened",
    "clicked": "emails_clicked",
    "bounced": "emails_bounced",
    "unsubscribed": "emails_unsubscribed",
}

CHECKOUT_COMPONENT: Final[dict[str, str]] = {
    "started": "checkouts_started",
    "completed": "checkouts_completed",
    "abandoned": "checkouts_abandoned",
    "failed": "checkouts_failed",
}
