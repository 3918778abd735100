"""`twosided run`: one simulation (or a Hydra multirun) -> run folder(s).

Each job validates its config, simulates, and writes its folder: a failed
job records ``status.json`` with the error instead of stopping a sweep.

Folder protocol (see docs/sweeps.md): a job first writes
``status.json = {"status": "running", ...}``, saves its results into
``<job_dir>/.partial/`` and moves them into the job folder, and only then
replaces ``status.json`` with ``ok`` (or ``failed`` and the error), by a
rename. So "complete" means status.json says ok, and a killed job never looks
complete. In a multirun a job whose folder is already complete with the same
overrides returns at once: running the same sweep into the same
``hydra.sweep.dir`` resumes it.
"""
from __future__ import annotations

import copy
import os
import shutil
import socket
import sys
import time
import traceback
import warnings
from datetime import datetime
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from experiments.checks import output_fault
from experiments.collect import is_complete, progress_line, write_status
from experiments.config import CONF_DIR, quoted, register_schema, to_typed
from experiments.report_text import summary_table
from sim import ConfigError, Marketplace


def run_job(cfg: DictConfig, run_dir: Path) -> dict:
    """Validate, simulate and save one run into ``run_dir``; return its summary."""
    typed = to_typed(cfg)
    result = Marketplace(typed).run()
    result.config = OmegaConf.to_container(cfg, resolve=True)
    run_dir = Path(run_dir)
    partial = run_dir / ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    result.save(partial)  # a kill here leaves only .partial/, never half a run folder
    for path in sorted(partial.iterdir()):
        os.replace(path, run_dir / path.name)
    partial.rmdir()
    return result.summary


def _task(cfg: DictConfig) -> None:
    """One job (a single run, or a job of a multirun): validate, simulate, write the run folder and status."""
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = list(hydra_cfg.overrides.task)
    multirun = _is_multirun()
    if multirun and is_complete(run_dir, overrides):  # resume: this job is done already
        _report_progress(run_dir, "skipped (complete)")
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    base = {"overrides": overrides, "host": socket.gethostname(), "pid": os.getpid(),
            "started": datetime.now().isoformat(timespec="seconds")}
    write_status(run_dir, {"status": "running", **base})
    status = {"status": "ok"}
    try:
        summary = run_job(cfg, run_dir)
        if not multirun:
            print(summary_table(summary))
            print(f"\nRun folder: {run_dir}")
    except ConfigError as error:
        status = {"status": "failed", "error": str(error)}
        print(error, file=sys.stderr)
    except OSError as error:  # the disk refused (full, read-only): only .partial/ was written
        status = {"status": "failed", "error": str(output_fault(error, run_dir)), "output_fault": True}
        print(status["error"], file=sys.stderr)
    except Exception as error:  # recorded so one failing job never kills a sweep
        status = {"status": "failed", "error": f"{type(error).__name__}: {error}",
                  "traceback": traceback.format_exc()}
        print(f"Run failed: {status['error']} (details in {run_dir / 'status.json'})", file=sys.stderr)
    status.update(base, elapsed_s=round(time.time() - started, 3))
    try:
        write_status(run_dir, status)  # last, by a rename: "complete" == status ok
    except OSError as error:  # the folder keeps status "running" (or none): never complete
        print(output_fault(error, run_dir / "status.json"), file=sys.stderr)
        status = {"status": "failed", "output_fault": True}
    if multirun:
        _report_progress(run_dir, status["status"] + (f" in {status.get('elapsed_s', 0):.1f} s"))
    if status["status"] != "ok" and not multirun:
        raise SystemExit(1 if "traceback" in status or "output_fault" in status else 2)


_hydra_task = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(_task)


def _run_single(args: list[str]) -> int:
    """A single run (no -m, no flags): its config composed once, checked, and run as Hydra's app runs a
    job (run folder from hydra.run.dir, .hydra/ files, run.log, HydraConfig for the task). Through
    ``hydra.main`` the config would be composed twice more (the app's mode, then the run): 0.6 s of a
    tiny run's 5."""
    from hydra._internal.callbacks import Callbacks
    from hydra.core.utils import run_job
    from hydra.types import HydraContext

    from experiments.checks import check_memory, check_output_dir
    from experiments.config import compose_run_config, to_typed

    cfg, config_loader = compose_run_config([*args, "hydra.mode=RUN"])   # the override Hydra's app adds
    task_cfg = copy.deepcopy(cfg)   # what the task will get: the config without its hydra node
    with read_write(task_cfg), open_dict(task_cfg):
        del task_cfg["hydra"]
    check_memory(to_typed(task_cfg))   # refused here: no run folder is made for a config that cannot run
    check_output_dir(task_cfg.output.dir, "output.dir")
    callbacks = Callbacks(cfg)   # as Hydra's run: callbacks (none are configured here) see the same events
    callbacks.on_run_start(config=cfg, config_name="config")
    try:
        job = run_job(task_function=_task, config=cfg, job_dir_key="hydra.run.dir", job_subdir_key=None,
                      hydra_context=HydraContext(config_loader=config_loader, callbacks=callbacks))
    except SystemExit as exit_:   # the task's exit code for a failed run
        return int(exit_.code or 0)
    callbacks.on_run_end(config=cfg, config_name="config", job_return=job)
    _ = job.return_value   # re-raises what the task raised, as Hydra's run does
    return 0


