"""The Policy interface, parameter checking, and the registry of CS policies.

A policy is configured from ``conf/policy/<name>.yaml`` (``<name>: {params}``,
composed into ``cfg.policy``), checks its own parameters (a
:class:`sim.config.ConfigError` names ``policy.<name>.<param>``, the value and
what is allowed), and then, inside a run:

* ``setup(cs)`` once, when it becomes active: opens its account
  (``cs.open_account``) and sets structural levers (onboarding boost,
  referral bonus);
* ``act(day, cs)`` every day, after the day's tickets are raised and health
  is computed and before the desk advances: reads ``cs.view(side)`` (the
  observable view; latent state raises) and acts through ``cs`` actions,
  which charge its account and refuse what is beyond its budget or capacity;
* ``on_tickets(day, cs, finished)`` for tickets it sent to the desk that
  finished today (optional): it settles them through ``cs`` actions and may
  return a penalty (0-1) on each contact's level, e.g. a denied dispute.

Policies never touch agents' arrays; ``cs`` (sim.cs.CSOps) does.
"""
from __future__ import annotations

import math
from typing import Any, Callable, ClassVar

import numpy as np

from sim.config import ConfigError

SUPPLY = ("sellers", "drivers")


class Params:
    """Checked access to one policy's parameters; every number must come from conf/policy/."""

    def __init__(self, policy: str, raw: Any):
        self.prefix = f"policy.{policy}"
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(self.prefix, raw, "a mapping of parameters (see conf/policy/" + policy + ".yaml)")
        self.raw = dict(raw)
        self.used: set[str] = set()

    def _get(self, key: str):
        self.used.add(key)
        if key not in self.raw:
            raise ConfigError(f"{self.prefix}.{key}", "missing", "a value in conf/policy (required parameter)")
        return self.raw[key]

    def number(self, key: str, kind: str = "nonneg", allow_inf: bool = False) -> float:
        value = self._get(key)
        texts = {"nonneg": "a number >= 0", "positive": "a number > 0", "prob": "a probability in [0, 1]",
                 "count": "a whole number >= 0", "score": "a number in [0, 100]"}
        text = texts[kind] + (" (or .inf)" if allow_inf else "")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{self.prefix}.{key}", value, text)
        if math.isinf(value) and allow_inf and value > 0:
            return float(value)
        ok = math.isfinite(value) and {
            "nonneg": value >= 0, "positive": value > 0, "prob": 0 <= value <= 1,
            "count": value >= 0 and float(value).is_integer(), "score": 0 <= value <= 100}[kind]
        if not ok:
            raise ConfigError(f"{self.prefix}.{key}", value, text)
        return int(value) if kind == "count" else float(value)

    def choice(self, key: str, options: tuple[str, ...]) -> str:
        value = self._get(key)
        if value not in options:
            raise ConfigError(f"{self.prefix}.{key}", value, "one of " + ", ".join(options))
        return value

    def segment(self, key: str, sides: list[str]) -> int | None:
        """A seller segment filter: None for "all", else the segment code (0 SMB, 1 enterprise)."""
        segments = {"all": None, "smb": 0, "enterprise": 1}
        code = segments[self.choice(key, tuple(segments))]
        if code is not None and sides != ["sellers"]:
            raise ConfigError(f"{self.prefix}.{key}", self._get(key),
                              "all, unless sides is [sellers] (only sellers have segments)")
        return code

    def mapping(self, key: str) -> dict:
        value = self._get(key)
        if not isinstance(value, dict):
            raise ConfigError(f"{self.prefix}.{key}", value, "a mapping of parameters")
        return dict(value)

    def sides(self, key: str, market, allowed: tuple[str, ...] = ("buyers", "sellers", "drivers"),
              policy_doc: str = "") -> list[str]:
        """A list of target sides; ``supply`` means the market's supply sides among ``allowed``.

        A side the market lacks, or one the policy cannot act on, is an error
        naming the market's sides.
        """
        value = self._get(key)
        items = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
        key_name = f"{self.prefix}.{key}"
        in_market = [s for s in market.sides if s in allowed]
        text = (f"a list of sides this policy acts on in market {market.name}: "
                + (", ".join(in_market + (["supply"] if any(s in SUPPLY for s in in_market) else []))
                   if in_market else f"none (this policy needs {', '.join(allowed)}{policy_doc})"))
        if not items:
            raise ConfigError(key_name, value, text)
        out: list[str] = []
        for item in items:
            if item == "supply":
                expanded = [s for s in market.sides if s in SUPPLY and s in allowed]
                if not expanded:
                    raise ConfigError(key_name, value, text)
                out += [s for s in expanded if s not in out]
            elif item in market.sides and item in allowed:
                if item not in out:
                    out.append(item)
            else:
                raise ConfigError(key_name, value, text)
        return out

    def finish(self) -> None:
        """Unknown keys are errors (a typo must not silently use nothing)."""
        unknown = sorted(set(self.raw) - self.used)
        if unknown:
            k = unknown[0]
            raise ConfigError(f"{self.prefix}.{k}", self.raw[k],
                              "a parameter of this policy: " + ", ".join(sorted(self.used)))


