"""`twosided compare`: CS policies and their variants against a baseline, paired replicates -> a decision report.

    twosided compare                                  # every policy of conf/policy/ vs none, delivery market
    twosided compare arms=[fair_disputes,[proactive_outreach,tech_touch]] replicates=5 market=rides
    twosided compare 'arms=[tech_touch,tech_touch(weight=0.025),outreach_x2]' out=comparisons/variants
    twosided compare warmup_days=90 crn_check=true jobs=4 out=comparisons/drivers
    twosided compare uncertainty=default draws=40 replicates=2 scale=small

Keys of conf/compare.yaml (arms, baseline, replicates, warmup_days, crn,
crn_check, jobs, launcher, confidence, out, progress, guards.*, uncertainty, draws) set the comparison;
every other key=value is a model override given to every run (market=,
scale=, seed=, days=, population.buyers=, ...). ``seed`` is the base seed:
replicate r runs on seed + r in every arm (common random numbers). Arms and
their parameters are written in the syntax of experiments/arms.py;
``policy=`` and ``policy.*`` overrides are not allowed: the arms set them.

A comparison is a list of tasks, one per (arm, replicate), each a pure
function of its config. Before any simulating, every arm's config is composed
and validated and the output folder is checked and locked
(experiments/folder.py). Each finished run is saved atomically in the folder
as it ends, so a killed or interrupted comparison resumes where it stopped
when the same command is run again, with the same result. Tasks run in
worker processes (``jobs``) that die with the parent, in-process (``jobs=1``),
or as submitit jobs (``launcher=submitit_local`` / ``submitit_slurm``, the
launcher configs of sweeps); results are gathered in (arm, replicate) order, so parallel and
serial comparisons are bit-identical. With ``warmup_days`` > 0 each seed's
market first runs without policies to that day; every arm then continues from
a copy (``Marketplace.branch()``) with its policies switched on.

From Python::

    from experiments.compare import compare
    c = compare(arms=["tech_touch", "tech_touch(weight=0.025)"], market="rides", scale="tiny", replicates=3)
    c.headline          # the answer: extra net contribution, ROI, payback per arm
    c.plot()            # the cost-and-benefit chart
    u = compare(arms=["tech_touch"], scale="tiny", uncertainty="default", draws=10, replicates=2)
    u.decision          # probability best, expected gain, EVPI, EVPPI per parameter group (decision.json)

With ``uncertainty=NAME draws=K`` (conf/uncertainty/, experiments/uncertainty.py) every arm runs on K draws of
the assumed parameters, ``replicates`` seeds per draw with common random numbers inside a draw; the report
leads with the decision under that uncertainty (experiments/decision.py).
"""
from __future__ import annotations

import functools
import logging
import math
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments import decision, report, tables
from experiments.arms import Arm, ArmParser
from experiments.config import CONF_DIR
from experiments.folder import OutputFolder, provenance
from experiments.tables import CRN_CHECK_METRICS, TENURE_STEP  # noqa: F401 - part of this module's interface
from sim.config import SIDES, ConfigError
from sim.metrics import MONTH_DAYS

COMPARE_YAML = CONF_DIR / "compare.yaml"
CONFIG_YAML = COMPARE_YAML.with_name("config.yaml")
SIDE_METRICS = ("monthly_churn", "ltv", "ltv_orders", "ltv_cac", "cac", "nps", "csat", "activation_30d", "ttfv_days",
                "activation_failure", "relapse_rate", "active_end", "active_mean", "agent_days", "joined", "churned",
                "revenue", "margin", "csat_answers")
EXPANSION_METRICS = ("nrr", "grr", "nrr_products", "grr_products", "expansion_rate")   # sellers' summary "expansion"
PLATFORM_METRICS = ("gmv", "take_revenue", "payment_costs", "marketing_cost", "cs_cost", "incentive_cost",
                    "net_contribution", "expansion_revenue")
LAUNCHERS = ("local", "submitit_local", "submitit_slurm")
LAUNCHER_CONF = COMPARE_YAML.parent / "hydra" / "launcher"
EXIT_INTERRUPTED = 130   # the shell's code for a command stopped by Ctrl-C (128 + SIGINT)
PARENT_POLL_S = 0.5      # how often a worker checks that its parent is alive


# -- settings --------------------------------------------------------------------------------------
@dataclass
class Settings:
    """The comparison's own keys (defaults in conf/compare.yaml)."""

    arms: Any = "all"
    baseline: Any = "none"
    replicates: int = 3
    warmup_days: int = 0
    crn: bool = True
    crn_check: bool = False
    jobs: int = 2
    confidence: float = 0.95
    out: Any = None
    progress: bool = True
    launcher: str = "local"
    launcher_options: dict = field(default_factory=dict)   # submitit parameters over the launcher's config
    guards: dict = field(default_factory=dict)
    uncertainty: Any = None    # a conf/uncertainty/ name or .yaml path: parameter draws (experiments/uncertainty.py)
    draws: int = 20
    model: list = field(default_factory=list)  # model overrides (the other key=value arguments)
    args: list = field(default_factory=list)   # the arguments as given (for the command that reproduces)


