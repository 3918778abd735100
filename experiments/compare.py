"""`twosided compare`: CS policies against a baseline, paired replicates -> a decision report.

    twosided compare                                  # every policy of conf/policy/ vs none, delivery market
    twosided compare arms=[fair_disputes,[proactive_outreach,tech_touch]] replicates=5 market=rides
    twosided compare warmup_days=90 crn_check=true jobs=4 out=comparisons/drivers

Keys of conf/compare.yaml (arms, baseline, replicates, warmup_days, crn,
crn_check, jobs, confidence, out, progress) set the comparison; every other
key=value is a model override given to every run (market=, scale=, seed=,
days=, population.buyers=, ...). ``seed`` is the base seed: replicate r runs
on seed + r in every arm (common random numbers). ``policy=`` is not allowed:
the arms set it.

The runs: one task per (arm, replicate), executed by a ProcessPoolExecutor
(``jobs``) or in-process (``jobs=1``); every run is a pure function of its
config, and results are gathered in (arm, replicate) order, so parallel and
serial comparisons are bit-identical. With ``warmup_days`` > 0 each seed's
market first runs without policies to that day; every arm then continues from
a copy (``Marketplace.branch()``) with its policies switched on
(``Marketplace.set_policies``).
"""
from __future__ import annotations

import datetime as _dt
import logging
import math
import pickle
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.config import ConfigError

COMPARE_YAML = Path(__file__).resolve().parent.parent / "conf" / "compare.yaml"
SIDES = ("buyers", "sellers", "drivers")
SIDE_METRICS = ("monthly_churn", "ltv", "ltv_cac", "cac", "nps", "csat", "activation_30d", "ttfv_days",
                "active_end", "joined", "churned", "revenue", "margin")
PLATFORM_METRICS = ("gmv", "take_revenue", "payment_costs", "marketing_cost", "cs_cost", "incentive_cost",
                    "net_contribution", "expansion_revenue")
MONTH_DAYS = 30
TENURE_STEP = 7
CRN_CHECK_METRICS = (("buyers", "monthly_churn"), ("sellers", "monthly_churn"), ("drivers", "monthly_churn"),
                     ("buyers", "ltv"), ("sellers", "ltv"), ("drivers", "ltv"),
                     ("platform", "net_contribution"))


# -- settings --------------------------------------------------------------------------------------
@dataclass
class Settings:
    """The comparison's own keys (defaults in conf/compare.yaml)."""

    arms: Any = "all"
    baseline: str = "none"
    replicates: int = 3
    warmup_days: int = 0
    crn: bool = True
    crn_check: bool = False
    jobs: int = 2
    confidence: float = 0.95
    out: Any = None
    progress: bool = True
    model: list = field(default_factory=list)  # model overrides (the other key=value arguments)


@dataclass
class Arm:
    """One arm: a policy or a composition of policies."""

    name: str
    policies: list
    extra: list = field(default_factory=list)  # further model overrides of this arm (for tests, not the CLI)

    @property
    def overrides(self) -> list[str]:
        if len(self.policies) == 1:
            return [f"policy={self.policies[0]}", *self.extra]
        return ["policy=[" + ",".join(self.policies) + "]", *self.extra]


_ALLOWED = {
    "arms": "`all`, or a list of policies of conf/policy/ (an item may be a composition [a,b] or a+b)",
    "baseline": "a policy of conf/policy/",
    "replicates": "a whole number >= 2 (paired intervals need two replicates)",
    "warmup_days": "a whole number >= 0, below the run's days",
    "crn": "true or false",
    "crn_check": "true or false",
    "jobs": "a whole number >= 1",
    "confidence": "a number strictly between 0 and 1",
    "out": "a folder path (or null for comparisons/<timestamp>)",
    "progress": "true or false",
}


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off", "1", "0"):
        return value.lower() in ("true", "yes", "on", "1")
    raise ConfigError(key, value, _ALLOWED[key])


def _int(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool):
        raise ConfigError(key, value, _ALLOWED[key])
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(key, value, _ALLOWED[key]) from None
    if not math.isfinite(number) or not number.is_integer() or number < minimum:
        raise ConfigError(key, value, _ALLOWED[key])
    return int(number)


