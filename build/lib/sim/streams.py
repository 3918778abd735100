"""Counter-based random streams: common random numbers across policy arms.

Every random decision in the model has a named stream, and a draw is a pure
function of (seed, stream name, day, agent id, sub-counter). Nothing is
consumed, so there is no generator state to advance: two runs that differ only
in policy see exactly the same luck for every agent that exists in both, the
order in which draws are made does not matter, and a snapshot of a run needs no
random state at all.

The mixing function is SplitMix64's finaliser (Steele, Lea & Flood 2014), which
passes BigCrush when fed a counter; we feed it a counter built from the key of
the stream (seed and name), the day, the agent id and a sub-counter. Each part
enters through its own mixing step, so keys are unique by construction rather
than by packing: a sub-counter made of several parts (an event and its day, a
rider and the rider's trip number) is built by :func:`combine_keys`, never by
arithmetic such as ``id * 64 + k``, which collides once k reaches 64.

Stream names are declared (:data:`ENGINE_STREAMS`, or :func:`declare_streams` for
a study or a policy of one's own); drawing from an undeclared name raises, so a
typo cannot silently start a new stream, and declaring a name twice raises.

Never call ``np.random`` or the ``random`` module in the model: use these.
"""
from __future__ import annotations

import hashlib

import numpy as np
from numba import njit
from scipy import special

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_SUB = np.uint64(0xD1B54A32D192ED03)
_S30, _S27, _S31, _S11 = (np.uint64(s) for s in (30, 27, 31, 11))
_TO_UNIT = 2.0**-53

ATTRIBUTE_DAY = -1
"""The ``day`` used for draws made once per agent (its traits at creation)."""

_SIDES = ("buyers", "sellers", "drivers")
_EVERY_SIDE = ("onboarding_quality", "satisfaction0", "churn_threshold", "activates", "ttfv", "paid_joins",
               "organic_joins", "referral_joins", "survey_asked", "survey_noise")
ENGINE_STREAMS = (
    *(f"{side}.{what}" for side in _SIDES for what in _EVERY_SIDE),        # agents/lifecycle.py, sim/metrics.py
    "buyers.dropout", "buyers.dropout_p", "buyers.home_x", "buyers.home_y", "buyers.purchase_gap",
    "buyers.purchase_rate", "buyers.seller_choice", "buyers.spend_rate",
    "sellers.expected_orders", "sellers.monthly_churn", "sellers.price_level",
    *(f"sellers.{product}_{what}" for product in ("premium", "promoted")     # agents/sellers.py PRODUCTS
      for what in ("threshold", "cancel_threshold")),
    "cs.premium_offer_accept", "cs.promoted_offer_accept",
    "sellers.quality", "sellers.segment", "sellers.x", "sellers.y",
    "drivers.bad_luck", "drivers.hours", "drivers.monthly_churn", "drivers.platform_share", "drivers.quality",
    "drivers.reposition", "drivers.shift_length", "drivers.shift_start", "drivers.trip_quality", "drivers.x",
    "drivers.y",
    "orders.basket", "orders.seller_outcome", "orders.seller_review", "rides.destination_x", "rides.destination_y",
    "cs.appeal_contest", "cs.appeal_decision", "cs.csat", "cs.dispute_contest", "cs.dispute_decision",
    "cs.ticket_arrival", "cs.ticket_patience", "cs.ticket_raised", "cs.ticket_service", "cs.touch_csat",
    "cs.win_back_accept", "cs.win_back_order", "cs.rating_dispute_evidence",
    "cs.touch_onboarding", "cs.nudge_onboarding", "cs.deactivation_appeal_evidence",
    "mmc.interarrival", "mmc.patience", "mmc.service",                     # sim/desk.py's M/M/c reference
)
"""Every stream the engine draws from (agents/, sim/, policies/): its one list of names."""

_declared: dict[str, str] = {}   # stream name -> who declared it


