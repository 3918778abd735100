"""A non-editable install works on its own: conf/ ships as package data.

The project is built and installed (``pip install --no-deps --target``) into a
temporary folder, and `twosided run scale=tiny` is run from another temporary
folder with only that install on the path for the project's own modules
(dependencies come from the test environment). Nothing of the source tree may
be imported, and the run folder lands under the working directory.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
# Copied to build from, so the build's own build/ and egg-info never land in the working copy.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "runs", "outputs",
                                    "multirun", "calibrations", "comparisons", "notebooks", ".pytest_cache")


def _market_file(folder: Path, name: str, orders_per_day: float) -> Path:
    """conf/market/goods.yaml with a distinguishable ``sellers.expected_orders_per_day``, as folder/market/NAME.yaml."""
    from experiments.config import CONF_DIR

    text = (CONF_DIR / "market" / "goods.yaml").read_text()
    assert "expected_orders_per_day: 0.02\n" in text
    path = folder / "market" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace("expected_orders_per_day: 0.02\n", f"expected_orders_per_day: {orders_per_day}\n"))
    return path


def test_user_config_folder_adds_options_and_never_shadows_the_package(tmp_path, monkeypatch):
    from experiments.config import group_options, load_config
    from sim.config import ConfigError

    _market_file(tmp_path, "mine", 0.037)
    _market_file(tmp_path, "goods", 0.037)   # the package's goods wins: a user folder only adds options
    monkeypatch.setenv("TWOSIDED_CONFIG_DIR", str(tmp_path))
    assert "mine" in group_options("market")
    assert load_config(["market=mine"]).market.sellers.expected_orders_per_day == 0.037
    assert load_config(["market=goods"]).market.sellers.expected_orders_per_day == 0.02
    monkeypatch.setenv("TWOSIDED_CONFIG_DIR", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="TWOSIDED_CONFIG_DIR"):
        load_config(["market=goods"])


def test_run_and_compare_settings_take_a_market_file(tmp_path, monkeypatch):
    """`market=PATH` (a file in a market/ folder, as calibrate writes it) works for Hydra's app and the compose API."""
    from experiments.cli import main
    from experiments.compare import parse_args, plan

    monkeypatch.delenv("TWOSIDED_CONFIG_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    path = _market_file(tmp_path / "calibrated", "fitted", 0.041)
    assert main(["run", f"market={path}", "scale=tiny", "days=3", "output.dir=out"]) == 0
    config = yaml.safe_load(next((tmp_path / "out").glob("*/config.yaml")).read_text())
    assert config["market"]["sellers"]["expected_orders_per_day"] == 0.041
    tasks = plan(parse_args([f"market={path}", "scale=tiny", "arms=tech_touch", "replicates=2"])).tasks(crn=True)
    assert tasks and all(t.cfg.market.sellers.expected_orders_per_day == 0.041 for t in tasks)
    assert main(["run", f"market={tmp_path / 'fitted.yaml'}", "scale=tiny"]) == 2   # not in a market/ folder


def test_every_package_folder_is_listed_in_pyproject():
    """setuptools cannot discover a renamed folder (conf -> twosided_conf), so packages are listed by hand."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    renamed = {folder: name for name, folder in config["package-dir"].items()}
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in ROOT.glob("*/**/__init__.py")
             if p.parts[len(ROOT.parts)] not in ("tests", ".venv", "build", "notebooks")}
    groups = {"twosided_conf." + ".".join(d.relative_to(ROOT / "conf").parts) for d in (ROOT / "conf").rglob("*")
              if d.is_dir() and d.name != "__pycache__"}
    assert {renamed.get(name, name) for name in found} | groups == listed


@pytest.mark.slow
def test_non_editable_install_runs_from_any_folder(tmp_path):
    source, site, work = tmp_path / "source", tmp_path / "site", tmp_path / "work"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    work.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                    str(source)], check=True, capture_output=True, text=True)
    shutil.rmtree(source)  # the installed copy must not need its sources
    env = {**os.environ, "PYTHONPATH": str(site), "TWOSIDED_CONFIG_DIR": ""}
    env.pop("TWOSIDED_CONFIG_DIR")
    where = subprocess.run([sys.executable, "-c", "import experiments.config as c, sim; print(c.CONF_DIR); "
                            "print(sim.__file__)"], cwd=work, env=env, check=True, capture_output=True, text=True)
    conf_dir, sim_file = where.stdout.split()
    assert Path(conf_dir) == site / "twosided_conf" and Path(sim_file).is_relative_to(site)
    # The kernels run as plain Python here: compiling them again for a new install location took most of a
    # minute and says nothing about packaging (the compiled path is what every other test runs).
    done = subprocess.run([str(site / "bin" / "twosided"), "run", "scale=tiny", "days=3"], cwd=work,
                          env={**env, "NUMBA_DISABLE_JIT": "1"}, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr
    summaries = list(work.glob("runs/*/summary.json"))
    assert len(summaries) == 1, done.stdout
    assert json.loads(summaries[0].read_text())
