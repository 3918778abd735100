"""`twosided sensitivity`: global sensitivity analysis (SALib: Sobol or Morris).

Settings live in conf/sensitivity/<name>.yaml (``config=NAME`` picks one,
``key=value`` overrides any setting). Each sample point becomes the config
overrides ``name=value`` of the parameters, added to ``base``; every point
is run with the same ``seeds`` (common random numbers) and the output is
the mean over them. The runs go in parallel (joblib, ``n_jobs``).

Writes into ``out_dir``: ``samples.parquet`` (each point, its parameters and
all summary metrics), ``indices.csv`` (the indices with confidence
intervals, per output), ``indices.png`` (a bar chart) and
``settings.yaml``.

The evaluation machinery (:func:`evaluate_points`) is shared with
`twosided optimize`; ``model: NAME`` picks the simulator (``twosided``) or an
analytic function whose answer is known from the registry in
experiments/study_settings.py (the tests use them). Every setting is checked
before the first run (experiments/study_settings.py).
"""
from __future__ import annotations

import os
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, ListConfig, OmegaConf

from experiments.checks import check_output_dir, output_fault
from experiments.study_settings import SIM_MODEL, check_sensitivity_settings, get_model, load_settings

# ---------------------------------------------------------------- settings


def format_value(spec, value):
    kind = spec.get("type", "float")
    if kind == "int":
        return int(round(float(value)))
    if kind == "categorical":
        return value
    return float(value)


# ---------------------------------------------------------------- evaluation