def parse_args(args: list[str]) -> Settings:
    """``key=value`` arguments -> validated :class:`Settings` (ConfigError, one paragraph, on bad input)."""
    from omegaconf import OmegaConf

    defaults = OmegaConf.to_container(OmegaConf.load(COMPARE_YAML)) if COMPARE_YAML.exists() else {}
    values: dict[str, Any] = dict(defaults)
    model: list[str] = []
    for arg in args:
        if "=" not in arg or arg.startswith("-"):
            raise ConfigError("argument", arg, "key=value pairs: compare keys (" + ", ".join(_ALLOWED)
                              + ") or model overrides such as market=rides scale=small seed=3")
        key, _, raw = arg.partition("=")
        if key in _ALLOWED:
            try:
                parsed = OmegaConf.to_container(OmegaConf.from_dotlist([f"v={raw}"]))["v"]
            except Exception:  # noqa: BLE001 - any parse failure is the user's value
                raise ConfigError(key, raw, _ALLOWED[key]) from None
            values[key] = parsed
        elif key.lstrip("+~") == "policy" or key.lstrip("+~").startswith("policy."):
            raise ConfigError(key, raw, "not a model override here: choose policies with arms=[...] "
                              "(and the reference with baseline=)")
        else:
            model.append(arg)
    unknown = set(values) - set(_ALLOWED)
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(key, values[key], f"a key of {COMPARE_YAML.name}: " + ", ".join(_ALLOWED))
    s = Settings(model=model)
    s.arms = values.get("arms", "all")
    s.baseline = values.get("baseline", "none")
    if not isinstance(s.baseline, str) or not s.baseline:
        raise ConfigError("baseline", s.baseline, _ALLOWED["baseline"])
    s.replicates = _int("replicates", values.get("replicates", 3), 2)
    s.warmup_days = _int("warmup_days", values.get("warmup_days", 0), 0)
    s.crn = _bool("crn", values.get("crn", True))
    s.crn_check = _bool("crn_check", values.get("crn_check", False))
    s.jobs = _int("jobs", values.get("jobs", 2), 1)
    confidence = values.get("confidence", 0.95)
    try:
        s.confidence = float(confidence)
    except (TypeError, ValueError):
        raise ConfigError("confidence", confidence, _ALLOWED["confidence"]) from None
    if isinstance(confidence, bool) or not 0 < s.confidence < 1:
        raise ConfigError("confidence", confidence, _ALLOWED["confidence"])
    s.out = values.get("out")
    if s.out is not None and (not isinstance(s.out, (str, int)) or str(s.out).strip() == ""):
        raise ConfigError("out", s.out, _ALLOWED["out"])
    s.progress = _bool("progress", values.get("progress", True))
    return s


def resolve_arms(settings: Settings) -> tuple[Arm, list[Arm]]:
    """The baseline arm and the other arms (default: every option of conf/policy/ except the baseline)."""
    from experiments.config import group_options

    options = group_options("policy")
    if settings.baseline not in options:
        raise ConfigError("baseline", settings.baseline, "one of " + ", ".join(options))
    baseline = Arm(settings.baseline, [settings.baseline])
    raw = settings.arms
    if raw is None or raw == "all" or raw == ["all"]:
        items: list = [o for o in options if o != settings.baseline]
    elif isinstance(raw, str):
        items = [raw]
    elif isinstance(raw, list):
        items = raw
    else:
        raise ConfigError("arms", raw, _ALLOWED["arms"])
    arms, seen = [], {baseline.name}
    for item in items:
        if isinstance(item, str):
            policies = [p.strip() for p in item.split("+") if p.strip()]
        elif isinstance(item, list) and all(isinstance(p, str) for p in item):
            policies = list(item)
        else:
            raise ConfigError("arms", raw, _ALLOWED["arms"])
        if not policies:
            raise ConfigError("arms", raw, _ALLOWED["arms"])
        name = "+".join(policies)
        if name in seen:
            continue
        seen.add(name)
        arms.append(Arm(name, policies))
    return baseline, arms


# -- the runs --------------------------------------------------------------------------------------
@dataclass
class Task:
    """One simulation: an arm on one replicate."""

    arm: int                  # index into [baseline, *arms]
    replicate: int
    seed: int
    cfg: Any                  # the arm's validated sim Config (with this seed)
    warm: bytes | None = None  # pickled Marketplace after warm-up (policy none), or None
    switch_policies: bool = False


def _quiet() -> None:
    logging.getLogger("MESA").setLevel(logging.WARNING)


