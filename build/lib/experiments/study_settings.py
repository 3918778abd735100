"""Settings of `twosided sensitivity` and `twosided optimize`: loading, the model registry, checks.

Settings are conf/<group>/<name>.yaml merged with ``key=value`` arguments.
Every key must be one that conf/<group>/default.yaml documents, and every
value is checked before the first evaluation: a mistake ends as one
:class:`sim.config.ConfigError` paragraph (exit code 2) naming the key, the
value and what is allowed, never as trials that all fail.

Nothing in a settings file imports or runs code: ``model`` names an entry of
:data:`MODELS`, the simulator (``twosided``) or one of the analytic functions
whose answers are known, which the tests use to check the analyses.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from experiments.checks import did_you_mean
from experiments.config import CONF_DIR, find_group_file, group_options
from sim.config import ConfigError

SIM_MODEL = "twosided"


# ---------------------------------------------------------------- analytic models


def ishigami(x1: float, x2: float, x3: float, a: float = 7.0, b: float = 0.1, seed=None) -> float:
    """Ishigami function on [-pi, pi]^3: S1 = (0.314, 0.442, 0), ST = (0.558, 0.442, 0.244)."""
    return math.sin(x1) + a * math.sin(x2) ** 2 + b * x3 ** 4 * math.sin(x1)


def linear(x1: float, x2: float, x3: float, seed=None) -> float:
    """10 x1 + x2 + 0 x3 on [0, 1]^3: Morris mu* = (10, 1, 0)."""
    return 10.0 * x1 + 1.0 * x2 + 0.0 * x3


def bowl(x: float, n: int, seed=None) -> dict:
    """Peak y = 0 at x = 0.3, n = 2 (plus 0.01 * seed, the same for every point); cost = n."""
    noise = 0.0 if seed is None else 0.01 * seed
    return {"y": -(x - 0.3) ** 2 - 0.1 * (n - 2) ** 2 + noise, "cost": float(n)}


@dataclass(frozen=True)
class Model:
    """A model the analyses evaluate: the simulator (``function`` None) or a function of the parameters."""

    function: Callable | None
    outputs: tuple[str, ...] = ()   # an analytic function's outputs (the simulator's: its summary metrics)

    def parameters(self) -> list[str] | None:
        """The parameter names a function takes (None: the simulator, whose parameters are config keys)."""
        if self.function is None:
            return None
        return [p for p in inspect.signature(self.function).parameters if p != "seed"]


MODELS: dict[str, Model] = {
    SIM_MODEL: Model(None),
    "ishigami": Model(ishigami, ("y",)),
    "linear": Model(linear, ("y",)),
    "bowl": Model(bowl, ("y", "cost")),
}


def get_model(name: str) -> Model:
    """The registered model ``name``; ConfigError for any other."""
    if name not in MODELS:
        raise ConfigError("model", name, "one of " + ", ".join(MODELS) + did_you_mean(name, MODELS)
                          + " (a name from the registry in experiments/study_settings.py; settings never name code)")
    return MODELS[name]


# ---------------------------------------------------------------- loading


def load_settings(group: str, args: list[str]) -> DictConfig:
    """conf/<group>/<config>.yaml (``config=NAME`` or a path) merged with ``key=value`` args.

    Unknown keys (not in conf/<group>/default.yaml), a missing file and an
    argument that is not key=value are refused with a ConfigError.
    """
    name, dotlist = "default", []
    for arg in args:
        key, eq, value = arg.partition("=")
        if not eq or not key.strip():
            raise ConfigError("argument", arg, "key=value, e.g. n_jobs=2 (settings: conf/" + group + "/)")
        if key in ("config", "--config"):
            name = value
        else:
            dotlist.append(arg)
    options = group_options(group)
    path = Path(name) if name.endswith((".yaml", ".yml")) else find_group_file(group, name)
    if path is None or not path.is_file():
        raise ConfigError("config", name, "one of " + ", ".join(options) + did_you_mean(name, options)
                          + ", or the path of a .yaml file")
    known = OmegaConf.load(CONF_DIR / group / "default.yaml")
    try:
        settings = OmegaConf.load(path)
        given = OmegaConf.from_dotlist(dotlist)
    except (OmegaConfBaseException, ValueError) as error:
        raise ConfigError("config" if not dotlist else "argument", str(path) if not dotlist else " ".join(dotlist),
                          f"valid YAML and key=value arguments ({str(error).splitlines()[0]})") from None
    for source in (settings, given):
        for key in source:
            if key not in known and key != "name":
                raise ConfigError(key, source[key], f"a setting of conf/{group}/default.yaml: "
                                  + ", ".join(k for k in known) + did_you_mean(key, list(known)))
    settings = OmegaConf.merge(settings, given)
    settings.setdefault("name", path.stem)
    return settings


# ---------------------------------------------------------------- checks


def _whole(key: str, value, low: int, allowed: str | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(key, value, allowed or f"a whole number >= {low}")
    return value


def _number(key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(key, value, "a finite number")
    return float(value)


def _list(key: str, value, allowed: str) -> list:
    if value is None:
        return []
    if isinstance(value, (str, int, float)):
        return [value]
    if not isinstance(value, (list, ListConfig)):
        raise ConfigError(key, value, allowed)
    return list(value)


def _check_common(settings: DictConfig, group: str) -> tuple[Model, list[str], list]:
    model = get_model(str(settings.get("model", SIM_MODEL)))
    base = _list("base", settings.get("base"), "a list of config overrides, e.g. [market=goods, scale=tiny]")
    base = [str(b) for b in base]
    seeds = _list("seeds", settings.get("seeds"), "a list of whole-number seeds, e.g. [1, 2, 3]")
    for i, seed in enumerate(seeds):
        _whole(f"seeds[{i}]", seed, 0)
    n_jobs = settings.get("n_jobs", 1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ConfigError("n_jobs", n_jobs, "a whole number >= 1, or -1 for every core")
    if model.function is not None and base:
        raise ConfigError("base", base, f"[] for the analytic model {settings.model!r} (it has no config)")
    return model, base, seeds


def _check_parameters(model: Model, base: list[str], specs: list[tuple[str, object, list]]) -> None:
    """Each parameter (key, name, values) exists and takes its values, and ``base`` is a valid config.

    For the simulator every parameter is set at once, at its first values and
    then at its last (low and high, or the first and last choices), on top of
    ``base``: two compositions check every key and range.
    """
    accepted = model.parameters()
    for key, name, _ in specs:
        if not isinstance(name, str) or not name or name.startswith(("+", "~")):
            raise ConfigError(key, name, "a config key, e.g. market.sellers.commission (no + or ~ prefix)")
        if accepted is not None and name not in accepted:
            raise ConfigError(key, name,
                              "an argument of the model: " + ", ".join(accepted) + did_you_mean(name, accepted))
    if accepted is not None:
        return
    from experiments.config import load_config

    by_name = {name: key for key, name, _ in specs}
    for pick in (0, -1):
        try:
            load_config([*base, *[f"{name}={values[pick]}" for _, name, values in specs]])
        except ConfigError as error:
            key = by_name.get(error.key)
            where = f"{key} ({error.key})" if key else f"base: {error.key}"
            raise ConfigError(where, error.value, error.allowed) from None


def model_outputs(model: Model, base: list[str]) -> list[str]:
    """The outputs a model reports: its declared ones, or the simulator's summary metrics (side.metric).

    The simulator's are read off a one-day run of ``base`` with a few agents
    per side: the summary's keys do not depend on the size of the run (a
    metric with no value yet, such as monthly churn on day 1, is None).
    """
    if model.function is not None:
        return list(model.outputs)

    from experiments.config import load_config
    from sim import Marketplace
    from sim.config import SIDES

    small = [f"population.{side}=5" for side in SIDES]
    try:
        cfg = load_config([*base, "days=1", *small])
    except ConfigError as error:
        raise ConfigError(f"base: {error.key}", error.value, error.allowed) from None
    summary = Marketplace(cfg).run().summary
    return _metric_keys(summary)


def _metric_keys(summary: dict, prefix: str = "") -> list[str]:
    """Dotted keys of the summary's numeric (or not yet defined, None) values."""
    keys = []
    for key, value in summary.items():
        if isinstance(value, dict):
            keys += _metric_keys(value, f"{prefix}{key}.")
        elif value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            keys.append(f"{prefix}{key}")
    return keys


