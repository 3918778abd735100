"""`twosided pilot`: simulate a pilot of a CS policy, and hold its estimate against the rollout's true effect.

    twosided pilot policy=fair_disputes design=all market=rides scale=small replicates=4 out=pilots/disputes
    twosided pilot policy=none design=drivers market=rides scale=tiny out=pilots/negative_control

Keys of conf/pilot.yaml (policy, design, share, days, replicates, metric, side, zones_per_axis,
period_days, confidence, alpha, target_power, jobs, out, progress) set the pilot; every other
key=value is a model override given to every run (market=, scale=, seed=, population.drivers=...).

For each replicate r (seed + r, common random numbers across all of its runs):

* the rollout truth: the market with nobody treated and with everyone treated;
  the global treatment effect (gte) is the difference of the metric between them.
* one pilot per design: the same market where the policy acts on treated units
  only (sim/treatment.py); the analyst's estimate is the difference in the
  metric between treated and control, with its interval, computed at the
  design's unit of randomisation (agents; zones for clusters; periods for
  switchback) by the delta method for a ratio metric (cluster-experiments'
  DeltaMethodAnalysis).
* two-sided randomisation (``two_sided``, Johari et al. 2022) randomises every
  side at once; its estimate is the TSR estimator on trades: completed orders
  of treated metric-side agents with treated counterparts, against control
  agents' orders with control counterparts, each scaled by the counterpart
  arm's share (:func:`units_table`). It measures trades, so only metric=orders.

The metric is a rate per agent-month alive during the pilot (MONTH_DAYS days):
churn (departures), orders (completed orders or trips) or margin (currency),
on one side. Per design the output gives the estimate, its interval, the gte,
bias, sd and RMSE across replicates, the power of the design to detect the gte
and the days it needs for the target power (experiments/pilot_report.py
writes the files).
"""
from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments.compare import _with_seed, execute, seed_for
from experiments.folder import OutputFolder, provenance
from sim.config import ConfigError
from sim.metrics import MONTH_DAYS
from sim.treatment import DESIGNS, SIDE_DESIGNS, Assignment, Design

PILOT_YAML = Path(__file__).resolve().parent.parent / "conf" / "pilot.yaml"
METRICS = ("churn", "orders", "margin")
POSITIONED_MARKETS = ("rides", "delivery")   # markets whose agents stand somewhere on the city map
TREATMENT, CONTROL = "treatment", "control"
ROLLOUT = ("nobody", "everyone")             # the two runs of the rollout truth

_ALLOWED = {
    "policy": "one policy of conf/policy/ (none: a negative control)",
    "design": "one of " + ", ".join(DESIGNS) + ", or all (every design the market, the policy and the metric allow)",
    "share": "a number strictly between 0 and 1 (the treated share of the randomised units)",
    "days": "a whole number >= 30 (the pilot's length in days)",
    "replicates": "a whole number >= 2 (bias and spread are measured across replicates)",
    "metric": "auto, or one of " + ", ".join(METRICS),
    "side": "auto, or a side of the market: buyers, sellers, drivers",
    "zones_per_axis": "a whole number >= 2 (the clusters' grid is zones_per_axis x zones_per_axis)",
    "period_days": "a whole number >= 1, below the pilot's days (switchback periods)",
    "confidence": "a number strictly between 0 and 1",
    "alpha": "a number strictly between 0 and 1 (the level of the power figures)",
    "target_power": "a number strictly between 0 and 1",
    "jobs": "a whole number >= 1",
    "out": "a folder path (or null for pilots/<timestamp>)",
    "progress": "true or false",
}


@dataclass
class Settings:
    """The pilot's own keys (defaults in conf/pilot.yaml) and the model overrides."""

    policy: str = "fair_disputes"
    design: str = "all"
    share: float = 0.5
    days: int = 90
    replicates: int = 4
    metric: str = "auto"
    side: str = "auto"
    zones_per_axis: int = 4
    period_days: int = 7
    confidence: float = 0.95
    alpha: float = 0.05
    target_power: float = 0.8
    jobs: int = 2
    out: Any = None
    progress: bool = True
    model: list = field(default_factory=list)
    policy_overrides: list = field(default_factory=list)   # policy.NAME.KEY=VALUE: the piloted policy's parameters
    args: list = field(default_factory=list)