def seed_for(base_seed: int, arm: int, replicate: int, crn: bool) -> int:
    """Replicate r: seed + r in every arm (crn); else arm j gets seed + 1000 (j + 1) + r."""
    return base_seed + replicate if crn else base_seed + 1000 * (arm + 1) + replicate


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
        if not hasattr(twin, "set_policies"):
            raise RuntimeError("the engine has no Marketplace.set_policies(policy_cfg), so a policy cannot be "
                               "switched on after the warm-up; run with warmup_days=0")
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
        reduced = reduce_result(result, start)
        reduced.update(arm=task.arm, replicate=task.replicate, seed=task.seed)
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


def reduce_result(result, start_day: int = 0) -> dict:
    """The per-run figures of a comparison: metrics, daily series, monthly churn, retention, LTV samples."""
    summary, daily, agents = result.summary, result.daily, result.agents
    days = int(len(daily))
    sides = [s for s in SIDES if s in summary]
    metrics: dict[tuple[str, str], float] = {}
    for side in sides:
        for key in SIDE_METRICS:
            metrics[(side, key)] = _num(summary[side].get(key))
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
        churn_months[side] = monthly_churn_from_agents(join, churn, initial, days)
        retention[side] = retention_curve(join[~initial], churn[~initial], days)
        ltv[side] = a.loc[~initial, "ltv"].to_numpy(np.float32)
    return {"metrics": metrics, "series": series, "churn_months": churn_months, "retention": retention,
            "ltv": ltv, "days": days, "start_day": start_day, "sides": sides}


def monthly_churn_from_agents(join, churn, initial, days: int) -> np.ndarray:
    """Churned during each complete 30-day month / active at its start (as sim.metrics.monthly_churn_series)."""
    months = days // MONTH_DAYS
    rates = np.full(months, np.nan)
    for m in range(months):
        start, end = m * MONTH_DAYS, (m + 1) * MONTH_DAYS
        active = ((join < start) | initial) & ((churn < 0) | (churn >= start))
        n = np.count_nonzero(active)
        if n:
            rates[m] = np.count_nonzero(active & (churn >= start) & (churn < end)) / n
    return rates


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


@dataclass
class Comparison:
    """Everything a comparison produced (the report is drawn from it)."""

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


def _execute(tasks: list, jobs: int, progress: bool, label: str, fn=run_task) -> list:
    """Run tasks (in parallel when jobs > 1) and return their results in task order."""
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc=label, unit="run", file=sys.stderr, disable=not progress, leave=True)
    results: list = [None] * len(tasks)
    try:
        if jobs <= 1 or len(tasks) <= 1:
            for i, task in enumerate(tasks):
                results[i] = fn(task)
                bar.update(1)
        else:
            import multiprocessing as mp

            context = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
            with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context) as pool:
                futures = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
                from concurrent.futures import as_completed

                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.update(1)
    finally:
        bar.close()
    return results


def _warm_task(item) -> dict:
    seed, cfg, warmup_days = item
    try:
        return {"seed": seed, "warm": warm_up(cfg, warmup_days)}
    except Exception as error:  # noqa: BLE001
        return {"seed": seed, "error": f"{type(error).__name__}: {error}"}


def _with_seed(cfg, seed: int):
    """A deep copy of a validated config with another seed (no run shares a config object with another)."""
    import copy

    out = copy.deepcopy(cfg)
    out.seed = int(seed)
    return out