def _report_progress(run_dir: Path, what: str) -> None:
    """One line per job: what it did and the sweep's counts read from the sweep folder."""
    try:
        sweep_dir = Path(HydraConfig.get().sweep.dir)
        line = progress_line(sweep_dir)
        num = HydraConfig.get().job.num
        overrides = " ".join(HydraConfig.get().overrides.task)
        print(f"{line} job {num} {what}: {overrides}", flush=True)
    except Exception as error:  # noqa: BLE001 - progress must never fail a job
        print(f"job {what} ({run_dir}); progress unavailable: {error}", flush=True)


def _is_multirun() -> bool:
    try:
        return HydraConfig.get().mode.name == "MULTIRUN"
    except ValueError:
        return False


USAGE = """usage: twosided run [-m] [overrides...]

One simulation -> a run folder under output.dir (default runs/<timestamp>):
summary.json, daily.parquet, agents.parquet, config.yaml, status.json.
With -m (Hydra multirun) every combination of comma-separated values is a
job of a sweep under hydra.sweep.dir (default multirun/<timestamp>); running
the same sweep into the same folder resumes it; `twosided collect DIR` makes
one table of it. The exit code is 1 when any job of the sweep failed.

overrides (Hydra syntax, key=value): market=goods|rides|delivery
  policy=none|proactive_outreach|[a,b] scale=tiny|small|default|large seed=3 days=180
  population.buyers=5000 market.sellers.commission=0.12 cs.staff=4 output.dir=DIR
  -m market=goods,rides seed=1,2,3 hydra/launcher=joblib hydra.sweep.dir=DIR
Every key and its allowed values: conf/config.yaml, conf/market_base/common.yaml;
`twosided run --cfg job` prints the composed config."""

HYDRA_PREFIXES = ("hydra.", "hydra/", "+hydra", "++hydra")


def main(args: list[str]) -> int:
    """Entry of `twosided run ARGS`: validate the overrides first, then hand over to Hydra.

    A single run returns 0, 2 (a config the schema refuses) or 1 (a failure
    while running or writing). A multirun returns 1 when any job failed or
    did not finish, after printing the sweep's counts.
    """
    from experiments.checks import check_output_dir
    from experiments.config import check_overrides, with_search_path

    register_schema()
    # conf/hydra/launcher/submitit_slurm.yaml deliberately shadows the plugin's config
    # of the same name (it lists every field, so it also works without schema matching)
    warnings.filterwarnings("ignore", message=".*is validated against ConfigStore schema with the same name")
    multirun = any(a in ("-m", "--multirun") for a in args)
    flags = [a for a in args if a.startswith("-")]
    model_args = [a for a in args if not a.startswith(("-", *HYDRA_PREFIXES))]
    sweep_dir = None
    if multirun:
        check_overrides(with_search_path(model_args), multirun=True)
        sweep_dir = check_output_dir(_sweep_dir(args), "hydra.sweep.dir")
        args = [a for a in args if not a.startswith("hydra.sweep.dir=")] + [f"hydra.sweep.dir={quoted(str(sweep_dir))}"]
    elif not flags:
        return _run_single(args)
    sys.argv = ["twosided-run", *with_search_path(args)]
    try:
        _hydra_task()
    except SystemExit as exit_:
        code = int(exit_.code or 0)
        if not multirun or code:
            return code
    return _sweep_outcome(sweep_dir) if multirun else 0


def _sweep_dir(args: list[str]) -> Path:
    """The sweep folder the multirun will use, resolved now (``${now:...}`` once, not per job)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    hydra_args = [a for a in args if a.startswith(HYDRA_PREFIXES)]
    register_schema()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="config", overrides=hydra_args, return_hydra_config=True)
        return Path(str(OmegaConf.select(cfg, "hydra.sweep.dir")))
    except Exception as error:  # noqa: BLE001 - Hydra's many errors about its own settings
        raise ConfigError("hydra.sweep.dir", " ".join(hydra_args) or "(default)",
                          f"settings Hydra can compose ({str(error).strip().splitlines()[0]})") from None
    finally:
        GlobalHydra.instance().clear()


def _sweep_outcome(sweep_dir: Path) -> int:
    """Print the sweep's counts; 1 when a job failed or did not finish, else 0."""
    from experiments.collect import counts, sweep_jobs

    jobs = sweep_jobs(sweep_dir)
    c = counts(jobs)
    print(f"sweep {sweep_dir}: {c['total']} jobs [done {c['done']} / failed {c['failed']} / left {c['left']}]")
    failed = [j for j in jobs if j["state"] != "ok"]
    for job in failed[:5]:
        print(f"  job {job['num']} {job['state']}: {' '.join(job['overrides'])}", file=sys.stderr)
    if failed:
        print(f"twosided run: {len(failed)} of {c['total']} jobs did not complete (errors in their status.json; "
              f"`twosided collect {sweep_dir}` tabulates them; the same command resumes the sweep).",
              file=sys.stderr)
    return 1 if failed else 0
