"""``referral_incentive``: promoters get a bonus for each friend they bring.

Mechanism: on a target side, promoters (satisfaction at or above the market's
promoter level) refer ``rate_multiplier`` times as often as without the
programme (referral joins ~ Poisson(referral_rate * multiplier * promoters)).
Referred agents carry the engine's referral traits (Schmitt, Skiera & Van den
Bulte 2011: about 18% lower churn, 16% higher value) and cost only the bonus
to acquire (their CAC is the bonus). When the month's budget cannot pay
another bonus the programme pauses until the next month.

Cost: ``bonus`` per referred agent who joins (an incentive, in
``incentive_cost``), within ``budget_per_month``.
"""
from __future__ import annotations

from policies.base import Params, Policy, register_policy


@register_policy
class ReferralIncentive(Policy):
    name = "referral_incentive"
    side_wide = True   # promoters' referral rate: one multiplier per side

    def configure(self, p: Params, market) -> None:
        self.sides = p.sides("sides", market)
        self.rate_multiplier = p.number("rate_multiplier", "positive")
        self.bonus = p.number("bonus", "nonneg")
        self.budget_per_month = p.number("budget_per_month", "nonneg", allow_inf=True)

    def setup(self, cs) -> None:
        cs.open_account(self.key, 30, budget=self.budget_per_month)
        for side in self.sides:
            cs.set_referral_bonus(self, side, self.rate_multiplier, self.bonus)
