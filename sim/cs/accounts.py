"""Policies' accounts: a budget (currency) and a capacity (units) per period, the day's costs, and the levers.

Every priced action of a policy goes through :meth:`AccountBook.grant`, which
serves the first of the wanted actions until the account's budget or capacity
for the period runs out, and :meth:`AccountBook.charge`, which books the cost
to a policy and a side. :meth:`AccountBook.costs_today` turns the day's
bookings, the desk's staff and policies' extra staff into daily columns.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Account:
    """A policy's budget (currency) and capacity (units, e.g. touches) per period of days."""

    period_days: int
    budget: float = math.inf
    capacity: float = math.inf
    spent: float = 0.0
    used: float = 0.0
    period_start: int = 0


@dataclass
class Levers:
    """Structural levers policies set once (engine reads them in acquisition and churn)."""

    onboarding: dict = field(default_factory=dict)   # side -> (policy, boost, cost per agent)
    referral: dict = field(default_factory=dict)     # side -> (policy, rate multiplier, bonus)


def affordable(acc: Account, spent: float, used: float, unit_cost: float, units_each: float):
    """How many actions the budget and capacity left allow (math.inf: no limit)."""
    k = math.inf
    if unit_cost > 0 and math.isfinite(acc.budget):
        k = min(k, int(math.floor((acc.budget - spent) / unit_cost + 1e-9)))
    if units_each > 0 and math.isfinite(acc.capacity):
        k = min(k, int(math.floor((acc.capacity - used) / units_each + 1e-9)))
    return k


