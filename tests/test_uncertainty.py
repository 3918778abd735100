"""Decisions under parameter uncertainty: the analysis against a case with a known answer, the settings and
their refusals, and one tiny `twosided compare uncertainty=` end to end (shape, resume)."""
from __future__ import annotations

import json
import math
import os
import subprocess

import numpy as np
import pytest
from scipy import stats

from experiments import compare as cmp
from experiments import decision
from experiments.uncertainty import CONF_DIR, assumed_ranges, load_uncertainty, ranges_in_yaml
from sim.config import ConfigError
from sim.streams import ATTRIBUTE_DAY, Streams

# -- the known answer: gain_A - gain_B = theta - c, theta ~ Normal(mu, sigma) ---------------------------------
MU, SIGMA, C = 1.0, 1.0, 0.7
M = MU - C                  # X = theta - c ~ N(M, SIGMA)
Z = M / SIGMA
K = 4_000                   # draws
NOISE_SD, REPS = 0.5, 4     # seed noise of one replicate's gain, replicates per draw


def _draws(noise_sd: float = 0.0):
    """gains (K x REPS x 2: B is the reference, A gains theta - c), theta and an irrelevant psi, from the
    project's streams at fixed seeds."""
    s = Streams(11, any_name=True)
    ids = np.arange(K)
    theta = MU + SIGMA * s.normal("test.theta", ATTRIBUTE_DAY, ids)
    psi = s.uniform("test.psi", ATTRIBUTE_DAY, ids)
    noise = noise_sd * s.normal("test.noise", ATTRIBUTE_DAY, ids[:, None], sub=np.arange(REPS)[None, :])
    gains = np.zeros((K, REPS, 2))
    gains[:, :, 1] = (theta - C)[:, None] + noise
    return gains, theta, psi


def _negative_part_sd() -> float:
    """sd of max(-X, 0) for X ~ N(M, S = SIGMA), Y = -X:
    E[Y+^2] = (M^2 + S^2) Phi(-Z) - M S phi(Z), E[Y+] = S phi(Z) - M Phi(-Z)."""
    first = SIGMA * stats.norm.pdf(Z) - M * stats.norm.cdf(-Z)
    second = (M ** 2 + SIGMA ** 2) * stats.norm.cdf(-Z) - M * SIGMA * stats.norm.pdf(Z)
    return math.sqrt(second - first ** 2)


EVPI_TRUE = SIGMA * stats.norm.pdf(Z) + M * stats.norm.cdf(Z) - max(M, 0.0)   # E[max(X,0)] - max(E X, 0)
P_BEST_A = stats.norm.cdf(Z)
# Tolerances: 4 Monte Carlo standard errors at K draws. p_best is a binomial share. With E[X] = 0.3 SIGMA, the
# mean of K draws is positive with certainty (19 standard errors), so EVPI's estimator is exactly the mean of
# max(-X, 0), whose standard error is its sd / sqrt(K).
P_TOL = 4 * math.sqrt(P_BEST_A * (1 - P_BEST_A) / K)
EVPI_TOL = 4 * _negative_part_sd() / math.sqrt(K)


def test_probability_best_and_evpi_match_the_normal_formulas():
    gains, theta, _ = _draws()
    values = decision.per_draw(gains)
    best = decision.p_best(values)
    assert abs(best[1] - P_BEST_A) < P_TOL and best.sum() == pytest.approx(1.0)
    assert abs(decision.evpi(values) - EVPI_TRUE) < EVPI_TOL
    # one parameter decides everything: its EVPPI is the EVPI (the fit is the line theta - c)
    assert abs(decision.evppi(values, theta[:, None]) - EVPI_TRUE) < EVPI_TOL


def test_evppi_sees_through_seed_noise_and_an_irrelevant_parameter_is_worth_nothing():
    gains, theta, psi = _draws(NOISE_SD)
    values = decision.per_draw(gains)
    # regression on theta removes the seed noise that inflates the raw EVPI; the noise-free estimator's
    # standard error bounds the regression estimator's (4 of them, as above)
    assert abs(decision.evppi(values, theta[:, None]) - EVPI_TRUE) < EVPI_TOL
    assert decision.evpi(values) > decision.evppi(values, theta[:, None])
    # psi does not enter the gains: its fit is flat up to noise of order SIGMA / sqrt(K) = 0.01, far from the
    # decision boundary (E[X] = 0.3), so max(fit, 0) = fit and EVPPI is 0 up to rounding
    assert decision.evppi(values, psi[:, None]) < 1e-3
    assert decision.evppi(values, theta[:, None], depends=[True, False]) == pytest.approx(0.0, abs=1e-12)
    assert decision.evppi(values, np.column_stack([theta, psi])) == pytest.approx(
        decision.evppi(values, theta[:, None]), abs=EVPI_TOL)
    # seed-noise share: (NOISE_SD^2 / REPS) / (SIGMA^2 + NOISE_SD^2 / REPS), within 4 standard errors of the
    # variance ratio (relative error of a variance from K draws: sqrt(2 / K))
    share = decision.mc_share(gains)
    expected = NOISE_SD ** 2 / REPS / (SIGMA ** 2 + NOISE_SD ** 2 / REPS)
    assert math.isnan(share[0]) and abs(share[1] - expected) < 4 * math.sqrt(2 / K) * 2 * expected


