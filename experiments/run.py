"""`twosided run`: one simulation (or a Hydra multirun) -> run folder(s).

Each job validates its config, simulates, and writes its folder: a failed
job records ``status.json`` with the error instead of stopping a sweep.
"""
from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from experiments.config import CONF_DIR, register_schema, to_typed
from experiments.report_text import summary_table
from sim import ConfigError, Marketplace


def run_job(cfg: DictConfig, run_dir: Path) -> dict:
    """Validate, simulate and save one run into ``run_dir``; return its summary."""
    typed = to_typed(cfg)
    result = Marketplace(typed).run()
    result.config = OmegaConf.to_container(cfg, resolve=True)
    result.save(run_dir)
    return result.summary


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def _hydra_task(cfg: DictConfig) -> None:
    logging.getLogger("MESA").setLevel(logging.WARNING)  # Mesa logs every step at INFO
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    status = {"status": "ok"}
    try:
        summary = run_job(cfg, run_dir)
        print(summary_table(summary))
        print(f"\nRun folder: {run_dir}")
    except ConfigError as error:
        status = {"status": "failed", "error": str(error)}
        print(error, file=sys.stderr)
    except Exception as error:  # recorded so one failing job never kills a sweep
        status = {"status": "failed", "error": f"{type(error).__name__}: {error}",
                  "traceback": traceback.format_exc()}
        print(f"Run failed: {status['error']} (details in {run_dir / 'status.json'})", file=sys.stderr)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "status.json").write_text(json.dumps(status, indent=2))
    if status["status"] != "ok" and not _is_multirun():
        raise SystemExit(2 if "traceback" not in status else 1)


def _is_multirun() -> bool:
    try:
        return HydraConfig.get().mode.name == "MULTIRUN"
    except ValueError:
        return False


def main(args: list[str]) -> int:
    """Entry of `twosided run ARGS`: validate the overrides first, then hand over to Hydra."""
    from experiments.config import load_config

    register_schema()
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