def _number(key: str, value: Any, kind: type, low: float, high: float, open_interval: bool = False):
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok and kind is int:
        ok = float(value).is_integer()
    if ok:
        ok = low < value < high if open_interval else low <= value <= high
    if not ok:
        raise ConfigError(key, value, _ALLOWED[key])
    return kind(value)


def parse_args(args: list[str]) -> Settings:
    """``key=value`` arguments -> validated :class:`Settings` (ConfigError, one paragraph, on bad input)."""
    from omegaconf import OmegaConf

    values: dict[str, Any] = OmegaConf.to_container(OmegaConf.load(PILOT_YAML))
    model: list[str] = []
    policy_overrides: list[str] = []
    for arg in args:
        if "=" not in arg or arg.startswith("-"):
            raise ConfigError("argument", arg, "key=value pairs: pilot keys (" + ", ".join(_ALLOWED)
                              + ") or model overrides such as market=rides scale=small seed=3")
        key, _, raw = arg.partition("=")
        if key in _ALLOWED:
            try:
                values[key] = OmegaConf.to_container(OmegaConf.from_dotlist([f"v={raw}"]))["v"]
            except Exception:  # noqa: BLE001 - any parse failure is the user's value
                raise ConfigError(key, raw, _ALLOWED[key]) from None
        elif key.lstrip("+~").startswith("policy."):
            policy_overrides.append(arg)   # the piloted policy's parameters: checked when composed
        elif key.lstrip("+~") == "policy":
            raise ConfigError(key, raw, "the piloted policy is the key policy=NAME (one policy); its parameters "
                              "are policy.NAME.KEY=VALUE overrides of conf/policy/NAME.yaml")
        else:
            model.append(arg)
    unknown = sorted(set(values) - set(_ALLOWED))
    if unknown:
        raise ConfigError(unknown[0], values[unknown[0]], f"a key of {PILOT_YAML.name}: " + ", ".join(_ALLOWED))
    s = Settings(model=model, policy_overrides=policy_overrides, args=list(args))
    for key in ("policy", "design", "metric", "side"):
        if not isinstance(values[key], str) or not values[key].strip():
            raise ConfigError(key, values[key], _ALLOWED[key])
    s.policy, s.design, s.metric, s.side = values["policy"], values["design"], values["metric"], values["side"]
    if s.design not in (*DESIGNS, "all"):
        raise ConfigError("design", s.design, _ALLOWED["design"])
    if s.metric not in ("auto", *METRICS):
        raise ConfigError("metric", s.metric, _ALLOWED["metric"])
    s.share = _number("share", values["share"], float, 0.0, 1.0, open_interval=True)
    s.days = _number("days", values["days"], int, 30, 10**6)
    s.replicates = _number("replicates", values["replicates"], int, 2, 10**6)
    s.zones_per_axis = _number("zones_per_axis", values["zones_per_axis"], int, 2, 1000)
    s.period_days = _number("period_days", values["period_days"], int, 1, s.days - 1)
    s.confidence = _number("confidence", values["confidence"], float, 0.0, 1.0, open_interval=True)
    s.alpha = _number("alpha", values["alpha"], float, 0.0, 1.0, open_interval=True)
    s.target_power = _number("target_power", values["target_power"], float, 0.0, 1.0, open_interval=True)
    s.jobs = _number("jobs", values["jobs"], int, 1, 4096)
    s.out = values["out"]
    if s.out is not None and (not isinstance(s.out, (str, int)) or str(s.out).strip() == ""):
        raise ConfigError("out", s.out, _ALLOWED["out"])
    if not isinstance(values["progress"], bool):
        raise ConfigError("progress", values["progress"], _ALLOWED["progress"])
    s.progress = values["progress"]
    return s


