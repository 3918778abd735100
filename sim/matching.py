"""Matching demand to supply: buyers choose sellers; requests find drivers.

Catalogue choice (goods, delivery): each buyer picks one listed seller with
probability proportional to the seller's choice weight (rating, reviews,
price, segment, premium), by inverse-CDF sampling of the buyer's own uniform:
one cumulative sum per day and a binary search per order, no per-order loop.

Dispatch (rides, delivery): the day has ``rounds_per_day`` matching rounds; in
each, the round's requests (in time order) take the nearest idle online
driver within the maximum pickup distance (greedy, on the unit torus,
:func:`sim.spatial.greedy_match`). No driver within reach: the request fails.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents import drivers as drivers_rules
from agents import sellers as sellers_rules
from agents.base import Side
from sim.spatial import dispatch_day, torus_distance
from sim.streams import Streams

NO_MATCH = -1


def choose_sellers(sellers: Side, conf, buyer_ids: np.ndarray, purchase_index: np.ndarray, day: int,
                   streams: Streams) -> np.ndarray:
    """The seller each order goes to (NO_MATCH where no seller is listed)."""
    listed = np.flatnonzero(sellers.alive & (sellers.activation_day >= 0))
    if listed.size == 0 or buyer_ids.size == 0:
        return np.full(buyer_ids.size, NO_MATCH, dtype=np.int64)
    cumulative = np.cumsum(sellers_rules.choice_weights(sellers, listed, conf))
    u = streams.uniform("buyers.seller_choice", day, buyer_ids, sub=purchase_index)
    pick = np.searchsorted(cumulative, u * cumulative[-1], side="right")
    return listed[np.minimum(pick, listed.size - 1)]


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
    plus ``handling_minutes``, and ends the trip at the drop-off point.
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
    driver_of, pickup = dispatch_day(bounds, pickup_x, pickup_y, drop_x, drop_y, ids, start, length,
                                     drivers.x, drivers.y, drivers.busy_until, day, rounds_per_day, max_distance,
                                     city.size_km, city.speed_kmh, conf_drivers.handling_minutes)
    trip_km = torus_distance(pickup_x, pickup_y, drop_x, drop_y) * city.size_km
    return Dispatch(driver_of, pickup * city.size_km, trip_km, float(drivers.online_hours.sum()))
