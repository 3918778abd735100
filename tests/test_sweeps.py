"""Sweeps (issue 6): Hydra multirun with joblib and submitit_local, atomic job
folders, failures recorded, `twosided collect`, progress and resume."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from slurm_here import COVERED_BY_SLURM, REAL_SLURM

from experiments import collect as C

ROOT = Path(__file__).resolve().parent.parent
TWOSIDED = [sys.executable, "-m", "experiments.cli"]
BASE = ["market=goods", "scale=tiny", "days=20"]


def twosided(*args, cwd, timeout=300, env=None):
    env = {**(os.environ if env is None else env), "PYTHONPATH": str(ROOT)}
    return subprocess.run([*TWOSIDED, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def reference_summary(overrides: list[str]) -> dict:
    """What an uninterrupted job with these overrides produces (the engine is deterministic)."""
    from experiments.config import load_config
    from sim import Marketplace

    return C.flatten(json.loads(json.dumps(Marketplace(load_config(overrides)).run().summary)))


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def same(a, b) -> bool:
    """Equal, with None and NaN as one missing value (a table column holds NaN for null)."""
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    return a == b


# ---------------------------------------------------------------- fast, in-process


def _fake_job(sweep: Path, num: int, overrides: list[str], status: dict | None, summary: dict | None = None):
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if summary is not None:
        (job / "summary.json").write_text(json.dumps(summary))
    if status is not None:
        C.write_status(job, {**status, "overrides": overrides})


def test_collect_states_of_a_partial_sweep(tmp_path):
    """An interrupted sweep: ok, failed, killed mid-run, started without status, never started."""
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text(
        "hydra:\n  overrides:\n    task:\n    - market=goods\n    - seed=1,2,3\n"
        "    - market.sellers.commission=0.1,0.2\n")
    jobs = C.sweep_manifest(sweep)
    assert len(jobs) == 6 and jobs[0] == ["market=goods", "seed=1", "market.sellers.commission=0.1"]
    summary = {"buyers": {"ltv": 3.5, "monthly_churn": 0.04}, "platform": {"gmv": 100.0}}
    _fake_job(sweep, 0, jobs[0], {"status": "ok", "elapsed_s": 1.0}, summary)
    _fake_job(sweep, 1, jobs[1], {"status": "failed", "error": "boom"})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _fake_job(sweep, 2, jobs[2], {"status": "running", "host": os.uname().nodename, "pid": dead.pid})
    _fake_job(sweep, 3, jobs[3], {"status": "running", "host": "another-node", "pid": 1})
    _fake_job(sweep, 4, jobs[4], None)
    _fake_job(sweep, 5, jobs[5], {"status": "ok"})  # ok without summary.json: not complete

    table = C.collect(sweep)
    assert (sweep / "results.parquet").exists()
    assert list(table["job"]) == [0, 1, 2, 3, 4, 5]
    assert list(table["status"]) == ["ok", "failed", "interrupted", "running", "missing", "missing"]
    assert list(table["seed"]) == [1, 1, 2, 2, 3, 3]
    assert list(table["market.sellers.commission"]) == [0.1, 0.2, 0.1, 0.2, 0.1, 0.2]
    assert table.loc[0, "buyers.ltv"] == 3.5 and table.loc[0, "platform.gmv"] == 100.0
    assert pd.isna(table.loc[1, "buyers.ltv"]) and table.loc[1, "error"] == "boom"
    assert C.counts(C.sweep_jobs(sweep)) == {"total": 6, "done": 1, "failed": 1, "running": 1, "left": 4}
    assert C.progress_line(sweep) == "[done 1 / failed 1 / left 4]"
    assert C.is_complete(sweep / "0", jobs[0]) and not C.is_complete(sweep / "0", jobs[1])
    assert not C.is_complete(sweep / "5")
    assert pd.read_parquet(sweep / "results.parquet").shape == table.shape


def test_collect_cli_prints_counts(tmp_path):
    from experiments.cli import main

    sweep = tmp_path / "s"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text("hydra:\n  overrides:\n    task:\n    - seed=1,2\n")
    _fake_job(sweep, 0, ["seed=1"], {"status": "failed", "error": "bad value"})
    assert main(["collect", str(sweep)]) == 0
    assert main(["collect", str(tmp_path / "nope")]) == 2


@pytest.mark.filterwarnings("ignore::UserWarning")  # the yaml shadows the plugin's schema on purpose
def test_slurm_launcher_config_has_cluster_defaults():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from experiments.config import CONF_DIR, register_schema

    register_schema()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=["hydra/launcher=submitit_slurm", "hydra.launcher.partition=short",
                                               "hydra.launcher.timeout_min=30"], return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.partition == "short" and launcher.timeout_min == 30
    assert launcher.cpus_per_task == 1 and launcher.array_parallelism == 64 and launcher.mem_gb == 4


# ---------------------------------------------------------------- the real command


@pytest.mark.slow  # about 20-60 s: two CLI sweeps, loky workers
def test_joblib_sweep_records_failures_collects_and_resumes(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["run", "-m", *BASE, "seed=1,2", "market.sellers.commission=0.1,-1",
            "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}"]
    out = twosided(*args, cwd=tmp_path)
    assert out.returncode == 1, out.stderr[-3000:]  # two jobs failed: exit 1, after the sweep's counts
    assert f"sweep {sweep}: 4 jobs [done 2 / failed 2 / left 0]" in out.stdout
    progress = [line for line in out.stdout.splitlines() if line.startswith("[done ")]
    assert len(progress) == 4, out.stdout
    assert any(line.startswith("[done 2 / failed 2 / left 0]") for line in progress)

    table = C.collect(sweep)
    assert len(table) == 4
    assert set(["seed", "market.sellers.commission", "status", "buyers.monthly_churn", "sellers.ltv",
                "platform.net_contribution"]) <= set(table.columns)
    ok = table[table["status"] == "ok"]
    failed = table[table["status"] == "failed"]
    assert sorted(ok["seed"]) == [1, 2] and set(ok["market.sellers.commission"]) == {0.1}
    assert set(failed["market.sellers.commission"]) == {-1}
    assert failed["error"].str.contains("commission").all()
    assert ok["buyers.active_end"].notna().all() and failed["buyers.active_end"].isna().all()
    for run_dir in ok["run_dir"]:
        files = {p.name for p in Path(run_dir).iterdir()}
        assert {"summary.json", "daily.parquet", "agents.parquet", "config.yaml", "status.json"} <= files
        assert ".partial" not in files
    # the two seeds differ (the seed reached the engine) and match a direct run
    first = ok.iloc[0]
    ref = reference_summary([*BASE, f"seed={first['seed']}", "market.sellers.commission=0.1"])
    assert all(same(first[k], v) for k, v in ref.items())
    assert ok["platform.gmv"].nunique() == 2

    # resume: completed jobs are skipped (untouched), failed ones are run again
    stamps = {d: (Path(d) / "status.json").stat().st_mtime_ns for d in ok["run_dir"]}
    again = twosided(*args[:-3], f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert again.returncode == 1, again.stderr[-3000:]  # the failed jobs fail again
    assert again.stdout.count("skipped (complete)") == 2
    assert again.stdout.count(" failed in ") == 2
    assert stamps == {d: (Path(d) / "status.json").stat().st_mtime_ns for d in ok["run_dir"]}
    assert main_collect_output(sweep).startswith(f"{sweep}: 4 jobs [done 2 / failed 2 / left 0]")


def main_collect_output(sweep: Path) -> str:
    out = twosided("collect", str(sweep), cwd=sweep.parent)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_killed_sweep_resumes_to_the_uninterrupted_table(tmp_path):
    """SIGKILL a serial sweep after a job, resume it into the same folder: every job
    appears exactly once and the table equals what uninterrupted jobs give."""
    sweep = tmp_path / "sweep"
    args = ["run", "-m", *BASE, "seed=1,2", "market.sellers.commission=0.1,0.2", f"hydra.sweep.dir={sweep}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([*TWOSIDED, *args], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if sweep.is_dir() and C.counts(C.sweep_jobs(sweep))["done"] >= 1:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    partial = C.collect(sweep)
    assert len(partial) == 4
    assert (partial["status"] == "ok").sum() >= 1 and (partial["status"] != "ok").sum() >= 1
    assert set(partial["status"]) <= {"ok", "interrupted", "missing"}
    done_before = {r.run_dir: (Path(r.run_dir) / "summary.json").stat().st_mtime_ns
                   for r in partial.itertuples() if r.status == "ok"}

    out = twosided(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    final = C.collect(sweep)
    assert len(final) == 4 and (final["status"] == "ok").all()
    assert final[["seed", "market.sellers.commission"]].drop_duplicates().shape[0] == 4
    assert list(final["job"]) == list(range(4))
    for run_dir, stamp in done_before.items():  # completed jobs were not run again
        assert (Path(run_dir) / "summary.json").stat().st_mtime_ns == stamp
    assert not list(sweep.glob("*/.partial"))
    for _, row in final.iterrows():
        commission = row["market.sellers.commission"]
        ref = reference_summary([*BASE, f"seed={row['seed']}", f"market.sellers.commission={commission}"])
        mismatched = [k for k, v in ref.items() if not same(row[k], v)]
        assert not mismatched, (row["job"], mismatched[:5])


@pytest.mark.slow  # about 15-35 s: one process per job, as on SLURM
@pytest.mark.skipif(REAL_SLURM, reason=COVERED_BY_SLURM)
def test_submitit_local_runs_the_cluster_path(tmp_path):
    sweep = tmp_path / "sweep"
    out = twosided("run", "-m", *BASE[:2], "days=10", "seed=1,2", "hydra/launcher=submitit_local",
                   "hydra.launcher.timeout_min=5", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (sweep / ".submitit").is_dir()  # went through submitit (pickled task, one process per job)
    table = C.collect(sweep)
    assert list(table["status"]) == ["ok", "ok"]
    assert list(table["seed"]) == [1, 2] and table["buyers.active_end"].notna().all()
    ref = reference_summary([*BASE[:2], "days=10", "seed=2"])
    assert all(same(table.loc[1, k], v) for k, v in ref.items())
