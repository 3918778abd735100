"""`twosided collect DIR`: one tidy table of a Hydra sweep, plus sweep bookkeeping.

A sweep folder (``hydra.sweep.dir``) holds ``multirun.yaml`` (the sweep as
launched, written by Hydra before any job starts) and one folder per job.
A job folder is *complete* when its ``status.json`` says ``"ok"``: the
status file is written last and atomically (see experiments/run.py), so a
killed job never looks complete.

The table ``results.parquet`` has one row per job: ``job`` (its number),
one column per override (``seed``, ``market``, ``market.sellers.commission``),
``status`` (ok / failed / running / interrupted / missing), ``error``,
``elapsed_s``, ``run_dir`` and the summary metrics flattened per side
(``buyers.monthly_churn``, ``platform.net_contribution``, ...).
"""
from __future__ import annotations

import json
import os
import socket
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import yaml

from experiments.checks import output_fault

STATUS_FILE = "status.json"
RESULTS_FILE = "results.parquet"
DONE, FAILED = "ok", "failed"


# ---------------------------------------------------------------- files


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary name and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_status(job_dir: Path) -> dict | None:
    """The job's status.json, or None when it has none (or it is unreadable)."""
    try:
        return json.loads((Path(job_dir) / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None


def write_status(job_dir: Path, status: dict) -> None:
    atomic_write_text(Path(job_dir) / STATUS_FILE, json.dumps(status, indent=2, default=str))


def job_overrides(job_dir: Path) -> list[str] | None:
    """The job's task overrides, from status.json or Hydra's .hydra/overrides.yaml."""
    status = read_status(job_dir)
    if status and isinstance(status.get("overrides"), list):
        return [str(o) for o in status["overrides"]]
    path = Path(job_dir) / ".hydra" / "overrides.yaml"
    if path.exists():
        try:
            return [str(o) for o in (yaml.safe_load(path.read_text()) or [])]
        except yaml.YAMLError:
            return None
    return None


def is_complete(job_dir: Path, overrides: list[str] | None = None) -> bool:
    """True when the job finished ok (and, if given, with these very overrides)."""
    status = read_status(job_dir)
    if not status or status.get("status") != DONE:
        return False
    if not (Path(job_dir) / "summary.json").exists():
        return False
    return overrides is None or list(status.get("overrides", [])) == list(overrides)


# ---------------------------------------------------------------- the sweep


def sweep_manifest(sweep_dir: Path) -> list[list[str]] | None:
    """Every job of the sweep as launched (its overrides, in job-number order).

    Re-expands the sweep overrides saved in ``multirun.yaml`` the way Hydra's
    basic sweeper does; None when there is no manifest or it can't be expanded.
    """
    path = Path(sweep_dir) / "multirun.yaml"
    if not path.exists():
        return None
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        master = yaml.safe_load(path.read_text()) or {}
        task = [str(o) for o in master.get("hydra", {}).get("overrides", {}).get("task", [])]
        parsed = OverridesParser.create().parse_overrides(task)
        batches = BasicSweeper.split_arguments(parsed, None)
        return [list(job) for batch in batches for job in batch]
    except Exception:  # noqa: BLE001 - another sweeper, or a manifest we can't read
        return None


def _job_dirs(sweep_dir: Path) -> list[Path]:
    dirs = []
    for child in sorted(Path(sweep_dir).iterdir()) if Path(sweep_dir).is_dir() else []:
        if child.is_dir() and not child.name.startswith(".") and (
                (child / ".hydra").is_dir() or (child / STATUS_FILE).exists()):
            dirs.append(child)
    return dirs


def is_sweep(sweep_dir: Path) -> bool:
    """True when the folder holds a sweep: Hydra's multirun.yaml or at least one job folder."""
    return (Path(sweep_dir) / "multirun.yaml").is_file() or bool(_job_dirs(sweep_dir))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def job_state(job_dir: Path | None) -> str:
    """ok / failed / running / interrupted / missing."""
    if job_dir is None:
        return "missing"
    status = read_status(job_dir)
    if status is None:
        return "missing"
    state = status.get("status", "missing")
    if state == DONE and not (Path(job_dir) / "summary.json").exists():
        return "missing"
    if state == "running" and status.get("host") == socket.gethostname() and status.get("pid"):
        if not _pid_alive(int(status["pid"])):
            return "interrupted"
    return state


def sweep_jobs(sweep_dir: Path) -> list[dict]:
    """One dict per job: num, overrides, dir (None if not started), state."""
    sweep_dir = Path(sweep_dir)
    manifest = sweep_manifest(sweep_dir)
    found = {}
    for d in _job_dirs(sweep_dir):
        found.setdefault(tuple(job_overrides(d) or ()), d)
    jobs = []
    if manifest is not None:
        for num, overrides in enumerate(manifest):
            d = sweep_dir / str(num)
            if not (d.is_dir() and job_overrides(d) == overrides):
                d = found.get(tuple(overrides))
            jobs.append({"num": num, "overrides": overrides, "dir": d, "state": job_state(d)})
        listed = {j["dir"] for j in jobs if j["dir"] is not None}
        extra = [d for d in _job_dirs(sweep_dir) if d not in listed]
    else:
        extra = _job_dirs(sweep_dir)
    for d in extra:  # folders of an earlier, different sweep into the same folder (or no manifest)
        num = int(d.name) if d.name.isdigit() else None
        jobs.append({"num": num, "overrides": job_overrides(d) or [], "dir": d, "state": job_state(d)})
    return jobs


def counts(jobs: list[dict]) -> dict:
    """done / failed / running / left (left = not done and not failed)."""
    c = Counter(j["state"] for j in jobs)
    done, failed = c.get(DONE, 0), c.get(FAILED, 0)
    return {"total": len(jobs), "done": done, "failed": failed,
            "running": c.get("running", 0), "left": len(jobs) - done - failed}


def progress_line(sweep_dir: Path) -> str:
    c = counts(sweep_jobs(sweep_dir))
    return f"[done {c['done']} / failed {c['failed']} / left {c['left']}]"


# ---------------------------------------------------------------- the table


def parse_override(text: str) -> tuple[str, object]:
    """``"market.sellers.commission=0.2"`` -> (``"market.sellers.commission"``, 0.2)."""
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        override = OverridesParser.create().parse_override(text)
        value = override.value()
        if isinstance(value, (list, dict)):
            value = json.dumps(value)
        return override.get_key_element().lstrip("+~"), value
    except Exception:  # noqa: BLE001
        key, _, value = text.partition("=")
        return key.lstrip("+~"), value


def flatten(summary: dict, prefix: str = "") -> dict:
    """{"buyers": {"ltv": 3.2}} -> {"buyers.ltv": 3.2}; lists become JSON text."""
    out = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        elif isinstance(value, (list, tuple)):
            out[name] = json.dumps(value)
        else:
            out[name] = value
    return out


def collect(sweep_dir: Path, write: bool = True) -> pd.DataFrame:
    """Build (and write to ``<sweep_dir>/results.parquet``) the sweep's table."""
    sweep_dir = Path(sweep_dir)
    jobs = sweep_jobs(sweep_dir)
    rows, override_cols, metric_cols = [], [], []
    for job in jobs:
        row = {"job": job["num"]}
        for text in job["overrides"]:
            key, value = parse_override(text)
            row[key] = value
            if key not in override_cols:
                override_cols.append(key)
        status = read_status(job["dir"]) if job["dir"] is not None else None
        row["status"] = job["state"]
        row["error"] = (status or {}).get("error")
        row["elapsed_s"] = (status or {}).get("elapsed_s")
        row["run_dir"] = str(job["dir"]) if job["dir"] is not None else None
        if job["state"] == DONE:
            try:
                metrics = flatten(json.loads((job["dir"] / "summary.json").read_text()))
            except (OSError, ValueError):
                metrics = {}
            for key in metrics:
                if key not in metric_cols:
                    metric_cols.append(key)
            row.update(metrics)
        rows.append(row)
    columns = ["job", *override_cols, "status", "error", "elapsed_s", "run_dir",
               *[m for m in metric_cols if m not in override_cols]]
    table = pd.DataFrame(rows, columns=columns)
    table["job"] = table["job"].astype("Int64")
    for col in override_cols:  # mixed types (1 and 1.5, or missing) must still write
        if table[col].map(type).nunique() > 1 and not pd.api.types.is_numeric_dtype(table[col]):
            table[col] = table[col].map(lambda v: None if v is None else str(v))
    table = table.sort_values("job", na_position="last", kind="stable").reset_index(drop=True)
    if write and sweep_dir.is_dir():
        tmp = sweep_dir / f".{RESULTS_FILE}.tmp{os.getpid()}"
        table.to_parquet(tmp, index=False)
        os.replace(tmp, sweep_dir / RESULTS_FILE)
    return table


USAGE = """usage: twosided collect SWEEP_DIR [SWEEP_DIR...]

Writes SWEEP_DIR/results.parquet: one row per job (its overrides as columns,
its status, its summary metrics per side) and prints done / failed / left.
Works on a sweep that is still running or was interrupted."""


def main(args: list[str]) -> int:
    """Entry of `twosided collect SWEEP_DIR...`: exit 2 for a path that is no sweep folder."""
    if not args:
        print("twosided collect: give the sweep folder(s): twosided collect SWEEP_DIR [SWEEP_DIR...] "
              "(see twosided collect --help).", file=sys.stderr)
        return 2
    code = 0
    for arg in args:
        sweep_dir = Path(arg)
        if not sweep_dir.is_dir():
            print(f"twosided collect: {sweep_dir} is not a folder; allowed: a sweep folder "
                  f"(hydra.sweep.dir of `twosided run -m`, e.g. multirun/<timestamp>)", file=sys.stderr)
            code = 2
            continue
        if not is_sweep(sweep_dir):
            print(f"twosided collect: {sweep_dir} is not a sweep folder (no multirun.yaml and no job folders "
                  f"with a status.json or .hydra/); nothing written. Allowed: the hydra.sweep.dir of "
                  f"`twosided run -m`, e.g. multirun/<timestamp>.", file=sys.stderr)
            code = 2
            continue
        try:
            table = collect(sweep_dir)
        except OSError as error:
            raise output_fault(error, sweep_dir / RESULTS_FILE) from None
        c = counts([{"state": s} for s in table["status"]])
        print(f"{sweep_dir}: {c['total']} jobs [done {c['done']} / failed {c['failed']} / "
              f"left {c['left']}]" + (f" ({c['running']} running)" if c["running"] else ""))
        for _, row in table[table["status"] == FAILED].iterrows():
            print(f"  job {row['job']} failed: {row['error']}")
        print(f"  -> {sweep_dir / RESULTS_FILE}")
    return code