def _check_output(key: str, value, known: list[str]) -> str:
    """``value`` is one of the ``known`` outputs; the refusal lists those of its side (or the sides)."""
    if not isinstance(value, str) or value not in known:
        prefix = str(value).partition(".")[0]
        same_side = [k for k in known if k.startswith(prefix + ".")]
        listing = (f"{prefix}: " + ", ".join(k.partition(".")[2] for k in same_side) if same_side
                   else "sides: " + ", ".join(dict.fromkeys(k.partition(".")[0] for k in known)))
        raise ConfigError(key, value, f"a summary metric as side.metric{did_you_mean(value, known)} ({listing})")
    return value


def check_sensitivity_settings(settings: DictConfig) -> None:
    """Refuse any invalid sensitivity setting before sampling (ConfigError)."""
    model, base, _ = _check_common(settings, "sensitivity")
    if settings.get("method") not in ("sobol", "morris"):
        raise ConfigError("method", settings.get("method"), "sobol or morris")
    _whole("samples", settings.get("samples"), 1)
    if settings.method == "morris":
        _whole("morris_levels", settings.get("morris_levels", 4), 2)
    _whole("sample_seed", settings.get("sample_seed", 0), 0)
    conf = settings.get("conf_level", 0.95)
    if not (isinstance(conf, (int, float)) and not isinstance(conf, bool) and 0 < conf < 1):
        raise ConfigError("conf_level", conf, "a number strictly between 0 and 1")
    parameters = _list("parameters", settings.get("parameters"), "a list of {name, low, high[, type]}")
    if not parameters:
        raise ConfigError("parameters", settings.get("parameters"), "at least one {name, low, high[, type]}")
    names, specs = [], []
    for i, spec in enumerate(parameters):
        key = f"parameters[{i}]"
        if not isinstance(spec, (dict, DictConfig)) or "name" not in spec:
            raise ConfigError(key, spec, "a mapping {name, low, high[, type]}")
        kind = spec.get("type", "float")
        if kind not in ("float", "int"):
            raise ConfigError(f"{key}.type", kind, "float or int (sensitivity analysis needs a numeric range)")
        low, high = _number(f"{key}.low", spec.get("low")), _number(f"{key}.high", spec.get("high"))
        if not low < high:
            raise ConfigError(f"{key}.high", spec.get("high"), f"a number > low ({spec.get('low')})")
        if spec["name"] in names:
            raise ConfigError(f"{key}.name", spec["name"], "a parameter not already listed")
        names.append(spec["name"])
        values = [int(round(low)), int(round(high))] if kind == "int" else [low, high]
        specs.append((f"{key}.name", spec["name"], values))
    _check_parameters(model, base, specs)
    outputs = _list("output", settings.get("output"), "a summary metric or a list of them")
    if not outputs:
        raise ConfigError("output", settings.get("output"), "at least one summary metric, e.g. buyers.ltv")
    known = model_outputs(model, base)
    for i, output in enumerate(outputs):
        _check_output(f"output[{i}]" if len(outputs) > 1 else "output", output, known)


