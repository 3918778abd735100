"""LTV predicted at the horizon against what the same agents realise when the run goes on.

Common random numbers make days 0..T of a run of T days identical to the first
T days of a longer run with the same seed, so each agent's predicted value at T
can be held against the value it actually produces by T + H.
"""
import numpy as np
import pytest

from agents import sellers as sellers_rules
from experiments import ltv_holdout as holdout
from experiments.config import load_config
from experiments.docs_tables import DOCS, blocks
from sim import Marketplace


@pytest.mark.slow
@pytest.mark.parametrize("market", holdout.MARKETS)
def test_ltv_predicted_at_the_horizon_matches_what_the_agents_realise(market):
    measured = holdout.ratios(market)   # agents of seeds 1 and 2 pooled (experiments/ltv_holdout.py CHECK)
    for (side, group), (ratio, se, agents) in measured.items():
        # Unbiased within sampling noise: three standard errors of the ratio over the agents of both
        # seeds. The forecast follows every side's own rules (sellers' satisfaction path, drivers'
        # settling); before it did, late sellers stood at 1.25 and early ones at 0.81.
        assert abs(ratio - 1) < 3 * se, (market, side, group, ratio, se, agents)
    # docs/model.md's table "ltv_holdout" shows these figures (this test is its check)
    shown = blocks((DOCS / "model.md").read_text())["ltv_holdout"].splitlines()
    for row in holdout.table_rows(market, measured):
        assert row in shown, f"docs/model.md's LTV holdout table differs from {row!r}: run `make docs`"


def test_expected_choice_weight_is_the_buyers_choice_weight_when_products_are_held_or_not(tiny):
    model = Marketplace(tiny("market=goods", "days=40"))
    model.run_until(40)
    sellers, conf = model.sides["sellers"], model.market.sellers
    listed = np.flatnonzero(sellers.alive & (sellers.activation_day >= 0))
    sellers.premium[listed[::3]] = True      # some of each product, so its boost is exercised
    sellers.promoted[listed[1::4]] = True
    expected = sellers_rules.expected_choice_weight(
        sellers.rating_sum[listed].astype(np.float64), sellers.rating_count[listed].astype(np.float64),
        sellers.price_level[listed].astype(np.float64), sellers.segment[listed],
        {p: getattr(sellers, p)[listed].astype(np.float64) for p in sellers_rules.PRODUCTS}, conf)
    # choice_weights is float32: agreement to its precision
    np.testing.assert_allclose(expected, sellers_rules.choice_weights(sellers, listed, conf), rtol=1e-5)


def sales_experience_level(net_income, outside_option, sensitivity, neutral):
    """The daily rule's level by hand: logistic(k ln(net / outside option) + logit(neutral)), 0 with no income."""
    boosted = (np.maximum(net_income, 0.0) / outside_option) ** sensitivity * (neutral / (1.0 - neutral))
    return boosted / (1.0 + boosted)


def test_expected_sales_level_is_the_level_without_noise_and_lower_with_it_where_concave():
    market = load_config(["market=goods", "scale=tiny"]).market
    conf, neutral = market.sellers, market.satisfaction.neutral
    sales, outside, fees = np.array([0.5, 1.0, 2.0]), np.ones(3), np.zeros(3)
    exact = sales_experience_level(sales * (1 - conf.commission), outside, conf.sales_sensitivity, neutral)
    quiet = sellers_rules.expected_sales_experience_level(sales, np.zeros(3), 1.0, fees, outside, conf, neutral,
                                                          market)
    np.testing.assert_allclose(quiet, exact, rtol=1e-9)
    # sales of a few orders a window: the level, a ratio^k / (1 + a ratio^k), is concave above
    # ratio^k = (k - 1) / (k + 1) / a (ratios here 0.44-1.76, beyond it), so noise lowers its mean
    noisy = sellers_rules.expected_sales_experience_level(sales, sales, 1.0, fees, outside, conf, neutral, market)
    assert (noisy < exact).all()