def flatten_summary(summary: dict, prefix: str = "") -> dict:
    """{"buyers": {"ltv": 3.2}} -> {"buyers.ltv": 3.2}, numbers only (as floats)."""
    out = {}
    for key, value in summary.items():
        if isinstance(value, dict):
            out.update(flatten_summary(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def run_one(model: str, base: list[str], params: dict, seed: int | None) -> dict:
    """One evaluation of the registered ``model``: flattened summary metrics (or ``{"error": ...}``)."""
    try:
        function = get_model(model).function
        if function is None:
            from experiments.config import load_config
            from sim import Marketplace

            overrides = [*base, *[f"{k}={v}" for k, v in params.items()]]
            if seed is not None:
                overrides.append(f"seed={seed}")
            return flatten_summary(Marketplace(load_config(overrides)).run().summary)
        kwargs = dict(params)
        if seed is not None:
            kwargs["seed"] = seed
        value = function(**kwargs)
        return flatten_summary(value) if isinstance(value, dict) else {"y": float(value)}
    except Exception as error:  # noqa: BLE001 - a failed point is recorded, not fatal
        return {"error": f"{type(error).__name__}: {error}"}


def evaluate_points(points: list[dict], model: str = SIM_MODEL, base=(), seeds=(None,),
                    n_jobs: int = 1, parallel=None) -> list[dict]:
    """Evaluate each point (a dict of parameter values) with every seed; return the
    mean of each metric over the seeds per point, plus ``_values`` (per seed) and
    ``error`` when a replicate failed. Same seeds for every point: common random numbers."""
    from joblib import Parallel, delayed

    seeds = list(seeds) or [None]
    tasks = [(i, s) for i in range(len(points)) for s in seeds]
    calls = (delayed(run_one)(model, list(base), points[i], s) for i, s in tasks)
    if parallel is not None:
        raw = parallel(calls)
    elif n_jobs == 1:
        raw = [run_one(model, list(base), points[i], s) for i, s in tasks]
    else:
        raw = Parallel(n_jobs=n_jobs)(calls)
    per_point: list[list[dict]] = [[] for _ in points]
    for (i, _), out in zip(tasks, raw):
        per_point[i].append(out)
    results = []
    for outs in per_point:
        errors = [o["error"] for o in outs if "error" in o]
        if errors:
            results.append({"error": errors[0], "_values": outs})
            continue
        keys = outs[0].keys()
        results.append({**{k: float(np.mean([o[k] for o in outs])) for k in keys}, "_values": outs})
    return results


# ---------------------------------------------------------------- analysis


def problem_of(parameters) -> dict:
    return {"num_vars": len(parameters), "names": [p["name"] for p in parameters],
            "bounds": [[float(p["low"]), float(p["high"])] for p in parameters]}


def sample(settings, problem) -> np.ndarray:
    method, n, seed = settings.method, int(settings.samples), int(settings.get("sample_seed", 0))
    if method == "sobol":
        from SALib.sample import sobol

        return sobol.sample(problem, n, calc_second_order=False, scramble=True, seed=seed)
    if method == "morris":
        from SALib.sample import morris

        return morris.sample(problem, n, num_levels=int(settings.get("morris_levels", 4)), seed=seed)
    raise ValueError(f"method: {method!r}; allowed: sobol, morris")


def analyse(settings, problem, X: np.ndarray, Y: np.ndarray, output: str) -> pd.DataFrame:
    conf = float(settings.get("conf_level", 0.95))
    seed = int(settings.get("sample_seed", 0))
    if settings.method == "sobol":
        from SALib.analyze import sobol

        res = sobol.analyze(problem, Y, calc_second_order=False, conf_level=conf, seed=seed,
                            print_to_console=False)
        table = pd.DataFrame({"parameter": problem["names"], "S1": res["S1"], "S1_conf": res["S1_conf"],
                              "ST": res["ST"], "ST_conf": res["ST_conf"]})
    else:
        from SALib.analyze import morris

        res = morris.analyze(problem, X, Y, conf_level=conf, seed=seed, print_to_console=False,
                             num_levels=int(settings.get("morris_levels", 4)))
        table = pd.DataFrame({"parameter": problem["names"], "mu": res["mu"], "mu_star": res["mu_star"],
                              "mu_star_conf": res["mu_star_conf"], "sigma": res["sigma"]})
    table.insert(0, "output", output)
    table.insert(1, "method", settings.method)
    return table


def bar_chart(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outputs = list(dict.fromkeys(table["output"]))
    fig, axes = plt.subplots(1, len(outputs), figsize=(1.2 + 5 * len(outputs), 3.8), squeeze=False)
    for ax, output in zip(axes[0], outputs):
        part = table[table["output"] == output]
        x = np.arange(len(part))
        if "S1" in part:
            ax.bar(x - 0.2, part["S1"], 0.4, yerr=part["S1_conf"], capsize=3, label="first order S1")
            ax.bar(x + 0.2, part["ST"], 0.4, yerr=part["ST_conf"], capsize=3, label="total ST")
            ax.set_ylabel("Sobol index")
        else:
            ax.bar(x, part["mu_star"], 0.6, yerr=part["mu_star_conf"], capsize=3, label="mu*")
            ax.set_ylabel("Morris mu* (mean |elementary effect|)")
        ax.set_xticks(x, [p.split(".", 1)[-1] if len(p) > 22 else p for p in part["parameter"]],
                      rotation=25, ha="right", fontsize=8)
        ax.set_title(output)
        ax.axhline(0, color="black", lw=0.6)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_sensitivity(settings: DictConfig) -> pd.DataFrame:
    """Sample, evaluate in parallel, analyse; write the files; return the indices table."""
    check_sensitivity_settings(settings)
    parameters = [dict(p) for p in settings.parameters]
    outputs = settings.output if isinstance(settings.output, (list, ListConfig)) else [settings.output]
    outputs = [str(o) for o in outputs]
    out_dir = check_output_dir(settings.get("out_dir") or
                               f"sensitivity/{settings.name}_{datetime.now():%Y-%m-%d_%H-%M-%S_%f}", "out_dir")
    OmegaConf.save(settings, out_dir / "settings.yaml")
    problem = problem_of(parameters)
    X = sample(settings, problem)
    points = [{p["name"]: format_value(p, v) for p, v in zip(parameters, row)} for row in X]
    seeds = list(settings.get("seeds") or [None])
    base = list(settings.get("base") or [])
    model = str(settings.get("model", SIM_MODEL))
    started = time.time()
    print(f"sensitivity ({settings.method}): {len(points)} points x {len(seeds)} seed(s) = "
          f"{len(points) * len(seeds)} runs, n_jobs={settings.get('n_jobs', 1)}", flush=True)
    results = evaluate_points(points, model, base, seeds, int(settings.get("n_jobs", 1)))
    elapsed = time.time() - started
    frame = pd.DataFrame([{**{f"param.{k}": v for k, v in pt.items()},
                           **{k: v for k, v in r.items() if k != "_values"}}
                          for pt, r in zip(points, results)])
    _write_parquet(frame, out_dir / "samples.parquet")
    failed = [r["error"] for r in results if "error" in r]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(points)} points failed (see {out_dir / 'samples.parquet'}); "
                           f"first: {failed[0]}")
    tables = []
    for output in outputs:
        Y = np.array([r[output] for r in results], dtype=float)
        tables.append(analyse(settings, problem, X, Y, output))
    table = pd.concat(tables, ignore_index=True)
    bar_chart(table, out_dir / "indices.png")
    tmp = out_dir / f".indices.csv.tmp{os.getpid()}"  # last, by a rename: indices.csv marks a complete folder
    table.to_csv(tmp, index=False)
    os.replace(tmp, out_dir / "indices.csv")
    print(f"{len(points) * len(seeds)} runs in {elapsed:.1f} s")
    with pd.option_context("display.width", 140, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"-> {out_dir}/indices.csv, indices.png, samples.parquet")
    return table


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


USAGE = """usage: twosided sensitivity [config=NAME] [key=value ...]

Global sensitivity analysis (SALib) of one or more summary metrics to named
config parameters. Settings: conf/sensitivity/NAME.yaml (default: default);
any setting can be overridden, e.g.
  twosided sensitivity method=morris samples=10 output=drivers.monthly_churn
  twosided sensitivity config=delivery_churn n_jobs=2 out_dir=sa/churn
Writes out_dir/indices.csv, indices.png, samples.parquet (see docs/sweeps.md)."""


def main(args: list[str]) -> int:
    """Entry of `twosided sensitivity ARGS`: checked settings, then the analysis; return the exit code."""
    if args and args[0] == "help":
        print(USAGE)
        return 0
    settings = load_settings("sensitivity", args)
    try:
        run_sensitivity(settings)
    except RuntimeError as error:  # points that failed to run: recorded in samples.parquet
        print(f"twosided sensitivity: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        raise output_fault(error, settings.get("out_dir") or "the sensitivity folder") from None
    return 0

