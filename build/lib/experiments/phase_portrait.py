"""The phase portrait of a two-sided market: where does it grow, and where does it unravel?

A grid of starting sizes (buyers x one supply side) is simulated with the
engine for a fixed number of days, every run with the same seed and the same
rules, and each run's path through the (supply, buyers) plane is kept. A run
*grows* when the geometric mean of its sides' sizes relative to their start
is above 1 at the end. The cells that grow mark the region above the tipping
point; the boundary between the two regions is the critical mass.

The supply side is ``drivers`` where the market has them and no sellers
(rides), else ``sellers`` (goods; delivery, where couriers then scale with
diners so the ratio the controls set is kept). Results are cached per
(configuration, grid) in this process: the page computes a portrait once,
on request, and every student who asks for the same one gets it at once.
"""
from __future__ import annotations

import copy
import math
import threading
from dataclasses import dataclass

import numpy as np

from sim import Marketplace

# Grid and horizon of the page's portrait (runs = GRID_POINTS ** 2).
GRID_POINTS = 5
PORTRAIT_DAYS = 180
# The grid spans this range of multiples of the reference start on each side.
GRID_LOW, GRID_HIGH = 0.1, 1.5
# Days between two stored points of a path (the chart needs the shape, not every day).
PATH_EVERY_DAYS = 5


def supply_side(sides) -> str:
    """The side plotted against buyers: drivers in rides, sellers where the market has sellers."""
    return "sellers" if "sellers" in sides else "drivers"


@dataclass(frozen=True)
class PortraitRun:
    """One start of the grid and where it went (sizes in agents, every PATH_EVERY_DAYS days)."""

    buyers_start: int
    supply_start: int
    buyers: tuple[int, ...]
    supply: tuple[int, ...]
    growth: float   # geometric mean over the sides of (size at the end / size at the start)

    @property
    def grows(self) -> bool:
        return self.growth > 1.0


@dataclass(frozen=True)
class Portrait:
    """All runs of a grid: ``buyer_levels`` x ``supply_levels`` starts, ``days`` each."""

    supply: str
    buyer_levels: tuple[int, ...]
    supply_levels: tuple[int, ...]
    days: int
    runs: tuple[PortraitRun, ...]

    def grows_from(self, buyers: int, supply: int) -> bool | None:
        """Whether the grid cell holding this start grew (None outside the grid)."""
        bi = _cell(self.buyer_levels, buyers)
        si = _cell(self.supply_levels, supply)
        if bi is None or si is None:
            return None
        return self.runs[bi * len(self.supply_levels) + si].grows


def _cell(levels: tuple[int, ...], value: float) -> int | None:
    """Index of the grid level nearest ``value`` on a log scale (None if outside the cells)."""
    logs = np.log(levels)
    half = (logs[1] - logs[0]) / 2 if len(levels) > 1 else 1.0
    x = math.log(max(value, 1e-9))
    if x < logs[0] - half or x > logs[-1] + half:
        return None
    return int(np.argmin(np.abs(logs - x)))


def grid_levels(reference: int, points: int = GRID_POINTS) -> tuple[int, ...]:
    """Geometrically spaced starting sizes from GRID_LOW to GRID_HIGH times ``reference`` (agents, >= 1)."""
    levels = np.geomspace(GRID_LOW * reference, GRID_HIGH * reference, points)
    return tuple(sorted({max(1, int(round(x))) for x in levels}))


def compute_portrait(cfg, buyer_levels: tuple[int, ...], supply_levels: tuple[int, ...],
                     days: int = PORTRAIT_DAYS, progress=None) -> Portrait:
    """Simulate every start of the grid from ``cfg`` (its seed, rules and policy) for ``days`` days.

    Sides other than buyers and the supply side keep their ratio to buyers
    from ``cfg``. ``progress(done, total)`` is called after each run.
    """
    sides = list(cfg.market.sides)
    supply = supply_side(sides)
    total = len(buyer_levels) * len(supply_levels)
    runs = []
    for buyers in buyer_levels:
        for n_supply in supply_levels:
            run_cfg = copy.deepcopy(cfg)
            run_cfg.days = int(days)
            start = {"buyers": int(buyers), supply: int(n_supply)}
            for side in sides:
                if side not in start:   # e.g. couriers in delivery: same ratio to diners as in cfg
                    ratio = getattr(cfg.population, side) / cfg.population.buyers
                    start[side] = max(1, int(round(ratio * buyers)))
            for side, n in start.items():
                setattr(run_cfg.population, side, n)
            runs.append(_simulate(run_cfg, start, supply))
            if progress:
                progress(len(runs), total)
    return Portrait(supply=supply, buyer_levels=tuple(buyer_levels), supply_levels=tuple(supply_levels),
                    days=int(days), runs=tuple(runs))


def _simulate(cfg, start: dict[str, int], supply: str) -> PortraitRun:
    model = Marketplace(cfg)
    buyers, supplies = [start["buyers"]], [start[supply]]
    while model.day < cfg.days:
        model.step()
        if model.day % PATH_EVERY_DAYS == 0 or model.day == cfg.days:
            row = model.ledger.rows[-1]
            buyers.append(int(row["buyers_active"]))
            supplies.append(int(row[f"{supply}_active"]))
    last = model.ledger.rows[-1]
    logs = [math.log(max(last[f"{side}_active"], 0.5) / n) for side, n in start.items()]
    return PortraitRun(buyers_start=start["buyers"], supply_start=start[supply], buyers=tuple(buyers),
                       supply=tuple(supplies), growth=math.exp(sum(logs) / len(logs)))


_CACHE: dict[tuple, Portrait] = {}
_CACHE_LOCK = threading.Lock()


def cache_key(overrides, buyer_levels, supply_levels, days: int = PORTRAIT_DAYS) -> tuple:
    """What identifies a portrait: the overrides that built its configuration, its grid and its horizon."""
    return (tuple(overrides), tuple(buyer_levels), tuple(supply_levels), int(days))


def cached_portrait(key: tuple) -> Portrait | None:
    """The portrait computed earlier in this process for ``key``, if any."""
    return _CACHE.get(key)


def portrait_for(key: tuple, cfg, progress=None) -> Portrait:
    """:func:`compute_portrait` of ``cfg`` on the grid of ``key``, computed once per process and key.

    Two sessions asking for the same portrait at once compute it once: the
    second waits for the first.
    """
    with _CACHE_LOCK:
        if key not in _CACHE:
            _, buyer_levels, supply_levels, days = key
            _CACHE[key] = compute_portrait(cfg, buyer_levels, supply_levels, days, progress)
        return _CACHE[key]