# -- the plan ---------------------------------------------------------------------------------------
@dataclass
class Plan:
    """A pilot before it runs: validated configs, the designs that apply, the metric and its side."""

    settings: Settings
    configs: dict          # "nobody" / "everyone" -> validated Config (base seed)
    designs: list          # design names, in DESIGNS order
    side: str              # the side the metric is measured on
    metric: str
    market: str
    base_seed: int
    counterpart: str       # two_sided: the other party of the metric side's trades

    def design(self, name: str) -> Design:
        s = self.settings
        return Design(name, s.share, s.zones_per_axis, s.period_days, s.days)

    def tasks(self) -> list:
        """One task per (run, replicate): the two rollout runs, then each design's pilot."""
        out = []
        for r in range(self.settings.replicates):
            seed = seed_for(self.base_seed, 0, r, crn=True)
            for run in (*ROLLOUT, *self.designs):
                cfg = self.configs["nobody" if run == "nobody" else "everyone"]
                design = self.design(run) if run in DESIGNS else None
                out.append(Task(run, r, seed, _with_seed(cfg, seed), design, self.side, self.counterpart))
        return out

    def spec(self) -> dict:
        """What the runs depend on: a folder holding another spec belongs to another pilot."""
        s = self.settings
        return {"policy": s.policy, "designs": self.designs, "share": s.share, "days": s.days,
                "replicates": s.replicates, "side": self.side, "zones_per_axis": s.zones_per_axis,
                "period_days": s.period_days, "model": s.model, "policy_overrides": s.policy_overrides,
                "seed": self.base_seed, **provenance()}


@dataclass
class Task:
    """One simulation of a pilot: a rollout run (design None) or a design's pilot, on one replicate."""

    run: str
    replicate: int
    seed: int
    cfg: Any
    design: Design | None
    side: str
    counterpart: str = "buyers"

    @property
    def key(self) -> str:
        return f"{self.run}-r{self.replicate:03d}"


def target_sides(policy) -> list[str]:
    """The sides a policy acts on (a composite policy: its parts')."""
    from policies.base import Policy

    sides = getattr(policy, "sides", None)
    if sides:
        return list(sides)
    parts = [p for p in vars(policy).values() if isinstance(p, Policy)]
    return [s for part in parts for s in target_sides(part)]


def counterpart(side: str, market, policies: list) -> str:
    """The other party of ``side``'s trades in two-sided randomisation: buyers for a supply side; for buyers,
    the supply side the policy targets (else the market's first supply side)."""
    if side != "buyers":
        return "buyers"
    supply = [s for s in market.sides if s != "buyers"]
    targeted = [s for p in policies for s in target_sides(p) if s in supply]
    return (targeted or supply)[0]


def applicable(design: str, market, policies: list, metric: str) -> str | None:
    """Why ``design`` cannot pilot ``policies`` in ``market`` measuring ``metric`` (None: it can)."""
    targets = {s for p in policies for s in target_sides(p)}
    if design == "two_sided" and metric != "orders":
        return f"two-sided randomisation compares trades (treated-treated against control-control), so it " \
               f"measures metric=orders, not {metric}"
    if design in SIDE_DESIGNS:
        if design not in market.sides:
            return f"market {market.name} has no {design}"
        if policies and design not in targets:
            return f"the policy acts on {', '.join(sorted(targets))}, not on {design}"
    if design == "clusters" and market.name not in POSITIONED_MARKETS:
        return f"market {market.name} has no map to cut into zones (clusters need {', '.join(POSITIONED_MARKETS)})"
    wide = [p.name for p in policies if p.side_wide]
    if wide and design != "switchback":
        return f"{', '.join(wide)} sets a lever for a whole side at once, which only switchback can give to some " \
               "of the time and not to some agents"
    return None


def metric_side(side: str, market, policies: list) -> str:
    """The side the metric is measured on: ``side``, or for ``auto`` the policy's first target side (no policy:
    the market's first supply side); ConfigError for a side the market lacks."""
    if side == "auto":
        targets = [s for p in policies for s in target_sides(p)]
        return targets[0] if targets else [s for s in market.sides if s in SIDE_DESIGNS[1:]][0]
    if side not in market.sides:
        raise ConfigError("side", side, f"auto, or a side of market {market.name}: " + ", ".join(market.sides))
    return side


def plan(settings: Settings) -> Plan:
    """Compose the two rollout configs, choose the designs, side and metric; ConfigError on anything wrong."""
    from experiments.config import compose_config, to_typed
    from policies import build_policies

    model = [*settings.model, f"days={settings.days}"]
    configs = {"nobody": to_typed(compose_config([*model, "policy=none"])),
               "everyone": to_typed(compose_config([*model, f"policy={settings.policy}", *settings.policy_overrides]))}
    cfg = configs["everyone"]
    market = cfg.market
    policies = build_policies(cfg.policy, market, cfg.cs)
    side = metric_side(settings.side, market, policies)
    metric = "churn" if settings.metric == "auto" else settings.metric
    if settings.design == "all":
        designs = [d for d in DESIGNS if applicable(d, market, policies, metric) is None
                   and (d not in SIDE_DESIGNS or d == side)]
        if not designs:
            raise ConfigError("design", "all", f"a design that can pilot {settings.policy} in market {market.name}; "
                              "none can")
    else:
        why = applicable(settings.design, market, policies, metric)
        if why is None and settings.design in SIDE_DESIGNS and settings.design != side:
            why = f"the metric is measured on {side} (side=), so randomise {side} or choose side={settings.design}"
        if why is not None:
            allowed = [d for d in DESIGNS if applicable(d, market, policies, metric) is None]
            raise ConfigError("design", settings.design, f"a design that applies here ({why}): "
                              + (", ".join(allowed) or "none"))
        designs = [settings.design]
    return Plan(settings, configs, designs, side, metric, market.name, int(cfg.seed),
                counterpart(side, market, policies))


