"""`twosided calibrate`: bad input, the end-to-end command, the market config it writes."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from experiments import calibrate
from experiments.calibrate import CalibrationError, read_log, read_survival
from experiments.cli import main as cli_main

GOOD = "customer_id,date,amount\na,2024-01-01,10.5\na,2024-01-05,3\nb,2024-01-02,7\n"


def _write(tmp_path, text, name="log.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# -- bad input: one clear paragraph naming the file, the line and the problem -----

@pytest.mark.parametrize("text,expected", [
    ("customer_id,date\na,2024-01-01\n", ["missing column 'amount'", "columns.amount="]),
    ("customer_id,date,amount\n", ["empty"]),
    ("", ["empty"]),
    ("customer_id,date,amount\na,2024-01-01,1\nb,2024-13-45,2\n", ["line 3", "cannot read the date '2024-13-45'"]),
    ("customer_id,date,amount\na,2024-01-01,1\nb,2024-01-02,-4\n", ["line 3", "negative"]),
    ("customer_id,date,amount\na,2024-01-01,1\nb,2024-01-02,abc\nc,2024-01-03,x\n",
     ["line 3", "'abc'", "not a number", "1 more line"]),
    ("customer_id,date,amount\na,2024-01-01,\n", ["line 2", "amount", "empty"]),
    ("customer_id,date,amount\n,2024-01-01,1\n", ["line 2", "customer id", "empty"]),
    ("customer_id,date,amount\na,,1\n", ["line 2", "date", "empty"]),
])
def test_bad_log_gets_a_clear_error(tmp_path, capsys, text, expected):
    path = _write(tmp_path, text)
    assert cli_main(["calibrate", f"data={path}", f"out={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(path) in err
    for fragment in expected:
        assert fragment in err, err
    assert "Traceback" not in err and "\n" not in err  # one paragraph


def test_bad_parquet_names_the_row(tmp_path):
    path = tmp_path / "log.parquet"
    log = {"customer_id": ["a", "b"], "date": ["2024-01-01", "2024-01-02"], "amount": [1.0, -2.0]}
    pd.DataFrame(log).to_parquet(path)
    with pytest.raises(CalibrationError, match=r"log.parquet, row 2: the amount '-2.0'.*negative"):
        read_log(path)


def test_missing_file_and_unknown_option(tmp_path, capsys):
    assert cli_main(["calibrate", f"data={tmp_path / 'nope.csv'}"]) == 2
    assert "nope.csv: transaction log not found" in capsys.readouterr().err
    path = _write(tmp_path, GOOD)
    assert cli_main(["calibrate", f"data={path}", "holdout=3"]) == 2
    assert "unknown or invalid option" in capsys.readouterr().err
    assert cli_main(["calibrate"]) == 2
    assert "nothing to fit" in capsys.readouterr().err


def test_custom_columns_same_day_orders_and_times(tmp_path):
    text = "user,when,value\nu1,2024-01-01 09:00,5\nu1,2024-01-01T18:30:00,7\nu1,2024/01/03,1\nu2,2024-01-02,0\n"
    orders = read_log(_write(tmp_path, text), customer="user", date="when", amount="value")
    assert len(orders) == 4  # every row kept
    tx = calibrate.to_transactions(orders)
    assert tx.day.tolist() == [0, 2, 1] and tx.amount.tolist() == [12.0, 1.0, 0.0]  # same-day orders merged
    cal = calibrate.summarise(tx, tx.n_days)
    assert cal.x.tolist() == [1.0, 0.0] and cal.t_x.tolist() == [2.0, 0.0] and cal.T.tolist() == [2.5, 1.5]


@pytest.mark.parametrize("text,expected", [
    ("period,active\n0,100\n1,120\n", "rises from 100 to 120"),
    ("period,active\n0,100\n2,80\n", "without gaps"),
    ("period,active\n0,100\n1,x\n", "line 3: active 'x' is not a whole number"),
    ("period,alive\n0,100\n", "missing column 'active'"),
])
def test_bad_survival_table(tmp_path, text, expected):
    with pytest.raises(CalibrationError, match=expected):
        read_survival(_write(tmp_path, text, "survival.csv"))


# -- the whole command on an engine log -----------------------------------------

@pytest.fixture(scope="module")
def engine_log(tmp_path_factory):
    """3,000 initial buyers plus acquired ones (staggered join days), effects off."""
    overrides = ["market=goods", "experience_effects=false", "population.buyers=3000", "population.sellers=100",
                 "days=300", "seed=3", "market.sellers.price_level_cv=0", "market.buyers.acquisition.referral_rate=0"]
    path = tmp_path_factory.mktemp("log") / "orders.csv"
    calibrate.engine_transaction_log(overrides).to_csv(path, index=False)
    return path


def test_calibrate_command_end_to_end(engine_log, tmp_path, capsys, monkeypatch):
    survival = tmp_path / "sellers.csv"
    pd.DataFrame({"period": range(5), "active": [1000, 930, 880, 845, 815]}).to_csv(survival, index=False)
    out = tmp_path / "out"
    code = cli_main(["calibrate", f"data={engine_log}", "holdout_days=60", "replicates=4", f"survival={survival}",
                     f"out={out}"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"twosided compare market={out / 'market' / 'calibrated.yaml'}" in printed
    fit = json.loads((out / "fit.json").read_text())
    for k in ("r", "alpha", "a", "b"):
        assert fit["bgnbd"][k]["value"] > 0 and fit["bgnbd"][k]["se"] > 0
    for k in ("p", "q", "v"):
        assert fit["gamma_gamma"][k]["value"] > 0 and fit["gamma_gamma"][k]["se"] > 0
    assert fit["bgnbd"]["customers"] == fit["calibration"]["customers"] and fit["bgnbd"]["log_likelihood"] < 0
    h = fit["holdout"]
    assert h["actual"] > 0 and h["simulated"] > 0 and h["closed_form"] > 0
    assert abs(h["simulated_error_pct"]) < 25 and abs(h["conditional"]["simulated_error_pct"]) < 25
    table = pd.read_parquet(out / "holdout.parquet")
    assert {"day", "actual_cum", "simulated_cum", "closed_form_cum"} <= set(table.columns)
    assert table["actual_cum"].iloc[-1] - table["actual_cum"].iloc[h["start_day"] - 1] == h["actual"]
    for name in ("report.md", "report.html", "tracking.png", "holdout_histogram.png", "conditional_by_frequency.png"):
        assert (out / name).stat().st_size > 0
    assert "sbg" in fit and fit["sbg"]["side"] == "sellers"

    # the market config parses, carries the fitted values, and composes by its path and from a user config folder
    written = yaml.safe_load((out / "market" / "calibrated.yaml").read_text())
    assert written["buyers"]["purchase"]["r"] == pytest.approx(fit["bgnbd"]["r"]["value"])
    assert written["buyers"]["spend"]["gamma"] == pytest.approx(fit["gamma_gamma"]["v"]["value"])
    assert written["sellers"]["churn"]["beta_b"] == pytest.approx(fit["sbg"]["beta_b"]["value"])
    from experiments.config import load_config

    monkeypatch.setenv("TWOSIDED_CONFIG_DIR", str(out))
    for market in (str(out / "market" / "calibrated.yaml"), "calibrated"):
        cfg = load_config([f"market={market}"])
        assert cfg.market.buyers.purchase.alpha == pytest.approx(fit["bgnbd"]["alpha"]["value"])
        assert cfg.market.sellers.churn.beta_a == pytest.approx(fit["sbg"]["beta_a"]["value"])
    # and the same values as plain overrides of the base market
    typed = load_config(["market=goods", *(f"{k}={v}" for k, v in fit["overrides"].items())])
    assert typed.market.buyers.spend.q == pytest.approx(fit["gamma_gamma"]["q"]["value"])


def test_tracking_simulation_matches_closed_form():
    # the engine's buyer rules against E[X(t)]: 4,000 customers x 10 replicates, joins spread over 100 days
    params = {"r": 0.8, "alpha": 20.0, "a": 0.8, "b": 2.5}
    join = np.repeat(np.arange(100), 40)
    daily = calibrate.simulate_tracking(params, join, 200, 10, seed=4)
    closed = calibrate.closed_form_tracking(params, join, 200)
    simulated = daily.sum(axis=1).mean()
    # the closed form counts every purchase; the simulation merges same-day ones (a few per cent here)
    assert simulated == pytest.approx(closed[-1], rel=0.06)
    assert simulated < closed[-1]
