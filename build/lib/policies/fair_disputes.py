"""``fair_disputes``: drivers can contest low ratings and deactivations; the desk reviews them.

Without it (the engine's default), a driver whose rolling rating falls below
the threshold is deactivated automatically, with no chance to contest, even
where low ratings were not the driver's fault.

Mechanism, with it:

* each low rating may be contested: drivers know whether it was their fault,
  and contest unfair ones with probability ``contest_unfair``, deserved ones
  with ``contest_fair``. A dispute is a desk ticket (``review_minutes``, the
  driver gives up after ``patience_days`` on average).
* a driver due for deactivation appeals with probability
  ``contest_deactivation`` and keeps driving while the appeal is reviewed
  (``appeal_minutes``, never abandoned).
* the reviewer does not know the truth; it sees evidence with error
  (sim.cs.CSOps.review_findings): with probability ``evidence_accuracy`` the
  trip records settle the case (the rating was or was not the driver's
  fault; the driver is or is not genuinely good, quality >=
  drivers.good_quality), otherwise the reviewer goes by the driver's
  observable rating history (its share of low ratings, net of riders'
  bad-luck rate, against drivers.good_quality). A rating the review finds
  unfair is reversed with probability ``reverse_unfair``, one it finds
  deserved with ``reverse_fair``: a reversed rating is replaced by a 5 in the
  rolling mean, and if it truly was unfair it gives back ``restore_share`` of
  the satisfaction it cost (drivers.fairness_penalty). A denied dispute
  leaves the driver ``denied_penalty`` less satisfied with the contact. An
  appeal the review finds to be a good driver's succeeds with probability
  ``reinstate_good``, a bad one's with ``reinstate_bad`` (benefit of the
  doubt): reinstatement clears the rating history. Upheld appeals deactivate
  the driver on the day of the decision.

The policy files the contests (``act``) and decides each reviewed case
(``on_tickets``); the CS interface keeps what only the world knows: which
ratings drivers contest (they know whether they were at fault), what the
evidence shows, and what a decision does to the driver's record.

So wrongful penalties are reversed (drivers churn less), and some genuinely
bad drivers stay longer, which riders feel (more trips go badly by the
driver's doing: ``buyers_bad_orders`` in daily.parquet).

Cost: review time per dispute and appeal (``review_minutes``,
``appeal_minutes``), charged at the staff rate (cs.staff_cost_per_day per
cs.workday_hours), plus ``extra_staff`` desk agents if any. The reviews are
done on the shared desk: without extra staff, other tickets wait longer.
"""
from __future__ import annotations

import numpy as np

from policies.base import Params, Policy, register_policy
from sim.cs import KIND


@register_policy
class FairDisputes(Policy):
    name = "fair_disputes"
    staff_side = "drivers"

    def configure(self, p: Params, market) -> None:
        self.sides = p.sides("sides", market, allowed=("drivers",),
                             policy_doc=": markets rides and delivery")
        self.extra_staff = p.number("extra_staff", "count")
        for key, kind in (
                ("review_minutes", "positive"), ("appeal_minutes", "positive"), ("patience_days", "positive"),
                ("contest_unfair", "prob"), ("contest_fair", "prob"), ("contest_deactivation", "prob"),
                ("reverse_unfair", "prob"), ("reverse_fair", "prob"), ("reinstate_good", "prob"),
                ("reinstate_bad", "prob"), ("restore_share", "prob"), ("denied_penalty", "prob"),
                ("priority", "count"), ("evidence_accuracy", "prob")):
            setattr(self, key, p.number(key, kind))

    def setup(self, cs) -> None:
        cs.open_account(self.key, 30)

    def act(self, day: int, cs) -> None:
        """File today's contests of low ratings and appeals of deactivations; pay the reviews' staff time."""
        disputes = cs.contest_low_ratings(self, contest_unfair=self.contest_unfair, contest_fair=self.contest_fair,
                                          service_minutes=self.review_minutes, patience_days=self.patience_days,
                                          priority=self.priority)
        appeals = cs.appeal_deactivations(self, contest=self.contest_deactivation,
                                          service_minutes=self.appeal_minutes, priority=self.priority)
        minutes = disputes.size * self.review_minutes + appeals.size * self.appeal_minutes
        cs.charge(self.name, "drivers", minutes / self.workday_minutes * self.staff_cost_per_day)
        self.filed_today = (int(disputes.size), int(appeals.size))

    def on_tickets(self, day: int, cs, finished) -> np.ndarray:
        """Decide the reviewed disputes and appeals on the reviewer's findings; return each contact's penalty.

        A denied dispute or appeal (or one the driver gave up on) makes the
        contact ``denied_penalty`` worse (a penalty on its level, 0-1).
        """
        won = np.zeros(finished.agents.size, bool)
        for kind, if_found, if_not, settle in (
                ("rating_dispute", self.reverse_unfair, self.reverse_fair,
                 lambda part, chance: cs.reverse_ratings(part, chance, self.restore_share)),
                ("deactivation_appeal", self.reinstate_good, self.reinstate_bad, cs.settle_appeals)):
            rows = np.flatnonzero(finished.kind == KIND[kind])
            if rows.size:
                part = finished.subset(rows)
                found = cs.review_findings(part, self.evidence_accuracy)
                won[rows] = settle(part, np.where(found, if_found, if_not))
        return np.where(won, 0.0, self.denied_penalty)
