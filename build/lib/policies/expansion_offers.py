"""``expansion_offers``: CS offers paid products to the sellers it can see are doing well.

Mechanism: every ``cadence_days`` days, the open seller accounts whose health
band is at least ``min_band`` and whose health vector is at least
``min_vector`` (by default green and positive: the CS playbook's "expand the
healthy"), that were not contacted in the last ``cooldown_days`` and do not
already hold both paid products, are ranked by health (highest first) and the
first ``capacity_per_cadence`` get an offer: the premium plan if they lack it,
else promoted listings (sim.cs.CSOps.offer_product). A seller accepts with
probability min(1, ``accept_prob`` x success^``success_sensitivity``), success
being its recent sales against its own expectation, which CS cannot see. An
offer that reaches an account on a negative vector backfires: its satisfaction
drops by ``backfire`` and it does not buy. The default targeting rule never
lets such an account through; a looser rule (``min_vector: negative``) does,
and pays for it.

Cost: staff time per offer, ``minutes_per_offer`` at the fully loaded CS rate
(cs.staff_cost_per_day per cs.workday_hours), booked to sellers.
"""
from __future__ import annotations

import numpy as np

from policies.base import Params, Policy, first_eligible, register_policy
from sim.cs import BANDS, VECTORS


@register_policy
class ExpansionOffers(Policy):
    name = "expansion_offers"

    def configure(self, p: Params, market) -> None:
        self.sides = p.sides("sides", market, allowed=("sellers",),
                             policy_doc=": only sellers buy paid products")
        self.cadence_days = max(1, p.number("cadence_days", "count"))
        self.capacity = p.number("capacity_per_cadence", "count")
        self.minutes_per_offer = p.number("minutes_per_offer", "positive")
        self.min_band = BANDS.index(p.choice("min_band", BANDS))            # 0 red, 1 yellow, 2 green
        self.min_vector = VECTORS.index(p.choice("min_vector", VECTORS)) - 1  # -1 negative, 0 neutral, 1 positive
        self.cooldown_days = p.number("cooldown_days", "count")
        self.accept_prob = p.number("accept_prob", "prob")
        self.success_sensitivity = p.number("success_sensitivity")
        self.backfire = p.number("backfire", "prob")
        self.cost_per_offer = self.minutes_per_offer / self.workday_minutes * self.staff_cost_per_day

    def setup(self, cs) -> None:
        cs.open_account(self.key, self.cadence_days, capacity=self.capacity)

    def targets(self, day: int, view, limit=None) -> np.ndarray:
        """Seller ids to offer a product today, highest health first (the first ``limit``; None: all)."""
        def eligible(ids):
            ok = view.at("alive", ids) & (view.at("band", ids) >= self.min_band)
            ok &= view.at("vector", ids) >= self.min_vector
            ok &= day - view.at("last_touch_day", ids) >= self.cooldown_days
            ok &= ~(view.at("premium", ids) & view.at("promoted", ids))
            return ok

        return first_eligible(view.by_health[::-1], eligible, limit)

    def act(self, day: int, cs) -> None:
        if day % self.cadence_days:
            return
        view = cs.view("sellers")
        ids = self.targets(day, view, cs.allowance(self.key, self.cost_per_offer))
        has_plan = view.at("premium", ids)
        for product, chosen in (("premium", ids[~has_plan]), ("promoted", ids[has_plan])):
            cs.offer_product(self, chosen, product, cost_each=self.cost_per_offer, accept_prob=self.accept_prob,
                             success_sensitivity=self.success_sensitivity, backfire=self.backfire,
                             account=self.key)
