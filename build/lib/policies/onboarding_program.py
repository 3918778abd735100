"""``onboarding_program``: better onboarding for new agents of a side.

Mechanism: every agent joining a target side (paid, organic or referred)
while the programme runs gets ``quality_boost`` added to its mean onboarding
quality (agents.lifecycle.init_common ``onboarding_boost``). Higher quality
means a higher chance of activating and a shorter time to first value
(TTFV), and so fewer agents lost before first value.

Cost: ``cost_per_agent`` for each new agent enrolled, within
``budget_per_month``; new agents beyond the budget get the standard onboarding.
"""
from __future__ import annotations

from policies.base import Params, Policy, register_policy


@register_policy
class OnboardingProgram(Policy):
    name = "onboarding_program"

    def configure(self, p: Params, market) -> None:
        self.sides = p.sides("sides", market)
        self.quality_boost = p.number("quality_boost", "prob")
        self.cost_per_agent = p.number("cost_per_agent", "nonneg")
        self.budget_per_month = p.number("budget_per_month", "nonneg", allow_inf=True)

    def setup(self, cs) -> None:
        cs.open_account(self.key, 30, budget=self.budget_per_month)
        for side in self.sides:
            cs.set_onboarding_boost(self, side, self.quality_boost, self.cost_per_agent)
