"""Matching demand to supply: buyers choose sellers; requests find drivers.

Catalogue choice (goods, delivery): each buyer picks one listed seller with
probability proportional to the seller's choice weight (rating, reviews,
price, segment, premium), by inverse-CDF sampling of the buyer's own uniform:
one cumulative sum per day and a bucket index into it, so each order's
seller is found in O(1) expected (one compiled call for the day's orders).

Dispatch (rides, delivery): the day has ``rounds_per_day`` matching rounds; in
each, the round's requests (in time order) take the nearest idle online
driver within the maximum pickup distance (greedy, on the unit torus,
:func:`sim.spatial.greedy_match`). No driver within reach: the request fails.
Between rounds idle drivers reposition (stay, random walk or toward demand).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from agents import drivers as drivers_rules
from agents import sellers as sellers_rules
from agents.base import Side
from sim.spatial import dispatch_day
from sim.streams import Streams

NO_MATCH = -1


def choose_sellers(sellers: Side, conf, buyer_ids: np.ndarray, purchase_index: np.ndarray, day: int,
                   streams: Streams) -> np.ndarray:
    """The seller each order goes to (NO_MATCH where no seller is listed).

    Order i goes to the first listed seller (ids ascending) whose cumulative
    choice weight (float32 running sum, as ``np.cumsum``) exceeds u_i times the
    total, u_i the buyer's ``buyers.seller_choice`` uniform for that purchase:
    ``searchsorted(cumsum(w), u * total, side="right")``, done in one compiled
    call that finds each order's seller in a bucket index of the cumulative
    sum (O(listed sellers + orders), no random memory walk of a binary search
    per order). Exactly the sellers NumPy's searchsorted gives.
    """
    listed = np.flatnonzero(sellers.alive & (sellers.activation_day >= 0))
    if listed.size == 0 or buyer_ids.size == 0:
        return np.full(buyer_ids.size, NO_MATCH, dtype=np.int64)
    weights = sellers_rules.choice_weights(sellers, listed, conf)
    u = streams.uniform("buyers.seller_choice", day, buyer_ids, sub=purchase_index)
    return pick_by_cumulative_weight(weights, u, listed)


def pick_by_cumulative_weight(weights: np.ndarray, u: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``items[min(searchsorted(cumsum(weights), u * cumsum(weights)[-1], "right"), n - 1)]``.

    ``weights`` (float32 or float64, not empty) are accumulated in their own
    dtype in order, as ``np.cumsum`` does; ``u`` are uniforms in (0, 1) and
    the comparison is in float64. Falls back to NumPy itself when the running
    sum is not finite or not non-decreasing (negative weights), where
    searchsorted's answer has no inverse-CDF meaning to reproduce.
    """
    weights = np.ascontiguousarray(weights)
    u = np.ascontiguousarray(u, dtype=np.float64)
    items = np.asarray(items)
    if weights.dtype in (np.float32, np.float64) and weights.size:
        pick, ok = _pick_kernel(weights, u)
        if ok:
            return items[pick]
    cumulative = np.cumsum(weights)
    pick = np.searchsorted(cumulative, u * cumulative[-1], side="right")
    return items[np.minimum(pick, items.size - 1)]


