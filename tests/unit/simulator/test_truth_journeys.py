"""The simulator's journey-analysis truth on tiny hand-made journeys with typed-in answers (so the truth the pipeline
is compared with is itself checked)."""

from __future__ import annotations

import uuid
from fractions import Fraction
from typing import Any

from touchpoint.producers.simulation import truth_journeys as tj

H = 3_600_000
D = 24 * H


def ev(event_type: str, at: int, customer: str | None = None, anonymous: str | None = None,
       channel: str = "web", **payload: Any) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "event_type": event_type, "occurred_at": at, "customer_id": customer,
            "anonymous_id": anonymous, "channel": channel, "source": "t", "session_id": None, "context": {},
            "payload": payload}


def test_attribution_models_on_three_touches_and_a_conversion_outside_the_lookback() -> None:
    events = [ev("AD_CLICK", 0, "x", campaign_id="A"), ev("AD_CLICK", D, "x", campaign_id="B"),
              ev("AD_CLICK", 2 * D, "x", campaign_id="C"), ev("CHECKOUT", 3 * D, "x", status="completed"),
              ev("AD_CLICK", 0, "y", campaign_id="A"), ev("CHECKOUT", 40 * D, "y", status="completed")]
    events.append(dict(events[0]))  # a duplicate counts once
    touch = lambda e: e["event_type"] == "AD_CLICK"  # noqa: E731
    got = tj.attribution(events, touch, 30 * D, 7 * D, ("linear", "position_based", "first_touch", "last_touch"))
    third = Fraction(1, 3)
    assert got["linear"] == {"A": third, "B": third, "C": third, "(none)": 1}
    assert got["position_based"] == {"A": Fraction(2, 5), "B": Fraction(1, 5), "C": Fraction(2, 5), "(none)": 1}
    assert got["first_touch"] == {"A": 1, "(none)": 1} and got["last_touch"] == {"C": 1, "(none)": 1}
    assert tj.conversions(events) == 2


def test_funnel_identity_stitching_window_and_strict_order() -> None:
    events = [ev("AD_CLICK", 0, anonymous="a1"), ev("PAGE_VIEW", H, "c1", "a1"), ev("EMAIL_ENGAGEMENT", 2 * H, "c1"),
              ev("CHECKOUT", 3 * H, "c1", status="completed"),
              ev("AD_CLICK", 0, "c2"), ev("PAGE_VIEW", 20 * D, "c2")]
    steps = [tj.step("AD_CLICK"), tj.step("PAGE_VIEW"), tj.step("CHECKOUT", status="completed")]
    assert tj.funnel(events, steps, 14 * D) == [{"customers": 2, "median_ms": None}, {"customers": 1, "median_ms": H},
                                                {"customers": 1, "median_ms": 2 * H}]
    assert [s["customers"] for s in tj.funnel(events, steps, 14 * D, "strict")] == [2, 1, 0]


def test_stages_and_feedback_by_delivery() -> None:
    events = [ev("PAGE_VIEW", 0, "p"), ev("CHECKOUT", H, "p", status="completed"),
              ev("DELIVERY_NOTICE", D, "p", status="delivered", promised_by=D - 1),
              ev("SURVEY_RESPONSE", 2 * D, "p", survey_kind="NPS", score=3, scale_min=0, scale_max=10),
              ev("SUPPORT_INTERACTION", 3 * D, "p", action="opened"),
              ev("PAGE_VIEW", 0, "q"), ev("PAGE_VIEW", 5 * H, "q")]
    got = tj.stages(events)
    assert {s: (v["reached"], v["stalled"]) for s, v in got.items()} == {
        "awareness": (2, 0), "consideration": (2, 1), "purchase": (1, 0), "fulfilment": (1, 0), "feedback": (1, 1),
        "service": (1, 1)}
    assert got["consideration"]["median_dwell_ms"] == 5 * H and got["feedback"]["median_dwell_ms"] == D
    assert tj.feedback_by_delivery(events, 30 * D) == {"late": {"nps_detractors": 1}}
