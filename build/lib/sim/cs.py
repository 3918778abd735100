"""Customer-success operations: the desk, what CS can see, and what it can do.

:class:`CSOps` is the market's CS interface. Each day (step 7 of the day) the
model hands it the day's events; it raises reactive tickets (failed orders,
bad trips, onboarding questions, payout problems), computes every agent's
health score from observables, lets the active policies act, advances the
SimPy desk (sim/desk.py) by one day and applies what the finished tickets do
(satisfaction, CSAT; a policy's own tickets, such as disputes, through its
``on_tickets``).

Policies (policies/) see the market only through :meth:`CSOps.view`, an
:class:`ObservableView` of one side that exposes observable arrays as
read-only copies (or, with ``view.at(field, ids)``, just the agents asked
for; ``view.by_health`` ranks them) and raises :class:`LatentAccessError` on
latent ones such as satisfaction. They act only through the action methods of :class:`CSOps`
(``contact``, ``nudge``, ``offer_return``, ``submit_tickets`` ...), each of
which charges the policy's account and refuses what is beyond its budget or
capacity.

Every random draw comes from the run's counter-based streams, keyed by
(day, agent id, ticket kind and its event) so that two arms see the same luck
for the same event. Work per day is proportional to tickets and to the
agents acted on, plus one compiled pass over each side on health days.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from agents import buyers as buyers_rules
from agents import drivers as drivers_rules
from agents import sellers as sellers_rules
from agents.base import Side
from agents.lifecycle import add_counts, churn, close_onboarding_gap, move_satisfaction
from sim.desk import CSDesk
from sim.streams import ATTRIBUTE_DAY, combine_at, combine_keys, uniform_at

KINDS = ("failed_order", "bad_order", "onboarding", "payout", "rating_dispute", "deactivation_appeal",
         "outreach")
KIND = {name: code for code, name in enumerate(KINDS)}
REACTIVE = ("failed_order", "bad_order", "onboarding", "payout")
SIDE_NAMES = ("buyers", "sellers", "drivers")
SIDE_CODE = {name: code for code, name in enumerate(SIDE_NAMES)}
BANDS = ("red", "yellow", "green")
VECTORS = ("negative", "neutral", "positive")
LONG_AGO = -(10**6)

CS_FIELDS = {
    "open_tickets": (np.int16, 0),
    "tickets": (np.int32, 0),               # tickets raised, ever
    "bad_contact_day": (np.int32, LONG_AGO),  # last contact that ended badly (abandoned or CSAT 1-2)
    "orders_seen": (np.int32, 0),           # orders counter at yesterday's update
    "activity_rate": (np.float32, 0.0),     # recent activity, events per day (exponentially weighted)
    "health": (np.float32, np.nan),         # 0-100
    "health_mean": (np.float32, np.nan),    # its exponentially weighted mean (for the trend)
    "band": (np.int8, -1),                  # health band at the last computation (-1: not scored yet)
    "vector": (np.int8, -2),                # health vector at the last computation (-2: not scored yet)
    "touches": (np.int16, 0),               # staff contacts by policies
    "last_touch_day": (np.int32, LONG_AGO),
    "nudges": (np.int16, 0),                # automated messages
    "last_nudge_day": (np.int32, LONG_AGO),
    "offers": (np.int16, 0),                # win-back offers
    "last_offer_day": (np.int32, LONG_AGO),
    "appeal_open": (np.bool_, False),       # drivers: a deactivation appeal is under review
    "appeals": (np.int16, 0),
}

LATENT = frozenset({
    "satisfaction", "churn_threshold", "cum_hazard", "base_hazard", "activation_due", "quality",
    "unfair_low_ratings", "purchase_rate", "dropout_p", "next_purchase", "spend_rate", "platform_share",
    "expected_orders", "premium_hazard", "premium_threshold", "promoted_hazard", "promoted_threshold", "hours",
    "margin_rate", "exposure", "sales_value_rate", "outside_option"})


# ---------------------------------------------------------------------- compiled passes
# Bit-identical to the NumPy expressions they replace (tests/test_cs_speed_equivalence.py checks
# them against straightforward NumPy references): the dtypes of every intermediate follow NumPy's
# promotion rules of those expressions (float32 where NumPy computes in float32).

@njit(cache=True)
def _raised(day_key, ids, subs, side, kind, rate):
    """Positions j whose event raises a ticket: the draw of stream ``day_key`` for agent ids[j] with the
    ticket's key (CSOps._key of subs[j], or 0 when ``subs`` is empty; kind; side) is below ``rate``."""
    out = np.empty(ids.size, np.int64)
    m = 0
    for j in range(ids.size):
        sub = subs[j] if subs.size else 0
        if uniform_at(day_key, ids[j], combine_at(combine_at(combine_at(0, sub, 0), kind, 1), side, 2)) < rate:
            out[m] = j
            m += 1
    return out[:m]


@njit(cache=True)
def _skip_activated(activation_day, start):
    """First id >= ``start`` not yet activated (activation is permanent, so the prefix only grows)."""
    i = start
    n = activation_day.size
    while i < n and activation_day[i] >= 0:
        i += 1
    return i


_BLOCK = 4096


@njit(cache=True, error_model="numpy")
def _activity_block(orders, orders_seen, activity_rate, every, activity_alpha):
    for j in range(orders.size):
        o = orders[j]
        # float32(o - seen) as NumPy computes it (the difference of two int32 is exact in float64)
        recent = np.float32(np.float64(o) - np.float64(orders_seen[j])) / every
        orders_seen[j] = o
        ar = activity_rate[j]
        activity_rate[j] = ar + (recent - ar) * activity_alpha


@njit(cache=True, error_model="numpy")
def _recency_frequency_block(fday, orders, activity_rate, activation_day, join_day, last_active_day, recency,
                             frequency, recency_scale):
    for j in range(orders.size):
        act = activation_day[j]
        jd = join_day[j]
        la = last_active_day[j]
        active_days = max(fday - np.float64(act if act >= 0 else jd) + 1.0, 1.0)   # whole days, exact
        idle = fday - np.float64(la if la >= 0 else jd)
        o = np.float64(orders[j])
        usual_gap = active_days / max(o, 1.0) if o > 0 else active_days
        recency[j] = 1.0 / (1.0 + idle / max(usual_gap, 1.0) / recency_scale)
        ratio = np.float64(activity_rate[j]) / max(o / active_days, 1e-9)
        frequency[j] = min(1.0, ratio) if o > 0 else 0.5


