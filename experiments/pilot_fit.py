"""`twosided calibrate pilot=PATH`: fit a policy's effect sizes to a team's own pilot.

    twosided calibrate pilot=pilot_agents.parquet policy=fair_disputes design=drivers fit=[reverse_unfair] \\
        market=rides scale=small out=calibrations/disputes
    twosided calibrate pilot=export.csv policy=proactive_outreach design=sellers columns.id=seller_id ...

Keys of conf/pilot_fit.yaml set the fit; every other key=value is a model override of the simulated market
(market=, scale=, seed=, population.drivers=...).

1. The observed difference: from the pilot's per-agent export (the columns of `twosided pilot`'s
   pilot_agents.parquet), the analyst's estimate of the design's metric, treated minus control, per agent-month
   alive, with its interval, by the same estimator as `twosided pilot` (experiments/pilot.py: the delta method
   at the randomised unit; switchback's units are the periods agents joined in).
2. The candidates: values of the chosen effect parameters of conf/policy/<policy>.yaml on their documented
   "(assumed) range a-b" (experiments/uncertainty.py reads them), a grid of ``grid`` values for one parameter or
   ``grid_2d`` x ``grid_2d`` for two. Each candidate's pilot is simulated with the same design, share and days on
   the same seeds (common random numbers: the candidates differ by the parameter only), and gives the same
   estimate, averaged over ``replicates`` seeds.
3. The fit: the value whose simulated estimate is nearest the observed one (one parameter: on the straight
   lines between grid values); its interval by profile: the values whose simulated estimate lies within the
   observed difference's interval, so it carries the pilot's sampling error (the simulated curve's own seed
   noise, reduced by common random numbers and replicates, is not added).

Output folder: ``pilot_fit.json`` (parameters {NAME: {value, low, high}}, observed, design, policy, market,
candidates) written last, and ``arm/<name>.yaml``, a named arm `twosided compare` accepts with
``TWOSIDED_CONFIG_DIR=<out>`` (the command prints how, and the inline form ``policy(key=value)``).
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments import pilot as pilot_mod
from experiments.calibrate import json_safe
from experiments.checks import check_output_dir, output_fault
from experiments.compare import _with_seed, execute, seed_for
from experiments.config import CONF_DIR, USER_CONFIG_ENV
from experiments.uncertainty import ranges_in_yaml
from sim.config import ConfigError
from sim.treatment import DESIGNS, Design

FIT_YAML = CONF_DIR / "pilot_fit.yaml"
FIT_DESIGNS = tuple(d for d in DESIGNS if d != "two_sided")   # two_sided's estimate needs trades, not agents
COLUMNS = ("design", "side", "id", "arm", "unit", "join_day", "churn_day", "orders", "margin")
MAX_FIT = 2


@dataclass
class FitSettings:
    """The fit's keys (conf/pilot_fit.yaml) and the model overrides of the simulated market."""

    pilot: Path
    policy: str
    design: str
    fit: list
    side: str
    metric: str
    share: float | None
    days: int | None
    columns: dict
    min_units_per_arm: int
    grid: int
    grid_2d: int
    replicates: int
    confidence: float
    zones_per_axis: int
    period_days: int
    name: str
    jobs: int
    progress: bool
    out: Any
    model: list = field(default_factory=list)
    policy_overrides: dict = field(default_factory=dict)   # policy.<policy>.KEY=VALUE: how the pilot ran it


