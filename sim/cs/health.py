"""Health scores: every agent's 0-100 health from observables, its band and vector, and the ranking by health.

Health is a weighted mix of signals in [0, 1] (recency, frequency, rating,
tickets, onboarding, tenure, survey answer; weights in ``cs.health.weights``),
recomputed every ``cs.health.every_days`` days by one compiled pass per side.
Band: red below ``red_below``, green from ``green_from``, yellow between.
Vector: negative, neutral or positive from the band and the trend (health
minus its exponentially weighted mean, points).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from agents import sellers as sellers_rules

BANDS = ("red", "yellow", "green")
VECTORS = ("negative", "neutral", "positive")

# ---------------------------------------------------------------------- compiled passes
# Bit-identical to the NumPy expressions they replace (tests/test_cs_speed_equivalence.py checks
# them against straightforward NumPy references): the dtypes of every intermediate follow NumPy's
# promotion rules of those expressions (float32 where NumPy computes in float32).

_BLOCK = 4096


@njit(cache=True, error_model="numpy")
def _activity_block(orders, orders_seen, activity_rate, every, activity_alpha):
    for j in range(orders.size):
        o = orders[j]
        # float32(o - seen) as NumPy computes it (the difference of two int32 is exact in float64)
        recent = np.float32(np.float64(o) - np.float64(orders_seen[j])) / every
        orders_seen[j] = o
        ar = activity_rate[j]
        activity_rate[j] = ar + (recent - ar) * activity_alpha


@njit(cache=True, error_model="numpy")
def _recency_frequency_block(fday, orders, activity_rate, activation_day, join_day, last_active_day, recency,
                             frequency, recency_scale):
    for j in range(orders.size):
        act = activation_day[j]
        jd = join_day[j]
        la = last_active_day[j]
        active_days = max(fday - np.float64(act if act >= 0 else jd) + 1.0, 1.0)   # whole days, exact
        idle = fday - np.float64(la if la >= 0 else jd)
        o = np.float64(orders[j])
        usual_gap = active_days / max(o, 1.0) if o > 0 else active_days
        recency[j] = 1.0 / (1.0 + idle / max(usual_gap, 1.0) / recency_scale)
        ratio = np.float64(activity_rate[j]) / max(o / active_days, 1e-9)
        frequency[j] = min(1.0, ratio) if o > 0 else 0.5


@njit(cache=True, error_model="numpy")
def _other_signals_block(fday, activation_day, join_day, open_tickets, bad_contact_day, survey_answer, tickets,
                         onboarding, tenure, survey, ticket_memory, question_days, tenure_full, neutral):
    for j in range(join_day.size):
        bad = 0.5 if fday - np.float64(bad_contact_day[j]) <= ticket_memory else 0.0
        tickets[j] = min(max(1.0 - 0.5 * np.float64(open_tickets[j]) - bad, 0.0), 1.0)
        waited = fday - np.float64(join_day[j])
        waiting = min(max(1 - waited / question_days, 0.0), 1.0)
        onboarding[j] = 1.0 if activation_day[j] >= 0 else waiting
        tenure[j] = min(1.0, waited / tenure_full)
        sa = survey_answer[j]
        answer = np.float64(sa) / 10.0
        survey[j] = answer if sa >= 0 else neutral


@njit(cache=True, error_model="numpy")
def _weighted_block(recency, frequency, rating_term, tickets, onboarding, tenure, survey, out, weights, weight_sum,
                    has_rating):
    # in the order of the signals; a zero weight adds +0.0 to a sum >= 0, the same as leaving out its
    # (finite, non-negative) signal
    w0, w1, w3, w4, w5, w6 = weights[0], weights[1], weights[3], weights[4], weights[5], weights[6]
    if has_rating:
        for j in range(out.size):
            acc = w0 * recency[j] + w1 * frequency[j] + np.float64(rating_term[j]) + w3 * tickets[j]
            out[j] = 100.0 * (acc + w4 * onboarding[j] + w5 * tenure[j] + w6 * survey[j]) / weight_sum
    else:
        for j in range(out.size):
            acc = w0 * recency[j] + w1 * frequency[j] + w3 * tickets[j] + w4 * onboarding[j]
            out[j] = 100.0 * (acc + w5 * tenure[j] + w6 * survey[j]) / weight_sum


@njit(cache=True, error_model="numpy")
def _store_health_block(h64, health, health_mean, trend_alpha):
    for j in range(h64.size):
        h = h64[j]
        health[j] = np.float32(h)
        hm = np.float64(health_mean[j])
        health_mean[j] = np.float32(h if np.isnan(hm) else hm + (h - hm) * trend_alpha)


@njit(cache=True, error_model="numpy")
def _band_vector_block(health, health_mean, band, vector, red_below, green_from, trend_threshold):
    # float32 comparisons, as NumPy compares a float32 array with a Python float
    neg_threshold = -trend_threshold
    zero = np.float32(0.0)
    for j in range(health.size):
        h = health[j]
        trend = h - health_mean[j]
        b = 0 if h < red_below else (1 if h < green_from else 2)
        negative = (trend <= neg_threshold) | ((b == 0) & (trend <= zero))
        positive = (trend >= trend_threshold) | ((b == 2) & (trend >= zero))
        v = -1 if negative else (1 if positive else 0)
        scored = not np.isnan(h)
        band[j] = b if scored else -1
        vector[j] = v if scored else -2


@njit(cache=True)
def _count_block(alive, band, vector, counts):
    c0 = c1 = c2 = c3 = c4 = c5 = 0
    for j in range(alive.size):
        a = alive[j]
        b = band[j]
        v = vector[j]
        c0 += a & (b == 0)
        c1 += a & (b == 1)
        c2 += a & (b == 2)
        c3 += a & (v == -1)
        c4 += a & (v == 0)
        c5 += a & (v == 1)
    counts[0] += c0
    counts[1] += c1
    counts[2] += c2
    counts[3] += c3
    counts[4] += c4
    counts[5] += c5


@njit(cache=True)
def _compact_block(alive, values, out, m):
    for j in range(alive.size):
        if alive[j]:
            out[m] = values[j]
            m += 1
    return m


@njit(cache=True, error_model="numpy")
def _health_pass(day, orders, orders_seen, activity_rate, activation_day, join_day, last_active_day,
                 rating_term, open_tickets, bad_contact_day, survey_answer, alive, health, health_mean, band,
                 vector, alive_health, counts, every, activity_alpha, weights, weight_sum, recency_scale,
                 ticket_memory, question_days, tenure_full, neutral, trend_alpha, red_below, green_from,
                 trend_threshold):
    """One side's health update (Health.compute; the NumPy formulas are in tests/test_cs_speed_equivalence.py).

    Updates orders_seen, activity_rate, health, health_mean, band and vector of every agent; counts
    alive agents per band (counts[0:3]) and vector (counts[3:6], negative first) and copies alive
    agents' health to ``alive_health`` (returns how many). ``rating_term`` is the weighted rating signal
    as NumPy computes it (weight * Health.rating_score; ignored when the weight is 0). float32
    arguments: every, activity_alpha, red_below, green_from, trend_threshold.

    It goes through the side in blocks of a few thousand agents, each step a simple loop over
    contiguous slices that the compiler vectorises, with the intermediate signals in small buffers.
    """
    n = health.size
    fday = np.float64(day)
    has_rating = weights[2] != 0.0
    rec = np.empty(_BLOCK)
    fre = np.empty(_BLOCK)
    tik = np.empty(_BLOCK)
    onb = np.empty(_BLOCK)
    ten = np.empty(_BLOCK)
    sur = np.empty(_BLOCK)
    h64 = np.empty(_BLOCK)
    m = 0
    for lo in range(0, n, _BLOCK):
        hi = min(lo + _BLOCK, n)
        k = hi - lo
        _activity_block(orders[lo:hi], orders_seen[lo:hi], activity_rate[lo:hi], every, activity_alpha)
        _recency_frequency_block(fday, orders[lo:hi], activity_rate[lo:hi], activation_day[lo:hi], join_day[lo:hi],
                                 last_active_day[lo:hi], rec[:k], fre[:k], recency_scale)
        _other_signals_block(fday, activation_day[lo:hi], join_day[lo:hi], open_tickets[lo:hi],
                             bad_contact_day[lo:hi], survey_answer[lo:hi], tik[:k], onb[:k], ten[:k], sur[:k],
                             ticket_memory, question_days, tenure_full, neutral)
        _weighted_block(rec[:k], fre[:k], rating_term[lo:hi] if has_rating else rating_term, tik[:k], onb[:k],
                        ten[:k], sur[:k], h64[:k], weights, weight_sum, has_rating)
        _store_health_block(h64[:k], health[lo:hi], health_mean[lo:hi], trend_alpha)
        _band_vector_block(health[lo:hi], health_mean[lo:hi], band[lo:hi], vector[lo:hi], red_below, green_from,
                           trend_threshold)
        _count_block(alive[lo:hi], band[lo:hi], vector[lo:hi], counts)
        m = _compact_block(alive[lo:hi], health[lo:hi], alive_health, m)
    return m


@njit(cache=True)
def _rank_by_health(health):
    """Ids with a health score (not NaN), lowest first, ties by id: a stable LSD radix sort on the bits."""
    n = health.size
    bits = health.view(np.uint32)
    keys = np.empty(n, np.uint32)
    ids = np.empty(n, np.int64)
    m = 0
    for i in range(n):
        b = bits[i]
        if (b & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000):
            continue                      # NaN: not scored
        if b == np.uint32(0x80000000):
            b = np.uint32(0)              # -0.0 ranks as 0.0
        if b & np.uint32(0x80000000):
            keys[m] = ~b
        else:
            keys[m] = b | np.uint32(0x80000000)
        ids[m] = i
        m += 1
    keys = keys[:m].copy()
    ids = ids[:m].copy()
    keys2 = np.empty(m, np.uint32)
    ids2 = np.empty(m, np.int64)
    count = np.empty(2048, np.int64)
    for shift in (0, 11, 22):
        count[:] = 0
        for j in range(m):
            count[(keys[j] >> np.uint32(shift)) & np.uint32(2047)] += 1
        if count.max() == m:
            continue                      # every key has this digit: the pass changes nothing
        total = 0
        for d in range(2048):
            c = count[d]
            count[d] = total
            total += c
        for j in range(m):
            d = (keys[j] >> np.uint32(shift)) & np.uint32(2047)
            p = count[d]
            count[d] = p + 1
            keys2[p] = keys[j]
            ids2[p] = ids[j]
        keys, keys2 = keys2, keys
        ids, ids2 = ids2, ids
    return ids


class Health:
    """Health of every side's agents, from observables only: scores, bands, vectors and their daily counts.

    Reads the sides of ``model`` and writes the health fields of the CS
    ``state`` (sim/cs/state.py) of each side; ``conf`` is ``cfg.cs``.
    """

    def __init__(self, model, conf, state: dict):
        self._model = model
        self.conf = conf
        self.state = state
        self.counts: dict = {}                        # the daily columns of the last computation
        self._ranks: dict[str, np.ndarray] = {}      # side -> ids by health, for the last computation

    def rating(self, name: str) -> np.ndarray:
        """The mean rating shown on the platform, 1-5 (drivers rolling, sellers shrunk); NaN for buyers."""
        s = self._model.sides[name]
        if name == "drivers":
            return np.where(s.rating_count > 0, s.rating_mean, np.nan).astype(np.float32)
        if name == "sellers":
            c = self._model.market.sellers.choice
            return sellers_rules.rating(s, c.rating_prior_mean, c.rating_prior_count)
        return np.full(s.n, np.nan, dtype=np.float32)

    def rating_score(self, name: str) -> np.ndarray:
        """The rating health signal in [0, 1] (1 where there is no rating)."""
        h = self.conf.health
        rating = self.rating(name)
        return np.where(np.isnan(rating), 1.0, np.clip((rating - h.rating_floor) / (5 - h.rating_floor), 0, 1))

    def band(self, health: np.ndarray) -> np.ndarray:
        """Health band of scores ``health`` (0-100): 0 red, 1 yellow, 2 green, -1 not scored (NaN)."""
        h = self.conf.health
        band = np.where(health < h.red_below, 0, np.where(health < h.green_from, 1, 2))
        return np.where(np.isnan(health), -1, band).astype(np.int8)   # -1: not scored yet (joined since)

    def weights(self, name: str) -> list[float]:
        """The signals' weights for side ``name``, in the kernels' order (buyers have no rating)."""
        w = self.conf.health.weights
        return [w.recency, w.frequency, 0.0 if name == "buyers" else w.rating, w.tickets, w.onboarding,
                w.tenure, w.survey]

    def compute(self, day: int) -> None:
        """Health 0-100 of every agent of every side from observables only (one compiled call per side).

        The activity rate is updated first from the orders since the last
        computation. Also stores each agent's band and vector and counts
        alive agents per band and vector (:attr:`counts`, daily columns).
        """
        h = self.conf.health
        every = h.every_days
        neutral = self._model.market.satisfaction.neutral
        counts_out = {}
        self._ranks = {}
        for name, s in self._model.sides.items():
            st = self.state[name]
            weights = self.weights(name)
            rating_term = (np.ascontiguousarray(weights[2] * self.rating_score(name)) if weights[2]
                           else np.empty(0))
            counts = np.zeros(6, np.int64)
            alive_health = np.empty(s.n, np.float32)
            k = _health_pass(
                int(day), s.orders, st.orders_seen, st.activity_rate, s.activation_day, s.join_day,
                s.last_active_day, rating_term, st.open_tickets,
                st.bad_contact_day, s.survey_answer, s.alive, st.health, st.health_mean, st.band, st.vector,
                alive_health, counts, np.float32(every), np.float32(min(1.0, every / h.frequency_window_days)),
                np.array(weights, np.float64), float(sum(weights)), float(h.recency_scale),
                float(h.ticket_memory_days),
                float(max(self.conf.onboarding_question_days, 1)), float(h.tenure_full_days), float(neutral),
                float(min(1.0, h.every_days / h.trend_days)), np.float32(h.red_below), np.float32(h.green_from),
                np.float32(h.trend_threshold))
            for code, b in enumerate(BANDS):
                counts_out[f"{name}_health_{b}"] = int(counts[code])
            for code, v in enumerate(VECTORS):
                counts_out[f"{name}_vector_{v}"] = int(counts[3 + code])
            counts_out[f"{name}_health_mean"] = float(alive_health[:k].mean()) if k else math.nan
        self.counts = counts_out

    def rank(self, name: str) -> np.ndarray:
        """Scored ids of a side by health, lowest first (ties by id); cached until health is recomputed."""
        rank = self._ranks.get(name)
        if rank is None:
            rank = self._ranks[name] = np.array(_rank_by_health(self.state[name].health))
        rank.flags.writeable = False    # numpy-owned and read-only (also after a deepcopy), so views stay read-only
        return rank
