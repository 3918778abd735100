"""Parameter uncertainty for `twosided compare uncertainty=NAME draws=K`: distributions of the assumed numbers.

conf/uncertainty/NAME.yaml (or the path of a .yaml file) groups config keys
into parameter groups, the assumptions a pilot or a study would pin down
together (EVPPI is reported per group)::

    groups:
      tech_touch_effect:
        policy.tech_touch.weight: triangular               # on its "(assumed) range a-b", peaked at the default
        policy.tech_touch.level: {dist: uniform, low: 0.6, high: 0.9}
      staff_cost:
        cs.staff_cost_per_day: {dist: lognormal, sigma: 0.2}   # median: the config's value

Distributions (scipy.stats; omitted bounds come from the key's "(assumed) range
a-b" comment in conf/, an omitted centre is the config's own value, so each
number has one source):

    uniform      low, high
    triangular   low, mode, high
    lognormal    sigma (of log), median
    beta         a, b, low, high         Beta(a, b) stretched to [low, high]
    normal       sd, mean, low, high     truncated at low / high (both optional)

A group may instead be ``{from_fit: PATH}``, the fit.json of ``twosided calibrate``: each parameter it
calibrated (BG/NBD, Gamma-Gamma spend, sBG churn) gets a normal distribution at its estimate with its
fitted standard error, truncated at its bound (:func:`fitted_distributions`).

Draw d of parameter KEY is ``ppf(u)`` with u from the project's counter-based
streams (sim/streams.py), stream ``uncertainty.KEY`` under the comparison's
seed, counter d: a pure function of (seed, key, d), so the first K draws of a
larger K are the same, and adding a parameter changes no other's draws.
Whole-number parameters (a default written as an integer) are rounded.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from experiments.checks import did_you_mean
from sim.config import ConfigError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUP = "uncertainty"
STREAM_PREFIX = "uncertainty."
DISTRIBUTIONS = {"uniform": ("low", "high"), "triangular": ("low", "mode", "high"),
                 "lognormal": ("sigma", "median"), "beta": ("a", "b", "low", "high"),
                 "normal": ("sd", "mean", "low", "high")}
DIST_ALLOWED = ("a distribution: uniform or triangular (on the key's assumed range in conf/), or a mapping "
                "{dist: NAME, ...} with NAME and its parameters: uniform (low, high), triangular (low, mode, high), "
                "lognormal (sigma, median), beta (a, b, low, high), normal (sd, mean, low, high); omitted low/high: "
                "the key's '(assumed) range a-b' in conf/, omitted mode/median/mean: the config's value")
_RANGE = re.compile(r"range\s+(-?\d+(?:\.\d+)?)\s*(?:-|to)\s*(-?\d+(?:\.\d+)?)")
_KEY_LINE = re.compile(r"^(\s*)([A-Za-z_]\w*):(.*)$")


# -- the assumed ranges written in conf/ ------------------------------------------------------------
def ranges_in_yaml(path: Path, prefix: str = "") -> dict[str, tuple[float, float]]:
    """{dotted key: (low, high)} of every key whose comment says ``range a-b`` in a conf/ YAML file.

    A comment-only line whose ``#`` sits in the same column as the previous key's comment continues it.
    """
    out: dict[str, tuple[float, float]] = {}
    stack: list[tuple[int, str]] = []
    last_key, last_col, comment = None, -1, ""

    def close() -> None:
        match = _RANGE.search(comment)
        if last_key is not None and match:
            out[prefix + last_key] = (float(match.group(1)), float(match.group(2)))

    for line in path.read_text().splitlines():
        hash_col = line.find("#")
        code = line if hash_col < 0 else line[:hash_col]
        if not code.strip():
            if hash_col >= 0 and hash_col == last_col:
                comment += " " + line[hash_col + 1:]
            continue
        close()
        last_key, last_col, comment = None, -1, ""
        match = _KEY_LINE.match(code)
        if not match:
            continue
        indent, key = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        last_key = ".".join(k for _, k in stack)
        if hash_col >= 0:
            last_col, comment = hash_col, line[hash_col + 1:]
    close()
    return out


def assumed_ranges(market: str) -> dict[str, tuple[float, float]]:
    """The ranges of conf/ for a market: policies (policy.*), the market (market.*, its own file over
    market_base/common.yaml) and conf/config.yaml (cs.*, metrics.*)."""
    out = ranges_in_yaml(CONF_DIR / "config.yaml")
    for path in sorted((CONF_DIR / "policy").glob("*.yaml")):
        out.update(ranges_in_yaml(path, "policy."))
    out.update(ranges_in_yaml(CONF_DIR / "market_base" / "common.yaml", "market."))
    market_file = CONF_DIR / "market" / f"{market}.yaml"
    if market_file.exists():
        out.update(ranges_in_yaml(market_file, "market."))
    return out


# -- the settings -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Parameter:
    """One uncertain config key: its group and its frozen scipy.stats distribution."""

    key: str
    group: str
    dist: str
    args: dict            # the distribution's parameters, all resolved to numbers
    default: Any          # the config's value (its type decides rounding)

    def frozen(self):
        """The scipy.stats frozen distribution."""
        a = self.args
        if self.dist == "uniform":
            return stats.uniform(loc=a["low"], scale=a["high"] - a["low"])
        if self.dist == "triangular":
            width = a["high"] - a["low"]
            return stats.triang(c=(a["mode"] - a["low"]) / width, loc=a["low"], scale=width)
        if self.dist == "lognormal":
            return stats.lognorm(s=a["sigma"], scale=a["median"])
        if self.dist == "beta":
            return stats.beta(a["a"], a["b"], loc=a["low"], scale=a["high"] - a["low"])
        sd = a["sd"]
        return stats.truncnorm((a["low"] - a["mean"]) / sd, (a["high"] - a["mean"]) / sd, loc=a["mean"], scale=sd)

    @property
    def whole(self) -> bool:
        return isinstance(self.default, int) and not isinstance(self.default, bool)

    def value(self, u: np.ndarray) -> np.ndarray:
        """The parameter at uniforms ``u`` (inverse CDF; rounded for whole-number parameters)."""
        x = self.frozen().ppf(u)
        return np.round(x) if self.whole else x

    def text(self) -> str:
        """``triangular(low=0.01, mode=0.05, high=0.1)``."""
        return f"{self.dist}(" + ", ".join(f"{k}={v:g}" for k, v in self.args.items() if math.isfinite(v)) + ")"


@dataclass
class Uncertainty:
    """The parameters of one uncertainty setting, in file order, and its name."""

    name: str
    parameters: list

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(p.group for p in self.parameters))

    def draw(self, seed: int, draws: int) -> list[dict]:
        """``draws`` parameter sets ({key: value}), from the project's streams under ``seed``."""
        from sim.streams import ATTRIBUTE_DAY, Streams, declare_streams

        declare_streams(__name__, [STREAM_PREFIX + p.key for p in self.parameters])
        streams = Streams(seed)
        counters = np.arange(draws, dtype=np.int64)
        columns = {p.key: p.value(streams.uniform(STREAM_PREFIX + p.key, ATTRIBUTE_DAY, counters))
                   for p in self.parameters}
        return [{key: _plain(values[d], p.whole) for (key, values), p in zip(columns.items(), self.parameters)}
                for d in range(draws)]