def simulate(settings: Settings, baseline: Arm, arms: list, crn: bool, label: str = "compare"):
    """Build and run every (arm, replicate); return (runs, failed, seeds, days, market)."""
    from experiments.config import load_config

    everyone = [baseline, *arms]
    base_cfg = load_config([*settings.model, f"policy={baseline.name}"])  # validates the model overrides
    base_seed, days = int(base_cfg.seed), int(base_cfg.days)
    if settings.warmup_days >= days:
        raise ConfigError("warmup_days", settings.warmup_days, f"a whole number >= 0 below the run's days ({days})")
    failed: dict[str, str] = {}
    configs: dict[tuple[int, int], Any] = {}
    seeds: dict[str, list] = {}
    for j, arm in enumerate(everyone):
        arm_seeds = [seed_for(base_seed, j, r, crn) for r in range(settings.replicates)]
        seeds[arm.name] = arm_seeds
        try:  # composed once per arm (Hydra composition is slow); the replicates differ only in the seed
            arm_cfg = base_cfg if arm is baseline else load_config([*settings.model, *arm.overrides])
        except Exception as error:  # noqa: BLE001 - recorded, the comparison goes on
            failed[arm.name] = str(error)
            continue
        for r, seed in enumerate(arm_seeds):
            configs[(j, r)] = _with_seed(arm_cfg, seed)
    if baseline.name in failed:
        raise ConfigError("baseline", baseline.name, f"a policy that composes; it failed with: {failed[baseline.name]}")
    warm: dict[int, bytes] = {}
    if settings.warmup_days > 0:
        needed = sorted({configs[key].seed for key in configs})
        plain = base_cfg if baseline.policies == ["none"] else load_config([*settings.model, "policy=none"])
        items = [(seed, _with_seed(plain, seed), settings.warmup_days) for seed in needed]
        for out in _execute(items, settings.jobs, settings.progress, f"{label} warm-up", _warm_task):
            if "error" in out:
                raise RuntimeError(f"warm-up of seed {out['seed']} failed: {out['error']}")
            warm[out["seed"]] = out["warm"]
    tasks = [Task(j, r, configs[(j, r)].seed, configs[(j, r)],
                  warm.get(configs[(j, r)].seed) if settings.warmup_days > 0 else None,
                  switch_policies=everyone[j].policies != ["none"])
             for j in range(len(everyone)) for r in range(settings.replicates) if (j, r) in configs]
    results = _execute(tasks, settings.jobs, settings.progress, label)
    runs = []
    for j, arm in enumerate(everyone):
        mine = [res for res in results if res["arm"] == j]
        errors = [res["error"] for res in mine if "error" in res]
        if errors and arm.name not in failed:
            failed[arm.name] = errors[0]
        if arm.name in failed:
            continue
        for res in sorted(mine, key=lambda x: x["replicate"]):
            res["arm_name"] = arm.name
            runs.append(res)
    if baseline.name in failed:
        raise RuntimeError(f"the baseline arm {baseline.name!r} failed: {failed[baseline.name]}")
    return runs, failed, seeds, days, base_cfg.market.name


def compare(settings: Settings) -> Comparison:
    """Run the comparison (and the crn=false check when asked)."""
    baseline, arms = resolve_arms(settings)
    t0 = time.perf_counter()
    runs, failed, seeds, days, market = simulate(settings, baseline, arms, settings.crn)
    elapsed = time.perf_counter() - t0
    comparison = Comparison(settings, baseline, [baseline, *arms], failed, runs, seeds, days, market,
                            " ".join(settings.model), elapsed)
    if settings.crn_check:
        t1 = time.perf_counter()
        ok_arms = [a for a in arms if a.name not in failed]
        other, _, _, _, _ = simulate(settings, baseline, ok_arms, not settings.crn, "crn check")
        comparison.crn_runs = other
        comparison.crn_check_elapsed_s = time.perf_counter() - t1
    return comparison


# -- tables ----------------------------------------------------------------------------------------
def tidy(runs: list) -> pd.DataFrame:
    """One row per arm, replicate and metric (side, metric, value)."""
    rows = []
    for res in runs:
        for (side, metric), value in res["metrics"].items():
            rows.append((res["arm_name"], res["replicate"], res["seed"], side, metric, value))
    return pd.DataFrame(rows, columns=["arm", "replicate", "seed", "side", "metric", "value"])


def paired_table(table: pd.DataFrame, baseline: str, confidence: float) -> pd.DataFrame:
    """Paired statistics of every (arm, side, metric) against the baseline (see experiments/stats.py)."""
    from experiments import stats

    rows = []
    wide = table.pivot_table(index=["side", "metric", "replicate"], columns="arm", values="value", aggfunc="first",
                             dropna=False)
    arms = [a for a in dict.fromkeys(table["arm"]) if a != baseline]
    for (side, metric), block in wide.groupby(level=["side", "metric"], sort=False):
        base = block[baseline].to_numpy(float)
        for arm in arms:
            values = block[arm].to_numpy(float)
            p = stats.paired(values, base, confidence)
            rows.append({"arm": arm, "side": side, "metric": metric, "n": p.n, "mean_base": p.mean_base,
                         "mean_arm": p.mean_arm, "diff": p.diff, "sd": p.sd, "lo": p.lo, "hi": p.hi,
                         "rel": p.rel, "replicates_needed": p.replicates_needed, "resolved": p.resolved,
                         "width": p.width, "unpaired_width": stats.unpaired_width(values, base, confidence)})
    return pd.DataFrame(rows)