# -- one run ----------------------------------------------------------------------------------------
def run_task(task: Task) -> dict:
    """Simulate one run and keep what the analysis needs: per-agent totals of every side, daily totals of the
    metric side (for switchback), and each agent's arm and unit in a pilot."""
    from sim import Marketplace

    logging_quiet()
    assignment = Assignment(task.design, task.seed) if task.design is not None else None
    two_sided = task.design is not None and task.design.name == "two_sided"
    model = (_trade_logging_class()(task.cfg, assignment, (task.side, task.counterpart))
             if two_sided else Marketplace(task.cfg, treatment=assignment))
    days = int(task.cfg.days)
    daily_orders = np.zeros(days)
    daily_margin = np.zeros(days)
    metric_side = model.sides[task.side]
    before_orders = before_margin = 0.0
    while model.day < days:
        day = model.day
        model.step()
        n = metric_side.n
        orders = float(metric_side.orders_completed[:n].sum())
        margin = float(metric_side.margin[:n].sum())
        daily_orders[day], daily_margin[day] = orders - before_orders, margin - before_margin
        before_orders, before_margin = orders, margin
    agents = {}
    for name, s in model.sides.items():
        n = s.n
        ids = np.arange(n, dtype=np.int64)
        table = {"id": ids, "join_day": s.join_day[:n].copy(), "churn_day": s.churn_day[:n].copy(),
                 "orders": s.orders_completed[:n].astype(np.int64), "margin": s.margin[:n].copy()}
        if assignment is not None:
            table["treated"] = assignment.treated(name, ids, 0) if task.design.name != "switchback" else \
                np.array([assignment.period_treated(d) for d in np.clip(table["join_day"], 0, days - 1)], bool)
            table["unit"] = assignment.unit(name, ids) if task.design.name != "switchback" else \
                np.clip(table["join_day"], 0, days - 1) // task.design.period_days
        if two_sided and name == task.side:
            table["trades_with_treated"], table["trades_with_control"] = model.trades_by_counterpart_arm()
        agents[name] = table
    out = {"run": task.run, "replicate": task.replicate, "seed": task.seed, "agents": agents,
           "daily_orders": daily_orders, "daily_margin": daily_margin}
    if assignment is not None and task.design.name == "switchback":
        out["period_treated"] = np.array([assignment.period_treated(d) for d in range(days)])
    return out


@functools.cache
def _trade_logging_class():
    """sim.Marketplace that also counts trades by the counterpart's arm. Defined here because the engine knows
    no pilot analysis, and on first use because the commands load the engine lazily (sim/__init__.py). It
    extends ``Marketplace._settle``, which settles every order of a day at once: the engine has no public
    per-trade hook."""
    from sim import Marketplace

    class TradeLoggingMarketplace(Marketplace):
        """A market that also counts, per agent of one side, its completed orders (successful trades) by the
        arm of their counterpart (a party of another side): the cells of Johari et al.'s TSR estimator."""

        def __init__(self, cfg, treatment, trade_sides: tuple[str, str]):
            super().__init__(cfg, treatment=treatment)
            self._trade_sides = trade_sides
            self._trades: dict[bool, list[np.ndarray]] = {True: [], False: []}

        def _settle(self, day, ids, seller, driver, success, basket, fare) -> None:
            super()._settle(day, ids, seller, driver, success, basket, fare)
            party = {"buyers": ids, "sellers": seller, "drivers": driver}
            side, other = self._trade_sides
            mine, theirs = party[side][success], party[other][success]
            treated = self.treatment.treated(other, theirs, day)
            self._trades[True].append(mine[treated])
            self._trades[False].append(mine[~treated])

        def trades_by_counterpart_arm(self) -> tuple[np.ndarray, np.ndarray]:
            """Completed orders of each agent of the side (index: agent id) with a treated counterpart, and with
            a control one."""
            n = self.sides[self._trade_sides[0]].n
            return tuple(np.bincount(np.concatenate([np.empty(0, np.int64), *self._trades[arm]]), minlength=n)[:n]
                         .astype(np.int64) for arm in (True, False))

    return TradeLoggingMarketplace