def _whole(key: str, value: Any, low: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(key, value, f"a whole number >= {low} ({what})")
    return int(value)


def parse_args(args: list[str]) -> FitSettings:
    """``key=value`` arguments -> validated settings; ConfigError (one paragraph, exit 2) on bad input."""
    from omegaconf import OmegaConf

    values: dict = OmegaConf.to_container(OmegaConf.load(FIT_YAML))
    model: list[str] = []
    policy_overrides: dict[str, Any] = {}
    for arg in args:
        key, eq, raw = arg.partition("=")
        if not eq or not key:
            raise ConfigError("argument", arg, "key=value pairs: keys of conf/pilot_fit.yaml ("
                              + ", ".join(values) + ") or model overrides such as market=rides scale=small")
        top = key.split(".", 1)[0]
        if top not in values:
            model.append(arg)
            continue
        if top == "policy" and key != "policy":
            policy_overrides[key] = _value(key, raw)   # policy.NAME.KEY: how the pilot ran the policy, checked below
            continue
        if (top == "columns") != (key != top) or (top == "columns" and key.split(".", 1)[1] not in COLUMNS):
            raise ConfigError(key, raw, "columns.NAME=THEIR_COLUMN with NAME one of " + ", ".join(COLUMNS)
                              if top == "columns" else f"{top}=VALUE (see conf/pilot_fit.yaml)")
        parsed = _value(key, raw)
        if top == "columns":
            values["columns"][key.split(".", 1)[1]] = str(parsed)
        else:
            values[key] = raw if key == "pilot" else parsed
    if values["pilot"] in (None, ""):
        raise ConfigError("pilot", values["pilot"], "the path of the pilot's per-agent export (Parquet or CSV)")
    for key in ("policy", "design", "side", "metric"):
        if not isinstance(values[key], str) or not values[key].strip():
            raise ConfigError(key, values[key], "a name (see conf/pilot_fit.yaml)")
    if values["design"] not in FIT_DESIGNS:
        why = " (two_sided's estimate counts trades by the counterpart's arm, which a per-agent export does not " \
              "carry)" if values["design"] == "two_sided" else ""
        raise ConfigError("design", values["design"], "the pilot's design, one of " + ", ".join(FIT_DESIGNS) + why)
    if values["metric"] not in ("auto", *pilot_mod.METRICS):
        raise ConfigError("metric", values["metric"], "auto, or one of " + ", ".join(pilot_mod.METRICS))
    fit = [values["fit"]] if isinstance(values["fit"], str) and values["fit"] else values["fit"]
    if fit is not None and (not isinstance(fit, list) or not fit or not all(isinstance(k, str) for k in fit)):
        raise ConfigError("fit", values["fit"], "a list of parameter names, e.g. fit=[reverse_unfair]")
    share = values["share"]
    if share is not None and (isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share < 1):
        raise ConfigError("share", share, "null (the export's share) or a number strictly between 0 and 1")
    days = values["days"]
    if days is not None:
        days = _whole("days", days, 1, "the pilot's length in days, or null")
    confidence = values["confidence"]
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ConfigError("confidence", confidence, "a number strictly between 0 and 1")
    if not isinstance(values["progress"], bool):
        raise ConfigError("progress", values["progress"], "true or false")
    prefix = f"policy.{values['policy']}."
    for key, value in policy_overrides.items():
        if not key.startswith(prefix):
            raise ConfigError(key, value, f"policy.{values['policy']}.KEY=VALUE: a parameter of the piloted policy "
                              "as the pilot ran it (its fitted ones are fit=[...])")
    name = values["name"] or f"{values['policy']}_pilot"
    if not str(name).replace("_", "").isalnum():
        raise ConfigError("name", name, "a name of letters, digits and underscores (the arm's file name)")
    return FitSettings(
        pilot=Path(str(values["pilot"])).expanduser(), policy=values["policy"], design=values["design"], fit=fit,
        side=values["side"], metric=values["metric"], share=share, days=days, columns=dict(values["columns"]),
        min_units_per_arm=_whole("min_units_per_arm", values["min_units_per_arm"], 2, "units per arm"),
        grid=_whole("grid", values["grid"], 3, "candidate values of one parameter"),
        grid_2d=_whole("grid_2d", values["grid_2d"], 2, "candidate values per parameter, fitting two"),
        replicates=_whole("replicates", values["replicates"], 1, "seeds per candidate"),
        confidence=float(confidence),
        zones_per_axis=_whole("zones_per_axis", values["zones_per_axis"], 2, "the clusters' grid"),
        period_days=_whole("period_days", values["period_days"], 1, "switchback's period"),
        name=str(name), jobs=_whole("jobs", values["jobs"], 1, "worker processes"), progress=values["progress"],
        out=values["out"], model=model,
        policy_overrides={k.removeprefix(prefix): value for k, value in policy_overrides.items()})


def _value(key: str, raw: str) -> Any:
    """A command-line value as YAML reads it (numbers, lists, null); ConfigError if it does not parse."""
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_container(OmegaConf.from_dotlist([f"v={raw}"]))["v"]
    except Exception:  # noqa: BLE001 - any parse failure is the user's value
        raise ConfigError(key, raw, f"a value for {key} (see conf/pilot_fit.yaml)") from None


# -- the policy's effect sizes ----------------------------------------------------------------------
def effect_ranges(policy: str) -> dict[str, tuple[float, float]]:
    """{parameter: (low, high)} of the keys of conf/policy/<policy>.yaml with an "(assumed) range a-b"."""
    from experiments.config import group_file

    prefix = f"{policy}."
    return {key.removeprefix(prefix): span for key, span in ranges_in_yaml(group_file("policy", policy)).items()
            if key.startswith(prefix)}


def chosen_parameters(s: FitSettings) -> dict[str, tuple[float, float]]:
    """The parameters to fit and their ranges; ConfigError for a name that is not an effect size of the policy."""
    ranges = effect_ranges(s.policy)
    if not ranges:
        raise ConfigError("policy", s.policy, "a policy whose conf/policy/ file documents effect sizes with an "
                          "'(assumed) range a-b' comment (none has any here)")
    names = s.fit if s.fit is not None else list(ranges)
    for name in names:
        if name not in ranges:
            raise ConfigError("fit", name, f"effect sizes of {s.policy} (keys of conf/policy/{s.policy}.yaml with a "
                              "documented range): " + ", ".join(ranges))
    if len(set(names)) > MAX_FIT or len(set(names)) != len(names):
        raise ConfigError("fit", names, f"one or two distinct effect sizes of {s.policy} (one observed difference "
                          "pins down one number), e.g. fit=[" + next(iter(ranges)) + "]; they are: "
                          + ", ".join(ranges))
    clash = [name for name in names if name in s.policy_overrides]
    if clash:
        raise ConfigError(f"policy.{s.policy}.{clash[0]}", s.policy_overrides[clash[0]],
                          "a parameter that is not fitted (fit= searches its range)")
    return {name: ranges[name] for name in names}


# -- the pilot's export -----------------------------------------------------------------------------
def read_pilot(s: FitSettings, market_sides: list[str], side: str) -> tuple[pd.DataFrame, int, float]:
    """The metric side's rows of the export, in the engine's names (treated: bool), the pilot's days and the
    treated share; ConfigError (key ``pilot``) for anything an estimate cannot be made from."""
    path = s.pilot
    if not path.is_file():
        raise ConfigError("pilot", str(path), "an existing Parquet or CSV file: the pilot's per-agent export")
    try:
        table = pd.read_csv(path) if path.suffix.lower() in (".csv", ".txt") else pd.read_parquet(path)
    except Exception as error:  # noqa: BLE001 - an unreadable file is the user's
        raise ConfigError("pilot", str(path), f"a readable Parquet or CSV file ({type(error).__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else ''})") from None
    col = s.columns
    metric = "churn" if s.metric == "auto" else s.metric
    needed = ["side", "arm", "join_day", "churn_day"] + ([metric] if metric != "churn" else [])
    if s.design in pilot_mod.SIDE_DESIGNS:
        needed.append("id")
    else:
        needed.append("unit")
    missing = [name for name in needed if col[name] not in table.columns]
    if missing:
        raise ConfigError("pilot", str(path), "a file with the columns " + ", ".join(col[n] for n in needed)
                          + f"; missing: {', '.join(col[n] for n in missing)} (map other names with "
                          + " ".join(f"columns.{n}=THEIRS" for n in missing) + f"); it has {', '.join(table.columns)}")
    if col["design"] in table.columns:
        table = table[table[col["design"]].astype(str) == s.design]
        if table.empty:
            raise ConfigError("design", s.design, f"a design present in {path.name}'s {col['design']} column")
    sides = set(table[col["side"]].astype(str))
    unknown = sorted(sides - set(market_sides))
    if unknown:
        raise ConfigError("pilot", str(path), f"rows whose {col['side']} is a side of the market ("
                          + ", ".join(market_sides) + f"); found {', '.join(unknown)}")
    rows = table[table[col["side"]].astype(str) == side]
    arms = set(rows[col["arm"]].astype(str))
    if not arms <= {pilot_mod.TREATMENT, pilot_mod.CONTROL}:
        raise ConfigError("pilot", str(path), f"an {col['arm']} column holding {pilot_mod.TREATMENT} or "
                          f"{pilot_mod.CONTROL}; found " + ", ".join(sorted(arms - {pilot_mod.TREATMENT,
                                                                                    pilot_mod.CONTROL})))
    if arms != {pilot_mod.TREATMENT, pilot_mod.CONTROL}:
        raise ConfigError("pilot", str(path), f"both arms among the {side} ({pilot_mod.TREATMENT} and "
                          f"{pilot_mod.CONTROL}); it has {', '.join(sorted(arms)) or 'no row of ' + side} only")
    try:
        agents = pd.DataFrame({
            "unit": rows[col["unit"] if col["unit"] in rows.columns else col["id"]].to_numpy(),
            "treated": (rows[col["arm"]].astype(str) == pilot_mod.TREATMENT).to_numpy(),
            "join_day": rows[col["join_day"]].to_numpy(np.int64),
            "churn_day": rows[col["churn_day"]].fillna(-1).to_numpy(np.int64),
            "orders": rows[col["orders"]].to_numpy(np.float64) if col["orders"] in rows.columns else 0.0,
            "margin": rows[col["margin"]].to_numpy(np.float64) if col["margin"] in rows.columns else 0.0})
    except (ValueError, TypeError) as error:
        raise ConfigError("pilot", str(path), f"whole-number days and numeric orders and margin ({error})") from None
    if (agents["join_day"] < 0).any():
        raise ConfigError("pilot", str(path), f"{col['join_day']} >= 0 (days since the pilot's start)")
    days = s.days or int(max(agents["join_day"].max(), agents["churn_day"].max())) + 1
    share = s.share if s.share is not None else _treated_share(agents)
    return agents, days, share


def _treated_share(agents: pd.DataFrame) -> float:
    """The share of randomised units in the treated arm."""
    units = agents.groupby("unit")["treated"].first()
    return float(units.mean())


def observe(agents: pd.DataFrame, metric: str, days: int, s: FitSettings, path: Path) -> dict:
    """The analyst's estimate from the export: treated minus control, per agent-month, with its interval."""
    units = pilot_mod.agent_units(agents, metric, days)
    counts = units["treatment"].value_counts()
    few = {arm: int(counts.get(arm, 0)) for arm in (pilot_mod.TREATMENT, pilot_mod.CONTROL)}
    if min(few.values()) < s.min_units_per_arm:
        raise ConfigError("pilot", str(path), f"at least min_units_per_arm={s.min_units_per_arm} randomised units "
                          f"alive in the pilot in each arm to estimate anything; it has {few[pilot_mod.TREATMENT]} "
                          f"treated and {few[pilot_mod.CONTROL]} control")
    return {**pilot_mod.analyse(units, s.confidence), "units_treated": few[pilot_mod.TREATMENT],
            "units_control": few[pilot_mod.CONTROL], "agents": int(len(agents))}


# -- the candidates ---------------------------------------------------------------------------------
def candidate_grid(params: dict[str, tuple[float, float]], s: FitSettings) -> list[dict[str, float]]:
    """Every candidate: one value per parameter, evenly spaced on its range."""
    per_axis = s.grid if len(params) == 1 else s.grid_2d
    axes = [np.linspace(low, high, per_axis) for low, high in params.values()]
    return [dict(zip(params, map(float, values))) for values in itertools.product(*axes)]


def simulate(s: FitSettings, candidates: list[dict], side: str, metric: str, days: int, share: float) -> np.ndarray:
    """Each candidate's pilot estimate (per agent-month), averaged over the same ``replicates`` seeds."""
    design = Design(s.design, share, s.zones_per_axis, s.period_days, days)
    tasks = []
    for i, values in enumerate(candidates):
        cfg = policy_config(s, values, [f"days={days}"])
        for r in range(s.replicates):
            seed = seed_for(int(cfg.seed), 0, r, crn=True)
            tasks.append(pilot_mod.Task(f"candidate{i}", r, seed, _with_seed(cfg, seed), design, side))
    results = execute(tasks, s.jobs, s.progress, "pilot fit", fn=pilot_mod._safe_run)
    failed = [r for r in results if "error" in r]
    if failed:
        raise RuntimeError(f"{len(failed)} run(s) failed; the first: {failed[0]['error']}\n{failed[0]['traceback']}")
    estimates = np.array([pilot_mod.analyse(pilot_mod.agent_units(r["agents"][side], metric, days),
                                            s.confidence)["estimate"] for r in results])
    return estimates.reshape(len(candidates), s.replicates).mean(axis=1)


def policy_config(s: FitSettings, values: dict, extra: list[str] = ()):
    """The validated config of the market with the policy as the pilot ran it and ``values`` of fitted ones."""
    from experiments.config import compose_config, to_typed

    params = [f"policy.{s.policy}.{k}={v!r}" for k, v in {**s.policy_overrides, **values}.items()]
    return to_typed(compose_config([*s.model, *extra, f"policy={s.policy}", *params]))


def fit_one(values: np.ndarray, simulated: np.ndarray, observed: dict, points: int = 1001) -> dict:
    """One parameter: the value whose simulated estimate (straight lines between grid values) is nearest the
    observed one, and the values whose simulated estimate lies within the observed interval."""
    fine = np.linspace(values[0], values[-1], points)
    curve = np.interp(fine, values, simulated)
    best = float(fine[np.argmin(np.abs(curve - observed["estimate"]))])
    inside = fine[(curve >= observed["ci_low"]) & (curve <= observed["ci_high"])]
    low, high = (float(inside.min()), float(inside.max())) if inside.size else (best, best)
    return {"value": best, "low": low, "high": high, "reproduced": bool(inside.size)}


def fit_grid(candidates: list[dict], simulated: np.ndarray, observed: dict) -> dict:
    """Two parameters: the candidate nearest the observed estimate; each parameter's interval spans the
    candidates whose simulated estimate lies within the observed interval."""
    best = candidates[int(np.argmin(np.abs(simulated - observed["estimate"])))]
    inside = [c for c, m in zip(candidates, simulated) if observed["ci_low"] <= m <= observed["ci_high"]]
    out = {}
    for name in best:
        held = [c[name] for c in inside] or [best[name]]
        out[name] = {"value": best[name], "low": min(held), "high": max(held), "reproduced": bool(inside)}
    return out


# -- the command ------------------------------------------------------------------------------------
def fit_pilot(s: FitSettings) -> tuple[Path, dict]:
    """Do the whole command; return the output folder and pilot_fit.json's content."""
    from policies import build_policies

    out = Path(str(s.out)) if s.out is not None else \
        Path("calibrations") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
    check_output_dir(out, "out", create=False)
    params = chosen_parameters(s)
    base = policy_config(s, {})
    market = base.market
    policies = build_policies(base.policy, market, base.cs)
    metric = "churn" if s.metric == "auto" else s.metric
    why = pilot_mod.applicable(s.design, market, policies, metric)
    if why is not None:
        raise ConfigError("design", s.design, f"a design that can pilot {s.policy} in market {market.name} ({why})")
    side = pilot_mod.metric_side(s.side, market, policies)
    if s.design in pilot_mod.SIDE_DESIGNS and s.design != side:
        raise ConfigError("design", s.design, f"the side the metric is measured on ({side}; side= chooses it), "
                          "for a pilot that randomised one side")
    agents, days, share = read_pilot(s, list(market.sides), side)
    observed = observe(agents, metric, days, s, s.pilot)
    candidates = candidate_grid(params, s)
    simulated = simulate(s, candidates, side, metric, days, share)
    if len(params) == 1:
        name = next(iter(params))
        fitted = {name: fit_one(np.array([c[name] for c in candidates]), simulated, observed)}
    else:
        fitted = fit_grid(candidates, simulated, observed)
    notes = []
    if not all(p["reproduced"] for p in fitted.values()):
        notes.append(f"No candidate on the documented range reproduces the observed difference within its "
                     f"{s.confidence:.0%} interval: the value given is the nearest, on the range's edge or between; "
                     f"the pilot may have been run differently (design, share, days, market) or the policy's effect "
                     f"may work through a channel the model lacks.")
    arm_file = Path("arm") / f"{s.name}.yaml"
    arm_values = {**s.policy_overrides, **{k: round(v["value"], 6) for k, v in fitted.items()}}
    inline = f"{s.policy}(" + ",".join(f"{k}={_arm_value(v)}" for k, v in arm_values.items()) + ")"
    model = "".join(f" {override}" for override in s.model)   # the pilot's market, for compare too
    result = {
        "parameters": {k: {"value": v["value"], "low": v["low"], "high": v["high"], "range": list(params[k])}
                       for k, v in fitted.items()},
        "observed": {**observed, "metric": metric, "side": side, "unit": pilot_mod.p_unit(metric),
                     "confidence": s.confidence, "pilot": str(s.pilot)},
        "design": s.design, "policy": s.policy, "market": market.name, "model_overrides": s.model,
        "days": days, "share": share, "replicates": s.replicates,
        "candidates": [{**c, "estimate": float(m)} for c, m in zip(candidates, simulated)],
        "arm": {"name": s.name, "file": str(arm_file)}, "notes": notes}
    final = check_output_dir(out, "out")
    partial = final / ".partial"   # files are written here, then moved, pilot_fit.json last
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "arm").mkdir(parents=True)
    (partial / arm_file).write_text(arm_yaml(s, arm_values, fitted, observed, metric, side))
    result["usage"] = (f"TWOSIDED_CONFIG_DIR={final} twosided compare arms=[{s.name}]{model}\n"
                       f"(or copy {final / arm_file} into your ${USER_CONFIG_ENV}/arm/; or, without the file: "
                       f"twosided compare 'arms=[{inline}]'{model})")
    (partial / "pilot_fit.json").write_text(json.dumps(json_safe(result), indent=2, allow_nan=False))
    for path in sorted(partial.iterdir(), key=lambda p: p.name == "pilot_fit.json"):
        target = final / path.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(path, target)
    partial.rmdir()
    return final, result


