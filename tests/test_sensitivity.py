"""Sensitivity analysis (issue 6): SALib Sobol and Morris through the same
evaluation machinery as the simulator, on cases whose ranking is known."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from experiments.sensitivity import evaluate_points, run_sensitivity
from experiments.study_settings import load_settings

PI = math.pi


def settings(tmp_path, **kw):
    base = load_settings("sensitivity", [])
    merged = OmegaConf.merge(base, OmegaConf.create({"out_dir": str(tmp_path / "sa"), **kw}))
    return merged


def test_default_settings_name_existing_config_keys():
    from experiments.config import compose_config

    s = load_settings("sensitivity", [])
    cfg = compose_config(list(s.base))
    for p in s.parameters:
        assert OmegaConf.select(cfg, p["name"]) is not None, p["name"]
        assert p["low"] < p["high"]


def test_sobol_ranks_ishigami(tmp_path):
    """Ishigami: S1 = (0.314, 0.442, 0), ST = (0.558, 0.442, 0.244)."""
    s = settings(tmp_path, method="sobol", samples=1024, model="ishigami",
                 base=[], seeds=[], output="y", n_jobs=1,
                 parameters=[{"name": f"x{i}", "low": -PI, "high": PI} for i in (1, 2, 3)])
    table = run_sensitivity(s).set_index("parameter")
    assert table.loc["x2", "S1"] > table.loc["x1", "S1"] > table.loc["x3", "S1"]
    assert abs(table.loc["x1", "S1"] - 0.314) < 0.08 and abs(table.loc["x2", "S1"] - 0.442) < 0.08
    assert abs(table.loc["x3", "S1"]) < 0.08 and abs(table.loc["x3", "ST"] - 0.244) < 0.06
    assert (table["S1_conf"] > 0).all() and (table["ST_conf"] > 0).all()
    out = tmp_path / "sa"
    written = pd.read_csv(out / "indices.csv")
    assert list(written.columns) == ["output", "method", "parameter", "S1", "S1_conf", "ST", "ST_conf"]
    assert (out / "indices.png").stat().st_size > 5000
    assert len(pd.read_parquet(out / "samples.parquet")) == 1024 * 5


def test_morris_ranks_a_linear_function(tmp_path):
    s = settings(tmp_path, method="morris", samples=6, model="linear",
                 base=[], seeds=[], output="y", n_jobs=1,
                 parameters=[{"name": f"x{i}", "low": 0.0, "high": 1.0} for i in (1, 2, 3)])
    table = run_sensitivity(s).set_index("parameter")
    assert np.allclose(table["mu_star"], [10.0, 1.0, 0.0])
    assert (tmp_path / "sa" / "indices.png").exists()


@pytest.mark.slow  # starts joblib (loky) worker processes
def test_parallel_evaluation_equals_serial():
    points = [{"market.sellers.commission": c} for c in (0.1, 0.2)]
    base = ["market=goods", "scale=tiny", "days=10"]
    serial = evaluate_points(points, base=base, seeds=[1, 2], n_jobs=1)
    parallel = evaluate_points(points, base=base, seeds=[1, 2], n_jobs=2)
    for a, b in zip(serial, parallel):
        assert a["platform.gmv"] == b["platform.gmv"] and a["buyers.active_end"] == b["buyers.active_end"]
    assert serial[0]["platform.take_revenue"] < serial[1]["platform.take_revenue"]


def test_evaluation_uses_common_seeds_and_records_failures():
    points = [{"x": 0.3, "n": 2}, {"x": 0.5, "n": "bad"}]
    res = evaluate_points(points, "bowl", [], [1, 3], n_jobs=1)
    assert res[0]["y"] == pytest.approx(0.02)  # mean of the seeds' offsets 0.01 and 0.03
    assert [v["y"] for v in res[0]["_values"]] == pytest.approx([0.01, 0.03])
    assert "error" in res[1]


def test_real_model_take_rate_dominates_take_revenue(tmp_path):
    """Goods market: the take revenue is commission x GMV, so the take rate must
    matter far more than CS staff (1-3) over one month. Asserted loosely."""
    s = settings(tmp_path, method="morris", samples=3, base=["market=goods", "scale=tiny", "days=30"],
                 seeds=[1], output=["platform.take_revenue", "platform.cs_cost"], n_jobs=1,
                 parameters=[{"name": "market.sellers.commission", "low": 0.05, "high": 0.40},
                             {"name": "cs.staff", "low": 1, "high": 3, "type": "int"}])
    table = run_sensitivity(s)
    take = table[table["output"] == "platform.take_revenue"].set_index("parameter")
    assert take.loc["market.sellers.commission", "mu_star"] > 3 * take.loc["cs.staff", "mu_star"]
    assert take.loc["market.sellers.commission", "mu"] > 0  # more commission, more take revenue
    cs = table[table["output"] == "platform.cs_cost"].set_index("parameter")
    assert cs.loc["cs.staff", "mu_star"] > 10 * cs.loc["market.sellers.commission", "mu_star"]
    samples = pd.read_parquet(tmp_path / "sa" / "samples.parquet")
    assert len(samples) == 3 * 3 and set(samples["param.cs.staff"]) <= {1, 2, 3}


def test_cli_rejects_unknown_output(tmp_path, capsys):
    from experiments.cli import main

    code = main(["sensitivity", "model=linear", "method=morris", "samples=2",
                 "base=[]", "seeds=[]", "output=nope", "n_jobs=1", f"out_dir={tmp_path}",
                 "parameters=[{name: x1, low: 0, high: 1},{name: x2, low: 0, high: 1},{name: x3, low: 0, high: 1}]"])
    assert code == 2 and "nope" in capsys.readouterr().err
