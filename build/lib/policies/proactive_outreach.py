"""``proactive_outreach``: CS staff call the lowest-health accounts of a side, up to capacity.

Mechanism: every ``cadence_days`` days, for each target side, the open
accounts with health below ``max_health`` that were not called in the last
``cooldown_days`` are ranked by health (lowest first, ties by id) and the
first ``capacity_per_cadence`` are called. A call moves the agent's
satisfaction ``weight`` of the way toward ``level``; for a new agent not yet
activated it also closes ``onboarding_fix`` of the gap between its onboarding
quality and 1, so its first value comes sooner through the side's onboarding
model (agents.lifecycle.close_onboarding_gap); an agent who would never have
activated is not activated by a call. Each call ends with a CSAT answer
drawn from the agent's satisfaction after it. Buyers' silent drop-out is not
observable, so calls to buyers may reach people who have already left (they
are charged, with no effect).

Cost: staff time per call, ``minutes_per_touch`` at the fully loaded CS rate
(cs.staff_cost_per_day per cs.workday_hours), booked to the side called.
"""
from __future__ import annotations

import numpy as np

from policies.base import Params, Policy, first_eligible, register_policy


@register_policy
class ProactiveOutreach(Policy):
    name = "proactive_outreach"

    def configure(self, p: Params, market) -> None:
        self.sides = p.sides("sides", market)
        self.cadence_days = max(1, p.number("cadence_days", "count"))
        self.capacity = p.number("capacity_per_cadence", "count")
        self.minutes_per_touch = p.number("minutes_per_touch", "positive")
        self.max_health = p.number("max_health", "score")
        self.cooldown_days = p.number("cooldown_days", "count")
        self.level = p.number("level", "prob")
        self.weight = p.number("weight", "prob")
        self.onboarding_fix = p.number("onboarding_fix", "prob")
        self.segment = p.segment("segment", self.sides)
        self.cost_per_touch = self.minutes_per_touch / self.workday_minutes * self.staff_cost_per_day

    def setup(self, cs) -> None:
        for side in self.sides:
            cs.open_account(f"{self.key}:{side}", self.cadence_days, capacity=self.capacity)

    def targets(self, day: int, view, limit=None) -> np.ndarray:
        """Ids to call today on one side, lowest health first (the first ``limit``; None: all candidates)."""
        def eligible(ids):
            ok = view.at("alive", ids) & (view.at("health", ids) < self.max_health)
            ok &= day - view.at("last_touch_day", ids) >= self.cooldown_days
            if self.segment is not None:
                ok &= view.at("segment", ids) == self.segment
            return ok

        return first_eligible(view.by_health, eligible, limit)

    def act(self, day: int, cs) -> None:
        if day % self.cadence_days:
            return
        for side in self.sides:
            account = f"{self.key}:{side}"
            limit = cs.allowance(account, self.cost_per_touch)   # the calls the account allows (capacity)
            ids = self.targets(day, cs.view(side), limit)
            cs.contact(self, side, ids, cost_each=self.cost_per_touch, level=self.level, weight=self.weight,
                       onboarding_fix=self.onboarding_fix, account=account)
