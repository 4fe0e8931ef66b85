"""Fixed parameters of the simulated world: markets, campaigns, carriers and the distributions behind them.

Where a figure comes from real data it says so. The Olist figures were read as summary statistics from the
public Olist Brazilian e-commerce sample (2,000 orders; CC BY-NC-SA 4.0) during development; only the
resulting numbers are kept here, never the data.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000


@dataclass(frozen=True)
class Market:
    """Where a customer shops: currency, countries, payment mix and delivery promise."""

    currency: str
    share: float
    countries: tuple[tuple[str, str], ...]  # (country, locale)
    payment_methods: tuple[tuple[str, float], ...]
    order_value_mu: float  # log of the order value in major units (lognormal)
    order_value_sigma: float
    promise_days: tuple[float, float]  # (median, sigma of log) of days from purchase to promised_by
    late_share: float
    late_delay_days_median: float  # median lateness of a late parcel
    cpc_median_minor: int  # median cost per ad click in minor units


# Olist: 159 of 1,931 delivered orders arrived after the estimated date (8.2 %); late ones by a median of
# 6.7 days (p90 23.5); the promise was a median of 23.5 days after purchase (p10 12.9, p90 34.6);
# payment value lognormal mu 4.60, sigma 0.89 in BRL; payment types credit_card 72 %, boleto 20 %,
# voucher 6 %, debit_card 1 %.
MARKETS: tuple[Market, ...] = (
    Market(
        currency="BRL",
        share=0.6,
        countries=(("BR", "pt-BR"),),
        payment_methods=(("credit_card", 0.72), ("boleto", 0.21), ("voucher", 0.06), ("debit_card", 0.01)),
        order_value_mu=4.60,
        order_value_sigma=0.89,
        promise_days=(23.5, 0.30),
        late_share=0.082,
        late_delay_days_median=6.7,
        cpc_median_minor=120,
    ),
    # EUR and USD markets: shorter promises, smaller baskets in their currency; not from Olist (assumed).
    Market(
        currency="EUR",
        share=0.2,
        countries=(("DE", "de-DE"), ("FR", "fr-FR"), ("ES", "es-ES"), ("PT", "pt-PT"), ("NL", "nl-NL")),
        payment_methods=(("credit_card", 0.45), ("paypal", 0.30), ("debit_card", 0.20), ("voucher", 0.05)),
        order_value_mu=3.90,
        order_value_sigma=0.80,
        promise_days=(4.0, 0.35),
        late_share=0.10,
        late_delay_days_median=1.5,
        cpc_median_minor=45,
    ),
    Market(
        currency="USD",
        share=0.2,
        countries=(("US", "en-US"),),
        payment_methods=(("credit_card", 0.62), ("paypal", 0.18), ("debit_card", 0.15), ("voucher", 0.05)),
        order_value_mu=4.10,
        order_value_sigma=0.85,
        promise_days=(5.0, 0.30),
        late_share=0.09,
        late_delay_days_median=2.0,
        cpc_median_minor=90,
    ),
)

# Olist review score (1-5) by delivery outcome, read from the sample: on time n=1,767, late n=157.
# A score s maps to NPS answers: 5 -> 9..10, 4 -> 7..8, 3 -> 5..6, 2 -> 3..4, 1 -> 0..2.
REVIEW_MIX_ON_TIME = ((1, 0.068), (2, 0.025), (3, 0.085), (4, 0.195), (5, 0.627))
REVIEW_MIX_LATE = ((1, 0.567), (2, 0.076), (3, 0.102), (4, 0.096), (5, 0.159))
REVIEW_MIX_FAILED = ((1, 0.75), (2, 0.10), (3, 0.08), (4, 0.04), (5, 0.03))  # assumed: worse than late
REVIEW_TO_NPS = {1: (0, 1, 2), 2: (3, 4), 3: (5, 6), 4: (7, 8), 5: (9, 10)}
# Olist: 41.6 % of reviews carry a comment.
SURVEY_COMMENT_SHARE = 0.416


@dataclass(frozen=True)
class AdCampaign:
    campaign_id: str
    platform: str
    placements: tuple[str, ...]
    cpc_factor: float  # times the market's median CPC
    weight: float


AD_CAMPAIGNS: tuple[AdCampaign, ...] = (
    AdCampaign("cmp-search-brand", "google", ("search",), 0.6, 0.22),
    AdCampaign("cmp-search-generic", "google", ("search", "shopping"), 1.4, 0.18),
    AdCampaign("cmp-social-spring", "meta", ("feed", "stories", "reels"), 0.9, 0.20),
    AdCampaign("cmp-retargeting", "meta", ("feed", "audience_network"), 0.7, 0.12),
    AdCampaign("cmp-video-launch", "tiktok", ("for_you",), 0.5, 0.14),
    AdCampaign("cmp-b2b-gifts", "linkedin", ("feed",), 3.0, 0.04),
    AdCampaign("cmp-trends", "x", ("timeline",), 0.8, 0.05),
    AdCampaign("cmp-display", "other", ("display", "partner_site"), 0.4, 0.05),
)

# Marketing e-mails (awareness) and transactional follow-ups (post-purchase).
EMAIL_CAMPAIGNS: tuple[tuple[str, float], ...] = (
    ("eml-newsletter-weekly", 0.45),
    ("eml-promo-seasonal", 0.35),
    ("eml-winback", 0.20),
)
EMAIL_ORDER_CONFIRMATION = "eml-txn-order-confirmation"
EMAIL_REVIEW_REQUEST = "eml-txn-review-request"
# Typical e-commerce e-mail benchmarks (assumed): 2 % bounce, ~30 % open, ~25 % of openers click.
EMAIL_BOUNCE = 0.02
EMAIL_OPEN = 0.30
EMAIL_CLICK_GIVEN_OPEN = 0.25
EMAIL_UNSUBSCRIBE_GIVEN_OPEN = 0.015

CARRIERS = {"BRL": ("correios", "jadlog", "loggi"), "EUR": ("dhl", "dpd", "gls"), "USD": ("ups", "fedex", "usps")}

PAGE_FLOW = ("home", "category", "search", "product", "product", "cart")
PRODUCTS = 400

# Support: share of contacts by kind and their lognormal (median minutes, sigma) first reply and resolution.
SUPPORT_KINDS = (("ticket", "email", 0.5), ("chat", "chat", 0.35), ("call", "phone", 0.15))
SUPPORT_REPLY_MIN = {"ticket": (240.0, 0.9), "chat": (3.0, 0.7), "call": (0.5, 0.5)}
SUPPORT_RESOLVE_MIN = {"ticket": (26 * 60.0, 0.9), "chat": (25.0, 0.8), "call": (12.0, 0.6)}
FAILURE_REASONS = ("card_declined", "insufficient_funds", "fraud_suspected", "gateway_timeout")
