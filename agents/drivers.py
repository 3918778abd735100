"""Drivers (couriers, ride-hail drivers): the logistics supply side.

Drivers multi-home: each works ``hours`` a day across all platforms and gives a
``platform_share`` of them to this one (more when satisfied). Each day a
driver works one contiguous block of matching rounds on this platform, at a
random start. Satisfaction follows earnings per online hour against the
outside option, and falls when a low rating was not the driver's fault.
Riders rate every trip; a driver whose rolling rating falls below the
threshold is deactivated automatically (and so churns), whether or not the
low ratings were deserved. Baseline churn: heterogeneous constant hazards as
for sellers (monthly churn probability ~ Beta).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from agents.base import Side
from agents.lifecycle import experience_multiplier, monthly_churn_to_daily_hazard
from sim.spatial import NO_PICKUP
from sim.streams import ATTRIBUTE_DAY, Streams

FIELDS = {
    "x": (np.float64, 0.0),               # position on the unit torus (float64: dispatch updates it in place)
    "y": (np.float64, 0.0),
    "last_pickup_x": (np.float64, NO_PICKUP),  # where the driver last picked a rider up (NO_PICKUP: not yet)
    "last_pickup_y": (np.float64, NO_PICKUP),
    "hours": (np.float32, 0.0),           # hours worked per day across all platforms
    "platform_share": (np.float32, 0.0),  # baseline share of those hours on this platform
    "quality": (np.float32, 0.0),         # chance a trip goes well from the driver's side
    "rating_mean": (np.float32, 5.0),     # rolling (exponentially weighted) mean rating
    "rating_count": (np.int32, 0),
    "low_ratings": (np.int32, 0),
    "unfair_low_ratings": (np.int32, 0),  # latent: low ratings that were not the driver's fault
    "deactivated": (np.bool_, False),
    "deactivation_day": (np.int32, -1),
    "online_hours": (np.float32, 0.0),    # today
    "earnings_today": (np.float32, 0.0),  # currency, today
    "earnings": (np.float64, 0.0),        # to date
    "busy_until": (np.float64, 0.0),      # absolute time, days
}


def new_side(capacity: int) -> Side:
    """An empty drivers side."""
    return Side("drivers", FIELDS, capacity)


def init_traits(drivers: Side, ids: np.ndarray, conf, referred: np.ndarray | bool, streams: Streams,
                market=None) -> None:
    """Draw position, hours, platform share, quality and churn hazard of new drivers."""
    drivers.x[ids] = streams.uniform("drivers.x", ATTRIBUTE_DAY, ids)
    drivers.y[ids] = streams.uniform("drivers.y", ATTRIBUTE_DAY, ids)
    hours = streams.lognormal_mean_cv("drivers.hours", ATTRIBUTE_DAY, ids, conf.hours_per_day_mean,
                                      conf.hours_per_day_cv)
    hours = np.where(referred, hours * conf.referral_value_multiplier, hours)
    drivers.hours[ids] = np.clip(hours, 0.25, 16.0)
    drivers.platform_share[ids] = streams.beta("drivers.platform_share", ATTRIBUTE_DAY, ids,
                                               conf.platform_share_a, conf.platform_share_b)
    drivers.quality[ids] = streams.beta("drivers.quality", ATTRIBUTE_DAY, ids, conf.quality_a, conf.quality_b)
    monthly = streams.beta("drivers.monthly_churn", ATTRIBUTE_DAY, ids, conf.churn.beta_a, conf.churn.beta_b)
    hazard = monthly_churn_to_daily_hazard(monthly)
    drivers.base_hazard[ids] = np.where(referred, hazard * conf.referral_churn_multiplier, hazard)


def shifts(drivers: Side, day: int, rounds_per_day: int, conf, behaviour_satisfaction: np.ndarray,
           neutral: float, streams: Streams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Today's shift of every working driver: (ids, first round, number of rounds).

    Hours on this platform = hours * min(1, share * exp(k (s - neutral))); the
    number of rounds (of 24 / rounds_per_day hours each) is rounded
    stochastically so its mean is exact, and capped at rounds_per_day.
    The arithmetic after the draws is one compiled pass, in NumPy's dtypes and
    order, so the result is bit-identical to :func:`_shifts_numpy`.
    """
    ids = _working_ids(drivers.alive, drivers.activation_day)
    multiplier = np.asarray(experience_multiplier(np.asarray(behaviour_satisfaction)[ids], neutral,
                                                  conf.share_sensitivity))
    u_length = streams.uniform("drivers.shift_length", day, ids)
    u_start = streams.uniform("drivers.shift_start", day, ids)
    # share and rounds in NumPy's dtype for share * multiplier (the Python numbers 1, rounds_per_day
    # and 24 cast to it, as NumPy does with Python scalars)
    dtype = np.result_type(drivers.platform_share.dtype, drivers.hours.dtype, multiplier.dtype)
    if dtype.kind != "f" or type(rounds_per_day) is not int:
        return _shifts_numpy(drivers, day, rounds_per_day, conf, behaviour_satisfaction, neutral, streams)
    multiplier = np.ascontiguousarray(np.broadcast_to(multiplier, ids.shape))
    return _shift_rounds(ids, drivers.platform_share, drivers.hours, multiplier, u_length, u_start,
                         rounds_per_day, dtype.type(1.0), dtype.type(rounds_per_day), dtype.type(24.0))


