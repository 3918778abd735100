"""``tech_touch``: automated nudges (e-mail, push) to agents whose activity or health drops.

Mechanism: every day, for each target side, agents whose health vector is
negative or whose health is in the red band, who have not been nudged in the
last ``cooldown_days`` and have had fewer than ``max_nudges`` nudges, get a
nudge (most recently healthy first is irrelevant: all eligible, up to the
budget, lowest health first). A nudge moves satisfaction
``weight * fatigue ** (nudges already received)`` of the way toward
``level`` (fatigue with repetition), and closes ``onboarding_fix`` (with
the same fatigue) of a not yet activated agent's onboarding gap, so its
first value comes sooner if it was coming at all (as for a call, see
:mod:`policies.proactive_outreach`). No CSAT (it is not a conversation).

Cost: ``cost_per_message`` per nudge (tiny), within ``budget_per_month``.
"""
from __future__ import annotations

import numpy as np

from policies.base import Params, Policy, first_eligible, register_policy


@register_policy
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
        self.onboarding_fix = p.number("onboarding_fix", "prob")
        self.segment = p.segment("segment", self.sides)

    def setup(self, cs) -> None:
        cs.open_account(self.key, 30, budget=self.budget_per_month)

    def targets(self, day: int, view, limit=None) -> np.ndarray:
        """Ids to nudge today on one side, lowest health first (the first ``limit``; None: all candidates)."""
        def eligible(ids):
            ok = (view.at("vector", ids) == -1) | (view.at("band", ids) == 0)   # dropping
            ok &= view.at("alive", ids) & (day - view.at("last_nudge_day", ids) >= self.cooldown_days)
            ok &= view.at("nudges", ids) < self.max_nudges
            if self.segment is not None:
                ok &= view.at("segment", ids) == self.segment
            return ok

        return first_eligible(view.by_health, eligible, limit)

    def act(self, day: int, cs) -> None:
        for side in self.sides:
            limit = cs.allowance(self.key, self.cost_per_message)   # the nudges the budget still allows
            if limit == 0:
                continue
            view = cs.view(side)
            ids = self.targets(day, view, limit)
            if ids.size == 0:
                continue
            fatigue = self.fatigue ** view.at("nudges", ids).astype(float)
            cs.contact(self, side, ids, cost_each=self.cost_per_message, level=self.level, weight=self.weight * fatigue,
                       onboarding_fix=self.onboarding_fix * fatigue, kind="nudge", account=self.key)
