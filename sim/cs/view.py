"""What CS can see of one side: observable arrays, read-only; latent quantities raise.

CS sees signals, not minds: a policy reads activity, health, ratings,
tickets, tenure, segment and survey answers through an
:class:`ObservableView`, never satisfaction, hazards or true quality
(:data:`LATENT`), which raise :class:`LatentAccessError`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents import sellers as sellers_rules
from agents.base import Side

if TYPE_CHECKING:
    from sim.cs.operations import CSOperations

LATENT = frozenset({
    "satisfaction", "churn_threshold", "cum_hazard", "base_hazard", "activation_due", "quality",
    "unfair_low_ratings", "purchase_rate", "dropout_p", "next_purchase", "spend_rate", "platform_share",
    "expected_orders", "premium_hazard", "premium_threshold", "promoted_hazard", "promoted_threshold", "hours",
    "margin_rate", "exposure", "sales_value_rate", "outside_option"})


class LatentAccessError(PermissionError):
    """A policy tried to read a latent quantity (CS sees signals, not minds)."""


_RAW_FIELDS = frozenset({"segment", "channel", "join_day", "activation_day", "orders", "lives", "survey_answer"})
_STATE_FIELDS = frozenset({"open_tickets", "tickets", "health", "band", "vector", "touches", "last_touch_day",
                           "nudges", "last_nudge_day", "offers", "last_offer_day", "appeal_open"})


class ObservableView:
    """What CS can see of one side: observable arrays, as read-only copies (all agents ever created).

    Index by agent id; ``alive_ids`` lists the active accounts. Latent
    quantities (satisfaction, hazards, true quality ...) raise
    :class:`LatentAccessError`.

    Each observable attribute is a fresh read-only copy of the whole side.
    Policies that need a few agents only read them with :meth:`at` (work
    proportional to the ids asked for), and find the lowest-health agents
    with :attr:`by_health` (computed once per health computation).
    """

    __slots__ = ("_ops", "_name")
    OBSERVABLE = ("n", "alive", "alive_ids", "segment", "channel", "join_day", "tenure", "activated",
                  "activation_day", "days_idle", "orders", "rating", "open_tickets", "tickets",
                  "survey_answer", "health", "health_trend", "band", "vector", "churn_day", "lives",
                  "deactivated", "touches", "last_touch_day", "nudges", "last_nudge_day", "offers",
                  "last_offer_day", "appeal_open", "premium", "promoted")

    def __init__(self, ops: "CSOperations", name: str):
        object.__setattr__(self, "_ops", ops)
        object.__setattr__(self, "_name", name)

    def __getattr__(self, item):
        if item in LATENT:
            raise LatentAccessError(
                f"CS cannot see `{item}` of {self._name}: it is latent. Policies read observables only: "
                + ", ".join(self.OBSERVABLE))
        raise AttributeError(f"ObservableView of {self._name} has no `{item}`; observables: "
                             + ", ".join(self.OBSERVABLE))

    def __setattr__(self, key, value):
        raise AttributeError("ObservableView is read-only")

    def __reduce__(self):
        raise TypeError("ObservableView cannot be copied")

    # helpers
    def _side(self) -> Side:
        return self._ops.model.sides[self._name]

    def _st(self) -> Side:
        return self._ops.state[self._name]

    @staticmethod
    def _ro(a) -> np.ndarray:
        """A read-only array the engine does not hold: views of engine arrays are copied, fresh results kept."""
        if not isinstance(a, np.ndarray) or a.base is not None:
            a = np.array(a, copy=True)
        a.flags.writeable = False
        return a

    def _values(self, field: str, ids=None) -> np.ndarray:
        """``field`` of every agent (``ids`` None; may be a view of engine state) or of ``ids`` only."""
        s, name = self._side(), self._name

        def take(a):
            return a if ids is None else a[ids]

        if field in _RAW_FIELDS:
            return take(getattr(s, field))
        if field in _STATE_FIELDS:
            return take(getattr(self._st(), field))
        if field == "alive":
            alive = take(s.alive)
            return np.ones_like(alive) if name == "buyers" else alive
        if field == "tenure":
            return self._ops.day - take(s.join_day)
        if field == "activated":
            return take(s.activation_day) >= 0
        if field == "days_idle":
            last = take(s.last_active_day)
            return self._ops.day - np.where(last >= 0, last, take(s.join_day))
        if field == "health_trend":
            st = self._st()
            return take(st.health) - take(st.health_mean)
        if field == "churn_day":
            churn_day = take(s.churn_day)
            return np.full_like(churn_day, -1) if name == "buyers" else churn_day
        if field == "deactivated":
            return take(s.deactivated) if name == "drivers" else np.zeros_like(take(s.alive))
        if field in sellers_rules.PRODUCTS:   # what the account pays for is on its bill
            return take(getattr(s, field)) if name == "sellers" else np.zeros_like(take(s.alive))
        if field == "rating":
            return take(self._ops.health.rating(name))
        if field in LATENT:
            getattr(self, field)    # raises LatentAccessError
        raise AttributeError(f"ObservableView.at: `{field}` is not a per-agent observable of {name}; "
                             "observables: " + ", ".join(f for f in self.OBSERVABLE if f not in ("n", "alive_ids")))

    def at(self, field: str, ids) -> np.ndarray:
        """Observable ``field`` of agents ``ids`` only (an index array): ``getattr(view, field)[ids]``.

        A read-only copy, computed for those agents only, so the work is
        proportional to ``len(ids)`` rather than to the side. Latent fields
        raise :class:`LatentAccessError`.
        """
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iub":
            raise TypeError(f"ObservableView.at: ids must be an array of agent ids or a mask, not {ids.dtype}")
        return self._ro(self._values(field, ids))

    @property
    def by_health(self) -> np.ndarray:
        """Ids of the agents scored at the last health computation, lowest health first (ties by id).

        Computed once per health computation (read-only); agents who joined
        since (not scored yet) are not in it. Filtering it keeps the order,
        so the first eligible ids are the lowest-health eligible agents.
        """
        rank = self._ops.health.rank(self._name)
        return rank.view() if self._ops.treatment is None else self._ro(self._ops.treated_only(self._name, rank))

    @property
    def name(self) -> str:
        return self._name

    @property
    def day(self) -> int:
        return self._ops.day

    @property
    def n(self) -> int:
        return self._side().n

    @property
    def alive(self):
        """Active accounts. For buyers, silent drop-out is not observed: use ``days_idle`` instead."""
        return self._ro(self._values("alive"))

    @property
    def alive_ids(self):
        return self._ro(self._ops.treated_only(self._name, np.flatnonzero(self._values("alive"))))

    segment = property(lambda self: self._ro(self._values("segment")))
    channel = property(lambda self: self._ro(self._values("channel")))
    join_day = property(lambda self: self._ro(self._values("join_day")))
    tenure = property(lambda self: self._ro(self._values("tenure")))
    activated = property(lambda self: self._ro(self._values("activated")))
    activation_day = property(lambda self: self._ro(self._values("activation_day")))
    orders = property(lambda self: self._ro(self._values("orders")))
    lives = property(lambda self: self._ro(self._values("lives")))
    survey_answer = property(lambda self: self._ro(self._values("survey_answer")))
    open_tickets = property(lambda self: self._ro(self._values("open_tickets")))
    tickets = property(lambda self: self._ro(self._values("tickets")))
    health = property(lambda self: self._ro(self._values("health")))
    health_trend = property(lambda self: self._ro(self._values("health_trend")))
    touches = property(lambda self: self._ro(self._values("touches")))
    last_touch_day = property(lambda self: self._ro(self._values("last_touch_day")))
    nudges = property(lambda self: self._ro(self._values("nudges")))
    last_nudge_day = property(lambda self: self._ro(self._values("last_nudge_day")))
    offers = property(lambda self: self._ro(self._values("offers")))
    last_offer_day = property(lambda self: self._ro(self._values("last_offer_day")))
    appeal_open = property(lambda self: self._ro(self._values("appeal_open")))

    @property
    def days_idle(self):
        """Days since the last order, trip or sale (since joining if none yet)."""
        return self._ro(self._values("days_idle"))

    @property
    def churn_day(self):
        """Day the account closed (-1: open). Buyers' silent drop-out is latent: all -1."""
        return self._ro(self._values("churn_day"))

    @property
    def deactivated(self):
        return self._ro(self._values("deactivated"))

    @property
    def premium(self):
        """Sellers holding the premium plan (False on other sides)."""
        return self._ro(self._values("premium"))

    @property
    def promoted(self):
        """Sellers paying for promoted listings (False on other sides)."""
        return self._ro(self._values("promoted"))

    @property
    def rating(self):
        """Mean rating shown on the platform (drivers rolling, sellers shrunk); NaN for buyers."""
        return self._ro(self._values("rating"))

    @property
    def band(self):
        """Health band: 0 red, 1 yellow, 2 green (-1: joined since the last weekly scoring)."""
        return self._ro(self._values("band"))

    @property
    def vector(self):
        """Health vector: -1 negative, 0 neutral, 1 positive (from health and its trend; -2: not scored)."""
        return self._ro(self._values("vector"))
