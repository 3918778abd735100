"""Counter-based random streams: common random numbers across policy arms.

Every random decision in the model has a named stream, and a draw is a pure
function of (seed, stream name, day, agent id, sub-counter). Nothing is
consumed, so there is no generator state to advance: two runs that differ only
in policy see exactly the same luck for every agent that exists in both, the
order in which draws are made does not matter, and a snapshot of a run needs no
random state at all.

The mixing function is SplitMix64's finaliser (Steele, Lea & Flood 2014), which
passes BigCrush when fed a counter; we feed it a counter built from the key of
the stream (seed and name), the day, the agent id and a sub-counter.

Never call ``np.random`` or the ``random`` module in the model: use these.
"""
from __future__ import annotations

import hashlib

import numpy as np
from scipy import special

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_SUB = np.uint64(0xD1B54A32D192ED03)
_S30, _S27, _S31, _S11 = (np.uint64(s) for s in (30, 27, 31, 11))
_TO_UNIT = 2.0**-53

ATTRIBUTE_DAY = -1
"""The ``day`` used for draws made once per agent (its traits at creation)."""


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrapping arithmetic), in place."""
    x ^= x >> _S30
    x *= _MIX1
    x ^= x >> _S27
    x *= _MIX2
    x ^= x >> _S31
    return x


_MASK = 0xFFFFFFFFFFFFFFFF


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
    position = (u - _TABLE_TAIL) * (_TABLE_INTERVALS / (1 - 2 * _TABLE_TAIL))
    index = np.clip(position.astype(np.int64), 0, _TABLE_INTERVALS - 1)
    fraction = position - index
    out = table[index] + fraction * (table[index + 1] - table[index])
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

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._keys: dict[str, np.uint64] = {}

    def key(self, name: str) -> np.uint64:
        """The 64-bit key of stream ``name`` under this run's seed."""
        k = self._keys.get(name)
        if k is None:
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

    def uniform(self, name: str, day: int, ids, sub=0) -> np.ndarray:
        """U(0, 1) draws, never exactly 0 or 1 (float64)."""
        x = self.bits(name, day, ids, sub)
        return ((x >> _S11).astype(np.float64) + 0.5) * _TO_UNIT

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