def test_decision_json_shape_ties_and_a_group_nobody_uses():
    gains = np.zeros((6, 2, 3))
    gains[:, :, 1] = np.arange(6)[:, None] - 2.0   # best in draws 3-5
    gains[:, :, 2] = gains[:, :, 1]                 # a twin: ties are shared
    x = np.arange(6.0)[:, None]
    out = decision.decide(gains, ["none", "a", "b"], {"g": (x, [False, True, True]), "unused": None}, 0.9)
    assert set(out) == {"arms", "evpi", "evppi"} and set(out["arms"]) == {"none", "a", "b"}
    assert set(out["arms"]["a"]["gain"]) == {"mean", "low", "high"}
    # draws 0-1: none best; draw 2: all tie at 0 (a third each); draws 3-5: a and b share
    assert out["arms"]["none"]["p_best"] == pytest.approx((2 + 1 / 3) / 6)
    assert out["arms"]["a"]["p_best"] == pytest.approx((1 / 3 + 1.5) / 6)
    assert sum(v["p_best"] for v in out["arms"].values()) == pytest.approx(1.0)
    # E[max(g, 0)] = (1 + 2 + 3) / 6 = 1, max E = 0.5
    assert out["evpi"] == pytest.approx(0.5) and out["evppi"]["unused"] == 0.0
    assert out["evppi"]["g"] == pytest.approx(0.5, abs=1e-6)
    assert out["arms"]["a"]["gain"]["low"] < out["arms"]["a"]["gain"]["mean"] < out["arms"]["a"]["gain"]["high"]


# -- the settings ------------------------------------------------------------------------------------------
def test_assumed_ranges_are_read_from_the_comments_of_conf():
    fair = ranges_in_yaml(CONF_DIR / "policy" / "fair_disputes.yaml", "policy.")
    assert fair["policy.fair_disputes.review_minutes"] == (5.0, 30.0)
    assert fair["policy.fair_disputes.evidence_accuracy"] == (0.5, 0.95)   # on the comment's second line
    assert "policy.fair_disputes.priority" not in fair
    delivery, goods = assumed_ranges("delivery"), assumed_ranges("goods")
    assert delivery["policy.segmented.enterprise.weight"] == (0.2, 0.6)
    assert delivery["market.buyers.acquisition.network_elasticity"] == (0.3, 1.5)
    assert delivery["market.sellers.outside_option.take_rate"] == (0.15, 0.30)   # the market's own file wins
    assert goods["market.sellers.outside_option.take_rate"] == (0.05, 0.30)


@pytest.fixture(scope="module")
def resolved():
    from omegaconf import OmegaConf

    from experiments.config import compose_config

    return {"none": OmegaConf.to_container(compose_config(["scale=tiny"]), resolve=True)}


def test_the_default_setting_draws_every_parameter_inside_its_support_reproducibly(resolved):
    u = load_uncertainty("default", resolved, "delivery")
    assert {"outreach_effect", "tech_touch_effect", "staff_cost", "elasticities"} <= set(u.groups)
    weight = next(p for p in u.parameters if p.key == "policy.tech_touch.weight")
    assert weight.dist == "triangular" and weight.args == {"low": 0.01, "mode": 0.05, "high": 0.1}
    staff = next(p for p in u.parameters if p.key == "cs.staff_cost_per_day")
    assert staff.args == {"sigma": 0.2, "median": 200.0}
    draws = u.draw(seed=5, draws=40)
    assert draws == u.draw(seed=5, draws=40) and draws[:10] == u.draw(seed=5, draws=10)
    assert draws != u.draw(seed=6, draws=40)
    for p in u.parameters:
        values = np.array([d[p.key] for d in draws])
        low, high = p.frozen().support()
        assert np.all((values >= low) & (values <= high)) and np.ptp(values) > 0, p.key
    capacity = [d["policy.proactive_outreach.minutes_per_touch"] for d in draws]
    assert all(isinstance(v, float) for v in capacity)