def _arm_value(value) -> str:
    """A value in the arm syntax of experiments/arms.py (lists as [a,b])."""
    return "[" + ",".join(map(str, value)) + "]" if isinstance(value, list) else str(value)


def arm_yaml(s: FitSettings, arm_values: dict, fitted: dict, observed: dict, metric: str, side: str) -> str:
    """A named arm (conf/arm/ layout): the policy as the pilot ran it, with the fitted values."""
    from omegaconf import OmegaConf

    params = OmegaConf.create({})
    for key, value in arm_values.items():
        OmegaConf.update(params, key, value)
    params = OmegaConf.to_container(params)
    body = {"description": f"{s.policy} with effect sizes fitted to the pilot {s.pilot.name}",
            "policies": {s.policy: params}}
    head = [f"# Fitted by `twosided calibrate pilot={s.pilot}` ({s.design} design) on {datetime.now():%Y-%m-%d %H:%M}:",
            f"# the simulated pilot reproduces the observed {metric} difference of the {side}, "
            f"{observed['estimate']:.4g} {pilot_mod.p_unit(metric)}",
            f"# ({s.confidence:.0%} interval {observed['ci_low']:.4g} to {observed['ci_high']:.4g}). Intervals: "
            + "; ".join(f"{k} {v['low']:.4g}-{v['high']:.4g}" for k, v in fitted.items()) + ".",
            f"# Use: put this file's folder's parent in ${USER_CONFIG_ENV}, then twosided compare arms=[{s.name}]."]
    return "\n".join(head) + "\n" + OmegaConf.to_yaml(OmegaConf.create(body))


