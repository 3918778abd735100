"""Buyers (shoppers, riders, diners): the demand side.

Purchases follow BG/NBD in continuous time, in days (Fader, Hardie & Lee 2005):
each buyer has a purchase rate lambda ~ Gamma(r, alpha) and a drop-out
probability p ~ Beta(a, b); while alive, purchase intentions arrive as a
Poisson process with rate lambda, and after each one the buyer drops out
(silently) with probability p. Satisfaction s multiplies lambda by
exp(k_rate (s - neutral)) and p by exp(-k_dropout (s - neutral)), both exactly
1 at neutral, so with experience effects off the process is exactly BG/NBD.

The k-th gap and the k-th drop-out coin of buyer i are drawn from streams keyed
by (i, k), so a policy that changes when buyer i buys does not change its luck.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from agents.base import Side
from agents.kernels import due_before
from agents.lifecycle import experience_multiplier
from sim.streams import ATTRIBUTE_DAY, Streams, uniform_at

FIELDS = {
    "purchase_rate": (np.float32, 0.0),   # lambda, purchases per day
    "dropout_p": (np.float32, 0.0),       # drop-out probability after each purchase
    "next_purchase": (np.float64, np.inf),  # absolute time of the next intention, days
    "spend_rate": (np.float32, 1.0),      # nu: basket value per order ~ Gamma(p, rate nu), currency
    "home_x": (np.float32, 0.0),          # position on the unit torus (rides, delivery)
    "home_y": (np.float32, 0.0),
    # the whole margin this buyer's orders created on every side (buyer fee less payment cost,
    # sellers' and drivers' commission), discounted to day 0 as margin_discounted is: order-attributed LTV
    "order_margin_discounted": (np.float64, 0.0),
}


def new_side(capacity: int) -> Side:
    """An empty buyers side."""
    return Side("buyers", FIELDS, capacity)


def init_traits(buyers: Side, ids: np.ndarray, conf, referred: np.ndarray | bool, streams: Streams,
                market=None) -> None:
    """Draw purchase rate, drop-out probability, spend level and home of new buyers."""
    p = conf.purchase
    rate = streams.gamma("buyers.purchase_rate", ATTRIBUTE_DAY, ids, p.r, p.alpha)
    dropout = streams.beta("buyers.dropout_p", ATTRIBUTE_DAY, ids, p.a, p.b)
    rate = np.where(referred, rate * conf.referral_value_multiplier, rate)
    # Schmitt et al.'s churn figure is per unit of time; a BG/NBD buyer can only drop out after a purchase,
    # and a referred buyer buys referral_value_multiplier times as often, so per purchase it is scaled by
    # churn multiplier / value multiplier (0.82 / 1.16: 18% fewer departures a day, not 5%).
    dropout = np.where(referred, dropout * conf.referral_churn_multiplier / conf.referral_value_multiplier, dropout)
    buyers.purchase_rate[ids] = rate
    buyers.dropout_p[ids] = dropout
    g = conf.spend
    buyers.spend_rate[ids] = streams.gamma("buyers.spend_rate", ATTRIBUTE_DAY, ids, g.q, g.gamma)
    buyers.home_x[ids] = streams.uniform("buyers.home_x", ATTRIBUTE_DAY, ids)
    buyers.home_y[ids] = streams.uniform("buyers.home_y", ATTRIBUTE_DAY, ids)


def start_purchasing(buyers: Side, ids: np.ndarray, start_time: float, streams: Streams,
                     rate_multiplier: np.ndarray | float = 1.0) -> None:
    """Schedule the first purchase intention after activation at ``start_time`` (days)."""
    k = buyers.orders[ids]
    gap = streams.exponential("buyers.purchase_gap", ATTRIBUTE_DAY, ids, sub=k)
    buyers.next_purchase[ids] = start_time + gap / (buyers.purchase_rate[ids] * rate_multiplier)


@dataclass
class Intentions:
    """Today's purchase intentions, in time order."""

    buyer: np.ndarray   # buyer id (may repeat)
    time: np.ndarray    # absolute time, days
    index: np.ndarray   # the buyer's purchase number k (0, 1, ...): the sub-counter of its draws