_ALLOWED = {
    "arms": "`all`, or a list of arms (see experiments/arms.py): policies, compositions a+b, variants "
            "policy(key=value) and named arms of conf/arm/",
    "baseline": "one arm in the syntax of arms= (usually a policy of conf/policy/)",
    "replicates": "a whole number >= 2 (paired intervals need two replicates)",
    "warmup_days": "a whole number >= 0, below the run's days",
    "crn": "true or false",
    "crn_check": "true or false",
    "jobs": "a whole number >= 1",
    "confidence": "a number strictly between 0 and 1",
    "out": "a folder path (or null for comparisons/<timestamp>)",
    "progress": "true or false",
    "launcher": "local (worker processes, jobs=), submitit_local or submitit_slurm (the launchers of sweeps)",
    "launcher_options": "a mapping of the submitit launcher's keys (conf/hydra/launcher/NAME.yaml: mem_gb, "
                        "timeout_min, partition, account, ...), given as launcher_options.KEY=VALUE",
    "guards": "the mapping of conf/compare.yaml (test_scales, payback_months, max_t_inflation, min_answers)",
    "uncertainty": "null, or a setting of conf/uncertainty/ (or the path of a .yaml file): distributions of the "
                   "assumed parameters, drawn `draws` times",
    "draws": "a whole number >= 1 of parameter draws, with uncertainty=NAME",
}
_GUARDS = {"test_scales": "a list of scale names", "payback_months": "a whole number >= 1",
           "max_t_inflation": "a number > 1", "min_answers": "a whole number >= 1"}


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off", "1", "0"):
        return value.lower() in ("true", "yes", "on", "1")
    raise ConfigError(key, value, _ALLOWED[key])


def _int(key: str, value: Any, minimum: int, allowed: str | None = None) -> int:
    allowed = allowed or _ALLOWED[key]
    if isinstance(value, bool):
        raise ConfigError(key, value, allowed)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(key, value, allowed) from None
    if not math.isfinite(number) or not number.is_integer() or number < minimum:
        raise ConfigError(key, value, allowed)
    return int(number)


def _guards(raw: Any) -> dict:
    if not isinstance(raw, dict) or set(raw) != set(_GUARDS):
        raise ConfigError("guards", raw, _ALLOWED["guards"])
    scales = raw["test_scales"]
    if isinstance(scales, str):
        scales = [scales]
    if not isinstance(scales, list) or not all(isinstance(x, str) for x in scales):
        raise ConfigError("guards.test_scales", raw["test_scales"], _GUARDS["test_scales"])
    inflation = raw["max_t_inflation"]
    if isinstance(inflation, bool) or not isinstance(inflation, (int, float)) or not inflation > 1:
        raise ConfigError("guards.max_t_inflation", inflation, _GUARDS["max_t_inflation"])
    return {"test_scales": scales,
            "payback_months": _int("guards.payback_months", raw["payback_months"], 1, _GUARDS["payback_months"]),
            "max_t_inflation": float(inflation),
            "min_answers": _int("guards.min_answers", raw["min_answers"], 1, _GUARDS["min_answers"])}


def parse_args(args: list[str]) -> Settings:
    """``key=value`` arguments -> validated :class:`Settings` (ConfigError, one paragraph, on bad input)."""
    from omegaconf import OmegaConf

    values: dict[str, Any] = OmegaConf.to_container(OmegaConf.load(COMPARE_YAML))
    model: list[str] = []
    for arg in args:
        if "=" not in arg or arg.startswith("-"):
            raise ConfigError("argument", arg, "key=value pairs: compare keys (" + ", ".join(_ALLOWED)
                              + ") or model overrides such as market=rides scale=small seed=3")
        key, _, raw = arg.partition("=")
        if key in ("arms", "baseline"):
            values[key] = raw  # the arm syntax (parentheses) is parsed by experiments/arms.py
        elif key in _ALLOWED or key.startswith(("guards.", "launcher_options.")):
            try:
                parsed = OmegaConf.to_container(OmegaConf.from_dotlist([f"v={raw}"]))["v"]
            except Exception:  # noqa: BLE001 - any parse failure is the user's value
                if key.startswith("guards."):
                    allowed = _GUARDS.get(key[7:], _ALLOWED["guards"])
                else:
                    allowed = _ALLOWED.get(key, _ALLOWED["launcher_options"])
                raise ConfigError(key, raw, allowed) from None
            if key.startswith("guards."):
                if key[7:] not in _GUARDS:
                    raise ConfigError(key, raw, "a key of guards: " + ", ".join(_GUARDS))
                values["guards"] = {**values["guards"], key[7:]: parsed}
            elif key.startswith("launcher_options."):
                values["launcher_options"] = {**(values.get("launcher_options") or {}),
                                              key[len("launcher_options."):]: parsed}
            else:
                values[key] = parsed
        elif key.lstrip("+~") == "policy" or key.lstrip("+~").startswith("policy."):
            raise ConfigError(key, raw, "not a model override here: choose policies with arms=[...], set their "
                              "parameters in an arm, e.g. arms=[tech_touch(weight=0.025)] (and the reference "
                              "with baseline=)")
        else:
            model.append(arg)
    unknown = set(values) - set(_ALLOWED)
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(key, values[key], f"a key of {COMPARE_YAML.name}: " + ", ".join(_ALLOWED))
    s = Settings(model=model, args=list(args))
    s.arms = values["arms"]
    s.baseline = values["baseline"]
    if not isinstance(s.baseline, str) or not s.baseline.strip():
        raise ConfigError("baseline", s.baseline, _ALLOWED["baseline"])
    s.replicates = _int("replicates", values["replicates"], 2)
    s.warmup_days = _int("warmup_days", values["warmup_days"], 0)
    s.crn = _bool("crn", values["crn"])
    s.crn_check = _bool("crn_check", values["crn_check"])
    s.jobs = _int("jobs", values["jobs"], 1)
    confidence = values["confidence"]
    try:
        s.confidence = float(confidence)
    except (TypeError, ValueError):
        raise ConfigError("confidence", confidence, _ALLOWED["confidence"]) from None
    if isinstance(confidence, bool) or not 0 < s.confidence < 1:
        raise ConfigError("confidence", confidence, _ALLOWED["confidence"])
    s.out = values["out"]
    if s.out is not None and (not isinstance(s.out, (str, int)) or str(s.out).strip() == ""):
        raise ConfigError("out", s.out, _ALLOWED["out"])
    s.progress = _bool("progress", values["progress"])
    s.launcher = values["launcher"]
    if s.launcher not in LAUNCHERS:
        raise ConfigError("launcher", s.launcher, _ALLOWED["launcher"])
    s.launcher_options = values.get("launcher_options") or {}
    if not isinstance(s.launcher_options, dict):
        raise ConfigError("launcher_options", s.launcher_options, _ALLOWED["launcher_options"])
    if s.launcher_options:
        if s.launcher == "local":
            raise ConfigError("launcher_options", s.launcher_options, "options of a submitit launcher: set "
                              "launcher=submitit_slurm (or submitit_local) with them; the local pool takes jobs=")
        launcher_parameters(s.launcher, s.launcher_options)   # an unknown key is refused before any run
    s.guards = _guards(values["guards"])
    s.uncertainty = values["uncertainty"]
    s.draws = _int("draws", values["draws"], 1)
    if s.uncertainty is None:
        if any(a.partition("=")[0] == "draws" for a in args):
            raise ConfigError("draws", values["draws"], "draws only with uncertainty=NAME (a setting of "
                              "conf/uncertainty/): without it a comparison has no parameters to draw")
    else:
        if not isinstance(s.uncertainty, str) or not s.uncertainty.strip():
            raise ConfigError("uncertainty", s.uncertainty, _ALLOWED["uncertainty"])
        from experiments.uncertainty import uncertainty_path

        uncertainty_path(s.uncertainty)  # an unknown name is refused before any config is composed
        for key in ("crn", "crn_check"):
            if getattr(s, key) != (key == "crn"):
                raise ConfigError(key, getattr(s, key), f"{str(key == 'crn').lower()} with uncertainty=: the arms "
                                  "of a draw share their seeds (common random numbers); measure crn_check on the "
                                  "comparison without uncertainty")
    return s


