"""LTV predicted at the horizon against what the same agents realise when the run goes on.

Common random numbers make days 0..T of a run of T days identical to the first
T days of a longer run with the same seed, so each agent's predicted value at T
can be held against the value it actually produces by T + H.
"""
import numpy as np
import pytest

from agents import sellers as sellers_rules
from agents.base import CHANNEL
from agents.lifecycle import discounted_to_join_day
from experiments.config import load_config
from sim import Marketplace
from sim.metrics import agent_ltv

T, H = 180, 540          # forecast day and horizon (days)
POPULATION = ["population.buyers=4000", "population.sellers=400", "population.drivers=80"]


def predicted_and_realised(market, seed):
    def build(days):
        return Marketplace(load_config([f"market={market}", f"days={days}", f"seed={seed}", "cs.staff=1",
                                        f"metrics.ltv_horizon_days={H}", *POPULATION]))
    short, long = build(T), build(T + H)
    short.run_until(T)
    long.run_until(T + H)
    out = {}
    for name, side in short.sides.items():
        predicted = agent_ltv(short, side)
        realised = discounted_to_join_day(long.sides[name], long.discount_per_day)[: side.n]
        acquired = side.channel != CHANNEL["initial"]
        out[name] = (predicted, realised, acquired, side.join_day.copy())
    return out


def ratio_and_se(predicted, realised):
    """mean(predicted) / mean(realised) and its standard error (delta method over agents)."""
    ratio = predicted.mean() / realised.mean()
    residual = predicted - ratio * realised
    return ratio, residual.std(ddof=1) / (np.sqrt(predicted.size) * realised.mean())


@pytest.mark.slow
@pytest.mark.parametrize("market", ["delivery", "goods"])
def test_ltv_predicted_at_the_horizon_matches_what_the_agents_realise(market):
    runs = [predicted_and_realised(market, seed) for seed in (1, 2)]
    for name in runs[0]:
        predicted = np.concatenate([r[name][0] for r in runs])
        realised = np.concatenate([r[name][1] for r in runs])
        acquired = np.concatenate([r[name][2] for r in runs])
        joined = np.concatenate([r[name][3] for r in runs])
        for label, group in (("all", acquired), ("early", acquired & (joined < T // 2)),
                             ("late", acquired & (joined >= T // 2))):
            ratio, se = ratio_and_se(predicted[group], realised[group])
            # Unbiased within sampling noise: three standard errors of the ratio over the agents of both
            # seeds. The forecast follows every side's own rules (sellers' satisfaction path, drivers'
            # settling); before it did, late sellers stood at 1.25 and early ones at 0.81.
            assert abs(ratio - 1) < 3 * se, (market, name, label, ratio, se)


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


def test_expected_sales_level_is_the_level_without_noise_and_lower_with_it_where_concave():
    market = load_config(["market=goods", "scale=tiny"]).market
    conf, neutral = market.sellers, market.satisfaction.neutral
    sales, outside, fees = np.array([0.5, 1.0, 2.0]), np.ones(3), np.zeros(3)
    exact = sellers_rules.sales_experience_level(sales * (1 - conf.commission), outside, conf.sales_sensitivity,
                                                 neutral)
    quiet = sellers_rules.expected_sales_experience_level(sales, np.zeros(3), 1.0, fees, outside, conf, neutral,
                                                          market)
    np.testing.assert_allclose(quiet, exact, rtol=1e-9)
    # sales of a few orders a window: the level, a ratio^k / (1 + a ratio^k), is concave above
    # ratio^k = (k - 1) / (k + 1) / a (ratios here 0.44-1.76, beyond it), so noise lowers its mean
    noisy = sellers_rules.expected_sales_experience_level(sales, sales, 1.0, fees, outside, conf, neutral, market)
    assert (noisy < exact).all()