class Policy:
    """Base class of CS policies (see the module docstring)."""

    name: ClassVar[str] = ""
    extra_staff: int = 0          # desk staff the policy adds (paid by it)
    staff_side: str = "drivers"   # the side its extra staff serve
    side_wide: ClassVar[bool] = False   # sets a lever on a whole side at once (a pilot can only switch it by period)

    def __init__(self, params: Any, market, cs_conf, key: str | None = None):
        self.market_name = market.name
        self.sides_in_market = tuple(market.sides)
        self.staff_cost_per_day = float(cs_conf.staff_cost_per_day)
        self.workday_minutes = 60.0 * float(cs_conf.workday_hours)
        self.key = key or self.name     # its config key below ``policy.`` and its account name
        p = Params(self.key, params)
        self.configure(p, market)
        p.finish()

    def configure(self, p: Params, market) -> None:
        """Read and check parameters (subclasses)."""

    def setup(self, cs) -> None:
        """Open accounts and set levers when the policy becomes active."""

    def act(self, day: int, cs) -> None:
        """Look at what CS can see and act (every day)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def first_eligible(order: np.ndarray, eligible: Callable[[np.ndarray], np.ndarray], limit=None) -> np.ndarray:
    """The first ``limit`` ids of ``order``, in its order, for which ``eligible(ids)`` (a mask) holds.

    ``order`` is scanned in chunks that double in size, so when few are
    wanted the work is proportional to the ids looked at rather than to the
    whole side. ``limit`` None or math.inf: every eligible id.
    """
    n = order.size
    if limit is None or not math.isfinite(limit) or limit >= n:
        limit, step = n, n
    else:
        limit = int(limit)
        step = max(2 * limit, 1024)
    found: list[np.ndarray] = []
    got = start = 0
    while got < limit and start < n:
        chunk = order[start:start + step]
        ok = chunk[eligible(chunk)]
        found.append(ok)
        got += ok.size
        start += chunk.size
        step *= 2
    if not found:
        return np.empty(0, np.int64)
    return np.concatenate(found)[:limit].astype(np.int64, copy=False)


def smallest_first(keys: np.ndarray, limit=None) -> np.ndarray:
    """Positions of the ``limit`` smallest ``keys``, in order: ``np.argsort(keys, kind="stable")[:limit]``.

    Without a full sort when ``limit`` is small (a partition, then a sort of
    the few kept). ``limit`` None or math.inf: all of them.
    """
    n = keys.size
    limit = n if limit is None or not math.isfinite(limit) else max(int(limit), 0)
    if 4 * limit >= n:
        return np.argsort(keys, kind="stable")[:limit]
    if limit == 0:
        return np.empty(0, np.int64)
    kth = np.partition(keys, limit - 1)[limit - 1]
    if keys.dtype.kind == "f" and np.isnan(kth):
        return np.argsort(keys, kind="stable")[:limit]
    below = np.flatnonzero(keys < kth)
    tied = np.flatnonzero(keys == kth)[: limit - below.size]     # ties: the earliest positions
    keep = np.sort(np.concatenate([below, tied]))
    return keep[np.argsort(keys[keep], kind="stable")]


BUILT_IN = ("none", "proactive_outreach", "fair_disputes", "tech_touch", "onboarding_program", "referral_incentive",
            "win_back", "segmented", "expansion_offers")
"""The policy library's own modules (policies/<name>.py), imported on first use of :func:`registry`."""

ENTRY_POINT_GROUP = "twosided.policies"
"""Installed packages add policies under this entry-point group (``name = "module:Class"``), docs/policies.md."""

_registered: dict[str, type[Policy]] = {}
_loaded = False


def register_policy(cls: type[Policy]) -> type[Policy]:
    """Class decorator: make a :class:`Policy` subclass usable as ``policy=<cls.name>``; returns ``cls``.

    A second, different class under a name already taken is refused (a
    ValueError naming both), so a plug-in cannot silently replace a policy.
    """
    if not (isinstance(cls, type) and issubclass(cls, Policy)):
        raise TypeError(f"register_policy: {cls!r} is not a subclass of policies.Policy")
    if not isinstance(cls.name, str) or not cls.name.isidentifier():
        raise TypeError(f"register_policy: {cls.__qualname__}.name must be a Python identifier "
                        f"(its config key, policy.<name>), not {cls.name!r}")
    taken = _registered.get(cls.name)
    if taken is not None and taken is not cls:
        raise ValueError(f"two CS policies are named {cls.name!r}: {taken.__module__}.{taken.__qualname__} and "
                         f"{cls.__module__}.{cls.__qualname__}; rename one (its class attribute `name`)")
    _registered[cls.name] = cls
    return cls


def _load_plugins() -> None:
    """Import the built-in policy modules and every installed ``twosided.policies`` entry point, once."""
    global _loaded
    if _loaded:
        return
    import importlib
    from importlib.metadata import entry_points

    for name in BUILT_IN:
        importlib.import_module(f"policies.{name}")
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = point.load()
        except Exception as error:   # a broken plug-in names itself, not a traceback deep in importlib
            raise ConfigError(f"entry point {ENTRY_POINT_GROUP}:{point.name}", point.value,
                              f"an importable Policy class (importing it failed: {error})") from error
        if isinstance(loaded, type) and issubclass(loaded, Policy):
            register_policy(loaded)
    _loaded = True


def registry() -> dict[str, type[Policy]]:
    """Every policy by name: the built-in ones, installed plug-ins and any class decorated with
    :func:`register_policy`."""
    _load_plugins()
    return dict(_registered)


def build_policies(policy_cfg: Any, market, cs_conf) -> list[Policy]:
    """The active policies from ``cfg.policy`` ({name: params}); ConfigError on unknown names or bad params."""
    if policy_cfg is None:
        return []
    if not isinstance(policy_cfg, dict):
        raise ConfigError("policy", policy_cfg, "a mapping of policy names to parameters, e.g. "
                                                "policy=[proactive_outreach,tech_touch]")
    known = registry()
    out = []
    for name, params in policy_cfg.items():
        if name not in known:
            raise ConfigError("policy", name, "one of " + ", ".join(sorted(known)))
        if name == "none":
            continue
        out.append(known[name](params, market, cs_conf))
    return out