@njit(cache=True, error_model="numpy")
def _other_signals_block(fday, activation_day, join_day, open_tickets, bad_contact_day, survey_answer, tickets,
                         onboarding, tenure, survey, ticket_memory, question_days, tenure_full, neutral):
    for j in range(join_day.size):
        bad = 0.5 if fday - np.float64(bad_contact_day[j]) <= ticket_memory else 0.0
        tickets[j] = min(max(1.0 - 0.5 * np.float64(open_tickets[j]) - bad, 0.0), 1.0)
        waited = fday - np.float64(join_day[j])
        waiting = min(max(1 - waited / question_days, 0.0), 1.0)
        onboarding[j] = 1.0 if activation_day[j] >= 0 else waiting
        tenure[j] = min(1.0, waited / tenure_full)
        sa = survey_answer[j]
        answer = np.float64(sa) / 10.0
        survey[j] = answer if sa >= 0 else neutral


@njit(cache=True, error_model="numpy")
def _weighted_block(recency, frequency, rating_term, tickets, onboarding, tenure, survey, out, weights, weight_sum,
                    has_rating):
    # in the order of the signals; a zero weight adds +0.0 to a sum >= 0, the same as leaving out its
    # (finite, non-negative) signal
    w0, w1, w3, w4, w5, w6 = weights[0], weights[1], weights[3], weights[4], weights[5], weights[6]
    if has_rating:
        for j in range(out.size):
            acc = w0 * recency[j] + w1 * frequency[j] + np.float64(rating_term[j]) + w3 * tickets[j]
            out[j] = 100.0 * (acc + w4 * onboarding[j] + w5 * tenure[j] + w6 * survey[j]) / weight_sum
    else:
        for j in range(out.size):
            acc = w0 * recency[j] + w1 * frequency[j] + w3 * tickets[j] + w4 * onboarding[j]
            out[j] = 100.0 * (acc + w5 * tenure[j] + w6 * survey[j]) / weight_sum


@njit(cache=True, error_model="numpy")
def _store_health_block(h64, health, health_mean, trend_alpha):
    for j in range(h64.size):
        h = h64[j]
        health[j] = np.float32(h)
        hm = np.float64(health_mean[j])
        health_mean[j] = np.float32(h if np.isnan(hm) else hm + (h - hm) * trend_alpha)


@njit(cache=True, error_model="numpy")
def _band_vector_block(health, health_mean, band, vector, red_below, green_from, trend_threshold):
    # float32 comparisons, as NumPy compares a float32 array with a Python float
    neg_threshold = -trend_threshold
    zero = np.float32(0.0)
    for j in range(health.size):
        h = health[j]
        trend = h - health_mean[j]
        b = 0 if h < red_below else (1 if h < green_from else 2)
        negative = (trend <= neg_threshold) | ((b == 0) & (trend <= zero))
        positive = (trend >= trend_threshold) | ((b == 2) & (trend >= zero))
        v = -1 if negative else (1 if positive else 0)
        scored = not np.isnan(h)
        band[j] = b if scored else -1
        vector[j] = v if scored else -2


@njit(cache=True)
def _count_block(alive, band, vector, counts):
    c0 = c1 = c2 = c3 = c4 = c5 = 0
    for j in range(alive.size):
        a = alive[j]
        b = band[j]
        v = vector[j]
        c0 += a & (b == 0)
        c1 += a & (b == 1)
        c2 += a & (b == 2)
        c3 += a & (v == -1)
        c4 += a & (v == 0)
        c5 += a & (v == 1)
    counts[0] += c0
    counts[1] += c1
    counts[2] += c2
    counts[3] += c3
    counts[4] += c4
    counts[5] += c5


@njit(cache=True)
def _compact_block(alive, values, out, m):
    for j in range(alive.size):
        if alive[j]:
            out[m] = values[j]
            m += 1
    return m


@njit(cache=True, error_model="numpy")
def _health_pass(day, orders, orders_seen, activity_rate, activation_day, join_day, last_active_day,
                 rating_term, open_tickets, bad_contact_day, survey_answer, alive, health, health_mean, band,
                 vector, alive_health, counts, every, activity_alpha, weights, weight_sum, recency_scale,
                 ticket_memory, question_days, tenure_full, neutral, trend_alpha, red_below, green_from,
                 trend_threshold):
    """One side's health update (CSOps.compute_health; the formulas are those of CSOps.health_parts).

    Updates orders_seen, activity_rate, health, health_mean, band and vector of every agent; counts
    alive agents per band (counts[0:3]) and vector (counts[3:6], negative first) and copies alive
    agents' health to ``alive_health`` (returns how many). ``rating_term`` is the weighted rating signal
    as NumPy computes it (weight * CSOps._rating_score; ignored when the weight is 0). float32
    arguments: every, activity_alpha, red_below, green_from, trend_threshold.

    It goes through the side in blocks of a few thousand agents, each step a simple loop over
    contiguous slices that the compiler vectorises, with the intermediate signals in small buffers.
    """
    n = health.size
    fday = np.float64(day)
    has_rating = weights[2] != 0.0
    rec = np.empty(_BLOCK)
    fre = np.empty(_BLOCK)
    tik = np.empty(_BLOCK)
    onb = np.empty(_BLOCK)
    ten = np.empty(_BLOCK)
    sur = np.empty(_BLOCK)
    h64 = np.empty(_BLOCK)
    m = 0
    for lo in range(0, n, _BLOCK):
        hi = min(lo + _BLOCK, n)
        k = hi - lo
        _activity_block(orders[lo:hi], orders_seen[lo:hi], activity_rate[lo:hi], every, activity_alpha)
        _recency_frequency_block(fday, orders[lo:hi], activity_rate[lo:hi], activation_day[lo:hi], join_day[lo:hi],
                                 last_active_day[lo:hi], rec[:k], fre[:k], recency_scale)
        _other_signals_block(fday, activation_day[lo:hi], join_day[lo:hi], open_tickets[lo:hi],
                             bad_contact_day[lo:hi], survey_answer[lo:hi], tik[:k], onb[:k], ten[:k], sur[:k],
                             ticket_memory, question_days, tenure_full, neutral)
        _weighted_block(rec[:k], fre[:k], rating_term[lo:hi] if has_rating else rating_term, tik[:k], onb[:k],
                        ten[:k], sur[:k], h64[:k], weights, weight_sum, has_rating)
        _store_health_block(h64[:k], health[lo:hi], health_mean[lo:hi], trend_alpha)
        _band_vector_block(health[lo:hi], health_mean[lo:hi], band[lo:hi], vector[lo:hi], red_below, green_from,
                           trend_threshold)
        _count_block(alive[lo:hi], band[lo:hi], vector[lo:hi], counts)
        m = _compact_block(alive[lo:hi], health[lo:hi], alive_health, m)
    return m


