"""`twosided optimize`: search a policy's parameters with Optuna.

Settings live in conf/optimize/<name>.yaml (``config=NAME``; ``key=value``
overrides any setting). Each trial turns its parameters into config
overrides, runs them with every seed of ``seeds`` (the same seeds for every
trial: common random numbers, so trials differ by their parameters, not by
their luck) and scores the mean of ``metric``. With a ``constraint`` (e.g.
``platform.cs_cost`` at most a budget) the best trial is the best *feasible*
one, and the TPE sampler is told the constraint.

The study lives in ``storage`` (default: SQLite ``<out_dir>/study.db``):
running the same command again resumes it, re-runs trials a kill
interrupted and adds trials until ``n_trials`` have finished.

Writes into ``out_dir``: ``trials.csv``, ``best.yaml`` (the best parameters,
the overrides to paste into `twosided run`, its score per seed) and
``search.png`` (score per trial with the best so far, and score against each
parameter).
"""
from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from experiments.checks import check_output_dir, output_fault
from experiments.sensitivity import evaluate_points
from experiments.study_settings import SIM_MODEL, check_optimize_settings, load_settings
from sim.config import ConfigError

INTERRUPTED = "interrupted"


def suggest(trial, space) -> dict:
    """The trial's parameters, from the ``space`` list of the settings."""
    params = {}
    for spec in space:
        name, kind = spec["name"], spec.get("type", "float")
        if kind == "int":
            params[name] = trial.suggest_int(name, int(spec["low"]), int(spec["high"]),
                                             step=int(spec.get("step", 1)), log=bool(spec.get("log", False)))
        elif kind == "float":
            step = spec.get("step")
            params[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]),
                                               step=None if step is None else float(step),
                                               log=bool(spec.get("log", False)))
        elif kind == "categorical":
            params[name] = trial.suggest_categorical(name, list(spec["choices"]))
        else:
            raise ConfigError(f"space: {name}.type", kind, "int, float or categorical")
    return params


def _violation(values: dict, constraint) -> float:
    """<= 0 when feasible: metric - max (and/or min - metric)."""
    if not constraint or constraint.get("metric") is None:
        return 0.0
    value = values[constraint["metric"]]
    parts = []
    if constraint.get("max") is not None:
        parts.append(value - float(constraint["max"]))
    if constraint.get("min") is not None:
        parts.append(float(constraint["min"]) - value)
    return max(parts) if parts else 0.0


def open_study(settings: DictConfig, out_dir: Path):
    import optuna

    storage = settings.get("storage") or f"sqlite:///{(out_dir / 'study.db').resolve()}"
    sampler_name = settings.get("sampler", "tpe")
    seed = int(settings.get("sampler_seed", 0))
    if sampler_name == "tpe":
        sampler = optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=int(settings.get("n_startup_trials", 8)))
    elif sampler_name == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        raise ConfigError("sampler", sampler_name, "tpe or random")
    study = optuna.create_study(study_name=settings.get("study_name") or settings.name, storage=storage,
                                sampler=sampler, direction=settings.get("direction", "maximize"),
                                load_if_exists=True)
    fingerprint = OmegaConf.to_yaml(OmegaConf.create({
        "space": settings.space, "metric": settings.metric, "seeds": settings.seeds,
        "base": settings.base, "constraint": settings.get("constraint"),
        "model": settings.get("model", SIM_MODEL)}))
    known = study.user_attrs.get("fingerprint")
    if known is None:
        study.set_user_attr("fingerprint", fingerprint)
    elif known != fingerprint:
        raise ConfigError("out_dir", str(out_dir), f"another out_dir or study_name: the study in {storage} was run "
                          "with other settings (space, metric, seeds, base, constraint or model)")
    return study, storage


def recover_interrupted(study) -> int:
    """Trials left RUNNING by a killed optimiser: mark them failed and queue their parameters again."""
    from optuna.trial import TrialState

    count = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        if trial.params:
            study.enqueue_trial(trial.params)
        count += 1
    return count


def finished_trials(study) -> list:
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False)
            if t.state == TrialState.COMPLETE
            or (t.state == TrialState.FAIL and not t.user_attrs.get(INTERRUPTED))]


def best_trial(study, direction: str):
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.user_attrs.get("violation", 0.0) <= 0 and t.value is not None and math.isfinite(t.value)]
    if not done:
        return None
    pick = max if direction == "maximize" else min
    return pick(done, key=lambda t: (t.value, -t.number) if direction == "maximize" else (t.value, t.number))