class AccountBook:
    """Every policy's account and the day's bookings; ``ops`` (the coordinator) gives today's day."""

    def __init__(self, ops):
        self._ops = ops
        self.accounts: dict[str, Account] = {}
        self.levers = Levers()
        self.cost_today: dict[tuple[str, str], float] = {}
        self.incentive_today: dict[tuple[str, str], float] = {}

    def reset(self) -> None:
        """New policies: no accounts and no levers."""
        self.accounts = {}
        self.levers = Levers()

    def start_day(self) -> None:
        """Nothing booked yet today."""
        self.cost_today, self.incentive_today = {}, {}

    def open(self, policy: str, period_days: int, budget: float = math.inf, capacity: float = math.inf) -> None:
        """Give ``policy`` a budget (currency) and a capacity (units) renewed every ``period_days``."""
        day = self._ops.day
        self.accounts[policy] = Account(int(period_days), float(budget), float(capacity),
                                        period_start=day - day % max(int(period_days), 1))

    def account(self, policy: str) -> Account:
        acc = self.accounts.get(policy)
        if acc is None:
            raise KeyError(f"policy {policy!r} has no account: call open_account in setup()")
        return acc

    def grant(self, policy: str, wanted: int, unit_cost: float, units_each: float = 1.0) -> int:
        """How many of ``wanted`` actions the policy's account allows (and book them)."""
        acc, day = self.account(policy), self._ops.day
        if day >= acc.period_start + acc.period_days:
            acc.period_start = day - (day - acc.period_start) % acc.period_days
            acc.spent = acc.used = 0.0
        k = max(min(wanted, affordable(acc, acc.spent, acc.used, unit_cost, units_each)), 0)
        acc.spent += k * unit_cost
        acc.used += k * units_each
        return k

    def allowance(self, policy: str, unit_cost: float, units_each: float = 1.0):
        """How many actions at ``unit_cost`` (currency) and ``units_each`` the account would grant today.

        Books nothing: an action called today with that many ids or more
        grants exactly this many (fewer ids: all of them). ``math.inf`` when
        neither budget nor capacity binds; never negative.
        """
        acc = self.account(policy)
        spent, used = acc.spent, acc.used
        if self._ops.day >= acc.period_start + acc.period_days:
            spent = used = 0.0       # a new period starts today
        return max(affordable(acc, spent, used, unit_cost, units_each), 0)

    def remaining_budget(self, policy: str) -> float:
        """Currency left in the policy's budget for the current period (renewed today if its period ended)."""
        acc = self.accounts[policy]
        if self._ops.day >= acc.period_start + acc.period_days:
            return acc.budget
        return acc.budget - acc.spent

    def charge(self, policy: str, side: str, amount: float, incentive: bool = False) -> None:
        """Book a cost (currency) to a policy and a side; incentives go to ``incentive_cost``."""
        book = self.incentive_today if incentive else self.cost_today
        book[(policy, side)] = book.get((policy, side), 0.0) + float(amount)

    # -- levers the engine reads -------------------------------------------------------
    def onboarding_boost(self, side: str, ids):
        """Which of today's new agents ``ids`` get the onboarding boost (a mask: the first ones the budget
        allows, among those a pilot treats), and the boost (onboarding quality added)."""
        boosted = np.zeros(ids.size, dtype=bool)
        lever = self.levers.onboarding.get(side)
        if lever is None or ids.size == 0:
            return boosted, 0.0
        name, boost, cost = lever
        treatment, day = self._ops.treatment, self._ops.day
        eligible = np.flatnonzero(treatment.treated(side, ids, day)) if treatment is not None \
            else np.arange(ids.size)
        k = self.grant(name, eligible.size, cost, 1.0)
        boosted[eligible[:k]] = True
        self.charge(name, side, k * cost)
        return boosted, boost

    def referral_multiplier(self, side: str) -> tuple[float, float]:
        """Today's referral multiplier and bonus, currency (1, 0 when no programme or its budget is spent)."""
        lever = self.levers.referral.get(side)
        treatment = self._ops.treatment
        # a side-wide lever can follow a pilot's periods only (experiments/pilot.py refuses other designs)
        if lever is None or (treatment is not None and not treatment.period_treated(self._ops.day)):
            return 1.0, 0.0
        name, mult, bonus = lever
        if self.remaining_budget(name) < bonus:
            return 1.0, 0.0
        return mult, bonus

    def pay_referrals(self, side: str, count: int) -> None:
        """Pay today's ``count`` referral bonuses of ``side`` (an incentive cost)."""
        lever = self.levers.referral.get(side)
        if lever is None or count == 0:
            return
        name, _, bonus = lever
        self.grant(name, count, bonus, 0.0)
        self.charge(name, side, count * bonus, incentive=True)

    # -- the day's costs ---------------------------------------------------------------
    def costs_today(self, sides, policies, staff: int, staff_cost_per_day: float, desk_minutes: dict) -> dict:
        """The day's CS costs, currency.

        ``cs_cost``: desk staff (``staff`` at ``staff_cost_per_day``) +
        policies' extra staff + their actions; ``incentive_cost``: referral
        bonuses and win-back incentives. ``cs_cost_desk``: the reactive desk;
        ``cs_cost_<policy>``: all a policy spends, incentives included;
        ``cs_cost_<side>``: the desk's cost split by the desk minutes each
        side's tickets took today (``desk_minutes``), plus what policies spent
        on that side. So sum of per-side (or desk + per-policy) = cs_cost + incentive_cost.
        """
        desk = staff * staff_cost_per_day
        out = {"cs_cost_desk": desk}
        minutes = {s: desk_minutes.get(s, 0.0) for s in sides}
        total_minutes = sum(minutes.values())
        per_side = {s: (desk * minutes[s] / total_minutes if total_minutes else desk / len(sides)) for s in sides}
        policy_cost = {p.name: 0.0 for p in policies}
        cs, incentive = desk, 0.0
        for p in policies:
            extra = int(getattr(p, "extra_staff", 0))
            if extra:
                cost = extra * staff_cost_per_day
                policy_cost[p.name] += cost
                per_side[getattr(p, "staff_side", "drivers")] += cost
                cs += cost
        for (name, side), amount in self.cost_today.items():
            policy_cost[name] = policy_cost.get(name, 0.0) + amount
            per_side[side] += amount
            cs += amount
        for (name, side), amount in self.incentive_today.items():
            policy_cost[name] = policy_cost.get(name, 0.0) + amount
            per_side[side] += amount
            incentive += amount
        out["cs_cost"] = cs
        out["incentive_cost"] = incentive
        for name, v in policy_cost.items():
            out[f"cs_cost_{name}"] = v
        for s, v in per_side.items():
            out[f"cs_cost_{s}"] = v
        return out
