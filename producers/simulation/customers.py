"""One simulated person's journey: awareness, consideration, purchase, post-purchase, feedback and service.

Each person has their own random stream seeded from (seed, index), so a person's events do not depend on
how many others are simulated or in what order. Events are plain dicts in the in-memory contract form
(times as epoch milliseconds, payload a dict with every field of its Avro record).
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from touchpoint.producers.simulation import catalog as cat
from touchpoint.producers.simulation.catalog import DAY_MS, HOUR_MS, MINUTE_MS, Market

Event = dict[str, Any]

# Kinds of people: already-known customers, anonymous visitors who log in later, visitors who never do.
KNOWN, LOGS_IN, STAYS_ANONYMOUS = "known", "logs_in", "anonymous"
PERSON_KINDS = ((KNOWN, 0.55), (LOGS_IN, 0.30), (STAYS_ANONYMOUS, 0.15))


def pick(rng: random.Random, weighted: tuple[tuple[Any, float], ...] | tuple[Any, ...]) -> Any:
    """Choose from ((item, weight), ...)."""
    items = [w[0] for w in weighted]
    weights = [w[1] for w in weighted]
    return rng.choices(items, weights)[0]


def lognormal_ms(rng: random.Random, median_minutes: float, sigma: float) -> int:
    return max(1_000, int(rng.lognormvariate(math.log(median_minutes), sigma) * MINUTE_MS))


@dataclass
class Person:
    """The state a person's generator carries between phases; `events` is the output."""

    rng: random.Random
    index: int
    kind: str
    market: Market
    country: str
    locale: str
    device: str  # desktop, ios, android
    customer_id: str
    anonymous_id: str | None
    email_subscriber: bool
    identified: bool = False  # has the customer id been seen with the anonymous id yet
    payment_failed_at: int | None = None
    events: list[Event] = field(default_factory=list)

    # --- event construction --------------------------------------------------------------------
    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def emit(self, event_type: str, at: int, channel: str, source: str, payload: dict[str, Any], *,
             session_id: str | None = None, context: dict[str, str] | None = None,
             ids: str = "auto") -> Event:
        """Build one event. ids: 'auto' (who the person is at that point), 'customer', 'anonymous', 'both'."""
        if ids == "auto":
            ids = "customer" if self.identified or self.anonymous_id is None else "anonymous"
        ctx = {"country": self.country, "locale": self.locale, "device": self.device}
        if context:
            ctx.update(context)
        event = {
            "event_id": self.uid(),
            "event_type": event_type,
            "occurred_at": int(at),
            "customer_id": self.customer_id if ids in ("customer", "both") else None,
            "anonymous_id": self.anonymous_id if ids in ("anonymous", "both") else None,
            "channel": channel,
            "source": source,
            "session_id": session_id,
            "context": dict(sorted(ctx.items())),
            "payload": payload,
        }
        self.events.append(event)
        return event

    @property
    def web_channel(self) -> str:
        return "web" if self.device == "desktop" or self.rng.random() < 0.4 else "app"

    # --- awareness -------------------------------------------------------------------------------
    def ad_click(self, at: int) -> dict[str, str]:
        campaign = pick(self.rng, tuple((c, c.weight) for c in cat.AD_CAMPAIGNS))
        cost = int(self.market.cpc_median_minor * campaign.cpc_factor * self.rng.lognormvariate(0, 0.5))
        self.emit("AD_CLICK", at, "social" if campaign.platform in ("meta", "tiktok", "x", "linkedin") else "web",
                  f"ads-connector-{campaign.platform}",
                  {"campaign_id": campaign.campaign_id, "ad_id": f"{campaign.campaign_id}-ad{self.rng.randint(1, 6)}",
                   "platform": campaign.platform, "placement": self.rng.choice(campaign.placements),
                   "cost_minor": max(1, cost), "currency": self.market.currency},
                  context={"utm_source": campaign.platform, "utm_medium": "cpc", "utm_campaign": campaign.campaign_id})
        return {"utm_source": campaign.platform, "utm_medium": "cpc", "utm_campaign": campaign.campaign_id}

    def email(self, at: int, campaign_id: str, marketing: bool = True) -> int | None:
        """A campaign e-mail's life; returns the click time when the person clicked through."""
        message_id = f"msg-{self.uid()[:13]}"

        def step(action: str, t: int, link: str | None = None) -> None:
            self.emit("EMAIL_ENGAGEMENT", t, "email", "esp", {"campaign_id": campaign_id, "message_id": message_id,
                                                             "action": action, "link_url": link}, ids="customer")

        step("sent", at)
        if self.rng.random() < cat.EMAIL_BOUNCE:
            step("bounced", at + self.rng.randint(5_000, 120_000))
            return None
        open_p = cat.EMAIL_OPEN if marketing else 0.6
        if self.rng.random() >= open_p:
            return None
        opened = at + lognormal_ms(self.rng, 180, 1.2)
        step("opened", opened)
        if marketing and self.rng.random() < cat.EMAIL_UNSUBSCRIBE_GIVEN_OPEN:
            step("unsubscribed", opened + self.rng.randint(5_000, 60_000))
            self.email_subscriber = False
            return None
        if self.rng.random() < cat.EMAIL_CLICK_GIVEN_OPEN:
            clicked = opened + self.rng.randint(3_000, 120_000)
            step("clicked", clicked, f"https://shop.example/{campaign_id}")
            return clicked
        return None

    # --- consideration ---------------------------------------------------------------------------
    def browse(self, at: int, utm: dict[str, str] | None, pages: int) -> tuple[int, str, str]:
        """A session of page views; returns (end time, session id, channel)."""
        session_id = f"s-{self.uid()[:18]}"
        channel = self.web_channel
        source = "web-frontend" if channel == "web" else "mobile-app"
        t = at + self.rng.randint(1_000, 8_000)
        referrer = f"https://{utm['utm_source']}.example/" if utm else None
        for n in range(pages):
            page_type = cat.PAGE_FLOW[min(n, len(cat.PAGE_FLOW) - 1)] if n < 3 else self.rng.choice(cat.PAGE_FLOW[1:])
            product = f"p-{self.rng.randrange(cat.PRODUCTS):04d}" if page_type == "product" else None
            url = f"/{page_type}" + (f"/{product}" if product else "")
            self.emit("PAGE_VIEW", t, channel, source,
                      {"url": url, "page_type": page_type, "title": page_type.title(), "referrer": referrer,
                       "product_id": product}, session_id=session_id, context=utm if n == 0 and utm else None)
            referrer = None
            t += lognormal_ms(self.rng, 0.6, 0.8)
        return t, session_id, channel

    def login(self, at: int, session_id: str, channel: str) -> None:
        """The event that carries both ids: from here on the visitor is the customer."""
        source = "web-frontend" if channel == "web" else "mobile-app"
        self.emit("PAGE_VIEW", at, channel, source,
                  {"url": "/account/login", "page_type": "account", "title": "Sign in", "referrer": None,
                   "product_id": None}, session_id=session_id, ids="both")
        self.identified = True

    # --- purchase ----------------------------------------------------------------------------------
    def checkout(self, at: int, session_id: str, channel: str) -> tuple[str, int, int, str] | None:
        """An order's checkout; returns (order_id, completed_at, amount, outcome) when it completed."""
        order_id = f"o-{self.uid()[:18]}"
        amount = max(100, int(self.rng.lognormvariate(self.market.order_value_mu, self.market.order_value_sigma) * 100))
        items = 1 + int(self.rng.expovariate(2.0))
        method = pick(self.rng, self.market.payment_methods)
        source = "checkout-service"

        def step(status: str, t: int, reason: str | None = None) -> None:
            self.emit("CHECKOUT", t, channel, source,
                      {"order_id": order_id, "status": status, "amount_minor": amount, "currency": self.market.currency,
                       "item_count": items, "payment_method": method, "failure_reason": reason}, session_id=session_id)

        step("started", at)
        t = at + lognormal_ms(self.rng, 2.5, 0.6)
        if self.rng.random() < 0.28:  # cart abandonment; the shop marks it after its 1-hour timeout
            step("abandoned", t + HOUR_MS)
            return None
        step("payment_submitted", t)
        t += self.rng.randint(1_500, 9_000)
        if self.rng.random() < 0.07:
            step("failed", t, self.rng.choice(cat.FAILURE_REASONS))
            self.payment_failed_at = t
            if self.rng.random() < 0.5:
                return None
            t += lognormal_ms(self.rng, 2.0, 0.5)
            step("payment_submitted", t)
            t += self.rng.randint(1_500, 9_000)
        step("completed", t)
        return order_id, t, amount, "completed"