@njit(cache=True)
def _rank_by_health(health):
    """Ids with a health score (not NaN), lowest first, ties by id: a stable LSD radix sort on the bits."""
    n = health.size
    bits = health.view(np.uint32)
    keys = np.empty(n, np.uint32)
    ids = np.empty(n, np.int64)
    m = 0
    for i in range(n):
        b = bits[i]
        if (b & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000):
            continue                      # NaN: not scored
        if b == np.uint32(0x80000000):
            b = np.uint32(0)              # -0.0 ranks as 0.0
        if b & np.uint32(0x80000000):
            keys[m] = ~b
        else:
            keys[m] = b | np.uint32(0x80000000)
        ids[m] = i
        m += 1
    keys = keys[:m].copy()
    ids = ids[:m].copy()
    keys2 = np.empty(m, np.uint32)
    ids2 = np.empty(m, np.int64)
    count = np.empty(2048, np.int64)
    for shift in (0, 11, 22):
        count[:] = 0
        for j in range(m):
            count[(keys[j] >> np.uint32(shift)) & np.uint32(2047)] += 1
        if count.max() == m:
            continue                      # every key has this digit: the pass changes nothing
        total = 0
        for d in range(2048):
            c = count[d]
            count[d] = total
            total += c
        for j in range(m):
            d = (keys[j] >> np.uint32(shift)) & np.uint32(2047)
            p = count[d]
            count[d] = p + 1
            keys2[p] = keys[j]
            ids2[p] = ids[j]
        keys, keys2 = keys2, keys
        ids, ids2 = ids2, ids
    return ids


class LatentAccessError(PermissionError):
    """A policy tried to read a latent quantity (CS sees signals, not minds)."""


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
class Finished:
    """Tickets a policy submitted that finished today (what the policy may know of them)."""

    side: str
    agents: np.ndarray
    kind: np.ndarray          # codes of KIND
    resolved: np.ndarray      # False: abandoned
    wait_days: np.ndarray
    tickets: np.ndarray       # ticket ids, for the CS actions that settle them

    def subset(self, rows) -> "Finished":
        """The tickets at ``rows`` (a mask or positions)."""
        return Finished(self.side, self.agents[rows], self.kind[rows], self.resolved[rows], self.wait_days[rows],
                        self.tickets[rows])


@dataclass
class Levers:
    """Structural levers policies set once (engine reads them in acquisition and churn)."""

    onboarding: dict = field(default_factory=dict)   # side -> (policy, boost, cost per agent)
    referral: dict = field(default_factory=dict)     # side -> (policy, rate multiplier, bonus)


class _Tickets:
    """The table of every ticket ever raised, one row per ticket id (grows by doubling)."""

    COLUMNS = {"side": np.int8, "agent": np.int64, "kind": np.int8, "day": np.int32, "sub": np.int64,
               "arrival": np.float64, "service": np.float64, "owner": np.int16, "flag": np.bool_,
               "score": np.float32, "finished": np.bool_}

    def __init__(self):
        self.n = 0
        self.cols = {k: np.zeros(1024, dtype=dt) for k, dt in self.COLUMNS.items()}

    def add(self, count: int) -> np.ndarray:
        stop = self.n + count
        size = self.cols["side"].size
        if stop > size:
            while size < stop:
                size *= 2
            for k, col in self.cols.items():
                bigger = np.zeros(size, dtype=col.dtype)
                bigger[: self.n] = col[: self.n]
                self.cols[k] = bigger
        ids = np.arange(self.n, stop, dtype=np.int64)
        self.n = stop
        return ids

    def __getitem__(self, key: str) -> np.ndarray:
        return self.cols[key]


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

    def __init__(self, ops: "CSOps", name: str):
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
        return self._ops._model.sides[self._name]

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
            return take(self._ops._rating(name))
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
        rank = self._ops._health_rank(self._name)
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