def print_summary(out: Path, result: dict) -> None:
    """The fitted values, the observed difference and how to use the arm, on stdout."""
    o = result["observed"]
    print(f"Observed ({result['days']}-day {result['design']} pilot of {result['policy']}, {o['side']} {o['metric']}): "
          f"{o['estimate']:.4g} {o['unit']} ({o['confidence']:.0%} interval {o['ci_low']:.4g} to {o['ci_high']:.4g}; "
          f"{o['units_treated']} treated and {o['units_control']} control units)")
    for name, p in result["parameters"].items():
        print(f"  {name:20} {p['value']:.4g}  (interval {p['low']:.4g} to {p['high']:.4g}; range "
              f"{p['range'][0]:g}-{p['range'][1]:g})")
    for note in result["notes"]:
        print(f"note: {note}")
    print(f"\nOutput folder: {out}\nTo forecast the rollout with the fitted policy:\n  "
          + result["usage"].replace("\n", "\n  "))


def main(args: list[str]) -> int:
    """Entry of `twosided calibrate pilot=PATH ...`; ConfigError (exit 2) on bad input."""
    pilot_mod.logging_quiet()
    settings = parse_args(args)
    try:
        out, result = fit_pilot(settings)
    except RuntimeError as error:
        print(f"twosided calibrate pilot: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        raise output_fault(error, settings.out or "the calibration folder") from None
    print_summary(out, result)
    return 0