def _bad_setting(tmp_path, text: str) -> str:
    path = tmp_path / "u.yaml"
    path.write_text(text)
    return str(path)


def test_calibrated_parameters_take_their_fitted_standard_errors(tmp_path, resolved):
    # A fit.json as `twosided calibrate` writes it (BG/NBD and sBG for sellers; no usable spend fit: q <= 1).
    fit = {"bgnbd": {k: {"value": v, "se": se} for k, v, se in
                     (("r", 0.25, 0.02), ("alpha", 4.0, 0.5), ("a", 0.8, 0.1), ("b", 2.5, 0.4))},
           "gamma_gamma": {"p": {"value": 6.0, "se": 0.5}, "q": {"value": 0.9, "se": 0.1},
                           "v": {"value": 15.0, "se": 2.0}},
           "sbg": {"beta_a": {"value": 0.7, "se": 0.05}, "beta_b": {"value": 8.0, "se": 1.5}, "side": "sellers"}}
    (tmp_path / "fit.json").write_text(json.dumps(fit))
    setting = tmp_path / "u.yaml"
    setting.write_text("groups:\n  calibrated_buyers:\n    from_fit: fit.json\n")   # relative to the setting
    u = load_uncertainty(str(setting), resolved, "delivery")
    by_key = {p.key: p for p in u.parameters}
    assert set(by_key) == {"market.buyers.purchase.r", "market.buyers.purchase.alpha", "market.buyers.purchase.a",
                           "market.buyers.purchase.b", "market.sellers.churn.beta_a", "market.sellers.churn.beta_b"}
    alpha = by_key["market.buyers.purchase.alpha"]
    assert alpha.dist == "normal" and alpha.args["mean"] == 4.0 and alpha.args["sd"] == 0.5
    draws = np.array([d["market.buyers.purchase.alpha"] for d in u.draw(seed=3, draws=2000)])
    # 2,000 draws of N(4, 0.5) (truncation at 0 is 8 sd away): mean within 4 standard errors, sd within 10%
    assert abs(draws.mean() - 4.0) < 4 * 0.5 / np.sqrt(2000) and abs(draws.std() / 0.5 - 1) < 0.1
    fit["bgnbd"]["r"]["se"] = float("nan")
    (tmp_path / "fit.json").write_text(json.dumps(fit))
    with pytest.raises(ConfigError, match="bgnbd.r"):
        load_uncertainty(str(setting), resolved, "delivery")


@pytest.mark.parametrize("body, key, says", [
    ("groups:\n  g:\n    policy.tech_touch.weight: poisson\n", "groups.g.policy.tech_touch.weight", "lognormal"),
    ("groups:\n  g:\n    cs.staff_cost_per_day: triangular\n", "groups.g.cs.staff_cost_per_day", "low and high"),
    ("groups:\n  g:\n    policy.tech_touch.weight: {dist: uniform, low: 0.2, high: 0.1}\n",
     "groups.g.policy.tech_touch.weight.high", "above low"),
    ("groups:\n  g:\n    policy.tech_touch.weight: {dist: lognormal, sigma: -1}\n",
     "groups.g.policy.tech_touch.weight.sigma", "> 0"),
    ("groups:\n  g:\n    policy.tech_touch.weight: {dist: triangular, mode: 0.5}\n",
     "groups.g.policy.tech_touch.weight.mode", "[low, high]"),
    ("groups:\n  g:\n    policy.tech_touch.sides: uniform\n", "groups.g.policy.tech_touch.sides", "numeric"),
    ("parameters: []\n", "uncertainty", "groups"),
])
def test_bad_distributions_are_refused_naming_the_key(tmp_path, resolved, body, key, says):
    with pytest.raises(ConfigError) as info:
        load_uncertainty(_bad_setting(tmp_path, body), resolved, "delivery")
    assert info.value.key == key and says in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("body, key", [
    ("groups:\n  g:\n    policy.tech_touch.wieght: triangular\n", "`groups.g.policy.tech_touch.wieght`"),
    ("groups:\n  g:\n    policy.tech_touch.weight: {dist: normal, sd: 0.5}\n",
     "groups.g.policy.tech_touch.weight`"),   # draws below 0: the policy refuses them, before any run
])
def test_the_command_refuses_a_parameter_that_does_not_exist_or_a_draw_it_cannot_run(tmp_path, capsys, body, key):
    args = ["arms=[tech_touch]", "scale=tiny", "days=5", "replicates=2", "progress=false",
            f"uncertainty={_bad_setting(tmp_path, body)}", "draws=8", f"out={tmp_path / 'c'}"]
    assert cmp.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and key in err, err
    assert not (tmp_path / "c").exists()   # refused before the folder, before any run