def economics(runs: list, baseline: str, confidence: float) -> pd.DataFrame:
    """Per arm: ROI (with interval) and payback month of the mean extra net contribution."""
    from experiments import stats

    by_arm: dict[str, list] = {}
    for res in runs:
        by_arm.setdefault(res["arm_name"], []).append(res)
    base = {res["replicate"]: res for res in by_arm[baseline]}
    rows = []
    for arm, mine in by_arm.items():
        if arm == baseline:
            continue
        pairs = [(res, base[res["replicate"]]) for res in mine if res["replicate"] in base]
        d_net = [a["metrics"][("platform", "net_contribution")] - b["metrics"][("platform", "net_contribution")]
                 for a, b in pairs]
        d_spend = [a["metrics"][("platform", "cs_spend")] - b["metrics"][("platform", "cs_spend")] for a, b in pairs]
        value, lo, hi = stats.roi_interval(d_net, d_spend, confidence)
        start = pairs[0][0]["start_day"] if pairs else 0
        extra = np.mean([a["series"]["net_contribution"] - b["series"]["net_contribution"] for a, b in pairs], axis=0)
        per_rep = [stats.payback_month(a["series"]["net_contribution"] - b["series"]["net_contribution"], start)
                   for a, b in pairs]
        rows.append({"arm": arm, "roi": value, "roi_lo": lo, "roi_hi": hi,
                     "d_net": float(np.mean(d_net)), "d_spend": float(np.mean(d_spend)),
                     "payback_month": stats.payback_month(extra, start),
                     "paid_back_share": float(np.mean([p is not None for p in per_rep])) if per_rep else math.nan})
    return pd.DataFrame(rows, columns=["arm", "roi", "roi_lo", "roi_hi", "d_net", "d_spend", "payback_month",
                                       "paid_back_share"])


def crn_ratios(crn_runs: list, other_runs: list, baseline: str, confidence: float) -> pd.DataFrame:
    """Width of the paired interval with common random numbers / with independent seeds, per arm and metric."""
    a = paired_table(tidy(crn_runs), baseline, confidence)
    b = paired_table(tidy(other_runs), baseline, confidence)
    keys = ["arm", "side", "metric"]
    merged = a[keys + ["width"]].merge(b[keys + ["width"]], on=keys, suffixes=("_crn", "_independent"))
    merged["ratio"] = merged["width_crn"] / merged["width_independent"]
    wanted = set(CRN_CHECK_METRICS)
    return merged[[k in wanted for k in zip(merged["side"], merged["metric"])]].reset_index(drop=True)


# -- entry point -----------------------------------------------------------------------------------
def default_out() -> Path:
    return Path("comparisons") / _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")


def main(args: list[str]) -> int:
    """Entry of `twosided compare ARGS`; return the exit code (2 on a bad key or value)."""
    _quiet()
    try:
        settings = parse_args(args)
        resolve_arms(settings)
        from experiments.config import load_config

        try:
            load_config([*settings.model, f"policy={settings.baseline}"])
        except ConfigError as error:
            if str(error.allowed).startswith("a known key"):  # perhaps a misspelt compare key
                raise ConfigError(error.key, error.value, f"{error.allowed}; or a key of compare.yaml: "
                                  + ", ".join(_ALLOWED)) from None
            raise
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    out = Path(settings.out) if settings.out is not None else default_out()
    baseline, arms = resolve_arms(settings)
    print(f"twosided compare: {len(arms)} arm(s) against {baseline.name!r}, {settings.replicates} replicates, "
          f"jobs={settings.jobs}, crn={str(settings.crn).lower()}"
          + (f", model: {' '.join(settings.model)}" if settings.model else ""), file=sys.stderr)
    try:
        comparison = compare(settings)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    except RuntimeError as error:
        print(f"twosided compare failed: {error}", file=sys.stderr)
        return 1
    from experiments.report import write_report

    paths = write_report(comparison, out)
    for name, error in comparison.failed.items():
        print(f"arm {name!r} failed: {error}", file=sys.stderr)
    print(f"Comparison finished in {comparison.elapsed_s:.0f} s. Report: {paths['md']}")
    print(f"  html: {paths['html']}")
    return 0
