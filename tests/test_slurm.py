"""The cluster path against a real SLURM (issue 18): a single-node cluster of
Debian's slurmctld, slurmd and munge in a temporary folder
(scripts/slurm_cluster.sh, conf/slurm/slurm.conf), started for this module and
stopped after it; a sweep submitted to it through
``hydra/launcher=submitit_slurm`` and a comparison through
``launcher=submitit_slurm``, each job's SLURM record and result checked.

Skip or fail: where SLURM is not installed and scripts/install_slurm.sh never
ran here (its marker file is absent), the test is skipped, saying so; where the
install script ran (``make test`` runs it), a missing command or a cluster that
does not come up is a failure. Every wait is bounded (cluster start 60 s, the
sweep 300 s, SLURM's record of a finished job 60 s), and the cluster is stopped
even when the test fails.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from slurm_here import INSTALLED_MARKER
from test_sweeps import BASE, ROOT, reference_summary, same, twosided

from experiments import collect as C
from experiments import compare as cmp

CLUSTER_SCRIPT = ROOT / "scripts" / "slurm_cluster.sh"
COMMANDS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "sinfo", "scontrol", "scancel")
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
START_TIMEOUT_S = 60     # the cluster is up in about a second on this machine
SWEEP_TIMEOUT_S = 300    # a 3-job tiny sweep takes about 12 s on this machine
SETTLE_TIMEOUT_S = 60    # submitit returns once a job's result file is written; SLURM marks the job
                         # COMPLETED only after its process has exited (under load, seconds later)
UNFINISHED = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory):
    """The environment (SLURM_CONF) of a single-node SLURM cluster running for this module."""
    missing = [c for c in COMMANDS if shutil.which(c, path=SEARCH_PATH) is None]
    if missing:
        if INSTALLED_MARKER.exists():
            pytest.fail(f"scripts/install_slurm.sh ran ({INSTALLED_MARKER} exists) but {', '.join(missing)} "
                        "are missing: run it again and read its output")
        pytest.skip(f"SLURM is not installed ({', '.join(missing)} missing); `make test` installs it "
                    "with scripts/install_slurm.sh")
    if os.geteuid() != 0:
        pytest.skip("starting slurmd needs root (it starts jobs as their user)")
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "PATH": SEARCH_PATH, "SLURM_CONF": str(state / "slurm.conf"),
           "START_TIMEOUT_S": str(START_TIMEOUT_S)}
    try:
        start = subprocess.run(["bash", str(CLUSTER_SCRIPT), "start", str(state), str(_free_port()), str(_free_port())],
                               env=env, capture_output=True, text=True, timeout=START_TIMEOUT_S + 30)
        if start.returncode != 0:
            pytest.fail(f"the test SLURM cluster did not start (exit {start.returncode}):\n{start.stderr[-3000:]}")
        yield env
    finally:
        subprocess.run(["bash", str(CLUSTER_SCRIPT), "stop", str(state)], env=env, capture_output=True, timeout=60)


def _job_state(job_id: str, env: dict) -> dict[str, str]:
    """``scontrol show job`` as key=value pairs (finished jobs stay listed for MinJobAge, 300 s)."""
    out = subprocess.run(["scontrol", "-o", "show", "job", job_id], env=env, capture_output=True, text=True,
                         timeout=30)
    return dict(re.findall(r"(\w+)=(\S+)", out.stdout))


def _final_job_state(job_id: str, env: dict) -> dict[str, str]:
    """The job's state once SLURM has finished it, waiting at most SETTLE_TIMEOUT_S for the bookkeeping."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    state = _job_state(job_id, env)
    while state.get("JobState") in UNFINISHED and time.monotonic() < deadline:
        time.sleep(0.5)
        state = _job_state(job_id, env)
    return state


@pytest.mark.slow  # about 15-30 s: three SLURM jobs, each a fresh Python process
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_sweep_runs_on_a_real_slurm_cluster(slurm_env, tmp_path):
    sweep = tmp_path / "sweep"
    seeds = [1, 2, 3]
    out = twosided("run", "-m", *BASE, f"seed={','.join(map(str, seeds))}", "hydra/launcher=submitit_slurm",
                   "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=5", f"hydra.sweep.dir={sweep}",
                   cwd=tmp_path, env=slurm_env, timeout=SWEEP_TIMEOUT_S)
    assert out.returncode == 0, out.stderr[-3000:]

    # every job went through sbatch and finished as a SLURM job with exit code 0
    job_ids = sorted(p.name for p in (sweep / ".submitit").iterdir() if re.fullmatch(r"\d+_\d+", p.name))
    assert len(job_ids) == len(seeds), sorted(p.name for p in (sweep / ".submitit").iterdir())
    for job_id in job_ids:
        state = _final_job_state(job_id, slurm_env)
        assert state.get("JobState") == "COMPLETED" and state.get("ExitCode") == "0:0", (job_id, state)
        assert state.get("Partition") == "test" and state.get("NumCPUs") == "1", (job_id, state)

    # and each wrote the run a direct, in-process run of the same config gives (the engine is deterministic)
    table = C.collect(sweep)
    assert list(table["status"]) == ["ok"] * len(seeds)
    assert list(table["seed"]) == seeds
    for _, row in table.iterrows():
        status = json.loads((Path(row["run_dir"]) / "status.json").read_text())
        assert status["status"] == "ok"
        ref = reference_summary([*BASE, f"seed={row['seed']}"])
        mismatched = [k for k, v in ref.items() if not same(row[k], v)]
        assert not mismatched, (row["job"], mismatched[:5])
    assert table["platform.gmv"].nunique() == len(seeds)   # the seeds reached the jobs


@pytest.mark.slow  # about 15-30 s: four SLURM jobs, each a fresh Python process, and the same comparison in-process
def test_comparison_runs_on_a_real_slurm_cluster(slurm_env, tmp_path):
    out = tmp_path / "compare"
    args = ["arms=[tech_touch]", "scale=tiny", "days=20", "replicates=2", "progress=false"]
    run = subprocess.run([str(Path(sys.executable).with_name("twosided")), "compare", *args,
                          "launcher=submitit_slurm", "launcher_options.mem_gb=1", "launcher_options.timeout_min=5",
                          f"out={out}"], cwd=tmp_path, env=slurm_env, capture_output=True, text=True,
                         timeout=SWEEP_TIMEOUT_S)
    assert run.returncode == 0, run.stderr[-3000:]

    # one SLURM job per (arm, replicate), each finished with exit code 0 on the test partition
    job_ids = sorted(p.name for p in (out / ".submitit").iterdir() if re.fullmatch(r"\d+_\d+", p.name))
    assert len(job_ids) == 4, sorted(p.name for p in (out / ".submitit").iterdir())
    for job_id in job_ids:
        state = _final_job_state(job_id, slurm_env)
        assert state.get("JobState") == "COMPLETED" and state.get("ExitCode") == "0:0", (job_id, state)
        assert state.get("Partition") == "test" and state.get("MinMemoryNode") == "1G", (job_id, state)

    # and the comparison is the one the local pool gives (the engine is deterministic)
    reference = tmp_path / "reference"
    assert cmp.main([*args, "jobs=1", f"out={reference}"]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out / "comparison.parquet"),
                                  pd.read_parquet(reference / "comparison.parquet"), check_exact=True)