def logging_quiet() -> None:
    import logging

    logging.getLogger("MESA").setLevel(logging.WARNING)


# -- the analysis -----------------------------------------------------------------------------------
def exposure_days(join_day: np.ndarray, churn_day: np.ndarray, days: int) -> np.ndarray:
    """Days each agent was alive within the pilot's ``days``: from joining to churn (or the end)."""
    end = np.where(churn_day >= 0, np.minimum(churn_day, days), days)
    return np.maximum(end - join_day, 0).astype(np.float64)


def numerator(agents: dict, metric: str, days: int) -> np.ndarray:
    """Each agent's count of the metric's events in the pilot: churned (0/1), completed orders, or margin."""
    if metric == "churn":
        return ((agents["churn_day"] >= 0) & (agents["churn_day"] < days)).astype(np.float64)
    return np.asarray(agents["orders" if metric == "orders" else "margin"], dtype=np.float64)


def daily_totals(run: dict, side: str, metric: str, days: int) -> tuple[np.ndarray, np.ndarray]:
    """The metric side's events and agent-days alive on each day of the pilot (switchback's periods sum them)."""
    a = run["agents"][side]
    exposure = np.zeros(days + 1)
    np.add.at(exposure, np.clip(a["join_day"], 0, days), 1.0)
    end = np.where(a["churn_day"] >= 0, np.minimum(a["churn_day"], days), days)
    np.add.at(exposure, end, -1.0)
    alive_days = np.cumsum(exposure)[:days]
    if metric == "churn":
        churned = a["churn_day"][(a["churn_day"] >= 0) & (a["churn_day"] < days)]
        events = np.bincount(churned, minlength=days)[:days].astype(np.float64)
    else:
        events = run["daily_orders" if metric == "orders" else "daily_margin"]
    return events, alive_days


def rate(run: dict, side: str, metric: str, days: int) -> float:
    """The metric over everyone on ``side``: events per agent-month alive."""
    a = run["agents"][side]
    exposure = exposure_days(a["join_day"], a["churn_day"], days).sum()
    return MONTH_DAYS * float(numerator(a, metric, days).sum()) / exposure if exposure > 0 else math.nan


def units_table(run: dict, side: str, metric: str, days: int, design: Design) -> pd.DataFrame:
    """The analyst's data at the design's unit: unit, arm, events (target) and agent-days (scale)."""
    if design.name == "switchback":
        events, alive_days = daily_totals(run, side, metric, days)
        period = np.arange(days) // design.period_days
        frame = pd.DataFrame({"unit": period, "target": events, "scale": alive_days,
                              "treated": run["period_treated"]})
    elif design.name == "two_sided":
        # TSR on trades (Johari et al. 2022): a treated agent's orders with treated counterparts, a control agent's
        # with control ones, each over its agent-days times the share of counterparts in that arm, so the two
        # rates estimate the everyone-treated and the nobody-treated order rates
        a = run["agents"][side]
        treated = a["treated"]
        frame = pd.DataFrame({"unit": a["unit"], "treated": treated,
                              "target": np.where(treated, a["trades_with_treated"],
                                                 a["trades_with_control"]).astype(np.float64),
                              "scale": exposure_days(a["join_day"], a["churn_day"], days)
                              * np.where(treated, design.share, 1 - design.share)})
    else:
        return agent_units(run["agents"][side], metric, days)
    return _by_unit(frame)


def agent_units(a, metric: str, days: int) -> pd.DataFrame:
    """The analyst's data from one side's agents ``a`` (columns unit, treated, join_day, churn_day and the
    metric's: a run's table or a pilot export): per unit and arm, events (target) and agent-days alive (scale)."""
    return _by_unit(pd.DataFrame({"unit": a["unit"], "target": numerator(a, metric, days),
                                  "scale": exposure_days(a["join_day"], a["churn_day"], days),
                                  "treated": a["treated"]}))


