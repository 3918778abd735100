"""``win_back``: agents who left are offered a return, once per departure, within a window.

Mechanism: sellers and drivers who closed their account (not deactivated
drivers, and only agents who had reached first value) get one offer
``offer_after_days`` to ``window_days`` after leaving; buyers' drop-out is
silent, so buyers count as lapsed after ``lapse_days`` without an order and
get one offer per lapse. An offer is accepted with probability
``accept_prob`` (drawn per agent and departure, the same in every arm).
Returning agents are active again with a fresh churn threshold and their
satisfaction moved halfway toward ``level``; returning buyers purchase again
(a lapsed buyer who had not actually left orders within a day). Monthly churn
counts each departure, including those later won back.

Cost: ``offer_cost`` per offer (CS time, message) plus ``incentive`` per
accepted offer (an incentive, in ``incentive_cost``), within
``budget_per_month`` (budgeted at the expected cost per offer).
"""
from __future__ import annotations

import numpy as np

from policies.base import Params, Policy, register_policy, smallest_first


@register_policy
class WinBack(Policy):
    name = "win_back"

    def configure(self, p: Params, market) -> None:
        self.sides = p.sides("sides", market)
        self.window_days = p.number("window_days", "count")
        self.offer_after_days = p.number("offer_after_days", "count")
        self.lapse_days = p.number("lapse_days", "count")
        self.offer_cost = p.number("offer_cost", "nonneg")
        self.incentive = p.number("incentive", "nonneg")
        self.accept_prob = p.number("accept_prob", "prob")
        self.level = p.number("level", "prob")
        self.budget_per_month = p.number("budget_per_month", "nonneg", allow_inf=True)
        if self.offer_after_days > self.window_days:
            from sim.config import ConfigError
            raise ConfigError(f"policy.{self.key}.offer_after_days", self.offer_after_days,
                              f"at most window_days ({self.window_days})")

    def setup(self, cs) -> None:
        cs.open_account(self.key, 30, budget=self.budget_per_month)

    def targets(self, day: int, view, limit=None) -> np.ndarray:
        """Ids to make an offer to today on one side, most recent leavers first (the first ``limit``)."""
        if view.name == "buyers":
            idle = view.days_idle
            since = day - idle     # the last activity day
            ids = np.flatnonzero((idle >= self.lapse_days) & (idle <= self.lapse_days + self.window_days))
            ids = ids[view.at("activated", ids) & (view.at("last_offer_day", ids) < since[ids])]
            return ids[smallest_first(-since[ids], limit)]
        churn_day = view.churn_day
        gone = day - churn_day
        ids = np.flatnonzero((churn_day >= 0) & (gone >= self.offer_after_days) & (gone <= self.window_days))
        ids = ids[view.at("activated", ids) & ~view.at("deactivated", ids)
                  & (view.at("last_offer_day", ids) < churn_day[ids])]
        return ids[smallest_first(-churn_day[ids], limit)]   # the most recent leavers first

    def act(self, day: int, cs) -> None:
        for side in self.sides:
            # the offers the budget still allows (offer_return books each at its expected cost)
            limit = cs.allowance(self.name, self.offer_cost + self.incentive * self.accept_prob)
            ids = self.targets(day, cs.view(side), limit)
            if ids.size:
                cs.offer_return(self, side, ids, offer_cost=self.offer_cost, incentive=self.incentive,
                                accept_prob=self.accept_prob, level=self.level)
