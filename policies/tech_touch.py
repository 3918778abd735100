"""``tech_touch``: automated nudges (e-mail, push) to agents whose activity or health drops.

Mechanism: every day, for each target side, agents whose health vector is
negative or whose health is in the red band, who have not been nudged in the
last ``cooldown_days`` and have had fewer than ``max_nudges`` nudges, get a
nudge (most recently healthy first is irrelevant: all eligible, up to the
budget, lowest health first). A nudge moves satisfaction
``weight * fatigue ** (nudges already received)`` of the way toward
``level`` (fatigue with repetition), and brings a not yet activated agent to
first value the next day with probability ``activation_rescue``. No CSAT
(it is not a conversation).

Cost: ``cost_per_message`` per nudge (tiny), within ``budget_per_month``.
"""
from __future__ import annotations

import numpy as np

from policies.base import Params, Policy



class TechTouch(Policy):
    name = "tech_touch"

    def configure(self, p: Params, market) -> None:
        self.sides = p.sides("sides", market)
        self.cost_per_message = p.number("cost_per_message", "nonneg")
        self.budget_per_month = p.number("budget_per_month", "nonneg", allow_inf=True)
        self.cooldown_days = p.number("cooldown_days", "count")
        self.max_nudges = p.number("max_nudges", "count")
        self.fatigue = p.number("fatigue", "prob")
        self.level = p.number("level", "prob")
        self.weight = p.number("weight", "prob")
        self.activation_rescue = p.number("activation_rescue", "prob")
        self.segment = p.segment("segment", self.sides)

    def setup(self, cs) -> None:
        cs.open_account(self.key, 30, budget=self.budget_per_month)

    def targets(self, day: int, view) -> np.ndarray:
        health = view.health
        dropping = (view.vector == -1) | (view.band == 0)
        ok = (view.alive & dropping & (day - view.last_nudge_day >= self.cooldown_days)
              & (view.nudges < self.max_nudges))
        if self.segment is not None:
            ok &= view.segment == self.segment
        ids = np.flatnonzero(ok)
        return ids[np.argsort(health[ids], kind="stable")]

    def act(self, day: int, cs) -> None:
        for side in self.sides:
            view = cs.view(side)
            ids = self.targets(day, view)
            if ids.size == 0:
                continue
            weight = self.weight * self.fatigue ** view.nudges[ids].astype(float)
            cs.contact(self, side, ids, cost_each=self.cost_per_message, level=self.level, weight=weight,
                       activation_rescue=self.activation_rescue, kind="nudge", account=self.key)
