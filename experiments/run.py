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

import logging
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
from omegaconf import DictConfig, OmegaConf

from experiments.collect import is_complete, progress_line, write_status
from experiments.config import CONF_DIR, register_schema, to_typed
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


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def _hydra_task(cfg: DictConfig) -> None:
    logging.getLogger("MESA").setLevel(logging.WARNING)  # Mesa logs every step at INFO
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
    except Exception as error:  # recorded so one failing job never kills a sweep
        status = {"status": "failed", "error": f"{type(error).__name__}: {error}",
                  "traceback": traceback.format_exc()}
        print(f"Run failed: {status['error']} (details in {run_dir / 'status.json'})", file=sys.stderr)
    status.update(base, elapsed_s=round(time.time() - started, 3))
    write_status(run_dir, status)  # last, by a rename: "complete" == status ok
    if multirun:
        _report_progress(run_dir, status["status"] + (f" in {status['elapsed_s']:.1f} s"))
    if status["status"] != "ok" and not multirun:
        raise SystemExit(2 if "traceback" not in status else 1)


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


def main(args: list[str]) -> int:
    """Entry of `twosided run ARGS`: validate the overrides first, then hand over to Hydra."""
    from experiments.config import load_config

    register_schema()
    # conf/hydra/launcher/submitit_slurm.yaml deliberately shadows the plugin's config
    # of the same name (it lists every field, so it also works without schema matching)
    warnings.filterwarnings("ignore", message=".*is validated against ConfigStore schema with the same name")
    multirun = any(a in ("-m", "--multirun") for a in args)
    flags = [a for a in args if a.startswith("-")]
    if not multirun and not flags:
        try:
            load_config([a for a in args if not a.startswith(("hydra.", "hydra/", "+hydra"))])
        except ConfigError as error:
            print(error, file=sys.stderr)
            return 2
    sys.argv = ["twosided-run", *args]
    try:
        _hydra_task()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0