def resolve_arms(settings: Settings) -> tuple[Arm, list[Arm]]:
    """The baseline arm and the other arms (default: every option of conf/policy/ except the baseline)."""
    base_parser = ArmParser("baseline")
    items = base_parser.items(settings.baseline) if isinstance(settings.baseline, str) else [settings.baseline]
    if len(items) != 1:
        raise ConfigError("baseline", settings.baseline, "exactly one arm, e.g. none or tech_touch")
    baseline = base_parser.arm(items[0])
    return baseline, ArmParser("arms").parse(settings.arms, baseline)


def scale_of(model: list[str]) -> str:
    """The scale a comparison runs at: its last ``scale=`` override, else conf/config.yaml's default."""
    for arg in reversed(model):
        key, _, value = arg.partition("=")
        if key.lstrip("+~") == "scale":
            return value
    from omegaconf import OmegaConf

    for item in OmegaConf.to_container(OmegaConf.load(CONFIG_YAML)).get("defaults", []):
        if isinstance(item, dict) and "scale" in item:
            return str(item["scale"])
    return "default"


# -- the plan: every task, composed and validated before anything runs ------------------------------
@dataclass
class Task:
    """One simulation: an arm on one replicate (``group``: main runs, or the crn check's)."""

    arm: int                  # index into [baseline, *arms]
    replicate: int
    seed: int
    cfg: Any                  # the arm's validated sim Config (with this seed)
    warm: bytes | None = None  # pickled Marketplace after warm-up (policy none), or None
    switch_policies: bool = False
    group: str = "main"
    draw: int | None = None   # the parameter draw (uncertainty=), else None

    @property
    def key(self) -> str:
        """The task's file name in the folder's runs/ (unique within a comparison)."""
        if self.draw is not None:
            return f"{self.group}-d{self.draw:04d}-a{self.arm:02d}-r{self.replicate:05d}"
        return f"{self.group}-a{self.arm:02d}-r{self.replicate:03d}"