class CSOps:
    """The market's CS interface: the desk, health, accounts and actions policies may take."""

    def __init__(self, model, policies=()):
        self._model = model
        self.conf = model.cfg.cs
        self.day = 0
        self.state: dict[str, Side] = {name: Side(f"cs_{name}", {}, capacity=s._capacity)
                                       for name, s in model.sides.items()}
        for st in self.state.values():
            st.fields = dict(CS_FIELDS)
            st._data = {f: np.empty(st._capacity, dtype=dt) for f, (dt, _) in CS_FIELDS.items()}  # filled on add
        self.tickets = _Tickets()
        self.returns: dict[str, list] = {name: [] for name in model.sides}  # (ids, churn_day, return_day)
        self.policies: list = []
        self.levers = Levers()
        self.accounts: dict[str, Account] = {}
        self.cost_today: dict[tuple[str, str], float] = {}
        self.incentive_today: dict[tuple[str, str], float] = {}
        self._finished: dict[int, list] = {}
        self._desk_minutes_today: dict[str, float] = {}
        self._pending_staff: int | None = None
        self.desk_staff = int(self.conf.staff)
        self.desk = CSDesk(self.desk_staff) if self.desk_staff > 0 else None
        self._events = None
        self._bands: dict = {}
        self._ranks: dict[str, np.ndarray] = {}      # side -> ids by health, for the last computation
        self._settled: dict[str, int] = {}          # side -> ids below this have all been activated
        self.treatment = getattr(model, "treatment", None)   # a pilot's sim.treatment.Assignment, or None
        # wall-clock seconds spent (for benchmarks; never written to results): the desk's submit and
        # advance, and all of operate() (which includes them)
        self.seconds = {"desk": 0.0, "cs_total": 0.0}
        self.start_day(0)
        self.set_policies(policies)

    # ------------------------------------------------------------------ policies
    def set_policies(self, policies) -> None:
        """Replace the active policies (levers and accounts are rebuilt; desk staff adjusted)."""
        self.policies = list(policies)
        self.levers = Levers()
        self.accounts = {}
        for p in self.policies:
            p.setup(self)
        self._resize_desk(int(self.conf.staff) + sum(int(getattr(p, "extra_staff", 0)) for p in self.policies))

    def _resize_desk(self, staff: int) -> None:
        if staff == self.desk_staff:
            self._pending_staff = None
            return
        if self.desk is None or (self.desk.queue_length == 0 and self.desk.in_service == 0):
            now = self.desk.now if self.desk is not None else float(self.day)
            self.desk = CSDesk(staff) if staff > 0 else None
            if self.desk is not None and now > 0:
                st = self.desk.state()
                st["time"] = now
                self.desk = CSDesk.from_state(st)
            self.desk_staff, self._pending_staff = staff, None
        else:
            self._pending_staff = staff   # applied on the first day the desk is empty

    # ------------------------------------------------------------------ accounts
    def open_account(self, policy: str, period_days: int, budget: float = math.inf,
                     capacity: float = math.inf) -> None:
        """Give ``policy`` a budget (currency) and a capacity (units) renewed every ``period_days``."""
        self.accounts[policy] = Account(int(period_days), float(budget), float(capacity),
                                        period_start=self.day - self.day % max(int(period_days), 1))

    def _grant(self, policy: str, wanted: int, unit_cost: float, units_each: float = 1.0) -> int:
        """How many of ``wanted`` actions the policy's account allows (and book them)."""
        acc = self._account(policy)
        if self.day >= acc.period_start + acc.period_days:
            acc.period_start = self.day - (self.day - acc.period_start) % acc.period_days
            acc.spent = acc.used = 0.0
        k = max(min(wanted, self._affordable(acc, acc.spent, acc.used, unit_cost, units_each)), 0)
        acc.spent += k * unit_cost
        acc.used += k * units_each
        return k

    def _account(self, policy: str) -> Account:
        acc = self.accounts.get(policy)
        if acc is None:
            raise KeyError(f"policy {policy!r} has no account: call open_account in setup()")
        return acc

    @staticmethod
    def _affordable(acc: Account, spent: float, used: float, unit_cost: float, units_each: float):
        """How many actions the budget and capacity left allow (math.inf: no limit)."""
        k = math.inf
        if unit_cost > 0 and math.isfinite(acc.budget):
            k = min(k, int(math.floor((acc.budget - spent) / unit_cost + 1e-9)))
        if units_each > 0 and math.isfinite(acc.capacity):
            k = min(k, int(math.floor((acc.capacity - used) / units_each + 1e-9)))
        return k

    def allowance(self, policy: str, unit_cost: float, units_each: float = 1.0):
        """How many actions at ``unit_cost`` (currency) and ``units_each`` the account would grant today.

        Books nothing: an action method called today with that many ids or
        more grants exactly this many (fewer ids: all of them). ``math.inf``
        when neither budget nor capacity binds; never negative.
        """
        acc = self._account(policy)
        spent, used = acc.spent, acc.used
        if self.day >= acc.period_start + acc.period_days:
            spent = used = 0.0       # a new period starts today
        return max(self._affordable(acc, spent, used, unit_cost, units_each), 0)

    def remaining_budget(self, policy: str) -> float:
        acc = self.accounts[policy]
        if self.day >= acc.period_start + acc.period_days:
            return acc.budget
        return acc.budget - acc.spent

    def charge(self, policy: str, side: str, amount: float, incentive: bool = False) -> None:
        """Book a cost (currency) to a policy and a side; incentives go to ``incentive_cost``."""
        book = self.incentive_today if incentive else self.cost_today
        book[(policy, side)] = book.get((policy, side), 0.0) + float(amount)

    # ------------------------------------------------------------------ what CS sees
    def view(self, side: str) -> ObservableView:
        if side not in self._model.sides:
            raise KeyError(f"no side {side!r} in market {self._model.market.name}")
        return ObservableView(self, side)

    @property
    def sides(self) -> tuple[str, ...]:
        return tuple(self._model.sides)

    @property
    def market_name(self) -> str:
        return self._model.market.name

    def _rating(self, name: str) -> np.ndarray:
        s = self._model.sides[name]
        if name == "drivers":
            return np.where(s.rating_count > 0, s.rating_mean, np.nan).astype(np.float32)
        if name == "sellers":
            c = self._model.market.sellers.choice
            return sellers_rules.rating(s, c.rating_prior_mean, c.rating_prior_count)
        return np.full(s.n, np.nan, dtype=np.float32)

    def _rating_score(self, name: str) -> np.ndarray:
        """The rating health signal in [0, 1] (1 where there is no rating)."""
        h = self.conf.health
        rating = self._rating(name)
        return np.where(np.isnan(rating), 1.0, np.clip((rating - h.rating_floor) / (5 - h.rating_floor), 0, 1))

    def _band(self, health: np.ndarray) -> np.ndarray:
        h = self.conf.health
        band = np.where(health < h.red_below, 0, np.where(health < h.green_from, 1, 2))
        return np.where(np.isnan(health), -1, band).astype(np.int8)   # -1: not scored yet (joined since)

    def compute_health(self, day: int) -> None:
        """Health 0-100 of every agent of every side from observables only (one compiled call per side).

        The signals and weights are those of :meth:`health_parts`; the
        activity rate is updated first from the orders since the last
        computation. Also stores each agent's band and vector and counts
        alive agents per band and vector (reported by :meth:`band_counts`).
        """
        h = self.conf.health
        w = h.weights
        every = h.every_days
        neutral = self._model.market.satisfaction.neutral
        counts_out = {}
        self._ranks = {}
        for name, s in self._model.sides.items():
            st = self.state[name]
            weights = [w.recency, w.frequency, 0.0 if name == "buyers" else w.rating, w.tickets, w.onboarding,
                       w.tenure, w.survey]
            rating_term = (np.ascontiguousarray(weights[2] * self._rating_score(name)) if weights[2]
                           else np.empty(0))
            counts = np.zeros(6, np.int64)
            alive_health = np.empty(s.n, np.float32)
            k = _health_pass(
                int(day), s.orders, st.orders_seen, st.activity_rate, s.activation_day, s.join_day,
                s.last_active_day, rating_term, st.open_tickets,
                st.bad_contact_day, s.survey_answer, s.alive, st.health, st.health_mean, st.band, st.vector,
                alive_health, counts, np.float32(every), np.float32(min(1.0, every / h.frequency_window_days)),
                np.array(weights, np.float64), float(sum(weights)), float(h.recency_scale),
                float(h.ticket_memory_days),
                float(max(self.conf.onboarding_question_days, 1)), float(h.tenure_full_days), float(neutral),
                float(min(1.0, h.every_days / h.trend_days)), np.float32(h.red_below), np.float32(h.green_from),
                np.float32(h.trend_threshold))
            for code, b in enumerate(BANDS):
                counts_out[f"{name}_health_{b}"] = int(counts[code])
            for code, v in enumerate(VECTORS):
                counts_out[f"{name}_vector_{v}"] = int(counts[3 + code])
            counts_out[f"{name}_health_mean"] = float(alive_health[:k].mean()) if k else math.nan
        self._health_counts = counts_out

    def _health_rank(self, name: str) -> np.ndarray:
        """Scored ids of a side by health, lowest first (ties by id); cached until health is recomputed."""
        rank = self._ranks.get(name)
        if rank is None:
            rank = self._ranks[name] = np.array(_rank_by_health(self.state[name].health))
        rank.flags.writeable = False    # numpy-owned and read-only (also after a deepcopy), so views stay read-only
        return rank

    def health_parts(self, name: str, day: int) -> tuple[dict, list]:
        """The health signals of every agent of a side, each in [0, 1], and their weights."""
        h = self.conf.health
        w = h.weights
        s, st = self._model.sides[name], self.state[name]
        start = np.where(s.activation_day >= 0, s.activation_day, s.join_day)
        active_days = np.maximum(day - start + 1, 1).astype(np.float64)
        lifetime_rate = s.orders / active_days
        usual_gap = np.where(s.orders > 0, active_days / np.maximum(s.orders, 1), active_days)
        last = np.where(s.last_active_day >= 0, s.last_active_day, s.join_day)
        idle = day - last
        recency = 1.0 / (1.0 + idle / np.maximum(usual_gap, 1.0) / h.recency_scale)
        ratio = st.activity_rate / np.maximum(lifetime_rate, 1e-9)
        frequency = np.where(s.orders > 0, np.minimum(1.0, ratio), 0.5)
        rating_score = self._rating_score(name)
        bad_recent = (day - st.bad_contact_day) <= h.ticket_memory_days
        tickets = np.clip(1.0 - 0.5 * st.open_tickets - 0.5 * bad_recent, 0, 1)
        waited = day - s.join_day
        onboarding = np.where(s.activation_day >= 0, 1.0,
                              np.clip(1 - waited / max(self.conf.onboarding_question_days, 1), 0, 1))
        tenure = np.minimum(1.0, waited / h.tenure_full_days)
        survey = np.where(s.survey_answer >= 0, s.survey_answer / 10.0, self._model.market.satisfaction.neutral)
        parts = dict(recency=recency, frequency=frequency, rating=rating_score, tickets=tickets,
                     onboarding=onboarding, tenure=tenure, survey=survey)
        weights = [w.recency, w.frequency, 0.0 if name == "buyers" else w.rating, w.tickets, w.onboarding,
                   w.tenure, w.survey]
        return parts, weights

    # ------------------------------------------------------------------ the day
    def start_day(self, day: int) -> None:
        """Engine, at the start of a day: reset the day's costs and counters."""
        self.day = day
        self.cost_today, self.incentive_today = {}, {}
        self._desk_minutes_today = {}
        self._touch_answers = {}
        self.deactivated_today = 0

    def _grow_state(self) -> None:
        for name, s in self._model.sides.items():
            st = self.state[name]
            if st.n < s.n:
                if st._capacity < s.n:
                    st.reserve(max(s._capacity, s.n))
                st.add(s.n - st.n)

    def operate(self, day: int, events: dict) -> dict:
        """Step 7 of the day: tickets, health, policies, desk. Returns the day's CS figures."""
        t0 = time.perf_counter()
        figures = self._operate(day, events)
        self.seconds["cs_total"] += time.perf_counter() - t0
        return figures

    def _operate(self, day: int, events: dict) -> dict:
        self.day = day
        self._grow_state()
        self._reactive_tickets(day, events)
        if day % self.conf.health.every_days == 0:
            self.compute_health(day)
            self._bands = self._health_counts
        self._events = events
        for p in self.policies:
            p.act(day, self)
        self._events = None
        figures = self._advance_desk(day)
        for side, parts in self._touch_answers.items():
            self._csat_answers(side, np.concatenate(parts), figures)
        return figures

    # ------------------------------------------------------------------ tickets
    def _reactive_tickets(self, day: int, events: dict) -> None:
        """Reactive tickets of the day, all sides and kinds in one batch.

        Work is proportional to the day's triggering events: failed and bad
        orders, new agents not yet activated (a tail of the arrays) and
        sellers and drivers with earnings today.
        """
        t = self.conf.tickets
        m = self._model
        groups = []     # (side, kind, ids, sub or None), in a fixed order: ticket ids follow it
        for event, kind in (("failed", "failed_order"), ("bad", "bad_order")):
            got = events.get(event)
            if got is not None:
                groups.append(("buyers", kind, got[0], got[1]))
        horizon = self.conf.onboarding_question_days
        for name, s in m.sides.items():
            # agents are stored in joining order: the recent joiners are a tail of the arrays; and
            # ids below ``settled`` have all reached first value (the starting population, say)
            join_day = s.join_day
            first = int(join_day.searchsorted(np.asarray(day - horizon, dtype=join_day.dtype), side="left"))
            settled = self._settled.get(name, 0)
            settled = self._settled[name] = int(_skip_activated(s.activation_day, settled if settled <= s.n else 0))
            first = max(first, settled)
            new = first + np.flatnonzero(s.alive[first:] & (s.activation_day[first:] < 0))
            groups.append((name, "onboarding", new, None))
        if m.has("sellers") and m._sales_today is not None:
            groups.append(("sellers", "payout", np.flatnonzero(m._sales_today > 0), None))
        if m.has("drivers"):
            d = m.sides["drivers"]
            groups.append(("drivers", "payout", np.flatnonzero((d.earnings_today > 0) & d.alive), None))
        conf = [getattr(t, k) for k in KINDS[:len(REACTIVE)]]
        day_key = m.streams.day_key("cs.ticket_raised", day)
        none = np.empty(0, np.int64)
        raised = []     # (side, kind, ids, sub) of the tickets raised, group by group
        for name, kind, ids, sub in groups:
            rate = getattr(t, kind).rate
            if ids.size == 0 or rate <= 0:
                continue
            ids = np.ascontiguousarray(ids, dtype=np.int64)
            sub = none if sub is None else np.ascontiguousarray(sub, dtype=np.int64)
            rows = _raised(day_key, ids, sub, SIDE_CODE[name], KIND[kind], float(rate))
            if rows.size:
                raised.append((SIDE_CODE[name], KIND[kind], ids[rows],
                               np.zeros(rows.size, np.int64) if sub is none else sub[rows]))
        if not raised:
            return
        side = np.concatenate([np.full(r[2].size, r[0], np.int64) for r in raised])
        kind = np.concatenate([np.full(r[2].size, r[1], np.int64) for r in raised])
        ids = np.concatenate([r[2] for r in raised])
        sub = np.concatenate([r[3] for r in raised])
        self._submit(-1, side, ids, kind, np.array([c.service_minutes for c in conf])[kind],
                     np.array([c.patience_days for c in conf])[kind], np.array([c.priority for c in conf])[kind],
                     sub)

    @staticmethod
    def _key(side, kind, sub):
        """The stream sub-counter of a ticket: its event (``sub``), kind and side."""
        return combine_keys(sub, kind, side)

    def submit(self, owner: int, side: str, ids: np.ndarray, kind: str, service_minutes: float,
               patience_days: float, priority: int, sub: np.ndarray | None = None,
               flag: np.ndarray | None = None, score: np.ndarray | None = None) -> np.ndarray:
        """Queue tickets of one side and kind at the desk (see :meth:`_submit`); return their ids."""
        ids = np.asarray(ids, dtype=np.int64)
        n = ids.size
        sub = np.zeros(n, np.int64) if sub is None else np.asarray(sub, dtype=np.int64)
        return self._submit(owner, np.full(n, SIDE_CODE[side]), ids, np.full(n, KIND[kind]),
                            np.full(n, float(service_minutes)), np.full(n, float(patience_days)),
                            np.full(n, int(priority)), sub, flag, score)

    def _submit(self, owner, side, ids, kind, service_minutes, patience_days, priority, sub,
                flag=None, score=None) -> np.ndarray:
        """Queue tickets; service and patience are exponential with the given means (minutes, days).

        Draws are keyed by (today, agent id, side, kind and ``sub``: the event),
        so the same event gets the same times in every arm.
        """
        n = ids.size
        if n == 0:
            return np.empty(0, np.int64)
        day, streams = self.day, self._model.streams
        ids = np.ascontiguousarray(ids, dtype=np.int64)     # the streams' fast path: 1-D int64 arrays
        key = np.ascontiguousarray(self._key(side, kind, sub), dtype=np.int64)
        tid = self.tickets.add(n)
        T = self.tickets
        arrival = np.minimum(day + streams.uniform("cs.ticket_arrival", day, ids, sub=key), day + 1 - 1e-9)
        service = (streams.exponential("cs.ticket_service", day, ids, sub=key) * service_minutes
                   / (60.0 * self.conf.workday_hours))
        finite = np.isfinite(patience_days)
        patience = np.full(n, np.inf)
        if finite.any():
            patience[finite] = (streams.exponential("cs.ticket_patience", day, ids[finite], sub=key[finite])
                                * patience_days[finite])
        T["side"][tid], T["agent"][tid], T["kind"][tid] = side, ids, kind
        T["day"][tid], T["sub"][tid], T["arrival"][tid], T["service"][tid] = day, sub, arrival, service
        T["owner"][tid] = owner
        T["flag"][tid] = False if flag is None else flag
        T["score"][tid] = 0.0 if score is None else score
        minutes = service * 60.0 * self.conf.workday_hours
        for code in np.unique(side):
            name = SIDE_NAMES[code]
            rows = side == code
            st = self.state[name]
            add_counts(st.open_tickets, ids[rows])
            add_counts(st.tickets, ids[rows])
            self._desk_minutes_today[name] = self._desk_minutes_today.get(name, 0.0) + float(minutes[rows].sum())
        if self.desk is None:   # no staff: everyone gives up
            self._finished.setdefault(day, []).append((tid, np.zeros(n, bool), np.minimum(patience, 1.0)))
        else:
            t0 = time.perf_counter()
            self.desk.submit(tid, arrival, service, patience, priority)
            self.seconds["desk"] += time.perf_counter() - t0
        return tid

    def _advance_desk(self, day: int) -> dict:
        f = {}
        staff = self.desk_staff
        if self.desk is not None:
            t0 = time.perf_counter()
            out = self.desk.advance(day + 1)
            self.seconds["desk"] += time.perf_counter() - t0
            tid, resolved, wait = out.ticket_ids, out.resolved, out.wait_days
            busy, queue, arrivals = out.busy_server_days, out.queue_length + out.in_service, out.arrivals
        else:
            parts = self._finished.pop(day, [])
            tid = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int64)
            resolved = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, bool)
            wait = np.concatenate([p[2] for p in parts]) if parts else np.empty(0)
            busy, queue, arrivals = 0.0, 0, tid.size
        if self._pending_staff is not None:
            self._resize_desk(self._pending_staff)
        f["cs_tickets"] = int(arrivals)
        f["cs_finished"] = int(tid.size)
        f["cs_resolved"] = int(np.count_nonzero(resolved))
        f["cs_abandoned"] = int(tid.size - np.count_nonzero(resolved))
        f["cs_wait_days_mean"] = float(wait.mean()) if wait.size else math.nan
        f["cs_backlog"] = int(queue)
        f["cs_utilisation"] = busy / staff if staff else math.nan
        f["cs_staff"] = staff
        self._apply_finished(day, tid, resolved, wait, f)
        return f

    def _apply_finished(self, day, tid, resolved, wait, f) -> None:
        T, m = self.tickets, self._model
        c = self.conf.contact
        T["finished"][tid] = True
        for name in m.sides:
            f[f"{name}_csat"] = math.nan
            f[f"{name}_csat_answers"] = 0
        if tid.size == 0:
            return
        side_code = T["side"][tid]
        # policy-owned tickets first: what the policy does with them (a dispute settled) sets how
        # the contact feels, a penalty on its level (0 unless the policy says otherwise)
        penalty = np.zeros(tid.size)
        owners = T["owner"][tid]
        for idx in np.unique(owners[owners >= 0]):
            rows = np.flatnonzero(owners == idx)
            policy = self.policies[idx] if idx < len(self.policies) else None
            if policy is None or not hasattr(policy, "on_tickets"):
                self._settle_orphans(tid[rows], resolved[rows])
                continue
            for code in np.unique(side_code[rows]):
                r = rows[side_code[rows] == code]
                got = policy.on_tickets(day, self, Finished(SIDE_NAMES[code], T["agent"][tid[r]].copy(),
                                                            T["kind"][tid[r]].copy(), resolved[r].copy(),
                                                            wait[r].copy(), tid[r].copy()))
                if got is not None:
                    penalty[r] = got
        for code in np.unique(side_code):
            name = SIDE_NAMES[code]
            s, st = m.sides[name], self.state[name]
            r = np.flatnonzero(side_code == code)
            agents = T["agent"][tid[r]]
            add_counts(st.open_tickets, agents, step=-1)
            level = np.where(resolved[r], c.resolved_level - c.wait_penalty_per_day * wait[r] - penalty[r],
                             c.abandoned_level)
            level = np.clip(level, 0.0, 1.0)
            live = s.alive[agents]
            move_satisfaction(s, agents[live], level[live], c.weight)
            key = self._key(code, T["kind"][tid[r]].astype(np.int64), T["sub"][tid[r]])
            noise = m.streams.normal("cs.csat", 0, agents, sub=combine_keys(key, T["day"][tid[r]]))
            answer = self._csat_from_state(s.satisfaction[agents], noise)
            bad = ~resolved[r] | (answer <= 2)
            st.bad_contact_day[agents[bad]] = day
            self._csat_answers(name, answer[live], f)

    def _csat_answers(self, name: str, answers: np.ndarray, f: dict) -> None:
        if answers.size == 0:
            return
        prev_n = f.get(f"{name}_csat_answers", 0)
        prev = f.get(f"{name}_csat")
        total = prev_n + answers.size
        share = np.count_nonzero(answers >= 4)
        if prev_n and prev is not None and not math.isnan(prev):
            share += prev * prev_n
        f[f"{name}_csat"] = float(share / total)
        f[f"{name}_csat_answers"] = int(total)

    # ------------------------------------------------------------------ actions for policies
    def _index(self, policy) -> int:
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
        from the agent's satisfaction after the call (:meth:`_csat_from_state`).
        """
        name = policy.name
        ids = np.asarray(ids, dtype=np.int64)
        weight = np.broadcast_to(np.asarray(weight, dtype=np.float64), ids.shape)
        fix = np.broadcast_to(np.asarray(onboarding_fix, dtype=np.float64), ids.shape)
        if self.treatment is not None:
            keep = self.treatment.treated(side, ids, self.day)
            ids, weight, fix = ids[keep], weight[keep], fix[keep]
        k = self._grant(account or name, ids.size, cost_each, 1.0)
        weight, fix = weight[:k], fix[:k]
        ids = ids[:k]
        if k == 0:
            return ids
        self.charge(name, side, k * cost_each)
        m, day = self._model, self.day
        s, st = m.sides[side], self.state[side]
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
            self._touch_answers.setdefault(side, []).append(self._csat_from_state(s.satisfaction[ids[live]], noise))
        return ids

    def _csat_from_state(self, satisfaction: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """CSAT answers 1-5 of agents with ``satisfaction`` (0-1) after a contact: round(1 + 4 s + sd z), clipped.

        ``noise`` is one standard normal draw per agent, scaled by the
        survey noise ``cs.contact.csat_noise_sd`` (points). Satisfaction after
        the contact carries both what the agent lived through before it and
        what the contact did (the move toward its level), so two agents
        treated alike answer differently when their experience differed.
        """
        return np.clip(np.rint(1 + 4 * satisfaction + self.conf.contact.csat_noise_sd * noise), 1, 5)

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
        name = policy.name
        m, s, st, day = self._model, self._model.sides[side], self.state[side], self.day
        ids = self.treated_only(side, ids)
        k = self._grant(account or name, ids.size, offer_cost + incentive * accept_prob, 1.0)
        ids = ids[:k]
        if k == 0:
            return ids
        st.offers[ids] += 1
        st.last_offer_day[ids] = day
        self.charge(name, side, k * offer_cost)
        anchor = np.where(s.churn_day[ids] >= 0, s.churn_day[ids], s.last_active_day[ids])
        u = m.streams.uniform("cs.win_back_accept", ATTRIBUTE_DAY, ids, sub=combine_keys(anchor, s.lives[ids]))
        accepted = ids[u < accept_prob]
        self.charge(name, side, accepted.size * incentive, incentive=True)
        dead = accepted[~s.alive[accepted]]
        if dead.size:
            self.returns[side].append((dead.copy(), s.churn_day[dead].copy(), np.full(dead.size, day, np.int32)))
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
        m, day = self._model, self.day
        s, st = m.sides["sellers"], self.state["sellers"]
        ids = self.treated_only("sellers", ids)
        k = self._grant(account or policy.name, ids.size, cost_each, 1.0)
        ids = ids[:k]
        empty = np.empty(0, np.int64)
        if k == 0:
            return {"offered": ids, "accepted": empty, "backfired": empty}
        self.charge(policy.name, "sellers", k * cost_each)
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

    def set_onboarding_boost(self, policy, side: str, boost: float, cost_per_agent: float) -> None:
        """From now on new agents of ``side`` get ``boost`` onboarding quality, at a cost each (budgeted)."""
        self.levers.onboarding[side] = (policy.name, float(boost), float(cost_per_agent))

    def onboarding_boost(self, side: str, ids: np.ndarray) -> tuple[np.ndarray, float]:
        """Engine: which of today's new agents ``ids`` get the boost (a mask: the first ones the budget
        allows, among those a pilot treats), and the boost."""
        boosted = np.zeros(ids.size, dtype=bool)
        lever = self.levers.onboarding.get(side)
        if lever is None or ids.size == 0:
            return boosted, 0.0
        name, boost, cost = lever
        eligible = np.flatnonzero(self.treatment.treated(side, ids, self.day)) if self.treatment is not None \
            else np.arange(ids.size)
        k = self._grant(name, eligible.size, cost, 1.0)
        boosted[eligible[:k]] = True
        self.charge(name, side, k * cost)
        return boosted, boost

    def set_referral_bonus(self, policy, side: str, rate_multiplier: float, bonus: float) -> None:
        """From now on promoters of ``side`` refer ``rate_multiplier`` times as often, for a bonus each."""
        self.levers.referral[side] = (policy.name, float(rate_multiplier), float(bonus))

    def referral_multiplier(self, side: str) -> tuple[float, float]:
        """Engine: today's referral multiplier and bonus (1, 0 when no programme or its budget is spent)."""
        lever = self.levers.referral.get(side)
        # a side-wide lever can follow a pilot's periods only (experiments/pilot.py refuses other designs)
        if lever is None or (self.treatment is not None and not self.treatment.period_treated(self.day)):
            return 1.0, 0.0
        name, mult, bonus = lever
        if self.remaining_budget(name) < bonus:
            return 1.0, 0.0
        return mult, bonus

    def pay_referrals(self, side: str, count: int) -> None:
        lever = self.levers.referral.get(side)
        if lever is None or count == 0:
            return
        name, _, bonus = lever
        k = self._grant(name, count, bonus, 0.0)
        self.charge(name, side, count * bonus, incentive=True)
        del k

    # ------------------------------------------------------------------ disputes (drivers)
    def contest_low_ratings(self, policy, *, contest_unfair: float, contest_fair: float, service_minutes: float,
                            patience_days: float, priority: int) -> np.ndarray:
        """Drivers contest today's low ratings; the contests go to the desk. Returns their ticket ids.

        Drivers know whether a low rating was their fault: they contest unfair
        ones with probability ``contest_unfair`` and deserved ones with
        ``contest_fair``. A contest is a ``rating_dispute`` ticket of the
        policy (mean ``service_minutes``, ``patience_days``, ``priority``); the
        ticket keeps the rating given and the truth (out of the policy's
        sight) for :meth:`review_findings` and :meth:`reverse_ratings`.
        """
        low = (self._events or {}).get("low_ratings")
        if low is None or low[0].size == 0:
            return np.empty(0, np.int64)
        ids, sub, unfair, score = low
        if self.treatment is not None:
            keep = self.treatment.treated("drivers", ids, self.day)
            ids, sub, unfair, score = ids[keep], sub[keep], unfair[keep], score[keep]
        p = np.where(unfair, contest_unfair, contest_fair)
        contests = self._model.streams.uniform("cs.dispute_contest", self.day, ids, sub=sub) < p
        return self.submit(self._index(policy), "drivers", ids[contests], "rating_dispute", service_minutes,
                           patience_days, priority, sub=sub[contests], flag=unfair[contests], score=score[contests])

    def appeal_deactivations(self, policy, *, contest: float, service_minutes: float, priority: int) -> np.ndarray:
        """Drivers due for deactivation appeal with probability ``contest``; returns the appeals' ticket ids.

        An appealing driver keeps driving while the ``deactivation_appeal``
        ticket is reviewed (never abandoned); one appeal at a time, drawn per
        (driver, its appeal count), the same in every arm.
        """
        m, st = self._model, self.state["drivers"]
        due = drivers_rules.due_for_deactivation(m.sides["drivers"], m.market.drivers)
        due = self.treated_only("drivers", due[~st.appeal_open[due]])
        appeals = due[m.streams.uniform("cs.appeal_contest", ATTRIBUTE_DAY, due,
                                        sub=st.appeals[due].astype(np.int64)) < contest]
        st.appeal_open[appeals] = True
        tid = self.submit(self._index(policy), "drivers", appeals, "deactivation_appeal", service_minutes, math.inf,
                          priority, sub=st.appeals[appeals].astype(np.int64))
        st.appeals[appeals] += 1
        return tid

    def _track_record_good(self, agents: np.ndarray) -> np.ndarray:
        """Whether each driver's observable rating history says it is a good driver.

        The share of its ratings that were low, l, estimates its quality as
        q = (1 - l) / (1 - bad_luck_low_rating) (a trip is rated high when it went
        well and the rider was fair); good if q >= drivers.good_quality. A
        driver with no ratings yet counts as good (benefit of the doubt).
        """
        drivers, conf = self._model.sides["drivers"], self._model.market.drivers
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
        (:meth:`_track_record_good`). Drawn per (driver, the ticket's event),
        the same in every arm; the truth never leaves the engine.
        """
        T, agents = self.tickets, finished.agents
        kinds = np.unique(finished.kind)
        if kinds.size > 1:
            raise ValueError("review_findings: one kind of ticket at a time")
        if kinds.size == 0:
            return np.empty(0, bool)
        kind = KINDS[int(kinds[0])]
        if kind == "rating_dispute":
            truth, key = T["flag"][finished.tickets], self._dispute_key(finished.tickets)
        elif kind == "deactivation_appeal":
            conf = self._model.market.drivers
            truth = self._model.sides["drivers"].quality[agents] >= conf.good_quality
            key = T["sub"][finished.tickets]
        else:
            raise ValueError(f"review_findings: {kind} tickets have nothing to review")
        u = self._model.streams.uniform(f"cs.{kind}_evidence", ATTRIBUTE_DAY, agents, sub=key)
        return np.where(u < accuracy, truth, self._track_record_good(agents))

    def _dispute_key(self, tickets: np.ndarray) -> np.ndarray:
        """The stream sub-counter of a rating dispute's decisions: its trip and the day it was filed."""
        return combine_keys(self.tickets["sub"][tickets], self.tickets["day"][tickets])

    def reverse_ratings(self, finished: Finished, chance: np.ndarray, restore_share: float) -> np.ndarray:
        """Reverse each resolved rating dispute with its ``chance``; return which were reversed (the driver won).

        A reversed rating is replaced by a 5 in the driver's rolling mean and
        no longer counts as low; if it truly was not the driver's fault, the
        driver gets back ``restore_share`` of the satisfaction it cost
        (drivers.fairness_penalty).
        """
        m, T = self._model, self.tickets
        drivers, conf = m.sides["drivers"], m.market.drivers
        agents, tickets = finished.agents, finished.tickets
        u = m.streams.uniform("cs.dispute_decision", ATTRIBUTE_DAY, agents, sub=self._dispute_key(tickets))
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
        m = self._model
        drivers, st, day = m.sides["drivers"], self.state["drivers"], self.day
        agents = finished.agents
        u = m.streams.uniform("cs.appeal_decision", ATTRIBUTE_DAY, agents, sub=self.tickets["sub"][finished.tickets])
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
        self.deactivated_today += lose.size
        return win

    def _settle_orphans(self, tid: np.ndarray, resolved: np.ndarray) -> None:
        """Tickets whose policy was switched off while they were at the desk: appeals are upheld, nothing reversed."""
        appeals = self.tickets["kind"][tid] == KIND["deactivation_appeal"]
        if appeals.any():
            t = tid[appeals]
            self.settle_appeals(Finished("drivers", self.tickets["agent"][t], self.tickets["kind"][t],
                                         resolved[appeals], np.zeros(t.size), t), np.zeros(t.size))

    # ------------------------------------------------------------------ costs
    def costs_today(self) -> dict:
        """The day's CS costs, currency.

        ``cs_cost``: desk staff (``cs.staff``) + policies' extra staff + their
        actions; ``incentive_cost``: referral bonuses and win-back incentives.
        ``cs_cost_desk``: the reactive desk; ``cs_cost_<policy>``: all a policy
        spends, incentives included; ``cs_cost_<side>``: the desk's cost split by
        the desk minutes each side's tickets took today, plus what policies spent
        on that side. So sum of per-side (or desk + per-policy) = cs_cost + incentive_cost.
        """
        m = self._model
        desk = self.conf.staff * self.conf.staff_cost_per_day
        out = {"cs_cost_desk": desk}
        minutes = {s: self._desk_minutes_today.get(s, 0.0) for s in m.sides}
        total_minutes = sum(minutes.values())
        per_side = {s: (desk * minutes[s] / total_minutes if total_minutes else desk / len(m.sides))
                    for s in m.sides}
        policy_cost = {p.name: 0.0 for p in self.policies}
        cs, incentive = desk, 0.0
        for p in self.policies:
            extra = int(getattr(p, "extra_staff", 0))
            if extra:
                cost = extra * self.conf.staff_cost_per_day
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

    def desk_staff_cost(self) -> float:
        return self.desk_staff * self.conf.staff_cost_per_day

    def band_counts(self) -> dict:
        """Alive agents per health band and vector, per side, at the last health computation."""
        return dict(self._bands)


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for binary ``label`` (Mann-Whitney, ties averaged)."""
    from scipy.stats import rankdata

    score, label = np.asarray(score, float), np.asarray(label, bool)
    n1, n0 = np.count_nonzero(label), np.count_nonzero(~label)
    if n1 == 0 or n0 == 0:
        return math.nan
    ranks = rankdata(score)
    return float((ranks[label].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
