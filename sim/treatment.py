"""Treatment assignment for a pilot: which units a CS policy may act on.

A pilot gives the policy to some units and not to others, in the same market.
:class:`Assignment` answers one question for the CS interface (sim/cs.py):
"is this agent treated today?". Everything else (demand, matching, the desk)
stays shared, which is where a pilot's bias comes from.

Designs (``DESIGNS``):

* ``buyers`` / ``sellers`` / ``drivers``: agents of that side, each treated
  with probability ``share``; agents of other sides are untreated.
* ``clusters``: zones of the city, a ``zones_per_axis`` x ``zones_per_axis``
  grid on the unit torus; exactly ``round(share * zones)`` zones are treated,
  and an agent belongs to the zone of its position when it joined (riders'
  and diners' homes, restaurants, drivers' starting points).
* ``switchback``: periods of ``period_days`` days; exactly ``round(share *
  periods)`` periods are treated, and in a treated period every agent is.
* ``two_sided``: two-sided randomisation (Johari, Li, Liskovich & Weintraub
  2022): every side is randomised at once and independently, each agent
  treated with probability ``share``, by the same draw as its side's own
  design. CS policies act on agents, not on single trades, so the policy
  reaches the treated agents of the sides it targets; a trade is
  treated-treated when both its parties are treated, and the analyst compares
  those trades with control-control ones (experiments/pilot.py).

Every assignment is a pure function of (seed, design, unit): an agent's arm
is a counter-based draw keyed by its side and id, so agents who join late are
assigned the same way, a rerun gives the same arms, and the draws never touch
the model's own streams (the pilot's market sees the same luck as the
rollout's everyone-treated and nobody-treated runs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.streams import ATTRIBUTE_DAY, Streams, declare_streams

SIDE_DESIGNS = ("buyers", "sellers", "drivers")
DESIGNS = (*SIDE_DESIGNS, "clusters", "switchback", "two_sided")

ASSIGN_STREAM = "pilot.assign"     # one draw per (side, agent): its arm in a side design and in two_sided
UNIT_STREAM = "pilot.unit"         # one draw per zone or period: the order in which units are treated
declare_streams(__name__, (ASSIGN_STREAM, UNIT_STREAM))
# Where an agent stood when it joined: the streams that drew its position (agents/buyers.py,
# agents/sellers.py, agents/drivers.py). Drivers move, so their zone is read from the draw, not the
# current position.
JOIN_POSITION = {"buyers": ("buyers.home_x", "buyers.home_y"), "sellers": ("sellers.x", "sellers.y"),
                 "drivers": ("drivers.x", "drivers.y")}
_SIDE_SUB = {"buyers": 1, "sellers": 2, "drivers": 3}


@dataclass(frozen=True)
class Design:
    """A pilot design: which units are randomised, and the treated share of them.

    ``zones_per_axis``: the clusters' grid (zones = its square); ``period_days``:
    the switchback period, days; ``days``: the pilot's length, days (periods).
    """

    name: str
    share: float
    zones_per_axis: int = 4
    period_days: int = 7
    days: int = 90

    @property
    def zones(self) -> int:
        """Clusters in the city (the grid's cells)."""
        return self.zones_per_axis ** 2

    @property
    def periods(self) -> int:
        """Switchback periods in the pilot (the last may be shorter)."""
        return math.ceil(self.days / self.period_days)


def treated_units(streams: Streams, units: int, share: float) -> np.ndarray:
    """Mask over ``units`` zones or periods: exactly ``round(share * units)`` treated, chosen by their draws.

    Complete randomisation (rather than a coin per unit) keeps both arms
    present when units are few.
    """
    draws = streams.uniform(UNIT_STREAM, ATTRIBUTE_DAY, np.arange(units, dtype=np.int64))
    k = min(max(int(round(share * units)), 1), units - 1)
    mask = np.zeros(units, dtype=bool)
    mask[np.argsort(draws, kind="stable")[:k]] = True
    return mask


def zone_of(streams: Streams, side: str, ids: np.ndarray, zones_per_axis: int) -> np.ndarray:
    """The zone (0 .. zones_per_axis^2 - 1) of each agent's position when it joined."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    name_x, name_y = JOIN_POSITION[side]
    cx = np.minimum((streams.uniform(name_x, ATTRIBUTE_DAY, ids) * zones_per_axis).astype(np.int64),
                    zones_per_axis - 1)
    cy = np.minimum((streams.uniform(name_y, ATTRIBUTE_DAY, ids) * zones_per_axis).astype(np.int64),
                    zones_per_axis - 1)
    return cy * zones_per_axis + cx


class Assignment:
    """Which agents a policy may act on, under one design, for one run (seed).

    ``treated(side, ids, day)`` is the one question the CS interface asks.
    """

    def __init__(self, design: Design, seed: int):
        self.design = design
        self._streams = Streams(seed)
        name = design.name
        if name not in DESIGNS:
            raise ValueError(f"unknown design {name!r}")
        self._units = None
        if name == "clusters":
            self._units = treated_units(self._streams, design.zones, design.share)
        elif name == "switchback":
            self._units = treated_units(self._streams, design.periods, design.share)

    @property
    def side_wide(self) -> bool:
        """Whether a lever that acts on a whole side at once (a referral rate) can follow the assignment."""
        return self.design.name == "switchback"

    def unit(self, side: str, ids) -> np.ndarray:
        """The randomised unit of each agent: its zone (clusters), else its own id. Switchback: -1 (periods)."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.design.name == "clusters":
            return zone_of(self._streams, side, ids, self.design.zones_per_axis)
        if self.design.name == "switchback":
            return np.full(ids.size, -1, dtype=np.int64)
        return ids

    def period(self, day: int) -> int:
        """The switchback period of ``day``."""
        return int(day) // self.design.period_days

    def period_treated(self, day: int) -> bool:
        """Whether ``day`` falls in a treated period (switchback); True for the other designs."""
        if self.design.name != "switchback":
            return True
        return bool(self._units[min(self.period(day), self._units.size - 1)])

    def treated(self, side: str, ids, day: int) -> np.ndarray:
        """Mask over ``ids`` (agents of ``side``): those the policy may act on ``day``."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        name = self.design.name
        if name == "switchback":
            return np.full(ids.size, self.period_treated(day))
        if name == "clusters":
            return self._units[zone_of(self._streams, side, ids, self.design.zones_per_axis)]
        if side != name and name != "two_sided":
            return np.zeros(ids.size, dtype=bool)
        return self._streams.uniform(ASSIGN_STREAM, ATTRIBUTE_DAY, ids, sub=_SIDE_SUB[side]) < self.design.share