@dataclass
class Plan:
    """A comparison before it runs: its arms, their validated configs and the tasks."""

    settings: Settings
    baseline: Arm
    arms: list               # [baseline, *arms]
    configs: dict            # arm index -> validated Config (seed: the base seed)
    resolved: dict           # arm name -> resolved config (plain dict, for the folder)
    base_seed: int
    days: int
    market: str
    scale: str
    uncertainty: Any = None  # experiments.uncertainty.Uncertainty, or None
    values: list = field(default_factory=list)      # per draw: {key: value}
    drawn: dict = field(default_factory=dict)       # (draw, arm index) -> validated Config with the draw's values

    def tasks(self, crn: bool, group: str = "main") -> list[Task]:
        """One task per (arm, replicate), in that order; with draws, per (draw, arm, replicate).

        Draw d, replicate r runs on seed + d x replicates + r in every arm (common random numbers inside the
        draw, fresh seeds across draws); its replicate index in the tables is d x replicates + r.
        """
        out = []
        if self.uncertainty is not None:
            reps = self.settings.replicates
            for d in range(len(self.values)):
                for j, arm in enumerate(self.arms):
                    for r in range(reps):
                        seed = self.base_seed + d * reps + r
                        out.append(Task(j, d * reps + r, seed, _with_seed(self.drawn[(d, j)], seed),
                                        switch_policies=arm.policies != ["none"], group=group, draw=d))
            return out
        for j, arm in enumerate(self.arms):
            for r in range(self.settings.replicates):
                seed = seed_for(self.base_seed, j, r, crn)
                out.append(Task(j, r, seed, _with_seed(self.configs[j], seed), switch_policies=arm.policies != ["none"],
                                group=group))
        return out

    def spec(self) -> dict:
        """What the runs depend on: a folder holding another spec belongs to another comparison."""
        s = self.settings
        return {"arms": [[a.name, a.overrides] for a in self.arms], "replicates": s.replicates,
                "warmup_days": s.warmup_days, "crn": s.crn, "crn_check": s.crn_check, "model": s.model,
                "seed": self.base_seed, "days": self.days, **provenance(),
                **({"uncertainty": {p.key: p.text() for p in self.uncertainty.parameters}, "draws": len(self.values)}
                   if self.uncertainty is not None else {})}

    def draw_of(self, seed: int) -> dict:
        """The drawn values a seed runs with ({} without uncertainty)."""
        if self.uncertainty is None:
            return {}
        return self.values[(seed - self.base_seed) // self.settings.replicates]


def plan(settings: Settings) -> Plan:
    """Resolve the arms and compose every arm's config; ConfigError (naming the arm) if one is not valid."""
    from omegaconf import OmegaConf

    from experiments.config import compose_config, to_typed

    baseline, arms = resolve_arms(settings)
    everyone = [baseline, *arms]
    configs, resolved = {}, {}
    for j, arm in enumerate(everyone):
        try:
            composed = compose_config([*settings.model, *arm.overrides])
            configs[j] = to_typed(composed)
        except ConfigError as error:
            if not str(error.key).startswith("policy"):
                raise  # a model override is wrong, whatever the arm
            key = "baseline" if j == 0 else "arms"
            raise ConfigError(key, arm.name, f"an arm this market can compose; it fails with `{error.key}` = "
                              f"{error.value!r} (allowed: {error.allowed})") from None
        resolved[arm.name] = OmegaConf.to_container(composed, resolve=True)
    base_cfg = configs[0]
    days = int(base_cfg.days)
    if settings.warmup_days >= days:
        raise ConfigError("warmup_days", settings.warmup_days, f"a whole number >= 0 below the run's days ({days})")
    the_plan = Plan(settings, baseline, everyone, configs, resolved, int(base_cfg.seed), days, base_cfg.market.name,
                    scale_of(settings.model))
    if settings.uncertainty is not None:
        _draw(the_plan)
    return the_plan


def _draw(p: Plan) -> None:
    """Load the plan's uncertainty setting, draw its parameter sets and check every arm's config at each draw."""
    from experiments.uncertainty import apply_draw, load_uncertainty

    u = load_uncertainty(p.settings.uncertainty, p.resolved, p.market)
    p.uncertainty, p.values = u, u.draw(p.base_seed, p.settings.draws)
    for d, values in enumerate(p.values):
        for j, arm in enumerate(p.arms):
            try:
                p.drawn[(d, j)] = apply_draw(p.configs[j], values, fixed_keys(arm))
            except ConfigError as error:
                spec = next((q for q in u.parameters if q.key == error.key), None)
                where = f"groups.{spec.group}.{spec.key}" if spec else str(error.key)
                raise ConfigError(f"uncertainty {u.name}: {where}", error.value, f"a distribution whose draws the "
                                  f"config accepts (draw {d} gives this value; allowed: {error.allowed})") from None


def _quiet() -> None:
    logging.getLogger("MESA").setLevel(logging.WARNING)


def reaches(key: str, arm: Arm) -> bool:
    """Whether a drawn parameter changes an arm's runs (not a policy it lacks, nor a value it sets itself)."""
    from experiments.uncertainty import applies_to

    return applies_to(key, arm.policies) and key not in fixed_keys(arm)


def fixed_keys(arm: Arm) -> set:
    """The parameters an arm sets itself (``policy.NAME.KEY``): a draw does not change them."""
    return {f"policy.{c.policy}.{c.key}" for c in arm.changes}


def seed_for(base_seed: int, arm: int, replicate: int, crn: bool) -> int:
    """Replicate r: seed + r in every arm (crn); else arm j gets seed + 1000 (j + 1) + r."""
    return base_seed + replicate if crn else base_seed + 1000 * (arm + 1) + replicate


def _with_seed(cfg, seed: int):
    """A deep copy of a validated config with another seed (no run shares a config object with another)."""
    import copy

    out = copy.deepcopy(cfg)
    out.seed = int(seed)
    return out


# -- the runs --------------------------------------------------------------------------------------
def warm_up(cfg, warmup_days: int) -> bytes:
    """Run a policy-free market to ``warmup_days``; return the pickled snapshot."""
    from sim import Marketplace

    _quiet()
    model = Marketplace(cfg)
    model.run_until(warmup_days)
    return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)


def branch_arm(base, arm_cfg, switch_policies: bool):
    """Copy a warmed-up market (``base.branch()``) and switch the arm's policies on in the copy."""
    twin = base.branch()
    if switch_policies:
        twin.set_policies(arm_cfg.policy)
    return twin