def declare_streams(owner: str, names) -> tuple[str, ...]:
    """Declare the stream names ``owner`` (a module name) draws from; return them.

    A name declared by another owner, or twice in ``names``, raises ValueError:
    two decisions would share their luck. Declaring again under the same owner
    (a module reloaded) is allowed.
    """
    names = tuple(names)
    repeated = sorted({n for n in names if names.count(n) > 1})
    taken = sorted(n for n in names if _declared.get(n, owner) != owner)
    if repeated or taken:
        raise ValueError(f"random streams declared twice: {', '.join(repeated + taken)} "
                         f"({owner}; already: {', '.join(sorted({_declared[n] for n in taken})) or owner})")
    _declared.update(dict.fromkeys(names, owner))
    return names


declare_streams(__name__, ENGINE_STREAMS)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrapping arithmetic), in place."""
    x ^= x >> _S30
    x *= _MIX1
    x ^= x >> _S27
    x *= _MIX2
    x ^= x >> _S31
    return x


_MASK = 0xFFFFFFFFFFFFFFFF


@njit(cache=True)
def _mix_one(x):
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True)
def _uniform_kernel(ids, subs, sub_scalar, day_key, mode):
    """U(0, 1) from SplitMix64 of each counter, in one pass (the same arithmetic as :meth:`Streams.bits`).

    mode 0: no sub-counter; 1: one scalar sub-counter (``sub_scalar``, already
    multiplied by _SUB); 2: one sub-counter per id (``subs``).
    """
    out = np.empty(ids.size)
    for j in range(ids.size):
        x = _mix_one(np.uint64(ids[j]) * np.uint64(0x9E3779B97F4A7C15) + day_key)
        if mode == 2:
            x = _mix_one(x + np.uint64(subs[j]) * np.uint64(0xD1B54A32D192ED03))
        elif mode == 1:
            x = _mix_one(x + sub_scalar)
        out[j] = (np.float64(x >> np.uint64(11)) + 0.5) * 1.1102230246251565e-16
    return out


@njit(cache=True)
def uniform_at(day_key, agent_id, sub):
    """One U(0, 1) draw inside compiled code: what ``Streams.uniform(name, day, ids, sub=subs)``
    gives for one id with an array of sub-counters, ``day_key`` from :meth:`Streams.day_key`."""
    x = _mix_one(np.uint64(agent_id) * np.uint64(0x9E3779B97F4A7C15) + day_key)
    x = _mix_one(x + np.uint64(sub) * np.uint64(0xD1B54A32D192ED03))
    return (np.float64(x >> np.uint64(11)) + 0.5) * 1.1102230246251565e-16


@njit(cache=True)
def _interpolate_kernel(table, u, tail, scale, intervals):
    """Linear interpolation in a quantile table at u (see :func:`_inverse_cdf`)."""
    out = np.empty(u.size)
    for j in range(u.size):
        position = (u[j] - tail) * scale
        index = min(max(np.int64(position), 0), intervals - 1)
        fraction = position - index
        out[j] = table[index] + fraction * (table[index + 1] - table[index])
    return out


def _mix_int(z: int) -> int:
    """The same finaliser on a Python int: per-call cost matters for scalar keys."""
    z = int(z) & _MASK
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & _MASK
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _mix_scalar(value: int) -> np.uint64:
    return np.uint64(_mix_int(value))


_LANE = np.uint64(0x8CB92BA72F3D8DD7)   # odd: lane i adds (i + 1) * _LANE before mixing, so lanes differ


@njit(cache=True)
def combine_at(key, part, lane):
    """One step of :func:`combine_keys` inside compiled code: ``part`` mixed into ``key`` in lane ``lane``
    (start from key 0, lane 0); the result (uint64) is a sub-counter for :func:`uniform_at`."""
    return _mix_one(np.uint64(key) ^ (np.uint64(part) + np.uint64(lane + 1) * _LANE))


def combine_keys(*parts) -> np.ndarray:
    """One sub-counter (int64) from integer parts, e.g. ``combine_keys(rider_ids, trip_numbers)``.

    The parts broadcast. Each part is mixed in its own lane into the key so far:
    for fixed earlier parts, distinct values of a part give distinct keys (the
    mixing is a bijection of 64-bit words), whatever their size; keys of
    different earlier parts meet only by a 64-bit hash coincidence.
    """
    shape = np.broadcast_shapes(*(np.shape(p) for p in parts))
    key = np.zeros(int(np.prod(shape)), dtype=np.uint64)   # prod(()) = 1: a scalar key
    for lane, part in enumerate(parts):
        values = np.broadcast_to(np.asarray(part, dtype=np.int64), shape).ravel().astype(np.uint64)
        key ^= values + np.uint64((lane + 1) * int(_LANE) & _MASK)
        _mix(key)
    out = key.view(np.int64)
    return out.reshape(shape) if shape else out[0]


_TABLE_INTERVALS = 16384
_TABLE_TAIL = 1.0 / 64
_tables: dict[tuple, np.ndarray] = {}


def _inverse_cdf(kind: str, a: float, b: float, u: np.ndarray) -> np.ndarray:
    """Quantile function of Beta(a, b) or Gamma(a, rate 1) at u.

    scipy's betaincinv / gammaincinv cost about 1-2 microseconds a draw, which
    dominated creating a million agents. For scalar parameters we interpolate
    linearly in a table of 16,385 exact quantiles over [1/64, 63/64] (relative
    error below 2e-5, monotone in u, so common random numbers still hold) and
    compute the tails exactly. The table depends only on (kind, a, b), so a
    draw is still a pure function of its key.
    """
    exact = special.betaincinv if kind == "beta" else (lambda shape, _, x: special.gammaincinv(shape, x))
    if np.ndim(a) or np.ndim(b):
        return exact(a, b, u)
    key = (kind, float(a), float(b))
    table = _tables.get(key)
    if table is None:
        grid = np.linspace(_TABLE_TAIL, 1 - _TABLE_TAIL, _TABLE_INTERVALS + 1)
        table = _tables[key] = exact(a, b, grid)
    u = np.ascontiguousarray(u, dtype=np.float64).ravel() if np.ndim(u) else np.asarray(u, dtype=np.float64)
    if u.ndim == 0:
        return _inverse_cdf(kind, a, b, u.reshape(1))[0]
    out = _interpolate_kernel(table, u, _TABLE_TAIL, _TABLE_INTERVALS / (1 - 2 * _TABLE_TAIL), _TABLE_INTERVALS)
    tails = (u < _TABLE_TAIL) | (u > 1 - _TABLE_TAIL)
    if tails.any():
        out[tails] = exact(a, b, u[tails])
    return out


class Streams:
    """Named, counter-based random streams for one run.

    ``uniform(name, day, ids, sub)`` returns one U(0, 1) number per id; the
    other methods transform uniforms by inverse CDFs, so every distribution
    keeps the common-random-numbers property (a larger parameter moves each
    agent's draw monotonically, which is what makes paired arms tight).
    """

    def __init__(self, seed: int, any_name: bool = False):
        """``any_name=True`` accepts undeclared stream names: for a test's throwaway inputs, never the model."""
        self.seed = int(seed)
        self.any_name = any_name
        self._keys: dict[str, np.uint64] = {}
        self._day_keys: dict[tuple, np.uint64] = {}   # (name, day) -> the key of that day's draws

    def key(self, name: str) -> np.uint64:
        """The 64-bit key of stream ``name`` under this run's seed; an undeclared name raises ValueError."""
        k = self._keys.get(name)
        if k is None:
            if name not in _declared and not self.any_name:
                raise ValueError(f"random stream {name!r} is not declared (sim/streams.py ENGINE_STREAMS, or "
                                 f"declare_streams() for a study or a policy of your own)")
            digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
            name_hash = int.from_bytes(digest, "little")
            k = _mix_scalar(_mix_scalar(self.seed) ^ name_hash)
            self._keys[name] = k
        return k

    def bits(self, name: str, day: int, ids, sub=0) -> np.ndarray:
        """Raw 64-bit draws for (name, day, id, sub); ``ids`` and ``sub`` broadcast.

        Array arithmetic on uint64 wraps silently, which is what the mixing
        wants; scalar parts are mixed with Python ints (numpy scalars would warn).
        """
        day_key = np.uint64(_mix_int(int(self.key(name)) ^ _mix_int(int(day) + 0x5BD1E995)))
        x = np.asarray(ids, dtype=np.int64).astype(np.uint64)
        x *= _GOLDEN
        x += day_key
        _mix(x)
        if np.ndim(sub):
            x = x + np.asarray(sub, dtype=np.int64).astype(np.uint64) * _SUB
            _mix(x)
        elif sub:
            x += np.uint64((int(sub) * int(_SUB)) & _MASK)
            _mix(x)
        return x

    def day_key(self, name: str, day: int) -> np.uint64:
        """The key of stream ``name`` on ``day``: with :func:`uniform_at`, draws inside compiled loops."""
        day_key = self._day_keys.get((name, day))
        if day_key is None:
            if len(self._day_keys) > 4096:
                self._day_keys.clear()
            day_key = self._day_keys[(name, day)] = np.uint64(
                _mix_int(int(self.key(name)) ^ _mix_int(int(day) + 0x5BD1E995)))
        return day_key

    def uniform(self, name: str, day: int, ids, sub=0) -> np.ndarray:
        """U(0, 1) draws, never exactly 0 or 1 (float64); the same numbers as :meth:`bits` gives, compiled."""
        day_key = self.day_key(name, day)
        sub_is_array = type(sub) is np.ndarray and sub.ndim > 0
        if type(ids) is np.ndarray and ids.ndim == 1 and ids.dtype == np.int64 and ids.flags.c_contiguous and (
                not sub_is_array or (sub.shape == ids.shape and sub.dtype == np.int64 and sub.flags.c_contiguous)):
            flat, subs, shape = ids, sub, None   # the daily case: no broadcasting, no copies
        else:
            shape = np.broadcast_shapes(np.shape(ids), np.shape(sub))
            flat = np.ascontiguousarray(np.broadcast_to(np.asarray(ids, dtype=np.int64), shape)).ravel()
            sub_is_array = bool(np.ndim(sub))
            subs = (np.ascontiguousarray(np.broadcast_to(np.asarray(sub, dtype=np.int64), shape)).ravel()
                    if sub_is_array else sub)
        if sub_is_array:
            out = _uniform_kernel(flat, subs, np.uint64(0), day_key, 2)
        else:
            out = _uniform_kernel(flat, flat, np.uint64((int(sub) * int(_SUB)) & _MASK), day_key, 1 if sub else 0)
        if shape is None:
            return out
        return out.reshape(shape) if shape else out[0]

    def exponential(self, name: str, day: int, ids, sub=0) -> np.ndarray:
        """Exp(1) draws (mean 1); divide by a rate per day to get days."""
        return -np.log(self.uniform(name, day, ids, sub))

    def normal(self, name: str, day: int, ids, sub=0) -> np.ndarray:
        """Standard normal draws."""
        return special.ndtri(self.uniform(name, day, ids, sub))

    def gamma(self, name: str, day: int, ids, shape, rate, sub=0) -> np.ndarray:
        """Gamma(shape, rate) draws (mean shape / rate)."""
        return _inverse_cdf("gamma", shape, 0.0, self.uniform(name, day, ids, sub)) / rate

    def beta(self, name: str, day: int, ids, a, b, sub=0) -> np.ndarray:
        """Beta(a, b) draws."""
        return _inverse_cdf("beta", a, b, self.uniform(name, day, ids, sub))

    def lognormal_mean_cv(self, name: str, day: int, ids, mean, cv, sub=0) -> np.ndarray:
        """Log-normal draws parameterised by their mean and coefficient of variation."""
        sigma2 = np.log1p(np.square(cv))
        mu = np.log(mean) - sigma2 / 2
        return np.exp(mu + np.sqrt(sigma2) * self.normal(name, day, ids, sub))

    def poisson(self, name: str, day: int, mean: float, sub=0) -> int:
        """One Poisson(mean) count for (name, day): used for daily arrivals.

        The exact quantile (smallest k with P(K <= k) >= u), found from a normal
        start with scipy.special.pdtr; scipy.stats' ppf gives the same number at
        a hundred times the cost per call.
        """
        if mean <= 0:
            return 0
        u = float(self.uniform(name, day, np.zeros(1, dtype=np.int64), sub)[0])
        k = max(0, int(mean + np.sqrt(mean) * special.ndtri(u)))
        while special.pdtr(k, mean) < u:
            k += 1
        while k > 0 and special.pdtr(k - 1, mean) >= u:
            k -= 1
        return k

    def round_stochastic(self, name: str, day: int, value: float, sub=0) -> int:
        """floor(value) plus one with probability frac(value): unbiased integer."""
        whole = int(np.floor(value))
        return whole + int(self.uniform(name, day, 0, sub) < value - whole)
