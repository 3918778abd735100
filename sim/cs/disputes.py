"""Drivers' disputes: contests of low ratings and appeals of deactivation, reviewed at the desk.

The mechanism the ``fair_disputes`` policy runs through its actions: drivers
contest ratings and appeal deactivations (tickets of the policy), a reviewer
weighs the evidence (:meth:`Disputes.review_findings`), and the policy's
decision is applied (:meth:`Disputes.reverse_ratings`,
:meth:`Disputes.settle_appeals`). The truth (was the rating fair? is the
driver good?) stays in the ticket table and the drivers' arrays, out of the
policy's sight. Every decision is drawn per (driver, the ticket's event), the
same in every arm.
"""
from __future__ import annotations

import math

import numpy as np

from agents import drivers as drivers_rules
from agents.lifecycle import churn
from sim.cs.tickets import KIND, KINDS, Finished
from sim.streams import ATTRIBUTE_DAY, combine_keys


class Disputes:
    """Files drivers' contests and appeals and applies their outcomes; ``ops`` is the coordinator."""

    def __init__(self, ops):
        self._ops = ops

    def contest_low_ratings(self, owner: int, *, contest_unfair: float, contest_fair: float, service_minutes: float,
                            patience_days: float, priority: int) -> np.ndarray:
        """Drivers contest today's low ratings; the contests go to the desk. Returns their ticket ids.

        Drivers know whether a low rating was their fault: they contest unfair
        ones with probability ``contest_unfair`` and deserved ones with
        ``contest_fair``. A contest is a ``rating_dispute`` ticket of policy
        ``owner`` (mean ``service_minutes``, ``patience_days``, ``priority``);
        the ticket keeps the rating given and the truth for
        :meth:`review_findings` and :meth:`reverse_ratings`.
        """
        ops = self._ops
        low = (ops.events_today or {}).get("low_ratings")
        if low is None or low[0].size == 0:
            return np.empty(0, np.int64)
        ids, sub, unfair, score = low
        if ops.treatment is not None:
            keep = ops.treatment.treated("drivers", ids, ops.day)
            ids, sub, unfair, score = ids[keep], sub[keep], unfair[keep], score[keep]
        p = np.where(unfair, contest_unfair, contest_fair)
        contests = ops.model.streams.uniform("cs.dispute_contest", ops.day, ids, sub=sub) < p
        return ops.ticketing.submit(owner, "drivers", ids[contests], "rating_dispute", service_minutes,
                                    patience_days, priority, sub=sub[contests], flag=unfair[contests],
                                    score=score[contests])

    def appeal_deactivations(self, owner: int, *, contest: float, service_minutes: float, priority: int) -> np.ndarray:
        """Drivers due for deactivation appeal with probability ``contest``; returns the appeals' ticket ids.

        An appealing driver keeps driving while the ``deactivation_appeal``
        ticket is reviewed (never abandoned); one appeal at a time, drawn per
        (driver, its appeal count), the same in every arm.
        """
        ops = self._ops
        m, st = ops.model, ops.state["drivers"]
        due = drivers_rules.due_for_deactivation(m.sides["drivers"], m.market.drivers)
        due = ops.treated_only("drivers", due[~st.appeal_open[due]])
        appeals = due[m.streams.uniform("cs.appeal_contest", ATTRIBUTE_DAY, due,
                                        sub=st.appeals[due].astype(np.int64)) < contest]
        st.appeal_open[appeals] = True
        tid = ops.ticketing.submit(owner, "drivers", appeals, "deactivation_appeal", service_minutes, math.inf,
                                   priority, sub=st.appeals[appeals].astype(np.int64))
        st.appeals[appeals] += 1
        return tid

    def track_record_good(self, agents: np.ndarray) -> np.ndarray:
        """Whether each driver's observable rating history says it is a good driver.

        The share of its ratings that were low, l, estimates its quality as
        q = (1 - l) / (1 - bad_luck_low_rating) (a trip is rated high when it went
        well and the rider was fair); good if q >= drivers.good_quality. A
        driver with no ratings yet counts as good (benefit of the doubt).
        """
        model = self._ops.model
        drivers, conf = model.sides["drivers"], model.market.drivers
        count = drivers.rating_count[agents].astype(np.float64)
        low_share = drivers.low_ratings[agents] / np.maximum(count, 1.0)
        return (1.0 - low_share) / (1.0 - conf.bad_luck_low_rating) >= conf.good_quality

    def review_findings(self, finished: Finished, accuracy: float) -> np.ndarray:
        """What a reviewer concludes from the evidence of finished disputes of one kind: the driver is right (True).

        With probability ``accuracy`` the trip records (GPS trace, timings,
        messages) settle the case and the reviewer finds the truth (for a
        rating dispute: the rating was not the driver's fault; for a
        deactivation appeal: the driver is genuinely good, quality >=
        drivers.good_quality). Otherwise they are inconclusive and the
        reviewer goes by the driver's observable rating history
        (:meth:`track_record_good`). Drawn per (driver, the ticket's event),
        the same in every arm; the truth never leaves the engine.
        """
        model = self._ops.model
        T, agents = self._ops.tickets, finished.agents
        kinds = np.unique(finished.kind)
        if kinds.size > 1:
            raise ValueError("review_findings: one kind of ticket at a time")
        if kinds.size == 0:
            return np.empty(0, bool)
        kind = KINDS[int(kinds[0])]
        if kind == "rating_dispute":
            truth, key = T["flag"][finished.tickets], self.dispute_key(finished.tickets)
        elif kind == "deactivation_appeal":
            conf = model.market.drivers
            truth = model.sides["drivers"].quality[agents] >= conf.good_quality
            key = T["sub"][finished.tickets]
        else:
            raise ValueError(f"review_findings: {kind} tickets have nothing to review")
        u = model.streams.uniform(f"cs.{kind}_evidence", ATTRIBUTE_DAY, agents, sub=key)
        return np.where(u < accuracy, truth, self.track_record_good(agents))

    def dispute_key(self, tickets: np.ndarray) -> np.ndarray:
        """The stream sub-counter of a rating dispute's decisions: its trip and the day it was filed."""
        T = self._ops.tickets
        return combine_keys(T["sub"][tickets], T["day"][tickets])

    def reverse_ratings(self, finished: Finished, chance: np.ndarray, restore_share: float) -> np.ndarray:
        """Reverse each resolved rating dispute with its ``chance``; return which were reversed (the driver won).

        A reversed rating is replaced by a 5 in the driver's rolling mean and
        no longer counts as low; if it truly was not the driver's fault, the
        driver gets back ``restore_share`` of the satisfaction it cost
        (drivers.fairness_penalty).
        """
        m, T = self._ops.model, self._ops.tickets
        drivers, conf = m.sides["drivers"], m.market.drivers
        agents, tickets = finished.agents, finished.tickets
        u = m.streams.uniform("cs.dispute_decision", ATTRIBUTE_DAY, agents, sub=self.dispute_key(tickets))
        win = finished.resolved & (u < chance) & drivers.alive[agents]
        w = agents[win]
        score = T["score"][tickets][win]   # the rating being reversed, as the rider gave it
        weight = 1.0 / np.minimum(np.maximum(drivers.rating_count[w], 1), conf.deactivation.window)
        drivers.rating_mean[w] = np.minimum(5.0, drivers.rating_mean[w] + (5.0 - score) * weight)
        drivers.low_ratings[w] = np.maximum(drivers.low_ratings[w] - 1, 0)
        fix = w[T["flag"][tickets][win]]     # the driver knows it was not its fault: only then is the grievance healed
        drivers.satisfaction[fix] = np.minimum(1.0, drivers.satisfaction[fix] + conf.fairness_penalty * restore_share)
        return win

    def settle_appeals(self, finished: Finished, chance: np.ndarray) -> np.ndarray:
        """Reinstate each appealing driver with its ``chance``, deactivate the others; return who was reinstated.

        Reinstatement clears the rating history; an upheld appeal deactivates
        the driver (and so it churns) on the day of the decision.
        """
        ops = self._ops
        m = ops.model
        drivers, st, day = m.sides["drivers"], ops.state["drivers"], ops.day
        agents = finished.agents
        u = m.streams.uniform("cs.appeal_decision", ATTRIBUTE_DAY, agents, sub=ops.tickets["sub"][finished.tickets])
        win = finished.resolved & (u < chance) & drivers.alive[agents]
        st.appeal_open[agents] = False
        w = agents[win]
        drivers.rating_mean[w] = 5.0
        drivers.rating_count[w] = 0
        drivers.low_ratings[w] = 0
        lose = agents[~win & drivers.alive[agents]]
        drivers.deactivated[lose] = True
        drivers.deactivation_day[lose] = day
        churn(drivers, lose, day)
        ops.deactivated_today += lose.size
        return win

    def settle_orphans(self, tid: np.ndarray, resolved: np.ndarray) -> None:
        """Tickets whose policy was switched off while they were at the desk: appeals are upheld, nothing reversed."""
        T = self._ops.tickets
        appeals = T["kind"][tid] == KIND["deactivation_appeal"]
        if appeals.any():
            t = tid[appeals]
            self.settle_appeals(Finished("drivers", T["agent"][t], T["kind"][t], resolved[appeals],
                                         np.zeros(t.size), t), np.zeros(t.size))