def run_optimize(settings: DictConfig) -> dict:
    """Run (or resume) the study; write trials.csv, best.yaml, search.png; return the best."""
    import optuna
    from joblib import Parallel

    check_optimize_settings(settings)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out_dir = check_output_dir(settings.get("out_dir") or f"optimize/{settings.name}", "out_dir")
    OmegaConf.save(settings, out_dir / "settings.yaml")
    study, storage = open_study(settings, out_dir)
    recovered = recover_interrupted(study)
    direction = settings.get("direction", "maximize")
    seeds = [int(s) for s in settings.seeds]
    base = [str(b) for b in settings.get("base") or []]
    model = str(settings.get("model", SIM_MODEL))
    metric = str(settings.metric)
    constraint = OmegaConf.to_container(settings.constraint) if settings.get("constraint") else None
    n_jobs = int(settings.get("n_jobs", 1))
    remaining = int(settings.n_trials) - len(finished_trials(study))
    print(f"optimize {settings.name}: {metric} ({direction}) over {[s['name'] for s in settings.space]}; "
          f"{len(finished_trials(study))} trials done, {max(remaining, 0)} to go, seeds {seeds} "
          f"(common to all trials); study {storage}"
          + (f"; {recovered} interrupted trial(s) queued again" if recovered else ""), flush=True)

    def objective(trial, parallel):
        params = suggest(trial, settings.space)
        started = time.time()
        result = evaluate_points([params], model, base, seeds, n_jobs, parallel=parallel)[0]
        if "error" in result:
            trial.set_user_attr("error", result["error"])
            raise RuntimeError(result["error"])
        per_seed = [v[metric] for v in result["_values"]]
        trial.set_user_attr("seeds", seeds)
        trial.set_user_attr("per_seed", per_seed)
        trial.set_user_attr("sd", float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0)
        trial.set_user_attr("elapsed_s", round(time.time() - started, 3))
        if constraint and constraint.get("metric"):
            trial.set_user_attr("constraint_value", result[constraint["metric"]])
        trial.set_user_attr("violation", _violation(result, constraint))
        if constraint and constraint.get("metric"):  # the sampler then prefers feasible regions
            trial.set_constraint(constraint["metric"], trial.user_attrs["violation"])
        value = result[metric]
        best = best_trial(study, direction)
        print(f"trial {trial.number}: {metric} = {value:,.4g} "
              f"({', '.join(f'{k}={v}' for k, v in params.items())})"
              + ("" if trial.user_attrs["violation"] <= 0 else " [infeasible]")
              + (f"; best so far {best.value:,.4g} (trial {best.number})" if best else ""), flush=True)
        return value

    if remaining > 0:
        with Parallel(n_jobs=n_jobs) as parallel:
            study.optimize(lambda t: objective(t, parallel if n_jobs != 1 else None),
                           n_trials=remaining, catch=(Exception,))
    return write_outputs(study, settings, out_dir, direction, base, seeds, metric, constraint)


def write_outputs(study, settings, out_dir, direction, base, seeds, metric, constraint) -> dict:
    frame = study.trials_dataframe(attrs=("number", "value", "params", "state", "user_attrs",
                                          "datetime_start", "duration"))
    frame.to_csv(out_dir / "trials.csv", index=False)
    best = best_trial(study, direction)
    summary = {"metric": metric, "direction": direction, "seeds": seeds, "base": base,
               "constraint": constraint, "n_trials": len(study.trials)}
    if best is None:
        summary["best"] = None
        print("no feasible completed trial yet")
    else:
        overrides = [*base, *[f"{k}={v}" for k, v in best.params.items()]]
        summary["best"] = {"trial": best.number, "value": float(best.value), "params": dict(best.params),
                           "per_seed": best.user_attrs.get("per_seed"), "sd": best.user_attrs.get("sd"),
                           "constraint_value": best.user_attrs.get("constraint_value"),
                           "overrides": overrides,
                           "command": "twosided run " + " ".join(overrides) + f" seed={seeds[0]}"}
        print(f"best: trial {best.number}, {metric} = {best.value:,.4g}: {' '.join(overrides)}")
    plot_search(study, out_dir / "search.png", metric, direction, [s["name"] for s in settings.space])
    tmp = out_dir / f".best.yaml.tmp{os.getpid()}"  # last, by a rename: best.yaml marks a complete folder
    OmegaConf.save(OmegaConf.create(summary), tmp)
    os.replace(tmp, out_dir / "best.yaml")
    print(f"-> {out_dir}/trials.csv, best.yaml, search.png")
    return summary


def plot_search(study, path: Path, metric: str, direction: str, names: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    fig, axes = plt.subplots(1, 1 + len(names), figsize=(4.2 * (1 + len(names)), 3.6), squeeze=False)
    ax = axes[0][0]
    numbers = np.array([t.number for t in done])
    values = np.array([t.value for t in done], dtype=float)
    feasible = np.array([t.user_attrs.get("violation", 0.0) <= 0 for t in done], dtype=bool)
    if len(done):
        ax.scatter(numbers[feasible], values[feasible], s=18, label="trial")
        if (~feasible).any():
            ax.scatter(numbers[~feasible], values[~feasible], s=18, marker="x", color="grey", label="infeasible")
        best, run = [], None
        for v, ok in zip(values, feasible):
            if ok:
                run = v if run is None else (max(run, v) if direction == "maximize" else min(run, v))
            best.append(np.nan if run is None else run)
        ax.step(numbers, best, where="post", color="C3", label="best so far")
        ax.legend(fontsize=8)
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{metric} (mean over seeds)")
    ax.set_title("search history")
    for ax, name in zip(axes[0][1:], names):
        xs = [t.params.get(name) for t in done]
        ax.scatter([str(x) if isinstance(x, str) else x for x in xs], values, c=numbers, cmap="viridis", s=18)
        ax.set_xlabel(name)
        ax.set_ylabel(metric)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


USAGE = """usage: twosided optimize [config=NAME] [key=value ...]

Search policy parameters with Optuna for the best `metric` (default: the
platform's net contribution), optionally under a constraint (best LTV under
a CS budget: config=ltv_under_cs_budget). Every trial runs the same seeds.
Settings: conf/optimize/NAME.yaml (default: default). Running the same
command again resumes the study in out_dir/study.db. Examples:
  twosided optimize n_trials=30 n_jobs=2
  twosided optimize config=ltv_under_cs_budget constraint.max=20000
Writes out_dir/trials.csv, best.yaml, search.png (see docs/sweeps.md)."""


def main(args: list[str]) -> int:
    """Entry of `twosided optimize ARGS`: checked settings, then the study; return the exit code."""
    if args and args[0] == "help":
        print(USAGE)
        return 0
    settings = load_settings("optimize", args)
    try:
        run_optimize(settings)
    except OSError as error:
        raise output_fault(error, settings.get("out_dir") or "the optimize folder") from None
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