def _by_unit(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.groupby(["unit", "treated"], as_index=False)[["target", "scale"]].sum()
    frame["treatment"] = np.where(frame["treated"], TREATMENT, CONTROL)
    return frame[frame["scale"] > 0].drop(columns="treated")


def analyse(units: pd.DataFrame, confidence: float) -> dict:
    """The analyst's estimate: difference of the ratio metric (events per agent-month) between treated and
    control units, delta-method standard error at the unit level (cluster-experiments), normal interval."""
    from cluster_experiments import DeltaMethodAnalysis

    analysis = DeltaMethodAnalysis(cluster_cols=["unit"], target_col="target", scale_col="scale",
                                   treatment_col="treatment", treatment=TREATMENT)
    with _quiet_warnings():
        result = analysis.get_inference_results(units, alpha=1 - confidence)
    return {"estimate": MONTH_DAYS * result.ate, "se": MONTH_DAYS * result.std_error,
            "ci_low": MONTH_DAYS * result.conf_int.lower, "ci_high": MONTH_DAYS * result.conf_int.upper}


def _normal_power(alpha: float):
    """cluster-experiments' normal-approximation power calculator of a two-sided delta-method test."""
    from cluster_experiments import ClusteredSplitter, DeltaMethodAnalysis, NormalPowerAnalysis

    return NormalPowerAnalysis(splitter=ClusteredSplitter(cluster_cols=["unit"]),
                               analysis=DeltaMethodAnalysis(cluster_cols=["unit"]), alpha=alpha)


def power(effect: float, se: float, alpha: float) -> float:
    """Power of a two-sided level-``alpha`` z test to detect ``effect`` when the estimate's standard error is
    ``se`` (both in the metric's unit)."""
    if not (se > 0 and math.isfinite(effect)):
        return math.nan
    return float(_normal_power(alpha)._normal_power_calculation(alpha, se, effect))


def days_for_power(effect: float, se: float, days: int, alpha: float, target: float) -> float:
    """Days the pilot needs for ``target`` power against ``effect``, if its standard error falls as 1/sqrt(days)
    (events and agent-days both grow with the pilot's length): days * (MDE / |effect|)^2, with MDE the
    minimum detectable effect at standard error ``se``."""
    if not (se > 0 and effect != 0 and math.isfinite(effect)):
        return math.inf
    mde = _normal_power(alpha)._normal_mde_calculation(alpha, se, target)
    return days * (mde / abs(effect)) ** 2


class _quiet_warnings:
    """cluster-experiments warns when clusters are few or many; the report states the unit counts instead."""

    def __enter__(self):
        import logging
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore")
        self._level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)

    def __exit__(self, *exc):
        import logging

        logging.getLogger().setLevel(self._level)
        self._catch.__exit__(*exc)