def _plain(x, whole: bool):
    return int(x) if whole else float(x)


def _number(key: str, value: Any, allowed: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(key, value, allowed)
    return float(value)


def uncertainty_path(name: str) -> Path:
    """conf/uncertainty/NAME.yaml, or NAME itself when it is the path of a .yaml file (ConfigError otherwise)."""
    options = sorted(p.stem for p in (CONF_DIR / GROUP).glob("*.yaml"))
    path = Path(name) if str(name).endswith((".yaml", ".yml")) else CONF_DIR / GROUP / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError("uncertainty", name, "one of " + ", ".join(options) + did_you_mean(name, options)
                          + " (conf/uncertainty/), or the path of a .yaml file")
    return path


def load_uncertainty(name: str, resolved: dict, market: str) -> Uncertainty:
    """Read and check an uncertainty setting against a comparison's resolved configs.

    ``resolved``: arm name -> resolved config (a plain dict); a key must be in one of them, or be a
    parameter of conf/policy/ (whose default there, not an arm's variant, centres its distribution).
    ConfigError, one paragraph, naming the key, on an unknown key, a bad distribution or a bound the
    config's value does not fit.
    """
    from omegaconf import OmegaConf

    from experiments.arms import flatten, policy_defaults

    path = uncertainty_path(name)
    try:
        raw = OmegaConf.to_container(OmegaConf.load(path))
    except Exception as error:  # noqa: BLE001 - any YAML error is the user's file
        raise ConfigError("uncertainty", str(path), f"valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(raw, dict) or set(raw) != {"groups"} or not isinstance(raw["groups"], dict) \
            or not raw["groups"]:
        raise ConfigError("uncertainty", str(path), "a file with one key, `groups`: a mapping of group names to "
                          "{config key: distribution}")
    known: dict[str, Any] = {}
    for cfg in resolved.values():
        flat = flatten({k: v for k, v in cfg.items() if k != "policy"})
        known.update({k: v for k, v in flat.items() if k not in known})
    for policy in sorted(p.stem for p in (CONF_DIR / "policy").glob("*.yaml")):
        known.update({f"policy.{policy}.{k}": v for k, v in policy_defaults(policy).items()})
    ranges = assumed_ranges(market)
    parameters, seen = [], set()
    for group, entries in raw["groups"].items():
        if not isinstance(entries, dict) or not entries:
            raise ConfigError(f"groups.{group}", entries, "a mapping of config keys to distributions")
        if set(entries) == {"from_fit"}:
            entries = fitted_distributions(f"groups.{group}.from_fit", entries["from_fit"], path.parent)
        for key, spec in entries.items():
            where = f"groups.{group}.{key}"
            if key not in known:
                raise ConfigError(where, spec, "a distribution on a number of the config, whose key exists "
                                  "(see conf/config.yaml, conf/market_base/common.yaml, conf/policy/)"
                                  + did_you_mean(key, list(known)))
            default = known[key]
            if isinstance(default, bool) or not isinstance(default, (int, float)):
                raise ConfigError(where, spec, f"a distribution only on a numeric parameter (its value is "
                                  f"{default!r})")
            if key in seen:
                raise ConfigError(where, spec, "a parameter given in one group only")
            seen.add(key)
            parameters.append(_parameter(where, key, group, spec, default, ranges.get(key)))
    return Uncertainty(path.stem, parameters)


FITTED_LOWER_BOUND = {"buyers.spend.q": 1.0}
"""Where a calibrated parameter's distribution is cut below (the engine needs q > 1); every other is cut at 0."""


def fitted_distributions(where: str, fit_path: Any, relative_to: Path) -> dict:
    """{config key: normal distribution} from a `twosided calibrate` fit.json: each calibrated parameter
    centred on its estimate with its fitted standard error, truncated at its bound (0; 1 for q).

    ``fit_path`` relative paths are read from the uncertainty file's folder. ConfigError if the file is not
    a calibration, or an estimate has no finite positive standard error.
    """
    import json

    from experiments.calibrate import FITTED_MARKET_KEYS

    path = Path(str(fit_path))
    path = path if path.is_absolute() else relative_to / path
    try:
        fit = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(where, str(fit_path), f"the path of a fit.json written by `twosided calibrate` "
                          f"({type(error).__name__}: {error})") from None
    entries = {}
    for section, keys in FITTED_MARKET_KEYS.items():
        if not isinstance(fit, dict) or section not in fit:
            continue
        if section == "gamma_gamma" and "mean_spend" not in fit[section]:
            continue   # q <= 1: calibrate kept the base market's spend, so nothing of it was calibrated
        side = fit[section].get("side", "")
        for estimate, key in keys.items():
            entry = fit[section].get(estimate)
            value, se = (entry or {}).get("value"), (entry or {}).get("se")
            if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in (value, se)) or se <= 0:
                raise ConfigError(f"{where}: {section}.{estimate}", entry, "an estimate with a finite, positive "
                                  "standard error (refit with more data, or give this parameter a distribution "
                                  "by hand)")
            entries["market." + key.format(side=side)] = {"dist": "normal", "mean": float(value), "sd": float(se),
                                                          "low": FITTED_LOWER_BOUND.get(key, 0.0)}
    if not entries:
        raise ConfigError(where, str(fit_path), "a fit.json with at least one of " + ", ".join(FITTED_MARKET_KEYS))
    return entries


def _parameter(where: str, key: str, group: str, spec: Any, default: Any, assumed) -> Parameter:
    if isinstance(spec, str):
        spec = {"dist": spec}
    if not isinstance(spec, dict) or spec.get("dist") not in DISTRIBUTIONS:
        raise ConfigError(where, spec, DIST_ALLOWED)
    dist = spec["dist"]
    names = DISTRIBUTIONS[dist]
    extra = set(spec) - {"dist", *names}
    if extra:
        raise ConfigError(f"{where}.{sorted(extra)[0]}", spec[sorted(extra)[0]],
                          f"a parameter of {dist}: " + ", ".join(names))
    args = {k: _number(f"{where}.{k}", spec[k], "a finite number") for k in names if k in spec}
    centre = {"triangular": "mode", "lognormal": "median", "normal": "mean"}.get(dist)
    if centre and centre not in args:
        args[centre] = float(default)
    if dist in ("uniform", "triangular", "beta") and ("low" not in args or "high" not in args):
        if assumed is None:
            raise ConfigError(where, spec, f"low and high for {dist}: this key's comment in conf/ gives no "
                              "'(assumed) range a-b' to take them from")
        args.setdefault("low", assumed[0])
        args.setdefault("high", assumed[1])
    if dist == "normal":
        args.setdefault("low", -math.inf)
        args.setdefault("high", math.inf)
    for name in names:
        if name not in args:
            raise ConfigError(f"{where}.{name}", None, f"a number: {dist} needs " + ", ".join(names))
    if "low" in names and not args["low"] < args["high"]:
        raise ConfigError(f"{where}.high", args["high"], f"a number above low ({args['low']:g})")
    for positive in ("sigma", "sd", "a", "b", "median"):
        if positive in args and not args[positive] > 0:
            raise ConfigError(f"{where}.{positive}", args[positive], "a number > 0")
    if dist == "triangular" and not args["low"] <= args["mode"] <= args["high"]:
        raise ConfigError(f"{where}.mode", args["mode"], f"a number in [low, high] = [{args['low']:g}, "
                          f"{args['high']:g}] (omitted: the config's value)")
    if dist == "normal" and not args["low"] < args["mean"] < args["high"]:
        raise ConfigError(f"{where}.mean", args["mean"], f"a number between low and high ({args['low']:g}, "
                          f"{args['high']:g})")
    ordered = {k: args[k] for k in names}
    return Parameter(key, group, dist, ordered, default)


# -- applying a draw to a run's config ---------------------------------------------------------------
def applies_to(key: str, policies) -> bool:
    """Whether a parameter reaches a run with these policies (a policy parameter only where the policy runs)."""
    parts = key.split(".")
    return parts[0] != "policy" or parts[1] in policies


def apply_draw(cfg, values: dict, fixed: set) -> Any:
    """A copy of a validated Config with the drawn values set (those reaching its policies), checked again.

    ``fixed``: keys the arm sets itself (its value wins over the draw). ConfigError if a value is out of range.
    """
    from policies import build_policies
    from sim.config import validate

    out = copy.deepcopy(cfg)
    for key, value in values.items():
        if key in fixed or not applies_to(key, out.policy):
            continue
        parts = key.split(".")
        if parts[0] == "policy":
            node = out.policy
            for part in parts[1:-1]:
                node = node[part]
            node[parts[-1]] = value
            continue
        node = out
        for part in parts[:-1]:
            node = getattr(node, part)
        if not dataclasses.is_dataclass(node) or not hasattr(node, parts[-1]):
            raise ConfigError(key, value, "a key of the config")
        setattr(node, parts[-1], value)
    validate(out)
    build_policies(out.policy, out.market, out.cs)
    return out