@njit(cache=True)
def _working_ids(alive, activation_day):
    """Ids (ascending) of drivers alive and activated."""
    m = 0
    for i in range(alive.size):
        m += alive[i] & (activation_day[i] >= 0)
    ids = np.empty(m, np.int64)
    m = 0
    for i in range(alive.size):
        if alive[i] and activation_day[i] >= 0:
            ids[m] = i
            m += 1
    return ids


@njit(cache=True)
def _shift_rounds(ids, platform_share, hours, multiplier, u_length, u_start, rounds_per_day, one, rounds_f, hours_f):
    """(ids, first round, rounds) of the drivers in ``ids`` with at least one round today.

    share = min(1, platform_share * multiplier); rounds = floor(hours * share *
    rounds_per_day / 24 + u_length), capped at rounds_per_day; first round =
    floor(u_start * rounds_per_day). ``one``, ``rounds_f``, ``hours_f`` are 1,
    rounds_per_day and 24 in the dtype of the share, as NumPy casts them.
    """
    n = ids.size
    out_ids = np.empty(n, np.int64)
    out_start = np.empty(n, np.int64)
    out_rounds = np.empty(n, np.int64)
    m = 0
    for k in range(n):
        i = ids[k]
        p = platform_share[i] * multiplier[k]
        share = one if p > one else p   # np.minimum(1.0, p), NaN kept
        rounds_float = hours[i] * share * rounds_f / hours_f
        rounds = np.int64(np.floor(rounds_float + u_length[k]))
        if rounds > 0:
            out_ids[m] = i
            out_start[m] = np.int64(np.floor(u_start[k] * rounds_per_day))
            out_rounds[m] = min(rounds, rounds_per_day)
            m += 1
    return out_ids[:m].copy(), out_start[:m].copy(), out_rounds[:m].copy()