@njit(cache=True)
def _pick_kernel(weights, u):
    """Inverse-CDF picks; returns (index of each pick, whether the fast path applied).

    cumulative[i] = cumulative[i - 1] + weights[i], in the weights' dtype (as
    np.cumsum). The value range is cut into K = n buckets at edges
    e_b = b (total / K) for 0 < b < K (e_0 = -inf, e_K = inf), and first[b]
    counts the cumulative values <= e_b (each value is put in the first
    bucket whose edge reaches it: a counting pass, no search). A key
    v = u total lies in the bucket b with e_b <= v < e_(b+1) (from int(u K),
    checked against the edges, recomputed the same way, so rounding cannot
    misplace it), so its answer, the number of cumulative values <= v
    (compared in float64, as searchsorted does), is first[b] plus a short
    forward scan. The buckets are looked up for all keys first, then the
    scans done, so the cache misses of different keys overlap.
    """
    n = weights.size
    cumulative = np.empty(n, weights.dtype)
    pick = np.empty(u.size, np.int64)
    acc = weights[0]
    cumulative[0] = acc
    ok = acc >= 0.0
    for i in range(1, n):
        w = weights[i]
        ok &= w >= 0.0
        acc = acc + w
        cumulative[i] = acc
    total = np.float64(acc)
    n_buckets = n
    step = total / n_buckets
    if not (ok and math.isfinite(total) and step > 0.0 and n < 2**31 - 1):
        return pick, False   # negative or NaN weights, an infinite or zero total
    count = np.zeros(n_buckets + 1, np.int32)
    for i in range(n):
        c = np.float64(cumulative[i])
        b = min(max(int(c / step), 1), n_buckets)
        while b < n_buckets and b * step < c:
            b += 1
        while b > 1 and (b - 1) * step >= c:
            b -= 1
        count[b] += 1   # b: the first bucket b >= 1 with e_b >= c
    first = np.empty(n_buckets + 1, np.int32)
    first[0] = 0
    running = 0
    for b in range(1, n_buckets):
        running += count[b]
        first[b] = running
    first[n_buckets] = n
    for q in range(u.size):
        v = u[q] * total
        x = u[q] * n_buckets
        b = int(x) if 0.0 <= x < n_buckets else (0 if x < 0.0 else n_buckets - 1)
        while b > 0 and b * step > v:
            b -= 1
        while b < n_buckets - 1 and (b + 1) * step <= v:
            b += 1
        pick[q] = first[b]
    for q in range(u.size):
        v = u[q] * total
        if v != v:   # NaN sorts last in searchsorted
            pick[q] = n - 1
            continue
        k = pick[q]
        while k < n and cumulative[k] <= v:
            k += 1
        pick[q] = k if k < n else n - 1
    return pick, True


def reposition_step(reposition, city) -> float:
    """How far an idle driver repositions in one matching round, city units.

    ``reposition.km_per_hour`` (km per idle hour) over a round of 24 /
    ``city.rounds_per_day`` hours, in a city of side ``city.size_km`` km.
    """
    return reposition.km_per_hour * (24.0 / city.rounds_per_day) / city.size_km


@dataclass
class Dispatch:
    """Outcome of today's dispatch, one entry per request."""

    driver: np.ndarray          # driver id, NO_MATCH if none within reach
    pickup_km: np.ndarray       # driver to pickup, km (inf if unmatched)
    trip_km: np.ndarray         # pickup to drop-off, km
    online_hours: float         # total driver hours online today


def dispatch(drivers: Side, conf_drivers, city, day: int, request_time: np.ndarray,
             pickup_x: np.ndarray, pickup_y: np.ndarray, drop_x: np.ndarray, drop_y: np.ndarray,
             behaviour_satisfaction: np.ndarray, neutral: float, streams: Streams) -> Dispatch:
    """Match time-ordered requests to drivers round by round; move and occupy matched drivers.

    A matched driver is busy for the pickup and the trip at ``city.speed_kmh``
    plus ``handling_minutes``, and ends the trip at the drop-off point. Idle
    online drivers reposition after each round under ``conf_drivers.reposition``
    (``rule``, by :func:`reposition_step` per round; toward_demand heads for
    the last pickup point of a random driver of the fleet).
    Also sets each working driver's ``online_hours`` for today.
    """
    rounds_per_day = city.rounds_per_day
    ids, start, length = drivers_rules.shifts(drivers, day, rounds_per_day, conf_drivers,
                                              behaviour_satisfaction, neutral, streams)
    drivers.online_hours[:] = 0.0
    drivers.online_hours[ids] = length * (24.0 / rounds_per_day)
    max_distance = city.max_pickup_minutes / 60.0 * city.speed_kmh / city.size_km
    request_round = np.minimum(((request_time - day) * rounds_per_day).astype(np.int64), rounds_per_day - 1)
    bounds = np.searchsorted(request_round, np.arange(rounds_per_day + 1), side="left")
    reposition = conf_drivers.reposition
    day_result = dispatch_day(bounds, pickup_x, pickup_y, drop_x, drop_y, ids, start, length, drivers.x, drivers.y,
                              drivers.busy_until, day, rounds_per_day, max_distance, city.size_km, city.speed_kmh,
                              conf_drivers.handling_minutes, reposition_rule=reposition.rule,
                              reposition_step=reposition_step(reposition, city),
                              reposition_key=streams.day_key("drivers.reposition", day),
                              last_pickup_x=drivers.last_pickup_x, last_pickup_y=drivers.last_pickup_y)
    return Dispatch(day_result.driver, day_result.pickup * city.size_km, day_result.trip_km,
                    float(drivers.online_hours.sum()))
