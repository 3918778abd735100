"""twosided calibrate pilot=: a planted effect size is recovered from an engine-made pilot, the profile interval
against a hand computation, and a bad pilot file ends as one paragraph with exit code 2."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from experiments import pilot
from experiments.cli import main as cli_main
from experiments.pilot_fit import fit_grid, fit_one, observe, parse_args, read_pilot

OUTREACH = "policy.proactive_outreach."
# A goods market where weekly outreach calls to buyers move their purchases a lot: buyers nearly alike (r large,
# the same mean rate 0.1 a day) who rarely drop out, and a purchase rate very sensitive to satisfaction. Then the
# buyers' orders difference rises by about 10 orders per agent-month per unit of weight (1.2 to 5.3 across the
# range 0.1-0.5), against a standard error of about 0.33 from one 30-day pilot of 500 buyers: the observed
# interval (+-0.65) pins the weight to about +-0.06.
MARKET = ["market=goods", "scale=tiny", "population.buyers=500", "market.buyers.rate_sensitivity=8.0",
          "market.buyers.purchase.r=50", "market.buyers.purchase.alpha=500", "market.buyers.purchase.b=100"]
AS_PILOTED = [f"{OUTREACH}sides=[buyers]", f"{OUTREACH}capacity_per_cadence=100000", f"{OUTREACH}max_health=100",
              f"{OUTREACH}cooldown_days=7", f"{OUTREACH}cadence_days=7", f"{OUTREACH}level=1.0"]
FIT = ["policy=proactive_outreach", "design=buyers", "metric=orders", "jobs=1", "progress=false"]


def engine_pilot(path, weight: float, seed: int) -> None:
    """A pilot export made by `twosided pilot`'s machinery: the buyers design's first replicate, its agents."""
    settings = pilot.parse_args(["policy=proactive_outreach", "design=buyers", "metric=orders", "days=30",
                                 "replicates=2", "jobs=1", "progress=false", f"seed={seed}",
                                 f"{OUTREACH}weight={weight}", *MARKET, *AS_PILOTED])
    the_plan = pilot.plan(settings)
    runs = {(t.run, t.replicate): pilot.run_task(t) for t in the_plan.tasks() if t.run == "buyers" and t.replicate == 0}
    pilot.agents_frame(the_plan, runs).to_parquet(path)


def test_a_planted_effect_size_is_recovered_within_its_interval(tmp_path, capsys):
    # The pilot runs on seed 100, the candidates on seed 0: the fit sees other luck than the pilot had, as with a
    # real pilot. The interval is the weights whose simulated difference lies within the observed difference's
    # 95% interval, so it holds the planted weight unless the pilot's estimate fell outside its own interval
    # around the simulated curve (5%, and the seeds are fixed) or the 4-point curve is far from straight.
    planted = 0.3
    export = tmp_path / "pilot_agents.parquet"
    engine_pilot(export, planted, seed=100)
    out = tmp_path / "fit"
    assert cli_main(["calibrate", f"pilot={export}", *FIT, "fit=[weight]", "grid=4", "replicates=1", f"out={out}",
                     *MARKET, *AS_PILOTED]) == 0
    result = json.loads((out / "pilot_fit.json").read_text())
    weight = result["parameters"]["weight"]
    assert weight["low"] <= planted <= weight["high"]
    assert weight["high"] - weight["low"] < 0.5 * (0.5 - 0.1)      # identified: well inside the documented range
    assert abs(weight["value"] - planted) < 0.1
    assert result["design"] == "buyers" and result["policy"] == "proactive_outreach" and result["market"] == "goods"
    assert result["observed"]["ci_low"] < result["observed"]["estimate"] < result["observed"]["ci_high"]
    # the candidates' estimates rise with the weight (more calls' worth of satisfaction, more orders)
    assert np.all(np.diff([c["estimate"] for c in result["candidates"]]) > 0)
    arm = (out / "arm" / "proactive_outreach_pilot.yaml").read_text()
    assert f"weight: {round(weight['value'], 6)}" in arm and "cadence_days: 7" in arm
    printed = capsys.readouterr().out
    assert f"TWOSIDED_CONFIG_DIR={out} twosided compare arms=[proactive_outreach_pilot]" in printed


def test_the_profile_interval_is_where_the_curve_crosses_the_observed_interval():
    values = np.array([0.0, 1.0, 2.0])
    curve = np.array([0.0, 2.0, 4.0])                     # estimate = 2 x value
    got = fit_one(values, curve, {"estimate": 1.0, "ci_low": 0.5, "ci_high": 3.0}, points=2001)
    assert got["value"] == pytest.approx(0.5)
    assert (got["low"], got["high"]) == (pytest.approx(0.25), pytest.approx(1.5))
    assert got["reproduced"]
    missed = fit_one(values, curve, {"estimate": 9.0, "ci_low": 8.0, "ci_high": 10.0})
    assert missed["value"] == missed["low"] == missed["high"] == 2.0 and not missed["reproduced"]


def test_two_parameters_keep_every_candidate_inside_the_observed_interval():
    candidates = [{"a": a, "b": b} for a in (0.0, 1.0) for b in (0.0, 1.0)]
    simulated = np.array([0.0, 1.0, 1.3, 3.0])               # candidates (a, b) in grid order: about a + b
    got = fit_grid(candidates, simulated, {"estimate": 1.1, "ci_low": 0.9, "ci_high": 1.5})
    # nearest: (0, 1), 0.1 away
    assert (got["a"]["value"], got["b"]["value"]) == (0.0, 1.0)
    # inside the interval: (0, 1) and (1, 0), so each parameter spans 0-1: the trade-off between them
    assert (got["a"]["low"], got["a"]["high"], got["b"]["low"], got["b"]["high"]) == (0.0, 1.0, 0.0, 1.0)


def test_an_export_with_other_column_names_gives_the_engines_estimate(tmp_path):
    frame = hand_export(n=60)
    frame["design"] = "buyers"
    other = frame.assign(design="clusters", orders=0)      # another design's rows in the same file are left out
    theirs = pd.concat([frame, other]).rename(columns={"id": "customer", "arm": "group", "orders": "n_orders"})
    path = tmp_path / "export.csv"
    theirs.to_csv(path, index=False)
    settings = parse_args([f"pilot={path}", *FIT, "fit=[weight]", "columns.id=customer", "columns.arm=group",
                           "columns.orders=n_orders"])
    agents, days, share = read_pilot(settings, ["buyers", "sellers"], "buyers")
    assert days == 11 and share == pytest.approx(0.5)      # one past the last churn day; half the buyers treated
    got = observe(agents, "orders", days, settings, path)
    mine = {"unit": frame["id"], "treated": frame["arm"] == "treatment", "join_day": frame["join_day"],
            "churn_day": frame["churn_day"], "orders": frame["orders"]}
    want = pilot.analyse(pilot.agent_units(mine, "orders", 11), 0.95)
    assert got["estimate"] == pytest.approx(want["estimate"], rel=1e-12)
    assert (got["units_treated"], got["units_control"]) == (30, 30)


# -- bad input: one paragraph, exit 2, nothing written -------------------------------------------------
def hand_export(n: int = 40, arms=("treatment", "control"), side: str = "buyers") -> pd.DataFrame:
    return pd.DataFrame({"side": side, "id": np.arange(n), "arm": [arms[i % len(arms)] for i in range(n)],
                         "unit": np.arange(n), "join_day": 0, "churn_day": np.where(np.arange(n) % 3 == 0, 10, -1),
                         "orders": np.arange(n) % 4, "margin": 1.0})


@pytest.mark.parametrize("frame, extra, key, says", [
    (hand_export(arms=("treatment",)), [], "pilot", "both arms"),
    (hand_export(side="riders"), [], "pilot", "riders"),
    (hand_export().drop(columns=["join_day"]), [], "pilot", "columns.join_day=THEIRS"),
    (hand_export().rename(columns={"id": "buyer"}), ["columns.id=customer"], "pilot", "missing: customer"),
    (hand_export(n=6), [], "pilot", "min_units_per_arm=5"),
    (hand_export(), ["fit=[cadence_days]"], "fit", "effect sizes of proactive_outreach"),
    (hand_export(), ["fit=[weight,level,onboarding_fix]"], "fit", "one or two"),
    (hand_export(), ["design=two_sided"], "design", "trades"),
    (hand_export(), ["design=sellers"], "design", "not on sellers"),
])
def test_bad_pilot_input_is_one_paragraph_and_exit_2(tmp_path, capsys, frame, extra, key, says):
    export = tmp_path / "export.parquet"
    frame.to_parquet(export)
    args = ["calibrate", f"pilot={export}", *FIT, "fit=[weight]", *MARKET, *AS_PILOTED, *extra,
            f"out={tmp_path / 'out'}"]
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"Invalid config: `{key}`") and "\n" not in err
    assert says in err
    assert not (tmp_path / "out").exists()


def test_a_missing_pilot_file_is_refused(tmp_path, capsys):
    missing = tmp_path / "nope.parquet"
    assert cli_main(["calibrate", f"pilot={missing}", *FIT, "fit=[weight]", *MARKET, *AS_PILOTED]) == 2
    assert "an existing Parquet or CSV file" in capsys.readouterr().err