def _shifts_numpy(drivers: Side, day: int, rounds_per_day: int, conf, behaviour_satisfaction: np.ndarray,
                  neutral: float, streams: Streams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """shifts as plain NumPy expressions (the reference)."""
    ids = np.flatnonzero(drivers.alive & (drivers.activation_day >= 0))
    share = np.minimum(1.0, drivers.platform_share[ids] * experience_multiplier(
        behaviour_satisfaction[ids], neutral, conf.share_sensitivity))
    rounds_float = drivers.hours[ids] * share * rounds_per_day / 24.0
    rounds = np.floor(rounds_float + streams.uniform("drivers.shift_length", day, ids)).astype(np.int64)
    start = np.floor(streams.uniform("drivers.shift_start", day, ids) * rounds_per_day).astype(np.int64)
    working = rounds > 0
    return ids[working], start[working], np.minimum(rounds[working], rounds_per_day)


def rate_trips(drivers: Side, ids: np.ndarray, day: int, conf, streams: Streams, trip_sub: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Riders rate trips 1-5. Returns per trip: (driver at fault, unfair low rating, the rating).

    A trip goes badly by the driver's doing with probability 1 - quality (rating
    2-3); independently, with probability ``bad_luck_low_rating`` the rider rates
    low for reasons outside the driver's control (rating 1-3, unfair).
    Each rating then updates the driver's rolling mean (ratings of one driver
    in trip order), and low (<= 3) and unfair ratings are counted per driver.

    The two uniforms per trip come from the streams as before; the rest is one
    compiled pass over the trips, O(trips) with no sorting, bit-identical to
    the NumPy expressions it replaced (tests/test_matching_speed_equivalence.py).
    """
    u_quality = streams.uniform("drivers.trip_quality", day, ids, sub=trip_sub)
    u_luck = streams.uniform("drivers.bad_luck", day, ids, sub=trip_sub)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    return _rate_trips_kernel(ids, u_quality, u_luck, drivers.quality, float(conf.bad_luck_low_rating),
                              drivers.rating_mean, drivers.rating_count, drivers.low_ratings,
                              drivers.unfair_low_ratings, _window(conf.deactivation.window))


def _window(window):
    """The rolling-rating window as the kernel needs it (int64 when whole, as NumPy keeps it integer)."""
    return int(window) if float(window).is_integer() else float(window)


@njit(cache=True)
def _rate_trips_kernel(ids, u_quality, u_luck, quality, bad_luck, rating_mean, rating_count, low_ratings,
                       unfair_low_ratings, window):
    n = ids.size
    at_fault = np.empty(n, np.bool_)
    unfair = np.empty(n, np.bool_)
    score = np.empty(n, np.float64)
    for t in range(n):
        d = ids[t]
        uq = u_quality[t]
        ul = u_luck[t]
        fault = uq >= quality[d]
        bad = (not fault) and (ul < bad_luck)
        if fault:
            s = 3.0 if ul < 0.5 else 2.0
        elif bad:
            s = 1.0 + math.floor(uq * 3)
        else:
            s = 5.0
        at_fault[t] = fault
        unfair[t] = bad
        score[t] = s
        # Rolling mean: each rating moves the mean 1/min(count, window) of the way,
        # computed in float64 and rounded to the float32 field.
        count = rating_count[d] + 1
        rating_count[d] = count
        weight = 1.0 / min(count, window)
        m = np.float64(rating_mean[d])
        rating_mean[d] = m + (s - m) * weight
        if s <= 3:
            low_ratings[d] += 1
        if bad:
            unfair_low_ratings[d] += 1
    return at_fault, unfair, score


def due_for_deactivation(drivers: Side, conf) -> np.ndarray:
    """Drivers whose rolling rating is below the threshold after enough ratings (ids)."""
    d = conf.deactivation
    return np.flatnonzero(drivers.alive & ~drivers.deactivated & (drivers.rating_count >= d.min_ratings)
                          & (drivers.rating_mean < d.min_rating))


def experience_weight(drivers: Side, ids: np.ndarray, conf) -> np.ndarray:
    """How far today's earnings move each worker's satisfaction, by hours online (a share in [0, 1]).

    1 - (1 - experience_learning_rate)^(online hours / hours_per_day_mean): a
    typical day moves it ``experience_learning_rate`` of the way, a one-hour
    shift with no trip far less than a full day with none.
    """
    return experience_weight_at(drivers.online_hours[ids], conf)


def experience_weight_at(online_hours: np.ndarray, conf) -> np.ndarray:
    """:func:`experience_weight` of a day of ``online_hours`` hours online."""
    hours = np.asarray(online_hours).astype(np.float64) / conf.hours_per_day_mean
    return -np.expm1(hours * np.log1p(-conf.experience_learning_rate))


def expected_online_hours(drivers: Side, ids: np.ndarray, satisfaction: np.ndarray, conf, neutral: float
                          ) -> np.ndarray:
    """Hours a day each driver ``ids`` is expected online here at ``satisfaction`` (one per id): hours x
    min(1, share x exp(k (s - neutral))), as :func:`shifts` draws them (their mean is exact)."""
    share = np.minimum(1.0, drivers.platform_share[ids] * experience_multiplier(satisfaction, neutral,
                                                                                conf.share_sensitivity))
    return drivers.hours[ids].astype(np.float64) * share


def earnings_level(drivers: Side, ids: np.ndarray, conf, neutral: float) -> np.ndarray:
    """Experience level in (0, 1) from today's earnings per online hour against the outside option.

    logistic(k (earnings per hour / outside option - 1) + logit(neutral)): exactly
    neutral when the platform pays as well as the outside option.
    """
    per_hour = drivers.earnings_today[ids] / np.maximum(drivers.online_hours[ids], 1e-6)
    ratio = per_hour / conf.outside_option_per_hour
    return 1.0 / (1.0 + np.exp(-conf.earnings_sensitivity * (ratio - 1.0) - np.log(neutral / (1 - neutral))))
