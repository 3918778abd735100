"""The engine's side of customer success: step 7 of the day, run by one thin coordinator.

:class:`CSOperations` owns the parts (the CS state of every agent, health,
tickets and the desk, disputes, the policies' accounts) and runs the day in
order: reactive tickets, health (on health days), the policies' ``act``
(through :class:`~sim.cs.actions.CSOps`, all a policy receives), the desk
until the end of the day and what its finished tickets do. The engine also
reads the structural levers (onboarding boost, referral bonus) and the day's
costs and health counts from it.
"""
from __future__ import annotations

import time

import numpy as np

from agents.base import Side
from sim.cs.accounts import AccountBook
from sim.cs.actions import CSOps
from sim.cs.disputes import Disputes
from sim.cs.health import Health
from sim.cs.state import grow_state, new_state
from sim.cs.tickets import Ticketing, TicketTable, add_csat_answers


class CSOperations:
    """The market's CS operations: the desk, health, accounts, and the policies that act through :attr:`actions`."""

    def __init__(self, model, policies=()):
        self.model = model
        self.conf = model.cfg.cs
        self.day = 0
        self.state: dict[str, Side] = new_state(model.sides)
        self.returns: dict[str, list] = {name: [] for name in model.sides}  # (ids, churn_day, return_day)
        self.policies: list = []
        self.treatment = getattr(model, "treatment", None)   # a pilot's sim.treatment.Assignment, or None
        # wall-clock seconds spent (for benchmarks; never written to results): the desk's submit and
        # advance, and all of operate() (which includes them)
        self.seconds = {"desk": 0.0, "cs_total": 0.0}
        self.events_today: dict | None = None          # the day's events, while policies act
        self.touch_answers: dict[str, list] = {}       # side -> CSAT answers after today's staff touches
        self.deactivated_today = 0
        self.health = Health(model, self.conf, self.state)
        self.ticketing = Ticketing(self)
        self.disputes = Disputes(self)
        self.book = AccountBook(self)
        self.actions = CSOps(self)
        self.start_day(0)
        self.set_policies(policies)

    @property
    def tickets(self) -> TicketTable:
        """Every ticket ever raised (sim.cs.tickets.TicketTable)."""
        return self.ticketing.table

    def set_policies(self, policies) -> None:
        """Replace the active policies (levers and accounts are rebuilt; desk staff adjusted)."""
        self.policies = list(policies)
        self.book.reset()
        for p in self.policies:
            p.setup(self.actions)
        self.ticketing.resize_desk(int(self.conf.staff)
                                   + sum(int(getattr(p, "extra_staff", 0)) for p in self.policies))

    def policy_index(self, policy) -> int:
        """The position of ``policy`` among the active ones (the owner recorded on its tickets)."""
        return self.policies.index(policy)

    def treated_only(self, side: str, ids) -> np.ndarray:
        """The agents among ``ids`` that a pilot lets policies act on today (all of them outside a pilot).

        The one filter of a pilot (sim/treatment.py): the view's lists
        (``alive_ids``, ``by_health``), every action and every lever pass
        through it, so a policy only ever reaches treated agents.
        """
        ids = np.asarray(ids, dtype=np.int64)
        if self.treatment is None or ids.size == 0:
            return ids
        return ids[self.treatment.treated(side, ids, self.day)]

    # ------------------------------------------------------------------ the day
    def start_day(self, day: int) -> None:
        """Engine, at the start of a day: reset the day's costs and counters."""
        self.day = day
        self.book.start_day()
        self.ticketing.start_day()
        self.touch_answers = {}
        self.deactivated_today = 0

    def grow_state(self) -> None:
        """Give the agents who joined since the last call their CS rows."""
        grow_state(self.state, self.model.sides)

    def operate(self, day: int, events: dict) -> dict:
        """Step 7 of the day: tickets, health, policies, desk. Returns the day's CS figures."""
        t0 = time.perf_counter()
        figures = self._operate(day, events)
        self.seconds["cs_total"] += time.perf_counter() - t0
        return figures

    def _operate(self, day: int, events: dict) -> dict:
        self.day = day
        self.grow_state()
        self.ticketing.raise_reactive(day, events)
        if day % self.conf.health.every_days == 0:
            self.health.compute(day)
        self.events_today = events
        for p in self.policies:
            p.act(day, self.actions)
        self.events_today = None
        figures = self.ticketing.advance(day)
        for side, parts in self.touch_answers.items():
            add_csat_answers(side, np.concatenate(parts), figures)
        return figures

    # ------------------------------------------------------------------ what the engine reads
    def onboarding_boost(self, side: str, ids: np.ndarray) -> tuple[np.ndarray, float]:
        """Which of today's new agents ``ids`` get an onboarding programme's boost (a mask), and the boost."""
        return self.book.onboarding_boost(side, ids)

    def referral_multiplier(self, side: str) -> tuple[float, float]:
        """Today's referral multiplier and bonus, currency (1, 0 when no programme or its budget is spent)."""
        return self.book.referral_multiplier(side)

    def pay_referrals(self, side: str, count: int) -> None:
        """Pay today's ``count`` referral bonuses of ``side``."""
        self.book.pay_referrals(side, count)

    def costs_today(self) -> dict:
        """The day's CS costs, currency (sim.cs.accounts.AccountBook.costs_today)."""
        return self.book.costs_today(self.model.sides, self.policies, self.conf.staff, self.conf.staff_cost_per_day,
                                     self.ticketing.desk_minutes_today)

    def band_counts(self) -> dict:
        """Alive agents per health band and vector, per side, at the last health computation."""
        return dict(self.health.counts)
