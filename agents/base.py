"""A side of the market as a struct of arrays.

Each attribute is one numpy array indexed by agent id (0, 1, 2, ... in order
of joining); arrays grow by amortised doubling as agents join. There are no
per-agent Python objects: behaviour rules (agents/buyers.py and friends)
operate on whole arrays at once.
"""
from __future__ import annotations

import numpy as np

NEVER = np.iinfo(np.int32).max
"""Day value meaning "does not happen" (e.g. an agent that never activates)."""

CHANNELS = ("initial", "paid", "organic", "referral", "win_back")
CHANNEL = {name: code for code, name in enumerate(CHANNELS)}

COMMON_FIELDS: dict[str, tuple[type, object]] = {
    # name: (dtype, fill value for a new agent)
    "segment": (np.int8, 0),             # sellers: 0 SMB, 1 enterprise
    "channel": (np.int8, 0),             # index into CHANNELS
    "join_day": (np.int32, 0),
    "cac": (np.float32, 0.0),            # currency paid to acquire this agent
    "onboarding_quality": (np.float32, 0.0),
    "activation_due": (np.int32, NEVER),  # latent: the day first value will come
    "activation_day": (np.int32, -1),    # observed: the day first value came (-1: not yet)
    "satisfaction": (np.float32, 0.5),   # latent, in [0, 1]; CS never sees it
    "last_active_day": (np.int32, -1),
    "orders": (np.int32, 0),             # buyers: purchase intentions; sellers: orders received; drivers: trips
    "orders_completed": (np.int32, 0),
    "revenue": (np.float64, 0.0),        # platform revenue from this agent, currency
    "margin": (np.float64, 0.0),         # contribution margin to date, currency
    "margin_discounted": (np.float64, 0.0),  # same, discounted to day 0 (lifecycle.discounted_to_join_day)
    "margin_rate": (np.float32, 0.0),    # recent activity margin, currency per day (exponentially weighted)
    "exposure": (np.float32, 0.0),       # the same weights over days alive and activated: margin_rate /
                                         # exposure is the margin per active day (bias-corrected)
    "alive": (np.bool_, True),           # not churned
    "churn_day": (np.int32, -1),
    "churn_threshold": (np.float32, 0.0),  # Exp(1): churn when cum_hazard reaches it
    "cum_hazard": (np.float32, 0.0),
    "base_hazard": (np.float32, 0.0),    # baseline churn hazard per day
    "lives": (np.int8, 0),               # times won back
    "survey_answer": (np.int8, -1),      # last NPS answer 0-10 (-1: never asked)
}


class Side:
    """The state of one side (buyers, sellers or drivers): a struct of arrays.

    ``side.satisfaction`` etc. return views of the first ``n`` entries, so
    in-place updates (``side.satisfaction[ids] = ...``) write through.
    """

    def __init__(self, name: str, extra_fields: dict[str, tuple[type, object]], capacity: int = 16,
                 common: bool = True, deferred: tuple[str, ...] = ()):
        """``common``: the fields every side has (COMMON_FIELDS) besides ``extra_fields``;
        ``deferred``: fields made only when first read (every agent at its fill value until then), for
        records that most runs never use: at ten million agents each byte per agent is 10 MB."""
        self.name = name
        self.n = 0
        self.fields = {**(COMMON_FIELDS if common else {}), **extra_fields}
        self._capacity = max(int(capacity), 16)
        self._deferred = set(deferred)
        # Room is reserved with np.empty and filled as agents join: pages never written are never
        # resident, so reserved capacity costs address space, not memory.
        clash = set(self.fields) & (set(dir(type(self))) | set(vars(self)) | {"_data"})
        if clash:
            raise ValueError(f"side {name}: field names {sorted(clash)} are taken by Side itself")
        self._data = {f: np.empty(self._capacity, dtype=dt) for f, (dt, _) in self.fields.items()
                      if f not in self._deferred}
        self._refresh_views()

    def _refresh_views(self) -> None:
        """Put each field's view of the first ``n`` entries in the instance dict, so that reading
        ``side.satisfaction`` is a plain attribute lookup (about 0.06 us), not a ``__getattr__`` call
        (2 us; a small market's day reads a few hundred). Called whenever ``n`` or an array changes."""
        views = self.__dict__
        for f, array in self._data.items():
            views[f] = array[: self.n]

    def __getattr__(self, field: str) -> np.ndarray:
        """Only for a deferred field not made yet (the others are in the instance dict)."""
        data = self.__dict__.get("_data")
        if data is None or field not in self._deferred:
            raise AttributeError(field)
        dtype, fill = self.fields[field]
        data[field] = np.empty(self._capacity, dtype=dtype)
        data[field][: self.n] = fill
        self._deferred.discard(field)
        self.__dict__[field] = data[field][: self.n]
        return self.__dict__[field]

    def __getstate__(self) -> dict:
        """Copies and pickles hold the arrays once; the views are made again (:meth:`__setstate__`)."""
        return {k: v for k, v in self.__dict__.items() if k not in self.fields}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._refresh_views()

    def add(self, count: int) -> np.ndarray:
        """Append ``count`` agents with default values; return their ids."""
        start, stop = self.n, self.n + int(count)
        if stop == start:   # most days some side has nobody joining: skip the per-field fills
            return np.arange(start, start, dtype=np.int64)
        if stop > self._capacity:
            self._grow(stop)
        for f, array in self._data.items():
            array[start:stop] = self.fields[f][1]
        self.n = stop
        self._refresh_views()
        return np.arange(start, stop, dtype=np.int64)

    def _grow(self, needed: int) -> None:
        capacity = self._capacity
        while capacity < needed:
            capacity *= 2
        for f, array in self._data.items():
            bigger = np.empty(capacity, dtype=array.dtype)
            bigger[: self.n] = array[: self.n]
            self._data[f] = bigger
        self._capacity = capacity

    def reserve(self, capacity: int) -> None:
        """Pre-allocate room for ``capacity`` agents (saves the doubling copies)."""
        if capacity > self._capacity:
            self._grow(capacity)
            self._refresh_views()

    @property
    def nbytes(self) -> int:
        """Bytes reserved by the arrays, including room for growth (resident only once written)."""
        return sum(a.nbytes for a in self._data.values())

    def table(self) -> dict[str, np.ndarray]:
        """A copy of every attribute for the agents that exist (for results)."""
        return {f: getattr(self, f).copy() for f in self.fields}
