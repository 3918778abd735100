"""Sellers (merchants, restaurants): the goods supply side.

A seller has a segment (SMB or enterprise), a quality (the chance an order
goes well), a price level, a rating built from buyers' reviews, and may buy
the premium plan (expansion revenue). Its baseline churn hazard is constant
and heterogeneous: the monthly churn probability is Beta(a, b) across sellers,
so a cohort's retention follows the shifted-beta-geometric model and its
retention rate rises with tenure (the fragile leave first). Satisfaction
follows recent sales against the seller's own expectation.
"""
from __future__ import annotations

import numpy as np

from agents.base import Side
from agents.lifecycle import experience_multiplier, monthly_churn_to_daily_hazard
from sim.streams import ATTRIBUTE_DAY, Streams

ENTERPRISE = 1
FIELDS = {
    "quality": (np.float32, 0.0),         # probability an order goes well
    "price_level": (np.float32, 1.0),     # multiplies the market's order value
    "rating_sum": (np.float32, 0.0),      # sum of ratings received (1-5)
    "rating_count": (np.float32, 0.0),
    "expected_orders": (np.float32, 1.0),  # the seller's sales expectation, orders per day
    "sales_rate": (np.float32, 0.0),      # recent orders per day (exponentially weighted)
    "premium": (np.bool_, False),
    "premium_day": (np.int32, -1),
    "premium_hazard": (np.float32, 0.0),  # cumulative upgrade hazard
    "premium_threshold": (np.float32, 0.0),
    "x": (np.float32, 0.0),               # position on the unit torus (delivery)
    "y": (np.float32, 0.0),
}


def new_side(capacity: int) -> Side:
    """An empty sellers side."""
    return Side("sellers", FIELDS, capacity)


def init_traits(sellers: Side, ids: np.ndarray, conf, referred: np.ndarray | bool, streams: Streams) -> None:
    """Draw segment, quality, price, expectation, churn hazard and position of new sellers."""
    enterprise = streams.uniform("sellers.segment", ATTRIBUTE_DAY, ids) < conf.enterprise_share
    sellers.segment[ids] = np.where(enterprise, ENTERPRISE, 0)
    sellers.quality[ids] = streams.beta("sellers.quality", ATTRIBUTE_DAY, ids, conf.quality_a, conf.quality_b)
    sellers.price_level[ids] = streams.lognormal_mean_cv("sellers.price_level", ATTRIBUTE_DAY, ids, 1.0,
                                                         conf.price_level_cv)
    expected = streams.lognormal_mean_cv("sellers.expected_orders", ATTRIBUTE_DAY, ids,
                                         conf.expected_orders_per_day, conf.expected_orders_cv)
    sellers.expected_orders[ids] = np.where(enterprise, expected * conf.enterprise_weight, expected)
    # Recent sales start at the seller's expectation, so experience reflects deviations from it,
    # not the warm-up of the moving average.
    sellers.sales_rate[ids] = sellers.expected_orders[ids]
    monthly = streams.beta("sellers.monthly_churn", ATTRIBUTE_DAY, ids, conf.churn.beta_a, conf.churn.beta_b)
    hazard = monthly_churn_to_daily_hazard(monthly)
    sellers.base_hazard[ids] = np.where(referred, hazard * conf.referral_churn_multiplier, hazard)
    sellers.premium_threshold[ids] = streams.exponential("sellers.premium_threshold", ATTRIBUTE_DAY, ids)
    sellers.x[ids] = streams.uniform("sellers.x", ATTRIBUTE_DAY, ids)
    sellers.y[ids] = streams.uniform("sellers.y", ATTRIBUTE_DAY, ids)


def rating(sellers: Side, prior_mean: float, prior_count: float) -> np.ndarray:
    """Shrunk mean rating (1-5): reviews pulled toward a prior, as buyers read them."""
    return (sellers.rating_sum + prior_mean * prior_count) / (sellers.rating_count + prior_count)


def choice_weights(sellers: Side, listed: np.ndarray, conf) -> np.ndarray:
    """Buyers' choice weight of each listed seller: rating, reviews, price, segment, premium."""
    c = conf.choice
    r = rating(sellers, c.rating_prior_mean, c.rating_prior_count)[listed]
    log_w = (c.w_rating * (r - c.rating_prior_mean) + c.w_reviews * np.log1p(sellers.rating_count[listed])
             - c.w_price * np.log(sellers.price_level[listed]))
    weight = np.exp(log_w)
    weight *= np.where(sellers.segment[listed] == ENTERPRISE, conf.enterprise_weight, 1.0)
    weight *= np.where(sellers.premium[listed], conf.premium.choice_boost, 1.0)
    return weight


def update_sales_experience(sellers: Side, orders_today: np.ndarray, conf, neutral: float) -> None:
    """Update recent sales (orders per day) and move satisfaction toward how sales compare with expectation.

    The experience level is logistic(k ln(sales / expectation) + logit(neutral)):
    exactly neutral when sales meet the seller's expectation.
    """
    window = conf.sales_window_days
    sellers.sales_rate[:] += (orders_today - sellers.sales_rate) / window
    active = sellers.alive & (sellers.activation_day >= 0)
    ratio = (sellers.sales_rate[active] + 0.05) / sellers.expected_orders[active]
    level = 1.0 / (1.0 + np.exp(-conf.sales_sensitivity * np.log(ratio) - _logit(neutral)))
    sat = sellers.satisfaction
    sat[active] += conf.experience_learning_rate * (level - sat[active])


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def premium_upgrades(sellers: Side, day: int, conf, behaviour_satisfaction: np.ndarray, neutral: float) -> np.ndarray:
    """Sellers buying the premium plan today (cumulative-hazard rule); return their ids."""
    eligible = sellers.alive & (sellers.activation_day >= 0) & ~sellers.premium
    rate = conf.premium.upgrade_rate * experience_multiplier(behaviour_satisfaction, neutral,
                                                              conf.premium.satisfaction_sensitivity)
    sellers.premium_hazard[eligible] += rate[eligible]
    ids = np.flatnonzero(eligible & (sellers.premium_hazard >= sellers.premium_threshold))
    sellers.premium[ids] = True
    sellers.premium_day[ids] = day
    return ids
