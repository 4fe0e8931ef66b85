"""The simulator's retention profile and its customer truth: opt-in (the default output is untouched), deterministic,
with the behaviours the customer figures need; the truth module itself checked against typed answers."""

from __future__ import annotations

from tests.integration.analyst.test_customers_scenarios import AS_OF, history
from touchpoint.producers.simulation.truth_customers import compute_customer_truth, quantile
from touchpoint.producers.simulator import SimulationConfig, simulate


def test_retention_profile_is_deterministic_and_opt_in() -> None:
    a = simulate(SimulationConfig(customers=120, seed=3, days=200, profile="retention"))
    b = simulate(SimulationConfig(customers=120, seed=3, days=200, profile="retention"))
    assert [e["event_id"] for e in a.arrived] == [e["event_id"] for e in b.arrived]
    default = simulate(SimulationConfig(customers=120, seed=3, days=200))
    assert "retention" not in default.truth and "retention" in a.truth
    assert a.truth["customers"] == a.truth["retention"]["summary"]["customers"] - a.truth["anonymous_visitors"] + a.truth["identity_merges"]
    assert [e["event_id"] for e in default.arrived] != [e["event_id"] for e in a.arrived]


def test_retention_profile_has_loyal_lapsing_and_churning_customers() -> None:
    sim = simulate(SimulationConfig(customers=300, seed=5, days=240, profile="retention"))
    t = sim.truth["retention"]
    assert sum(churned for _, churned, _ in t["churn"].values()) > 50
    assert sum(v[2] for v in t["lifecycle"].values()) > 20  # resurrecting
    assert t["summary"]["repeat_buyers"] > 50 and t["summary"]["unsubscribed"] > 0
    assert {"nps_detractor", "delivery_late"} <= set(t["at_risk"].values())
    months = [_ for _ in t["churn"]]
    assert len(months) >= 8


def test_customer_truth_matches_the_typed_scenario() -> None:
    t = compute_customer_truth(history(), as_of_ms=AS_OF)
    assert t["churn"] == {"2026-01-01": [0, 0, 3], "2026-02-01": [3, 0, 0], "2026-03-01": [3, 0, 1],
                          "2026-04-01": [4, 2, 3], "2026-05-01": [6, 1, 0], "2026-06-01": [5, 0, 1]}
    assert t["lifecycle"]["2026-04-01"] == [3, 1, 1, 1]
    assert t["at_risk"] == {"B": "nps_detractor", "C": "ticket_unresolved"}
    assert t["cohorts"]["2026-01-01"]["on"] == [3, 1, 1, 2, 1, 1]
    assert quantile([0, 10], 0.9) == 9.0 and quantile([], 0.5) is None