def check_optimize_settings(settings: DictConfig) -> None:
    """Refuse any invalid optimize setting before the first trial (ConfigError)."""
    model, base, seeds = _check_common(settings, "optimize")
    if not seeds:
        raise ConfigError("seeds", settings.get("seeds"), "a list of at least one whole-number seed")
    _whole("n_trials", settings.get("n_trials"), 1)
    _whole("n_startup_trials", settings.get("n_startup_trials", 8), 0)
    _whole("sampler_seed", settings.get("sampler_seed", 0), 0)
    if settings.get("direction", "maximize") not in ("maximize", "minimize"):
        raise ConfigError("direction", settings.get("direction"), "maximize or minimize")
    if settings.get("sampler", "tpe") not in ("tpe", "random"):
        raise ConfigError("sampler", settings.get("sampler"), "tpe or random")
    space = _list("space", settings.get("space"), "a list of {name, type, low/high or choices}")
    if not space:
        raise ConfigError("space", settings.get("space"), "at least one {name, type, low/high or choices}")
    names, specs = [], []
    for i, spec in enumerate(space):
        key = f"space[{i}]"
        if not isinstance(spec, (dict, DictConfig)) or "name" not in spec:
            raise ConfigError(key, spec, "a mapping {name, type, low/high or choices}")
        kind = spec.get("type", "float")
        if kind == "categorical":
            choices = _list(f"{key}.choices", spec.get("choices"), "a non-empty list of values")
            if not choices:
                raise ConfigError(f"{key}.choices", spec.get("choices"), "a non-empty list of values")
            values = choices
        elif kind in ("int", "float"):
            low, high = _number(f"{key}.low", spec.get("low")), _number(f"{key}.high", spec.get("high"))
            if kind == "int":
                for bound in ("low", "high"):
                    if not float(spec.get(bound)).is_integer():
                        raise ConfigError(f"{key}.{bound}", spec.get(bound), "a whole number (type int)")
            if not low < high:
                raise ConfigError(f"{key}.high", spec.get("high"), f"a number > low ({spec.get('low')})")
            step = spec.get("step")
            if step is not None and not (_number(f"{key}.step", step) > 0 and step <= high - low):
                raise ConfigError(f"{key}.step", step, f"a number > 0 and at most high - low ({high - low:g})")
            log = spec.get("log", False)
            if not isinstance(log, bool):
                raise ConfigError(f"{key}.log", log, "true or false")
            if log and (low <= 0 or step is not None):
                raise ConfigError(f"{key}.log", log, "false unless low > 0 and no step is given (a log-uniform range)")
            values = [int(low), int(high)] if kind == "int" else [low, high]
        else:
            raise ConfigError(f"{key}.type", kind, "int, float or categorical")
        if spec["name"] in names:
            raise ConfigError(f"{key}.name", spec["name"], "a parameter not already listed")
        names.append(spec["name"])
        specs.append((f"{key}.name", spec["name"], values))
    _check_parameters(model, base, specs)
    known = model_outputs(model, base)
    _check_output("metric", settings.get("metric"), known)
    constraint = settings.get("constraint")
    if constraint is not None:
        if not isinstance(constraint, (dict, DictConfig)):
            raise ConfigError("constraint", constraint, "null or {metric, max and/or min}")
        unknown = [k for k in constraint if k not in ("metric", "max", "min")]
        if unknown:
            raise ConfigError(f"constraint.{unknown[0]}", constraint[unknown[0]], "only metric, max and min"
                              + did_you_mean(unknown[0], ["metric", "max", "min"]))
        _check_output("constraint.metric", constraint.get("metric"), known)
        bounds = [b for b in ("max", "min") if constraint.get(b) is not None]
        if not bounds:
            raise ConfigError("constraint", OmegaConf.to_container(constraint), "a max and/or a min for its metric")
        for b in bounds:
            _number(f"constraint.{b}", constraint.get(b))