def purchase_intentions(buyers: Side, day: int, streams: Streams, behaviour_satisfaction: np.ndarray,
                        neutral: float, rate_sensitivity: float, dropout_sensitivity: float,
                        latent: bool = True) -> Intentions:
    """All intentions with time in [day, day + 1), with drop-outs applied after each one.

    ``behaviour_satisfaction`` is the satisfaction behaviour responds to:
    the latent satisfaction, or with ``latent`` False neutral everywhere
    (then the array is not read). One compiled pass (agents/kernels.py).
    """
    end = day + 1.0
    candidates = due_before(buyers.next_purchase, buyers.alive, end)
    buyer, time, index = purchases_before(
        candidates, end, day, buyers.next_purchase, buyers.orders, buyers.last_active_day, buyers.alive,
        buyers.churn_day, buyers.dropout_p, buyers.purchase_rate, behaviour_satisfaction, latent, float(neutral),
        float(rate_sensitivity), float(dropout_sensitivity), streams.day_key("buyers.dropout", ATTRIBUTE_DAY),
        streams.day_key("buyers.purchase_gap", ATTRIBUTE_DAY))
    order = np.argsort(time)   # times are continuous: ties have probability 0, and the sort is deterministic
    return Intentions(buyer[order], time[order], index[order])


@njit(cache=True)
def purchases_before(candidates, end, day, next_purchase, orders, last_active_day, alive, churn_day, dropout_p,
                     purchase_rate, satisfaction, latent, neutral, rate_sensitivity, dropout_sensitivity,
                     dropout_key, gap_key):
    """Every purchase intention of ``candidates`` before time ``end`` (days), BG/NBD step by step.

    For each intention: record (buyer, time, purchase number k), count it,
    then the buyer drops out with probability p exp(-k_dropout (s - neutral))
    (uniform keyed (buyer, k) on ``dropout_key``) or schedules the next one
    after an Exp(1) gap (keyed (buyer, k + 1) on ``gap_key``) over the rate
    lambda exp(k_rate (s - neutral)). s is the behaviour satisfaction (latent,
    or neutral with ``latent`` False). Returns (buyer, time, k), unsorted.
    """
    size = 2 * candidates.size + 16
    buyer = np.empty(size, np.int64)
    time = np.empty(size)
    index = np.empty(size, np.int64)
    count = 0
    for j in range(candidates.size):
        i = candidates[j]
        s = satisfaction[i] if latent else neutral
        p = dropout_p[i] * math.exp(-dropout_sensitivity * (s - neutral))
        rate = purchase_rate[i] * math.exp(rate_sensitivity * (s - neutral))
        t = next_purchase[i]
        while t < end:
            k = orders[i]
            if count == size:
                size *= 2
                buyer2, time2, index2 = np.empty(size, np.int64), np.empty(size), np.empty(size, np.int64)
                buyer2[:count], time2[:count], index2[:count] = buyer[:count], time[:count], index[:count]
                buyer, time, index = buyer2, time2, index2
            buyer[count], time[count], index[count] = i, t, k
            count += 1
            orders[i] = k + 1
            last_active_day[i] = day
            if uniform_at(dropout_key, i, k) < p:
                alive[i] = False
                churn_day[i] = day
                t = np.inf
            else:
                t = t - math.log(uniform_at(gap_key, i, k + 1)) / rate
            next_purchase[i] = t
    return buyer[:count], time[:count], index[:count]


def basket_values(buyers: Side, ids: np.ndarray, index: np.ndarray, day: int, conf, streams: Streams) -> np.ndarray:
    """Basket value of each order (currency): Gamma(p, rate nu_buyer), the Gamma-Gamma spend model."""
    return streams.gamma("orders.basket", day, ids, conf.spend.p, buyers.spend_rate[ids], sub=index)


def expected_margin_rate(buyers: Side, margin_per_order: float, behaviour_satisfaction: np.ndarray,
                         neutral: float, rate_sensitivity: float) -> np.ndarray:
    """Expected contribution margin per day of each buyer while alive (currency per day)."""
    rate = buyers.purchase_rate * experience_multiplier(behaviour_satisfaction, neutral, rate_sensitivity)
    return rate * margin_per_order


def residual_hazard(buyers: Side, behaviour_satisfaction: np.ndarray, neutral: float,
                    rate_sensitivity: float, dropout_sensitivity: float) -> np.ndarray:
    """Drop-out hazard per day of each alive buyer: lambda * p (BG/NBD)."""
    rate = buyers.purchase_rate * experience_multiplier(behaviour_satisfaction, neutral, rate_sensitivity)
    p = buyers.dropout_p * experience_multiplier(behaviour_satisfaction, neutral, -dropout_sensitivity)
    return rate * np.minimum(p, 1.0)
