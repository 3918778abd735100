"""Compiled loops for the daily passes NumPy cannot fuse.

Why: at a million agents, a day built from NumPy expressions makes several
full passes over each array and allocates a temporary per operator
(``alive & (cum >= threshold)`` is three passes and two temporaries). One
numba loop does the same in a single pass with no temporaries, and a
scatter-add over repeated ids costs O(events) without the sort that
``np.unique`` needs. Every function here is a pure function of its inputs
(no random numbers: draws come from sim/streams.py, passed in as arrays).
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def scatter_add(target, ids, amounts):
    """target[ids[j]] += amounts[j] for every j, in order (ids may repeat)."""
    for j in range(ids.size):
        target[ids[j]] += amounts[j]


@njit(cache=True)
def scatter_add_scalar(target, ids, amount):
    """target[ids[j]] += amount for every j (ids may repeat): counts, when amount is 1."""
    for j in range(ids.size):
        target[ids[j]] += amount


@njit(cache=True)
def book_money(revenue, margin, margin_discounted, ids, revenue_each, margin_each, discount_factor):
    """Add revenue and margin (currency) per event to agents ``ids`` (may repeat).

    The margin is also added times ``discount_factor`` (today's discount to
    day 0, the same for every event of the day) to ``margin_discounted``.
    """
    for j in range(ids.size):
        i = ids[j]
        revenue[i] += revenue_each[j]
        margin[i] += margin_each[j]
        margin_discounted[i] += margin_each[j] * discount_factor


@njit(cache=True, fastmath=True)   # fastmath: the sum may be vectorised (same machine, same result)
def census(alive, activation_day, satisfaction, promoter_level, neutral, latent):
    """One pass over a side: (alive, activated and alive, sum of satisfaction of the alive, promoters).

    Promoters are alive agents whose behaviour satisfaction is at least
    ``promoter_level``; with ``latent`` False behaviour sees neutral everywhere.
    Branch-free (satisfaction is noise to the branch predictor), so it vectorises.
    """
    n_alive = 0
    n_activated = 0
    promoters = 0
    total = 0.0
    for i in range(alive.size):
        a = alive[i]
        n_alive += a
        n_activated += a & (activation_day[i] >= 0)
        total += a * satisfaction[i]
        promoters += a & (satisfaction[i] >= promoter_level)
    if not latent:
        promoters = n_alive if neutral >= promoter_level else 0
    return n_alive, n_activated, total, promoters


@njit(cache=True)
def accumulate_and_churn(alive, activation_day, cum_hazard, churn_threshold, base_hazard, multiplier, churn_day, day,
                         unactivated_hazard, activated_churn, start):
    """Add today's hazard (per day) to living agents from index ``start`` on; churn those past their threshold.

    Hazard: ``unactivated_hazard`` before first value; after it, with
    ``activated_churn``, base_hazard * multiplier (the experience multiplier,
    one per agent), else 0. Marks churners (alive False, churn_day = day).
    Returns (their ids, the lowest index still accruing hazard): with
    ``activated_churn`` False nothing below it needs a visit tomorrow.
    """
    out = np.empty(16, np.int64)
    count = 0
    lowest = alive.size
    for i in range(start, alive.size):
        if not alive[i]:
            continue
        if activation_day[i] < 0:
            hazard = unactivated_hazard
            lowest = min(lowest, i)
        elif activated_churn:
            hazard = base_hazard[i] * multiplier[i]
        else:
            continue
        cum_hazard[i] += np.float32(hazard)
        if cum_hazard[i] >= churn_threshold[i]:
            alive[i] = False
            churn_day[i] = day
            if count == out.size:
                bigger = np.empty(2 * out.size, np.int64)
                bigger[:count] = out
                out = bigger
            out[count] = i
            count += 1
    return out[:count], lowest


@njit(cache=True)
def due_today(activation_due, alive, day):
    """Ids of living agents whose first value is due on ``day``."""
    out = np.empty(alive.size, np.int64)   # untouched pages cost nothing: only the hits are written
    k = 0
    for i in range(alive.size):
        out[k] = i
        k += (activation_due[i] == day) & alive[i]
    return out[:k].copy()


@njit(cache=True)
def due_before(next_time, alive, end):
    """Ids of living agents whose next event time (days) is before ``end``."""
    out = np.empty(alive.size, np.int64)
    k = 0
    for i in range(alive.size):
        out[k] = i
        k += (next_time[i] < end) & alive[i]
    return out[:k].copy()


@njit(cache=True)
def count_equal(values, value):
    """How many entries equal ``value`` (one branch-free pass, no temporary)."""
    count = 0
    for i in range(values.size):
        count += values[i] == value
    return count


@njit(cache=True)
def move_toward(values, ids, level, weight):
    """values[i] += weight (level - values[i]) for each event in turn, clipped to [0, 1] (ids may repeat)."""
    for j in range(ids.size):
        i = ids[j]
        v = values[i] + weight[j] * (level[j] - values[i])
        values[i] = min(max(v, 0.0), 1.0)
