"""`twosided compare` never loses work: the folder is checked and locked before any run, every finished run is
saved as it ends, a killed comparison resumes to the same result, Ctrl-C stops cleanly, workers die with it."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from slurm_here import COVERED_BY_SLURM, REAL_SLURM

from experiments import compare as cmp
from experiments.folder import LOCK_FILE, SPEC_FILE, FolderError, OutputFolder

TWOSIDED = str(Path(sys.executable).with_name("twosided"))
# 3 arms x 2 replicates = 6 short runs: enough to stop a comparison part-way (2 workers, stopped after the first)
ARGS = ["arms=[tech_touch,tech_touch(weight=0.025)]", "scale=tiny", "days=40", "replicates=2", "jobs=2",
        "progress=false"]
TOTAL = 6
SPEC = {"arms": [["none", ["policy=none"]]], "replicates": 2}


# -- the folder, checked before any run ---------------------------------------------------------------
def test_a_new_folder_is_made_locked_and_released(tmp_path):
    folder = OutputFolder(tmp_path / "a" / "b", SPEC).open()
    assert json.loads((tmp_path / "a" / "b" / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert json.loads((tmp_path / "a" / "b" / SPEC_FILE).read_text())["spec"] == SPEC
    folder.release()
    assert not (tmp_path / "a" / "b" / LOCK_FILE).exists()
    with OutputFolder(tmp_path / "a" / "b", SPEC):  # the same comparison again: resumed
        pass


@pytest.mark.parametrize("case, says", [("file", "is a file"), ("under_file", "cannot be created"),
                                        ("foreign", "not empty"), ("other", "holds another comparison"),
                                        ("in_use", "in use by a running")])
def test_unusable_folders_are_refused_in_one_paragraph(tmp_path, case, says):
    target = tmp_path / "out"
    if case == "file":
        target.write_text("x")
    elif case == "under_file":
        (tmp_path / "f").write_text("x")
        target = tmp_path / "f" / "out"
    elif case == "foreign":
        target.mkdir()
        (target / "notes.txt").write_text("mine")
    elif case == "other":
        OutputFolder(target, {**SPEC, "replicates": 5}).open().release()
    elif case == "in_use":
        OutputFolder(target, SPEC).open()  # this live process holds the lock
    with pytest.raises(FolderError) as info:
        OutputFolder(target, SPEC).open()
    text = str(info.value)
    assert says in text and "out=" in text and "\n" not in text and info.value.key == "out"
    if case == "foreign":
        assert (target / "notes.txt").read_text() == "mine" and not (target / LOCK_FILE).exists()


def test_a_stale_lock_of_a_killed_compare_is_taken_over(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    OutputFolder(tmp_path, SPEC).open().release()
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename}))
    folder = OutputFolder(tmp_path, SPEC).open()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    folder.release()


def test_the_command_refuses_a_bad_folder_before_simulating(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    started = time.perf_counter()
    assert cmp.main([*ARGS, f"out={tmp_path / 'file'}"]) == 2
    err = capsys.readouterr().err
    assert "`out`" in err and "is a file" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert time.perf_counter() - started < 60  # composing the arms only: no run (a run takes longer)


# -- kill, resume, Ctrl-C ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The same comparison run in one go from Python (serial: bit-identical to parallel)."""
    out = tmp_path_factory.mktemp("whole") / "c"
    c = cmp.compare(["tech_touch", "tech_touch(weight=0.025)"], scale="tiny", days=40, replicates=2, jobs=1, out=out)
    return c, out


def _saved(out: Path) -> int:
    return len(list((out / "runs").glob("*.pkl"))) if (out / "runs").exists() else 0


def _wait_for_runs(proc, out: Path, n: int, timeout: float = 600) -> None:
    end = time.monotonic() + timeout
    while _saved(out) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "no run finished in time"
        time.sleep(0.05)


def _workers(pid: int) -> list[int]:
    """The forked worker processes of ``pid`` (same command line; not multiprocessing's resource tracker)."""
    mine = Path(f"/proc/{pid}/cmdline").read_bytes()
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            same = (stat.parent / "cmdline").read_bytes() == mine
        except OSError:
            continue
        if int(fields[1]) == pid and same:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").exists(), reason="finds worker processes through /proc (Linux)")
