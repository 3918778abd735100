"""The economics a reviewer checks first: sellers react to what they keep, joiners to absolute offers."""
import numpy as np

from agents import sellers as sellers_rules
from experiments.config import load_config
from sim import Marketplace


def one_day_of_sales(commission, sales, premium=False):
    """Satisfaction of one active neutral seller after a day with ``sales`` (currency), at ``commission``."""
    overrides = ["market=goods", "scale=tiny", "days=1", f"market.sellers.commission={commission}"]
    model = Marketplace(load_config(overrides))
    sellers = model.sides["sellers"]
    sellers.satisfaction[:] = 0.7
    sellers.sales_value_rate[:] = sales
    sellers.premium[:] = premium
    sellers_rules.update_sales_experience(sellers, np.full(sellers.n, sales), model.market.sellers, 0.7)
    return sellers.satisfaction.copy(), sellers.outside_option.copy()


def test_zero_sales_feel_bad_and_commission_lowers_satisfaction():
    zero, _ = one_day_of_sales(0.12, 0.0)
    assert np.all(zero < 0.7)                       # no sales: the level is 0, satisfaction falls
    low, high = one_day_of_sales(0.05, 5.0)[0], one_day_of_sales(0.30, 5.0)[0]
    assert np.all(high < low)                       # the same sales, less kept: less satisfied


def test_a_seller_earning_its_outside_option_stays_neutral():
    model = Marketplace(load_config(["market=goods", "scale=tiny", "days=1"]))
    sellers, conf = model.sides["sellers"], model.market.sellers
    sellers.satisfaction[:] = 0.7
    sellers.premium[:] = False
    even = sellers.outside_option / (1 - conf.commission)   # sales whose net income equals the outside option
    sellers.sales_value_rate[:] = even
    sellers_rules.update_sales_experience(sellers, even.astype(np.float64), conf, 0.7)
    active = sellers.alive & (sellers.activation_day >= 0)
    assert np.allclose(sellers.satisfaction[active], 0.7, atol=1e-5)


def test_more_commission_means_more_seller_churn_monotonically():
    # Common random numbers: the three arms share every draw, so the ordering is the commission's doing.
    churn = []
    for commission in (0.05, 0.15, 0.30):
        rates = [Marketplace(load_config(["market=delivery", "scale=tiny", "days=180", f"seed={seed}",
                                          "population.sellers=300", f"market.sellers.commission={commission}"]))
                 .run().summary["sellers"]["monthly_churn"] for seed in (1, 2)]
        churn.append(np.mean(rates))
    assert churn[0] < churn[1] < churn[2], churn


def test_network_effect_reads_absolute_supply_not_growth_since_day_0():
    # A rides city with one driver draws almost no organic riders; with 200 it draws many (issue 13).
    organic = {}
    for drivers in (1, 200):
        result = Marketplace(load_config(["market=rides", "scale=small", "days=60", "seed=1",
                                          "population.buyers=2000", f"population.drivers={drivers}"])).run()
        organic[drivers] = int(result.daily["buyers_joined_organic"].sum())
    assert organic[1] * 5 < organic[200], organic
