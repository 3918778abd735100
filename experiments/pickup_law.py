"""Steady-state pickup distance against the torus law, for each repositioning rule.

The nested baseline of dispatch (docs/model.md, matching): the distance from a
request to the nearest of n idle drivers placed uniformly on the unit torus
has mean E[D](n) = Gamma(n + 1) / (2 Gamma(n + 1.5)), about 0.5 / sqrt(n)
(:func:`sim.spatial.expected_nearest_distance`). Dispatch itself breaks the
uniform layout: each trip takes the driver nearest its pickup (more often an
isolated one) and drops it somewhere else, so unless idle drivers move, the
idle layout clusters and pickups grow longer than the law.

This experiment runs the model's own compiled dispatch
(:func:`sim.spatial.dispatch_day`) on a synthetic city, with the city, trip
handling and repositioning speed of the rides market's config, for some weeks:

- ``drivers`` drivers, online around the clock, start at uniform positions;
- ``requests_per_day`` requests at uniform times, dropped off at uniform
  points; pickups at uniform points (``homes=None``: uniform demand) or at
  ``homes`` fixed rider homes (each request from a home drawn uniformly).

The *pickup ratio* is, over the matched requests after the burn-in, the sum of
observed pickup distances over the sum of E[D](n) at each request's number n
of idle drivers (the law at the supply it actually faced). 1 means the idle
layout is as good as uniform. With few homes the law is only a yardstick:
drivers who gather at the homes beat it.

    python -m experiments.pickup_law     # the table of docs/model.md, with each ratio's standard error

Random inputs come from :class:`sim.streams.Streams` keyed by the replicate's
seed, so every figure is reproducible.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np

from sim.matching import reposition_step
from sim.spatial import NO_PICKUP, REPOSITION_RULES, dispatch_day, expected_nearest_distance
from sim.streams import ATTRIBUTE_DAY, Streams, declare_streams

declare_streams(__name__, (f"pickup_law.{what}" for what in (
    "driver_x", "driver_y", "drop_x", "drop_y", "home", "home_x", "home_y", "pickup_x", "pickup_y", "time")))


@dataclass(frozen=True)
class Scenario:
    """The synthetic city of the pickup experiment (defaults: the test's and the docs table's)."""

    drivers: int = 500              # online around the clock
    requests_per_day: int = 2400    # 50 per half-hour round, about a tenth of the idle drivers
    homes: int | None = None        # None: uniform pickups; else pickups at this many rider homes
    days: int = 28                  # four weeks of trips
    burn_in_days: int = 14          # the ratio is measured on the days after these


@functools.lru_cache(maxsize=8)
def rides_city(overrides: tuple[str, ...] = ()):
    """(city, drivers) sections of the rides market's config, with ``overrides`` (composed once)."""
    from experiments.config import load_config

    market = load_config(["market=rides", *overrides]).market
    return market.city, market.drivers


def pickup_ratio(rule: str, seed: int, scenario: Scenario = Scenario(), overrides: list[str] | None = None,
                 km_per_hour: float | None = None) -> float:
    """Steady-state pickup ratio (observed / torus law, see module doc) of one replicate.

    ``rule`` is one of :data:`sim.spatial.REPOSITION_RULES`; ``km_per_hour``
    (idle relocation speed, km per idle hour) defaults to the config's
    ``drivers.reposition.km_per_hour``. Dimensionless.
    """
    if rule not in REPOSITION_RULES:
        raise ValueError(f"rule must be one of {REPOSITION_RULES}, not {rule!r}")
    city, conf_drivers = rides_city(tuple(overrides or ()))
    reposition = conf_drivers.reposition
    if km_per_hour is not None:
        reposition = dataclasses.replace(reposition, km_per_hour=km_per_hour)
    rounds = city.rounds_per_day
    step = reposition_step(reposition, city)
    max_distance = city.max_pickup_minutes / 60.0 * city.speed_kmh / city.size_km
    s = Streams(seed)
    n = scenario.drivers
    driver_ids = np.arange(n, dtype=np.int64)
    x = s.uniform("pickup_law.driver_x", ATTRIBUTE_DAY, driver_ids)
    y = s.uniform("pickup_law.driver_y", ATTRIBUTE_DAY, driver_ids)
    busy_until = np.zeros(n)
    last_x, last_y = np.full(n, NO_PICKUP), np.full(n, NO_PICKUP)
    always_on = (driver_ids, np.zeros(n, np.int64), np.full(n, rounds, np.int64))
    if scenario.homes:
        home_ids = np.arange(scenario.homes, dtype=np.int64)
        home_x = s.uniform("pickup_law.home_x", ATTRIBUTE_DAY, home_ids)
        home_y = s.uniform("pickup_law.home_y", ATTRIBUTE_DAY, home_ids)
    request_ids = np.arange(scenario.requests_per_day, dtype=np.int64)
    observed = expected = 0.0
    for day in range(scenario.days):
        time = np.sort(s.uniform("pickup_law.time", day, request_ids))
        request_round = np.minimum((time * rounds).astype(np.int64), rounds - 1)
        bounds = np.searchsorted(request_round, np.arange(rounds + 1), side="left")
        if scenario.homes:
            home = np.minimum((s.uniform("pickup_law.home", day, request_ids) * scenario.homes).astype(np.int64),
                              scenario.homes - 1)
            px, py = home_x[home], home_y[home]
        else:
            px, py = s.uniform("pickup_law.pickup_x", day, request_ids), s.uniform("pickup_law.pickup_y", day,
                                                                                     request_ids)
        qx, qy = s.uniform("pickup_law.drop_x", day, request_ids), s.uniform("pickup_law.drop_y", day, request_ids)
        result = dispatch_day(bounds, px, py, qx, qy, *always_on, x, y, busy_until, day, rounds, max_distance,
                              city.size_km, city.speed_kmh, conf_drivers.handling_minutes, reposition_rule=rule,
                              reposition_step=step, reposition_key=s.day_key("drivers.reposition", day),
                              last_pickup_x=last_x, last_pickup_y=last_y)
        if day >= scenario.burn_in_days:
            matched = result.driver >= 0
            observed += float(result.pickup[matched].sum())
            expected += float(expected_nearest_distance(result.idle_drivers[matched]).sum())
    return observed / expected


def ratio_with_error(rule: str, seeds, scenario: Scenario = Scenario(), **kwargs) -> tuple[float, float]:
    """Mean pickup ratio over the replicates ``seeds`` and its standard error (sd / sqrt(replicates))."""
    ratios = np.array([pickup_ratio(rule, seed, scenario, **kwargs) for seed in seeds])
    return float(ratios.mean()), float(ratios.std(ddof=1) / math.sqrt(ratios.size))


FEW_HOMES = 25
"""Rider homes of the "few homes" scenario: a handful of hot spots in the city."""

TABLE_SEEDS = range(4)
"""Replicates of the docs table (seeds 0-3)."""


def table_rows(seeds=TABLE_SEEDS, few_homes: int = FEW_HOMES) -> list[tuple[str, float, float, float, float]]:
    """Per rule: (rule, ratio uniform, its SE, ratio with ``few_homes`` homes, its SE)."""
    rows = []
    for rule in REPOSITION_RULES:
        uniform = ratio_with_error(rule, seeds)
        homes = ratio_with_error(rule, seeds, Scenario(homes=few_homes))
        rows.append((rule, *uniform, *homes))
    return rows


if __name__ == "__main__":
    for rule, u, u_se, h, h_se in table_rows():
        print(f"{rule:14s} uniform {u:.3f} ± {u_se:.3f}   few homes {h:.3f} ± {h_se:.3f}")