@pytest.mark.slow   # subprocess compares, about 30 s
def test_kill_9_mid_way_then_rerun_resumes_to_the_uninterrupted_result(tmp_path, uninterrupted):
    whole, whole_out = uninterrupted
    out = tmp_path / "c"
    proc = subprocess.Popen([TWOSIDED, "compare", *ARGS, f"out={out}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_runs(proc, out, 1)
    workers = _workers(proc.pid)
    proc.kill()
    proc.communicate()
    assert workers, "jobs=2 runs in worker processes"
    end = time.monotonic() + 10  # a worker notices its parent is gone within PARENT_POLL_S
    while any(_alive(w) for w in workers) and time.monotonic() < end:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "workers outlived the killed comparison"
    saved = _saved(out)
    assert 1 <= saved < TOTAL
    rerun = subprocess.run([TWOSIDED, "compare", *ARGS, f"out={out}"], capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr
    assert _saved(out) == TOTAL
    pd.testing.assert_frame_equal(pd.read_parquet(out / "comparison.parquet"),
                                  pd.read_parquet(whole_out / "comparison.parquet"), check_exact=True)
    assert f"{saved} of the runs were loaded from this folder" in (out / "report.md").read_text()
    assert not (out / LOCK_FILE).exists()


@pytest.mark.skipif(not Path("/proc").exists(), reason="finds worker processes through /proc (Linux)")
@pytest.mark.slow   # subprocess compare, about 20 s
def test_ctrl_c_stops_cleanly_keeps_the_finished_runs_and_exits_130(tmp_path):
    out = tmp_path / "c"
    proc = subprocess.Popen([TWOSIDED, "compare", *ARGS, f"out={out}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for_runs(proc, out, 1)
    workers = _workers(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "interrupted" in last and "finished runs are saved" in last and "same command again" in last
    assert _saved(out) >= 1 and not (out / LOCK_FILE).exists()
    assert not any(_alive(w) for w in workers)
    # the folder now belongs to this comparison: another one is refused, before any run
    other = subprocess.run([TWOSIDED, "compare", "arms=[win_back]", *ARGS[1:], f"out={out}"], capture_output=True,
                           text=True, timeout=300)
    assert other.returncode == 2 and "holds another comparison" in other.stderr


# -- the Python entry and the guards -------------------------------------------------------------------
def test_python_entry_returns_the_tables_and_a_plot(uninterrupted):
    c, out = uninterrupted
    assert list(c.headline["arm"]) == sorted(c.headline["arm"], key=lambda a: -c.headline.set_index("arm").loc[
        a, "d_net"])
    assert set(c.headline["arm"]) == {"tech_touch", "tech_touch(weight=0.025)"}
    assert c.headline.set_index("arm").loc["tech_touch(weight=0.025)", "changes"] == "tech_touch: weight 0.05 -> 0.025"
    drivers = c.details("drivers")
    assert drivers.loc[drivers["metric"] == "nps", "answers"].notna().all()
    fig = c.plot()
    assert len(fig.axes) == 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"].startswith("twosided compare ") and f"out={out}" in manifest["command"]
    assert manifest["seeds"]["none"] == [0, 1] and "commit" in manifest and manifest["version"]
    assert "tech_touch(weight=0.025)" in (out / "config.yaml").read_text()


def test_guards_warn_on_test_scale_short_horizon_few_replicates_and_few_answers(uninterrupted):
    c, _ = uninterrupted
    text = " ".join(c.guards)
    assert "scale=tiny is a test scale" in text
    assert "shorter than the 12-month payback" in text
    assert "2 replicates are too few for 2 arm(s)" in text
    assert "NPS drivers" in text  # 20 drivers, 5% asked a month: about one answer
    lenient = dataclasses.replace(c.settings, guards={"test_scales": [], "payback_months": 1, "min_answers": 0,
                                                      "max_t_inflation": 100.0})
    quiet = dataclasses.replace(c, settings=lenient)
    assert not any(w for w in quiet.guards if "test scale" in w or "too few" in w or "answers" in w
                   or "12-month" in w)


def test_replicates_for_arms_grows_with_the_number_of_arms():
    # one arm: the smallest n with t(0.975, n - 1) <= 1.25 x 1.96 = 2.45 is 7 (t with 6 df: 2.447)
    assert cmp.tables.replicates_for_arms(1, 0.05, 1.25) == 7
    assert cmp.tables.replicates_for_arms(8, 0.05, 1.25) > cmp.tables.replicates_for_arms(2, 0.05, 1.25) > 7


# -- the launchers of sweeps ---------------------------------------------------------------------------
def test_launcher_parameters_come_from_the_sweeps_configs():
    slurm = cmp.launcher_parameters("submitit_slurm")  # conf/hydra/launcher/submitit_slurm.yaml
    assert slurm["cluster"] == "slurm" and slurm["update"]["slurm_array_parallelism"] == 64
    assert slurm["update"]["timeout_min"] == 60 and slurm["update"]["cpus_per_task"] == 1
    assert "slurm_submitit_folder" not in slurm["update"] and slurm["init"] == {"slurm_max_num_timeout": 0}
    local = cmp.launcher_parameters("submitit_local")  # the plugin's LocalQueueConf
    assert local["cluster"] == "local" and not any(k.startswith("slurm_") for k in local["update"])


@pytest.mark.slow   # submitit's local executor starts a process per run, about 30 s
@pytest.mark.skipif(REAL_SLURM, reason=COVERED_BY_SLURM)
def test_submitit_local_launcher_gives_the_same_comparison_as_the_local_pool(tmp_path):
    kwargs = {"scale": "tiny", "days": 40, "replicates": 2}
    pooled = cmp.compare(["tech_touch"], jobs=1, **kwargs)
    launched = cmp.compare(["tech_touch"], launcher="submitit_local", out=tmp_path / "c", **kwargs)
    pd.testing.assert_frame_equal(launched.tidy, pooled.tidy, check_exact=True)
    assert (tmp_path / "c" / ".submitit").is_dir() and _saved(tmp_path / "c") == 4


def test_the_html_report_needs_no_horizontal_scrolling(uninterrupted):
    """Rendered by Debian's chromium (installed by `make test`, as for tests/test_app_browser.py) at 1280 px."""
    from playwright.sync_api import sync_playwright

    _, out = uninterrupted
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--headless",
                                                                               "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto((out / "report.html").as_uri())
        width = page.evaluate("document.documentElement.scrollWidth")
        tables = page.evaluate("Array.from(document.querySelectorAll('table')).map(t => t.scrollWidth)")
        browser.close()
    assert width <= 1280 and tables and max(tables) <= 1280
