"""Nested baselines: with experience effects off, the engine reproduces textbook models."""
import numpy as np
import pytest
from conftest import NO_ACQUISITION
from scipy.special import betaln, hyp2f1

from experiments.config import load_config
from sim import Marketplace


def bgnbd_expected_purchases(t, r, alpha, a, b):
    """E[X(t)] of BG/NBD (Fader, Hardie & Lee 2005, eq. 7), t in the rate's time unit."""
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def closed_cohort(market, days, extra=(), **population):
    overrides = [f"market={market}", f"days={days}", "experience_effects=false", *NO_ACQUISITION, *extra]
    overrides += [f"population.{side}={n}" for side, n in population.items()]
    return Marketplace(load_config(overrides))


@pytest.mark.parametrize("days", [30, 120])
def test_buyers_follow_bgnbd_expected_purchases(days):
    model = closed_cohort("goods", days, buyers=20000, sellers=50)
    model.run()
    purchases = model.sides["buyers"].orders.astype(float)
    p = model.market.buyers.purchase
    expected = bgnbd_expected_purchases(days, p.r, p.alpha, p.a, p.b)
    # The mean of 20,000 independent buyers: tolerance is 4 standard errors of that mean.
    standard_error = purchases.std(ddof=1) / np.sqrt(purchases.size)
    assert abs(purchases.mean() - expected) < 4 * standard_error, (purchases.mean(), expected, standard_error)


def test_satisfaction_changes_purchases_when_effects_are_on():
    off = closed_cohort("goods", 60, buyers=3000, sellers=30)
    on = Marketplace(load_config(["market=goods", "days=60", "population.buyers=3000", "population.sellers=30",
                                  "experience_effects=true", *NO_ACQUISITION]))
    off.run(), on.run()
    assert not np.array_equal(off.sides["buyers"].orders, on.sides["buyers"].orders)


SUPPLY_COHORTS = {  # side: (market, population, extra overrides)
    "sellers": ("goods", {"buyers": 200, "sellers": 20000}, []),
    # Rating deactivation is a platform rule with its own switch: off, drivers are textbook too.
    "drivers": ("rides", {"buyers": 200, "drivers": 20000}, ["market.drivers.deactivation.enabled=false"]),
}


@pytest.mark.parametrize("side", sorted(SUPPLY_COHORTS))
def test_supply_cohort_follows_shifted_beta_geometric_and_retention_rises(side):
    months = 12
    market, population, extra = SUPPLY_COHORTS[side]
    model = closed_cohort(market, 30 * months, extra, **population)
    model.run()
    agents = model.sides[side]
    churn_conf = getattr(model.market, side).churn
    a, b = churn_conf.beta_a, churn_conf.beta_b
    churn_day = np.where(agents.churn_day < 0, np.iinfo(np.int32).max, agents.churn_day)
    n = agents.n
    survival = np.array([np.mean(churn_day >= 30 * m) for m in range(months + 1)])
    expected = np.exp(betaln(a, b + np.arange(months + 1)) - betaln(a, b))
    # Binomial standard error of each survival share; 4 standard errors.
    tolerance = 4 * np.sqrt(expected * (1 - expected) / n) + 1e-12
    assert np.all(np.abs(survival - expected) < tolerance), (survival, expected)
    retention = survival[1:] / survival[:-1]
    # Heterogeneous hazards: the fragile leave first, so month-on-month retention rises, by at least half
    # the rise sBG predicts ((b + t - 1) / (a + b + t - 1) from month 1 to 12: about 0.02-0.05 at the defaults).
    predicted_rise = expected[-1] / expected[-2] - expected[1] / expected[0]
    assert retention[-1] - retention[0] > 0.5 * predicted_rise > 0
    assert np.all(np.diff(retention[:6]) > -0.01)


def test_driver_deactivation_is_what_breaks_the_driver_baseline():
    """With deactivation on, rating deactivation removes drivers the sBG model would keep (the switch matters)."""
    # A busy closed city: drivers collect enough ratings for the rule to apply within four months.
    runs = {enabled: closed_cohort("rides", 120, [f"market.drivers.deactivation.enabled={enabled}"],
                                   buyers=4000, drivers=100) for enabled in ("true", "false")}
    for model in runs.values():
        model.run()
    assert runs["true"].sides["drivers"].deactivated.sum() > 0
    assert runs["false"].sides["drivers"].deactivated.sum() == 0
    assert runs["true"].sides["drivers"].alive.sum() < runs["false"].sides["drivers"].alive.sum()