def run_task(task: Task) -> dict:
    """Run one (arm, replicate) and reduce its Result to what the report needs; errors are returned."""
    from sim import Marketplace

    _quiet()
    try:
        if task.warm is not None:
            base = pickle.loads(task.warm)
            model = branch_arm(base, task.cfg, task.switch_policies)
            del base
            start = model.day
        else:
            model = Marketplace(task.cfg)
            start = 0
        result = model.run()
        reduced = reduce_result(result, start, task.cfg.metrics.survey_share_per_month)
        reduced.update(arm=task.arm, replicate=task.replicate, seed=task.seed, draw=task.draw)
        return reduced
    except Exception as error:  # noqa: BLE001 - an arm that fails is recorded, not fatal
        return {"arm": task.arm, "replicate": task.replicate, "seed": task.seed,
                "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}


def _num(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def reduce_result(result, start_day: int = 0, survey_share: float = math.nan) -> dict:
    """The per-run figures of a comparison: metrics, daily series, monthly churn, retention, LTV samples.

    ``(side, "nps_answers")``: the expected number of NPS answers behind the run's NPS, ``survey_share``
    (per month) x the side's active agents on each survey day (the last day of each 30-day month).
    """
    summary, daily, agents = result.summary, result.daily, result.agents
    days = int(len(daily))
    sides = [s for s in SIDES if s in summary]
    metrics: dict[tuple[str, str], float] = {}
    for side in sides:
        for key in SIDE_METRICS:
            metrics[(side, key)] = _num(summary[side].get(key))
        active = daily[f"{side}_active"].to_numpy(float) if f"{side}_active" in daily else np.zeros(days)
        survey_days = np.arange(MONTH_DAYS - 1, days, MONTH_DAYS)
        metrics[(side, "nps_answers")] = float(survey_share * active[survey_days[survey_days >= start_day]].sum())
        for key in EXPANSION_METRICS if "expansion" in summary[side] else ():
            metrics[(side, key)] = _num(summary[side]["expansion"].get(key))
    platform = summary["platform"]
    for key in PLATFORM_METRICS:
        metrics[("platform", key)] = _num(platform.get(key))
    metrics[("platform", "cs_spend")] = _num(platform.get("cs_cost", 0.0)) + _num(platform.get("incentive_cost", 0.0))
    series = {"net_contribution": daily["net_contribution"].to_numpy(float),
              "cs_spend": (daily["cs_cost"].to_numpy(float)
                           + (daily["incentive_cost"].to_numpy(float) if "incentive_cost" in daily else 0.0))}
    for side in sides:
        for key in ("active", "nps", "csat"):
            col = f"{side}_{key}"
            if col in daily:
                series[col] = daily[col].to_numpy(float)
    churn_months, retention, ltv = {}, {}, {}
    for side in sides:
        a = agents[agents["side"] == side]
        join = a["join_day"].to_numpy()
        churn = a["churn_day"].to_numpy()
        initial = (a["channel"] == "initial").to_numpy()
        # the engine's own definition (sim.metrics.monthly_churn_series), month by month
        churn_months[side] = np.array([_num(v) for v in summary[side]["monthly_churn_by_month"]], dtype=float)
        retention[side] = retention_curve(join[~initial], churn[~initial], days)
        ltv[side] = a.loc[~initial, "ltv"].to_numpy(np.float32)
    return {"metrics": metrics, "series": series, "churn_months": churn_months, "retention": retention,
            "ltv": ltv, "days": days, "start_day": start_day, "sides": sides}


def retention_curve(join, churn, days: int, min_agents: int = 20) -> np.ndarray:
    """Share of agents acquired during the run still active at tenure t (t = 0, 7, 14, ... days).

    Only agents observable for t days (joined by day ``days - t``) count at t; NaN when fewer than ``min_agents``.
    """
    tenures = np.arange(0, days, TENURE_STEP)
    out = np.full(tenures.size, np.nan)
    join = np.asarray(join, dtype=np.int64)   # int32 inputs would wrap the "never churned" sentinel
    churn = np.asarray(churn, dtype=np.int64)
    lifetime = np.where(churn >= 0, churn - join, np.iinfo(np.int64).max)
    for i, t in enumerate(tenures):
        observable = join <= days - t
        n = np.count_nonzero(observable)
        if n >= min_agents:
            out[i] = np.count_nonzero(observable & (lifetime >= t)) / n
    return out


# -- execution: checkpointed, interruptible, workers that die with their parent ---------------------
class Interrupted(Exception):
    """Ctrl-C (or SIGTERM) stopped the comparison; ``saved`` runs of ``total`` are in the folder."""

    def __init__(self, saved: int, total: int):
        super().__init__(f"{saved} of {total} runs saved")
        self.saved, self.total = saved, total


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os._exit(1)  # the comparison is gone (killed): nobody will read this worker's result


def _worker_init(parent_pid: int) -> None:
    """In each worker: Ctrl-C is the parent's to handle, and the worker exits when the parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's Ctrl-C-like handler is not the worker's
    _quiet()
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="watch-parent").start()


def execute(tasks: list, jobs: int, progress: bool, label: str, fn=None, folder: OutputFolder | None = None,
            keys=None, launcher: str = "local", launcher_options: dict | None = None) -> list:
    """Run tasks (in worker processes when jobs > 1) and return their results in task order.

    With a ``folder``, a task whose run is already saved there is loaded instead of run, and each
    successful result is saved (atomically) as it arrives. Ctrl-C raises :class:`Interrupted`.
    ``launcher``: ``local`` (a pool of ``jobs`` worker processes, or in-process) or a submitit launcher
    (:func:`_execute_submitit`, with ``launcher_options`` over its config).
    """
    from tqdm import tqdm

    fn = fn or run_task
    keys = keys or [getattr(t, "key", None) for t in tasks]
    results: list = [None] * len(tasks)
    if folder is not None:
        for i, key in enumerate(keys):
            results[i] = folder.load_run(key)
    pending = [i for i, r in enumerate(results) if r is None]
    done = len(tasks) - len(pending)
    if folder is not None:
        folder.resumed += done

    def finish(i: int, result: dict) -> None:
        results[i] = result
        if folder is not None and "error" not in result:
            folder.save_run(keys[i], result)

    bar = tqdm(total=len(tasks), initial=done, desc=label, unit="run", file=sys.stderr, disable=not progress,
               leave=True)
    pool = None
    try:
        if launcher != "local" and pending:
            _execute_submitit(tasks, pending, fn, finish, bar, launcher, folder, launcher_options)
        elif jobs <= 1 or len(pending) <= 1:
            for i in pending:
                finish(i, fn(tasks[i]))
                bar.update(1)
        else:
            import multiprocessing as mp

            context = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
            pool = context.Pool(min(jobs, len(pending)), initializer=_worker_init, initargs=(os.getpid(),))
            results_iter = pool.imap_unordered(functools.partial(_indexed, fn), [(i, tasks[i]) for i in pending])
            for _ in pending:
                while True:
                    try:  # a short wait at a time, so Ctrl-C is handled at once, not after a run ends
                        i, result = results_iter.next(timeout=PARENT_POLL_S)
                        break
                    except mp.TimeoutError:
                        continue
                finish(i, result)
                bar.update(1)
            pool.close()
            pool.join()
    except KeyboardInterrupt:
        if pool is not None:
            pool.terminate()
        saved = sum(r is not None and "error" not in r for r in results)
        raise Interrupted(saved, len(tasks)) from None
    except BaseException:
        if pool is not None:
            pool.terminate()
        raise
    finally:
        bar.close()
    return results


def launcher_parameters(launcher: str, options: dict | None = None) -> dict:
    """The submitit parameters of a launcher, from the same configs as sweeps: conf/hydra/launcher/NAME.yaml
    when the project has one, else the hydra-submitit-launcher plugin's defaults; Hydra-only keys dropped.

    ``options`` (compare's ``launcher_options.KEY=VALUE``) replace keys of that config, e.g.
    ``{"mem_gb": 8, "partition": "short"}`` (memory in GB, time in minutes); a key the config does not
    have is a ConfigError.
    """
    from hydra_plugins.hydra_submitit_launcher import config as plugin
    from omegaconf import OmegaConf

    own = LAUNCHER_CONF / f"{launcher}.yaml"
    if own.exists():
        raw = OmegaConf.load(own)
    else:
        raw = OmegaConf.structured(plugin.LocalQueueConf if launcher == "submitit_local" else plugin.SlurmQueueConf)
    params = {k: raw[k] for k in raw if k not in ("_target_", "submitit_folder", "name")}  # Hydra interpolations
    for key, value in (options or {}).items():
        if key not in params:
            raise ConfigError(f"launcher_options.{key}", value, f"a key of the {launcher} launcher: "
                              + ", ".join(sorted(params)))
        params[key] = value
    cluster = "local" if launcher == "submitit_local" else "slurm"
    generic = set(OmegaConf.structured(plugin.BaseQueueConf).keys())
    init = {f"{cluster}_max_num_timeout": params.pop("max_num_timeout")} if "max_num_timeout" in params else {}
    update = {k if k in generic else f"{cluster}_{k}": OmegaConf.to_container(OmegaConf.create({"v": v}))["v"]
              for k, v in params.items()}
    return {"cluster": cluster, "init": init, "update": {**update, "name": "twosided-compare"}}


def _execute_submitit(tasks, pending, fn, finish, bar, launcher: str, folder: OutputFolder | None,
                      options: dict | None = None) -> None:
    """Submit each pending task as a submitit job (an array where the cluster has them) and collect the results as
    the jobs end; Ctrl-C cancels the jobs still queued or running."""
    import tempfile

    import submitit

    p = launcher_parameters(launcher, options)
    logs = (folder.path if folder is not None else Path(tempfile.mkdtemp(prefix="twosided-compare-"))) / ".submitit"
    executor = submitit.AutoExecutor(folder=logs / "%j", cluster=p["cluster"], **p["init"])
    executor.update_parameters(**p["update"])
    with executor.batch():
        submitted = [(i, executor.submit(fn, tasks[i])) for i in pending]
    waiting = dict(submitted)
    try:
        while waiting:
            for i, job in list(waiting.items()):
                if job.done():
                    try:
                        result = job.result()
                    except Exception as error:  # noqa: BLE001 - a job that failed is recorded like a run that failed
                        result = {"arm": tasks[i].arm, "replicate": tasks[i].replicate, "seed": tasks[i].seed,
                                  "error": f"{type(error).__name__}: {str(error).strip().splitlines()[-1]}"}
                    finish(i, result)
                    bar.update(1)
                    del waiting[i]
            time.sleep(PARENT_POLL_S)
    finally:
        for job in waiting.values():
            job.cancel(check=False)


def _indexed(fn, item):
    i, task = item
    return i, fn(task)


def _warm_task(item) -> dict:
    seed, cfg, warmup_days = item
    try:
        return {"seed": seed, "warm": warm_up(cfg, warmup_days)}
    except Exception as error:  # noqa: BLE001
        return {"seed": seed, "error": f"{type(error).__name__}: {error}"}


def simulate(settings: Settings, baseline: Arm, arms: list, crn: bool, label: str = "compare",
             folder: OutputFolder | None = None, the_plan: Plan | None = None, group: str = "main"):
    """Build and run every (arm, replicate); return (runs, failed, seeds, days, market).

    ``the_plan``: a plan made by :func:`plan` (else one is made for ``baseline`` and ``arms``, which tests use
    to run arms with extra model overrides). Runs already saved in ``folder`` are loaded, not rerun.
    """
    p = the_plan or _plan_for(settings, baseline, arms)
    everyone = p.arms
    tasks = p.tasks(crn, group)
    seeds = {arm.name: [t.seed for t in tasks if t.arm == j] for j, arm in enumerate(everyone)}
    saved = {t.key for t in tasks if folder is not None and folder.run_path(t.key).exists()}
    if settings.warmup_days > 0:
        needed = sorted({t.seed for t in tasks if t.key not in saved})
        from experiments.config import load_config

        plain = load_config([*settings.model, "policy=none"])
        if p.uncertainty is not None:  # the draw's values that reach a market without policies
            from experiments.uncertainty import apply_draw

            items = [(seed, _with_seed(apply_draw(plain, p.draw_of(seed), set()), seed), settings.warmup_days)
                     for seed in needed]
        else:
            items = [(seed, _with_seed(plain, seed), settings.warmup_days) for seed in needed]
        warm = {}
        for out in execute(items, settings.jobs, settings.progress, f"{label} warm-up", _warm_task,
                           keys=[None] * len(items)):
            if "error" in out:
                raise RuntimeError(f"warm-up of seed {out['seed']} failed: {out['error']}")
            warm[out["seed"]] = out["warm"]
        for t in tasks:
            t.warm = warm.get(t.seed)
    results = execute(tasks, settings.jobs, settings.progress, label, folder=folder, launcher=settings.launcher,
                      launcher_options=settings.launcher_options)
    runs, failed = [], {}
    for j, arm in enumerate(everyone):
        mine = [res for res in results if res["arm"] == j]
        errors = [res["error"] for res in mine if "error" in res]
        if errors:
            failed[arm.name] = errors[0]
            continue
        for res in sorted(mine, key=lambda x: x["replicate"]):
            res["arm_name"] = arm.name
            runs.append(res)
    if baseline.name in failed:
        raise RuntimeError(f"the baseline arm {baseline.name!r} failed: {failed[baseline.name]}")
    return runs, failed, seeds, p.days, p.market


def _plan_for(settings: Settings, baseline: Arm, arms: list) -> Plan:
    from experiments.config import load_config

    everyone = [baseline, *arms]
    configs = {j: load_config([*settings.model, *arm.overrides]) for j, arm in enumerate(everyone)}
    base = configs[0]
    return Plan(settings, baseline, everyone, configs, {}, int(base.seed), int(base.days), base.market.name,
                scale_of(settings.model))


# -- the comparison --------------------------------------------------------------------------------
@dataclass
class Comparison:
    """Everything a comparison produced, and its tables (computed once, on first use).

    ``headline`` leads: per arm the extra net contribution (interval, Holm-adjusted p), ROI and payback;
    ``stats`` has every paired metric, ``economics`` the money, ``details(side)`` a side's table,
    ``guards`` the validity warnings; ``plot()`` draws the cost-and-benefit chart.
    """

    settings: Settings
    baseline: Arm
    arms: list              # [baseline, *arms] (all, including failed ones)
    failed: dict            # arm name -> error
    runs: list              # reduced results of the successful arms, (arm, replicate) order
    seeds: dict             # arm name -> list of seeds
    days: int
    market: str
    scale_note: str
    elapsed_s: float
    crn_runs: list | None = None  # the crn=false runs of crn_check
    crn_check_elapsed_s: float | None = None
    scale: str = "default"
    resolved: dict = field(default_factory=dict)   # arm name -> resolved config
    resumed: int = 0        # runs loaded from the folder instead of simulated
    uncertainty: Any = None  # experiments.uncertainty.Uncertainty of uncertainty=, or None
    values: list = field(default_factory=list)   # per draw: {parameter key: value}

    @functools.cached_property
    def gains(self) -> np.ndarray:
        """Extra net contribution over the baseline: draws x replicates x arms that ran (baseline first: 0)."""
        return decision.gains_table(self.runs, self.arm_names, len(self.values), self.settings.replicates)

    @functools.cached_property
    def group_parameters(self) -> dict:
        """Group -> the keys of its parameters that reach at least one arm that ran (empty: no arm uses it)."""
        by_name = {a.name: a for a in self.arms}
        return {group: [p.key for p in self.uncertainty.parameters if p.group == group
                        and any(reaches(p.key, by_name[name]) for name in self.arm_names)]
                for group in self.uncertainty.groups}

    @property
    def unused_groups(self) -> list[str]:
        """Parameter groups that change no arm's runs (their EVPPI is 0)."""
        return [g for g, keys in self.group_parameters.items() if not keys]

    @functools.cached_property
    def decision(self) -> dict | None:
        """decision.json under parameter uncertainty (experiments/decision.py), or None without uncertainty."""
        if self.uncertainty is None:
            return None
        by_name = {a.name: a for a in self.arms}
        groups = {}
        for group, keys in self.group_parameters.items():
            x = np.array([[v[k] for k in keys] for v in self.values], dtype=float)
            depends = [any(reaches(k, by_name[name]) for k in keys) for name in self.arm_names]
            groups[group] = (x, depends) if keys else None
        return decision.decide(self.gains, self.arm_names, groups, self.settings.confidence)

    @property
    def arm_names(self) -> list[str]:
        """The arms that ran (baseline first)."""
        return [a.name for a in self.arms if a.name not in self.failed]

    @functools.cached_property
    def tidy(self) -> pd.DataFrame:
        """One row per arm, replicate and metric."""
        return tables.tidy(self.runs)

    @functools.cached_property
    def stats(self) -> pd.DataFrame:
        """Paired statistics of every arm x side x metric against the baseline (Holm-adjusted p in p_holm)."""
        return tables.paired_table(self.tidy, self.baseline.name, self.settings.confidence)

    @functools.cached_property
    def economics(self) -> pd.DataFrame:
        """Per arm: extra net contribution and CS spend, ROI (interval), payback month."""
        return tables.economics(self.runs, self.baseline.name, self.settings.confidence)

    @functools.cached_property
    def headline(self) -> pd.DataFrame:
        """The answer: one row per arm, best extra net contribution first."""
        return tables.headline(self)

    @functools.cached_property
    def guards(self) -> list[str]:
        """Validity warnings (test scale, short horizon, too few replicates, surveys on few answers)."""
        return tables.guards(self)

    @property
    def best(self) -> str:
        """The arm whose extra net contribution is largest and resolved above 0 after Holm's correction."""
        return tables.best_arm(self)

    def details(self, side: str) -> pd.DataFrame:
        """The per-metric table of one side (``buyers``, ``sellers``, ``drivers``) or ``platform``."""
        return tables.side_detail(self, side)

    def plot(self):
        """The cost-and-benefit chart (a matplotlib Figure)."""
        return report.fig_cost_benefit(self)

    def write_report(self, out) -> dict:
        """Write the report files into folder ``out``; return their paths."""
        return report.write_report(self, Path(out))


def run_plan(p: Plan, folder: OutputFolder | None = None) -> Comparison:
    """Run a plan's tasks (and the crn=false check when asked); finished runs are saved in ``folder``."""
    s = p.settings
    t0 = time.perf_counter()
    runs, failed, seeds, days, market = simulate(s, p.baseline, p.arms[1:], s.crn, folder=folder, the_plan=p)
    comparison = Comparison(s, p.baseline, p.arms, failed, runs, seeds, days, market, " ".join(s.model),
                            time.perf_counter() - t0, scale=p.scale, resolved=p.resolved,
                            resumed=folder.resumed if folder is not None else 0, uncertainty=p.uncertainty,
                            values=p.values)
    if s.crn_check:
        t1 = time.perf_counter()
        ok = [a for a in p.arms if a.name not in failed]
        check = Plan(s, p.baseline, ok, {j: p.configs[p.arms.index(a)] for j, a in enumerate(ok)}, p.resolved,
                     p.base_seed, p.days, p.market, p.scale)
        comparison.crn_runs = simulate(s, p.baseline, ok[1:], not s.crn, "crn check", folder, check, "check")[0]
        comparison.crn_check_elapsed_s = time.perf_counter() - t1
    return comparison


def compare(arms: Any = "all", *, baseline: str = "none", replicates: int = 3, market: str | None = None,
            scale: str | None = None, days: int | None = None, seed: int | None = None, overrides: tuple = (),
            warmup_days: int = 0, crn: bool = True, jobs: int = 1, confidence: float = 0.95, out=None,
            progress: bool = False, launcher: str = "local", uncertainty: str | None = None,
            draws: int | None = None) -> Comparison:
    """Run a comparison from Python and return it (tables as attributes, ``.plot()``).

    ``arms``: a list of arms in the syntax of experiments/arms.py (a nested list is a composition);
    ``overrides``: further model overrides (``"population.buyers=500"``). With ``out``, finished runs
    are saved there as they end (a rerun resumes) and the report is written there. ``uncertainty``: a
    setting of conf/uncertainty/ (or a .yaml path), drawn ``draws`` times (``.decision``: decision.json).
    ConfigError on a bad value, as on the command line.
    """
    args = [f"arms={_arms_text(arms)}", f"baseline={baseline}", f"replicates={replicates}",
            f"warmup_days={warmup_days}", f"crn={str(crn).lower()}", f"jobs={jobs}", f"confidence={confidence}",
            f"progress={str(progress).lower()}", f"launcher={launcher}"]
    for key, value in (("market", market), ("scale", scale), ("days", days), ("seed", seed),
                       ("uncertainty", uncertainty), ("draws", draws)):
        if value is not None:
            args.append(f"{key}={value}")
    args += list(overrides)
    if out is not None:
        args.append(f"out={out}")
    settings = parse_args(args)
    p = plan(settings)
    if out is None:
        return run_plan(p)
    with OutputFolder(out, p.spec()) as folder:
        comparison = run_plan(p, folder)
        comparison.write_report(out)
    return comparison


def _arms_text(arms: Any) -> str:
    if isinstance(arms, str):
        return arms
    return "[" + ",".join(_arms_text(a) if isinstance(a, (list, tuple)) else str(a) for a in arms) + "]"


# -- entry point -----------------------------------------------------------------------------------
def default_out() -> Path:
    import datetime as _dt

    return Path("comparisons") / _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")


def _sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


def main(args: list[str]) -> int:
    """Entry of `twosided compare ARGS`; return the exit code (2 on bad input, 130 when interrupted)."""
    _quiet()
    try:
        return _main(args)
    except KeyboardInterrupt:  # before the folder was locked: nothing ran, nothing to keep
        print("twosided compare: interrupted before any run.", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(args: list[str]) -> int:
    try:
        settings = parse_args(args)
        try:
            the_plan = plan(settings)
        except ConfigError as error:
            if str(error.allowed).startswith("a known key"):  # perhaps a misspelt compare key
                raise ConfigError(error.key, error.value, f"{error.allowed}; or a key of compare.yaml: "
                                  + ", ".join(_ALLOWED)) from None
            raise
        out = Path(str(settings.out)) if settings.out is not None else default_out()
        if settings.out is None:
            settings.args = [*settings.args, f"out={out}"]
        folder = OutputFolder(out, the_plan.spec()).open()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        arms = the_plan.arms[1:]
        print(f"twosided compare: {len(arms)} arm(s) against {the_plan.baseline.name!r}, {settings.replicates} "
              f"replicates, jobs={settings.jobs}, crn={str(settings.crn).lower()}, folder {out}"
              + (f", model: {' '.join(settings.model)}" if settings.model else ""), file=sys.stderr)
        comparison = run_plan(the_plan, folder)
        paths = comparison.write_report(out)
    except (Interrupted, KeyboardInterrupt):
        print(f"twosided compare: interrupted; {folder.saved_count()} finished runs are saved in {out}. Run the "
              "same command again to resume.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RuntimeError as error:
        print(f"twosided compare failed: {error}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        folder.release()
    for name, error in comparison.failed.items():
        print(f"arm {name!r} failed: {error}", file=sys.stderr)
    print(report.terminal_summary(comparison))
    for warning in comparison.guards:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"Comparison finished in {comparison.elapsed_s:.0f} s. Report: {paths['md']}")
    print(f"  html: {paths['html']}")
    return 0
