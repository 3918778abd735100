"""What a policy receives: the observable view and priced actions, each charged to the policy's account.

:class:`CSOps` is all a policy (policies/) gets in ``setup``, ``act`` and
``on_tickets``. It reads the market through :meth:`CSOps.view` (observables
only) and changes it only through the actions below, each of which charges
the policy's account and refuses what is beyond its budget or capacity. In a
pilot every action reaches treated agents only (the coordinator's
``treated_only``).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from agents import buyers as buyers_rules
from agents import sellers as sellers_rules
from agents.lifecycle import close_onboarding_gap, move_satisfaction
from sim.cs.tickets import Finished, csat_from_state
from sim.cs.view import ObservableView
from sim.streams import ATTRIBUTE_DAY, combine_keys

if TYPE_CHECKING:
    from sim.cs.operations import CSOperations


class CSOps:
    """The CS interface a policy acts through: the view, its account, and priced actions."""

    def __init__(self, ops: "CSOperations"):
        self._ops = ops
        self._book = ops.book

    @property
    def day(self) -> int:
        """Today (simulated days since the start)."""
        return self._ops.day

    # ------------------------------------------------------------------ what CS sees
    def view(self, side: str) -> ObservableView:
        """The observable view of ``side`` (KeyError if the market has no such side)."""
        ops = self._ops
        if side not in ops.model.sides:
            raise KeyError(f"no side {side!r} in market {ops.model.market.name}")
        return ObservableView(ops, side)

    # ------------------------------------------------------------------ accounts
    def open_account(self, policy: str, period_days: int, budget: float = math.inf,
                     capacity: float = math.inf) -> None:
        """Give ``policy`` a budget (currency) and a capacity (units) renewed every ``period_days``."""
        self._book.open(policy, period_days, budget, capacity)

    def allowance(self, policy: str, unit_cost: float, units_each: float = 1.0):
        """How many actions at ``unit_cost`` (currency) and ``units_each`` the account would grant today.

        Books nothing: an action method called today with that many ids or
        more grants exactly this many (fewer ids: all of them). ``math.inf``
        when neither budget nor capacity binds; never negative.
        """
        return self._book.allowance(policy, unit_cost, units_each)

    def remaining_budget(self, policy: str) -> float:
        """Currency left in the policy's budget for the current period."""
        return self._book.remaining_budget(policy)

    def charge(self, policy: str, side: str, amount: float, incentive: bool = False) -> None:
        """Book a cost (currency) to a policy and a side; incentives go to ``incentive_cost``."""
        self._book.charge(policy, side, amount, incentive)

    # ------------------------------------------------------------------ contacts and offers
    def contact(self, policy, side: str, ids, *, cost_each: float, level: float, weight,
                onboarding_fix=0.0, kind: str = "touch", account: str | None = None) -> np.ndarray:
        """Touch agents (staff call or, with ``kind="nudge"``, an automated message); return those touched.

        Each touch costs ``cost_each`` and one unit of the account's capacity;
        the first ones in ``ids`` are served until budget or capacity runs
        out. Satisfaction of those touched moves toward ``level`` by
        ``weight`` (scalar or one per id). A touched agent not yet activated
        has ``onboarding_fix`` (scalar or one per id) of its onboarding gap
        closed, through the side's onboarding model
        (agents.lifecycle.close_onboarding_gap): its first value comes
        sooner if it was coming at all. A staff touch ends with a CSAT answer
        from the agent's satisfaction after the call (sim.cs.tickets.csat_from_state).
        """
        ops = self._ops
        name = policy.name
        ids = np.asarray(ids, dtype=np.int64)
        weight = np.broadcast_to(np.asarray(weight, dtype=np.float64), ids.shape)
        fix = np.broadcast_to(np.asarray(onboarding_fix, dtype=np.float64), ids.shape)
        if ops.treatment is not None:
            keep = ops.treatment.treated(side, ids, ops.day)
            ids, weight, fix = ids[keep], weight[keep], fix[keep]
        k = self._book.grant(account or name, ids.size, cost_each, 1.0)
        weight, fix = weight[:k], fix[:k]
        ids = ids[:k]
        if k == 0:
            return ids
        self._book.charge(name, side, k * cost_each)
        m, day = ops.model, ops.day
        s, st = m.sides[side], ops.state[side]
        live = s.alive[ids]
        move_satisfaction(s, ids[live], level, weight[live])
        if kind == "nudge":
            st.nudges[ids] += 1
            st.last_nudge_day[ids] = day
        else:
            st.touches[ids] += 1
            st.last_touch_day[ids] = day
        if fix.any():
            waiting = live & (s.activation_day[ids] < 0) & (fix > 0)
            rounding = m.streams.uniform(f"cs.{kind}_onboarding", day, ids[waiting])
            close_onboarding_gap(s, ids[waiting], day, fix[waiting], getattr(m.market, side).onboarding, rounding)
        if kind != "nudge":
            noise = m.streams.normal("cs.touch_csat", day, ids[live])
            answers = csat_from_state(s.satisfaction[ids[live]], noise, ops.conf.contact.csat_noise_sd)
            ops.touch_answers.setdefault(side, []).append(answers)
        return ids

    def offer_return(self, policy, side: str, ids, *, offer_cost: float, incentive: float,
                     accept_prob: float, level: float, account: str | None = None) -> np.ndarray:
        """Offer churned (for buyers: lapsed) agents a return; return those who came back.

        Each offer costs ``offer_cost`` (budgeted); an accepted one also costs
        ``incentive`` (an incentive). Acceptance is drawn per (churn day, id,
        life), so it is the same in every arm. A returning agent is active
        again with a fresh churn threshold (its own stream sub-counter by
        ``lives``) and satisfaction moved halfway toward ``level``; a buyer
        resumes purchasing tomorrow.
        """
        ops = self._ops
        name = policy.name
        m, s, st, day = ops.model, ops.model.sides[side], ops.state[side], ops.day
        ids = ops.treated_only(side, ids)
        k = self._book.grant(account or name, ids.size, offer_cost + incentive * accept_prob, 1.0)
        ids = ids[:k]
        if k == 0:
            return ids
        st.offers[ids] += 1
        st.last_offer_day[ids] = day
        self._book.charge(name, side, k * offer_cost)
        anchor = np.where(s.churn_day[ids] >= 0, s.churn_day[ids], s.last_active_day[ids])
        u = m.streams.uniform("cs.win_back_accept", ATTRIBUTE_DAY, ids, sub=combine_keys(anchor, s.lives[ids]))
        accepted = ids[u < accept_prob]
        self._book.charge(name, side, accepted.size * incentive, incentive=True)
        dead = accepted[~s.alive[accepted]]
        if dead.size:
            ops.returns[side].append((dead.copy(), s.churn_day[dead].copy(), np.full(dead.size, day, np.int32)))
            s.lives[dead] += 1
            s.alive[dead] = True
            s.churn_day[dead] = -1
            s.cum_hazard[dead] = 0.0
            s.churn_threshold[dead] = m.streams.exponential(f"{side}.churn_threshold", ATTRIBUTE_DAY, dead,
                                                            sub=s.lives[dead].astype(np.int64))
            s.last_active_day[dead] = day
            if side == "buyers":
                buyers_rules.start_purchasing(s, dead, float(day + 1), m.streams)
        move_satisfaction(s, accepted, level, 0.5)
        if side == "buyers":   # a lapsed but living buyer who accepts orders again soon
            alive_ones = np.setdiff1d(accepted, dead)
            soon = day + 1 + m.streams.uniform("cs.win_back_order", day, alive_ones)
            s.next_purchase[alive_ones] = np.minimum(s.next_purchase[alive_ones], soon)
        return accepted

    def offer_product(self, policy, ids, product: str, *, cost_each: float, accept_prob: float,
                      success_sensitivity: float, backfire: float, account: str | None = None) -> dict:
        """A CS rep offers sellers ``ids`` a paid product (``premium`` or ``promoted``); returns
        {"offered", "accepted", "backfired"} id arrays.

        Each offer is a staff contact costing ``cost_each`` and one unit of the
        account's capacity (the first ids are served until either runs out); it
        counts as a touch. A seller who does not hold the product accepts with
        probability min(1, ``accept_prob`` x success^``success_sensitivity``),
        success = its recent sales / its expected sales
        (agents.sellers.sales_success; the seller knows, CS does not), drawn
        per (day, id); it then holds the product (agents.sellers.take_product)
        and the take-up is added to today's ``sellers_<product>_taken``. An
        offer to an account on a negative health vector backfires: being
        sold to while struggling lowers its satisfaction by ``backfire``
        (absolute, floored at 0), and it does not accept.
        """
        ops = self._ops
        m, day = ops.model, ops.day
        s, st = m.sides["sellers"], ops.state["sellers"]
        ids = ops.treated_only("sellers", ids)
        k = self._book.grant(account or policy.name, ids.size, cost_each, 1.0)
        ids = ids[:k]
        empty = np.empty(0, np.int64)
        if k == 0:
            return {"offered": ids, "accepted": empty, "backfired": empty}
        self._book.charge(policy.name, "sellers", k * cost_each)
        st.touches[ids] += 1
        st.last_touch_day[ids] = day
        live = ids[s.alive[ids]]
        struggling = st.vector[live] == -1
        backfired = live[struggling]
        s.satisfaction[backfired] = np.maximum(0.0, s.satisfaction[backfired] - backfire)
        open_ = live[~struggling & ~getattr(s, product)[live]]
        chance = np.minimum(1.0, accept_prob * sellers_rules.sales_success(s, open_, m.market) ** success_sensitivity)
        accepted = open_[m.streams.uniform(f"cs.{product}_offer_accept", day, open_) < chance]
        sellers_rules.take_product(s, accepted, product, day, m.streams)
        m.today[f"sellers_{product}_taken"] = m.today.get(f"sellers_{product}_taken", 0) + accepted.size
        return {"offered": ids, "accepted": accepted, "backfired": backfired}

    # ------------------------------------------------------------------ structural levers
    def set_onboarding_boost(self, policy, side: str, boost: float, cost_per_agent: float) -> None:
        """From now on new agents of ``side`` get ``boost`` onboarding quality, at a cost each (budgeted)."""
        self._book.levers.onboarding[side] = (policy.name, float(boost), float(cost_per_agent))

    def set_referral_bonus(self, policy, side: str, rate_multiplier: float, bonus: float) -> None:
        """From now on promoters of ``side`` refer ``rate_multiplier`` times as often, for a bonus each."""
        self._book.levers.referral[side] = (policy.name, float(rate_multiplier), float(bonus))

    # ------------------------------------------------------------------ the policy's own tickets
    def submit(self, policy, side: str, ids, kind: str, service_minutes: float, patience_days: float,
               priority: int, sub: np.ndarray | None = None) -> np.ndarray:
        """Queue tickets of ``kind`` for agents ``ids`` at the desk as ``policy``'s; return their ticket ids.

        Service and patience are exponential with means ``service_minutes``
        and ``patience_days``; ``sub`` (one per id) tells apart several events
        of an agent on one day. When they finish, ``policy.on_tickets`` gets them.
        """
        return self._ops.ticketing.submit(self._ops.policy_index(policy), side, ids, kind, service_minutes,
                                          patience_days, priority, sub=sub)

    # ------------------------------------------------------------------ disputes (drivers)
    def contest_low_ratings(self, policy, *, contest_unfair: float, contest_fair: float, service_minutes: float,
                            patience_days: float, priority: int) -> np.ndarray:
        """Drivers contest today's low ratings as ``policy``'s desk tickets (sim.cs.disputes); their ticket ids."""
        return self._ops.disputes.contest_low_ratings(
            self._ops.policy_index(policy), contest_unfair=contest_unfair, contest_fair=contest_fair,
            service_minutes=service_minutes, patience_days=patience_days, priority=priority)

    def appeal_deactivations(self, policy, *, contest: float, service_minutes: float, priority: int) -> np.ndarray:
        """Drivers due for deactivation appeal as ``policy``'s desk tickets (sim.cs.disputes); their ticket ids."""
        return self._ops.disputes.appeal_deactivations(self._ops.policy_index(policy), contest=contest,
                                                       service_minutes=service_minutes, priority=priority)

    def review_findings(self, finished: Finished, accuracy: float) -> np.ndarray:
        """What the evidence of finished disputes of one kind shows: the driver is right (True) (sim.cs.disputes)."""
        return self._ops.disputes.review_findings(finished, accuracy)

    def reverse_ratings(self, finished: Finished, chance: np.ndarray, restore_share: float) -> np.ndarray:
        """Reverse each resolved rating dispute with its ``chance``; which were reversed (sim.cs.disputes)."""
        return self._ops.disputes.reverse_ratings(finished, chance, restore_share)

    def settle_appeals(self, finished: Finished, chance: np.ndarray) -> np.ndarray:
        """Reinstate each appealing driver with its ``chance``, deactivate the others (sim.cs.disputes)."""
        return self._ops.disputes.settle_appeals(finished, chance)