@pytest.mark.parametrize("args, key", [(["uncertainty=nonesuch"], "uncertainty"),
                                       (["uncertainty=default", "draws=0"], "draws"),
                                       (["draws=5"], "draws"),
                                       (["uncertainty=default", "crn_check=true"], "crn_check")])
def test_bad_uncertainty_arguments_exit_2_naming_the_key_before_composing(tmp_path, capsys, args, key):
    assert cmp.main(["arms=[tech_touch]", "scale=tiny", "days=5", *args, f"out={tmp_path / 'c'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"`{key}`" in err and "Traceback" not in err, err


# -- end to end: the engine's own parameter drives the ranking ---------------------------------------------
SETTING = """groups:
  nudge_effect:
    policy.tech_touch.weight: {dist: uniform, low: 0.0, high: 0.6}
  win_back_effect:          # no arm runs win_back: worth nothing
    policy.win_back.accept_prob: triangular
"""
DRAWS, REPLICATES = 6, 2


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("unc")
    setting = root / "nudge.yaml"
    setting.write_text(SETTING)
    out = root / "c"
    args = ["arms=[tech_touch]", "scale=tiny", "days=25", f"replicates={REPLICATES}", f"draws={DRAWS}",
            f"uncertainty={setting}", "jobs=1", "progress=false", f"out={out}"]
    assert cmp.main(args) == 0
    return args, out


def test_decision_json_from_a_tiny_uncertainty_comparison(tiny_run):
    _, out = tiny_run
    d = json.loads((out / "decision.json").read_text())
    assert set(d) == {"arms", "evpi", "evppi"} and set(d["arms"]) == {"none", "tech_touch"}
    assert sum(v["p_best"] for v in d["arms"].values()) == pytest.approx(1.0)
    assert d["evpi"] >= 0 and d["evppi"]["win_back_effect"] == 0.0
    # EVPPI <= EVPI up to the regression's noise: a fit never spreads wider than the values it smooths by more
    # than its overshoot; allow 10% of EVPI
    assert 0 < d["evppi"]["nudge_effect"] <= 1.1 * d["evpi"]
    draws = (out / "draws.csv").read_text().splitlines()
    assert len(draws) == DRAWS + 1 and "policy.tech_touch.weight" in draws[0]
    runs = sorted(p.name for p in (out / "runs").glob("*.pkl"))
    assert len(runs) == DRAWS * 2 * REPLICATES and runs[0] == "main-d0000-a00-r00000.pkl"
    text = (out / "report.md").read_text()
    assert text.index("## The decision under parameter uncertainty") < text.index("## The answer")
    assert "evppi.png" in text and (out / "evppi.png").stat().st_size > 0
    # the group that drives the gain is named; the one no arm uses (EVPPI exactly 0) never could be
    worth = "most worth a pilot is **nudge_effect**" if d["evppi"]["nudge_effect"] >= 0.01 * d["evpi"] \
        else "No assumption is worth a pilot"
    assert worth in text and "most worth a pilot is **win_back_effect**" not in text


def test_the_drawn_nudge_effect_drives_tech_touchs_gain(tiny_run):
    """Within a draw both arms share seeds, so the gain is the policy's effect; across draws it should rise
    with the nudge's weight (0 -> 0.6, a range wide enough for 25 days at scale=tiny to show it)."""
    import pandas as pd

    _, out = tiny_run
    table = pd.read_csv(out / "draws.csv")
    rho = stats.spearmanr(table["policy.tech_touch.weight"], table["gain tech_touch"]).statistic
    assert rho > 0.5, table


def test_an_interrupted_uncertainty_comparison_resumes_to_the_same_decision(tiny_run, tmp_path):
    """A run that had not ended when the comparison was killed has no file (runs are saved atomically as they
    end): remove some, and leave the lock of a dead process, as kill -9 does; the rerun simulates only those."""
    import shutil

    from experiments.folder import OutputFolder

    args, out = tiny_run
    copy = tmp_path / "c"
    shutil.copytree(out, copy)
    removed = sorted((copy / "runs").glob("*.pkl"))[1::8]
    for run in removed:
        run.unlink()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (copy / ".lock").write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename}))
    p = cmp.plan(cmp.parse_args([*args[:-1], f"out={copy}"]))
    with OutputFolder(copy, p.spec()) as folder:
        resumed = cmp.run_plan(p, folder)
    assert resumed.resumed == DRAWS * 2 * REPLICATES - len(removed) and all(r.exists() for r in removed)
    assert resumed.decision == json.loads((out / "decision.json").read_text())