def summarise(p: Plan, runs: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per design: estimate, interval, gte, bias, sd, rmse, power and days for the target power (and the
    per-replicate rows behind them). ``runs``: (run, replicate) -> run_task's result."""
    s = p.settings
    rows = []
    for r in range(s.replicates):
        truth = {run: rate(runs[(run, r)], p.side, p.metric, s.days) for run in ROLLOUT}
        gte = truth["everyone"] - truth["nobody"]
        for name in p.designs:
            units = units_table(runs[(name, r)], p.side, p.metric, s.days, p.design(name))
            rows.append({"design": name, "replicate": r, "gte": gte, "units": int(units["unit"].nunique()),
                         **analyse(units, s.confidence)})
    per_rep = pd.DataFrame(rows)
    out = []
    for name in p.designs:
        d = per_rep[per_rep["design"] == name]
        error = d["estimate"] - d["gte"]
        gte, se = float(d["gte"].mean()), float(d["se"].median())
        out.append({"design": name, "metric": p.metric, "side": p.side, "estimate": float(d["estimate"].mean()),
                    "ci_low": float(d["ci_low"].mean()), "ci_high": float(d["ci_high"].mean()), "gte": gte,
                    "bias": float(error.mean()), "sd": float(d["estimate"].std(ddof=1)),
                    "rmse": float(np.sqrt((error ** 2).mean())), "se": se,
                    "coverage": float(((d["ci_low"] <= d["gte"]) & (d["gte"] <= d["ci_high"])).mean()),
                    "power": power(gte, se, s.alpha),
                    "days_for_power": days_for_power(gte, se, s.days, s.alpha, s.target_power),
                    "units": int(d["units"].median()), "replicates": len(d)})
    return pd.DataFrame(out), per_rep


@dataclass
class PilotResult:
    """A finished pilot: the table per design, the replicate rows, and the first replicate's pilots' agents."""

    plan: Plan
    table: pd.DataFrame
    replicates: pd.DataFrame
    agents: pd.DataFrame

    def recommendation(self) -> str:
        """One sentence: the design with the least RMSE and how long to run it for the target power."""
        s = self.plan.settings
        best = self.table.sort_values("rmse", kind="stable").iloc[0]
        need = best["days_for_power"]
        how_long = (f"run it for {math.ceil(need)} days for {s.target_power:.0%} power against the rollout effect"
                    if math.isfinite(need) else "no length gives it power: the rollout effect is zero")
        return (f"Recommended design: {best['design']} (least RMSE, {best['rmse']:.4g} against a rollout effect of "
                f"{best['gte']:.4g} {p_unit(self.plan.metric)}); {how_long}.")


def p_unit(metric: str) -> str:
    """The unit of a metric's values."""
    return {"churn": "departures per agent-month", "orders": "orders per agent-month",
            "margin": "currency per agent-month"}[metric]


def agents_frame(p: Plan, runs: dict) -> pd.DataFrame:
    """One row per agent of each design's first-replicate pilot: the shape of a company's pilot export."""
    frames = []
    for name in p.designs:
        run = runs[(name, 0)]
        for side, a in run["agents"].items():
            frames.append(pd.DataFrame({
                "design": name, "side": side, "id": a["id"],
                "arm": np.where(a["treated"], TREATMENT, CONTROL), "unit": a["unit"],
                "join_day": a["join_day"], "churn_day": np.where(a["churn_day"] >= 0, a["churn_day"], -1),
                "orders": a["orders"], "margin": a["margin"]}))
    return pd.concat(frames, ignore_index=True)


def run_plan(p: Plan, folder: OutputFolder | None = None) -> PilotResult:
    """Simulate every task of a plan (resuming from ``folder``) and analyse them."""
    tasks = p.tasks()
    results = execute(tasks, p.settings.jobs, p.settings.progress, "pilot", fn=_safe_run, folder=folder)
    failed = [r for r in results if "error" in r]
    if failed:
        raise RuntimeError(f"{len(failed)} run(s) failed; the first: {failed[0]['error']}\n{failed[0]['traceback']}")
    runs = {(r["run"], r["replicate"]): r for r in results}
    table, per_rep = summarise(p, runs)
    return PilotResult(p, table, per_rep, agents_frame(p, runs))


def _safe_run(task: Task) -> dict:
    import traceback

    try:
        return run_task(task)
    except Exception as error:  # noqa: BLE001 - a failed run is reported with its traceback, not fatal at once
        return {"run": task.run, "replicate": task.replicate, "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc()}


def pilot(**keys) -> PilotResult:
    """From Python: ``pilot(policy="fair_disputes", design="drivers", market="rides", scale="tiny")``.

    Pilot keys as in conf/pilot.yaml; any other keyword is a model override.
    """
    return run_plan(plan(parse_args([f"{k}={v}" for k, v in keys.items()])))


# -- entry point ------------------------------------------------------------------------------------
def default_out() -> Path:
    import datetime as _dt

    return Path("pilots") / _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")


def main(args: list[str]) -> int:
    """Entry of `twosided pilot ARGS`; return the exit code (2 on bad input)."""
    from experiments.pilot_report import write_report

    logging_quiet()
    settings = parse_args(args)
    the_plan = plan(settings)
    out = Path(str(settings.out)) if settings.out is not None else default_out()
    folder = OutputFolder(out, the_plan.spec()).open()
    try:
        print(f"twosided pilot: {settings.policy} in market {the_plan.market}, designs {', '.join(the_plan.designs)}, "
              f"{settings.replicates} replicates of {settings.days} days, folder {out}", file=sys.stderr)
        result = run_plan(the_plan, folder)
        paths = write_report(result, out)
    except RuntimeError as error:
        print(f"twosided pilot failed: {error}", file=sys.stderr)
        return 1
    finally:
        folder.release()
    print(result.table[["design", "estimate", "ci_low", "ci_high", "gte", "bias", "rmse", "power"]]
          .to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print(result.recommendation())
    print(f"Report: {paths['md']}")
    return 0
