"""twosided pilot: treatment assignment, the one filter policies pass through, the analyst's estimator, and
the estimate against the rollout truth (negative control; a policy without a cross-agent channel)."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from experiments.cli import main as cli_main
from experiments.config import load_config
from experiments.pilot import analyse, days_for_power, parse_args, plan, power, run_plan, run_task, summarise
from sim import Marketplace
from sim.config import ConfigError
from sim.metrics import MONTH_DAYS
from sim.treatment import Assignment, Design, treated_units, zone_of

FAST = ["jobs=1", "progress=false"]


# -- assignment ------------------------------------------------------------------------------------
def test_agent_mask_is_a_pure_function_of_seed_side_and_id_and_is_balanced():
    ids = np.arange(20_000)
    first = Assignment(Design("drivers", 0.3), seed=7).treated("drivers", ids, day=0)
    again = Assignment(Design("drivers", 0.3), seed=7).treated("drivers", ids[::-1], day=50)[::-1]
    np.testing.assert_array_equal(first, again)   # any order, any day: the same arm for the same agent
    assert not np.array_equal(first, Assignment(Design("drivers", 0.3), seed=8).treated("drivers", ids, 0))
    # a late joiner (a high id) is assigned without anything being stored: its arm is its draw
    np.testing.assert_array_equal(first[15_000:], Assignment(Design("drivers", 0.3), 7).treated(
        "drivers", np.arange(15_000, 20_000), 0))
    # Binomial(20000, 0.3): sd of the share = sqrt(0.3 * 0.7 / 20000) = 0.0032; 4 sd
    assert abs(first.mean() - 0.3) < 4 * math.sqrt(0.3 * 0.7 / ids.size)
    assert not Assignment(Design("drivers", 0.3), 7).treated("buyers", ids, 0).any()   # other sides untreated


def test_clusters_and_periods_are_completely_randomised():
    a = Assignment(Design("clusters", 0.5, zones_per_axis=4), seed=3)
    zones_treated = {int(z) for z in range(16) if a._units[z]}
    assert len(zones_treated) == 8
    ids = np.arange(5000)
    zone = zone_of(a._streams, "buyers", ids, 4)
    np.testing.assert_array_equal(a.treated("buyers", ids, 0), np.isin(zone, list(zones_treated)))
    periods = treated_units(a._streams, 13, 0.5)
    assert periods.sum() == round(0.5 * 13)
    s = Assignment(Design("switchback", 0.5, period_days=7, days=91), seed=3)
    arms = [s.period_treated(d) for d in range(91)]
    assert sum(arms) == 7 * round(0.5 * 13)                        # whole periods, round(share * periods) of them
    assert all(arms[d] == arms[d - d % 7] for d in range(91))      # constant within a period


def test_two_sided_randomises_every_side_independently_with_each_sides_own_draw():
    ids = np.arange(20_000)
    both = Assignment(Design("two_sided", 0.3), seed=7)
    sd = 4 * math.sqrt(0.3 * 0.7 / ids.size)   # Binomial(20000, 0.3) share: 4 sd
    arms = {}
    for side in ("buyers", "sellers", "drivers"):
        arms[side] = both.treated(side, ids, day=0)
        assert abs(arms[side].mean() - 0.3) < sd
        # an agent has the arm its own side's design would give it
        np.testing.assert_array_equal(arms[side], Assignment(Design(side, 0.3), seed=7).treated(side, ids, 0))
    # the sides' draws are independent: agent i of one side and agent i of another share no arm more than chance
    both_treated = (arms["buyers"] & arms["drivers"]).mean()
    assert abs(both_treated - 0.09) < 4 * math.sqrt(0.09 * 0.91 / ids.size)


def test_zone_is_where_the_agent_joined():
    cfg = load_config(["market=rides", "scale=tiny", "policy=none", "days=5"])
    model = Marketplace(cfg)
    drivers = model.sides["drivers"]
    n = drivers.n
    start = np.minimum((drivers.x[:n] * 4).astype(int), 3) + 4 * np.minimum((drivers.y[:n] * 4).astype(int), 3)
    np.testing.assert_array_equal(zone_of(model.streams, "drivers", np.arange(n), 4), start)


def test_policies_reach_treated_agents_only():
    overrides = ["market=rides", "scale=tiny", "policy=tech_touch", "days=21", "policy.tech_touch.sides=[drivers]",
                 "policy.tech_touch.cooldown_days=1"]
    cfg = load_config(overrides)
    assignment = Assignment(Design("drivers", 0.5), cfg.seed)
    model = Marketplace(cfg, treatment=assignment)
    model.run()
    n = model.sides["drivers"].n
    treated = assignment.treated("drivers", np.arange(n), 0)
    nudges = model.cs.state["drivers"].nudges[:n]
    assert nudges[treated].sum() > 0          # the policy acted...
    assert nudges[~treated].sum() == 0        # ...on treated drivers only
    everyone = Marketplace(load_config(overrides))
    everyone.run()
    assert everyone.cs.state["drivers"].nudges[:n][~treated].sum() > 0   # without a pilot, control drivers get some


def test_an_offer_reaches_treated_sellers_only():
    # Called with every seller, the offer action itself drops the control ones (not only the view's lists).
    cfg = load_config(["market=delivery", "scale=tiny", "policy=expansion_offers", "days=10",
                       "policy.expansion_offers.capacity_per_cadence=100000"])
    assignment = Assignment(Design("sellers", 0.5), cfg.seed)
    model = Marketplace(cfg, treatment=assignment)
    model.run_until(5)
    n = model.sides["sellers"].n
    treated = assignment.treated("sellers", np.arange(n), model.day)
    policy = model.cs.policies[0]
    got = model.cs.actions.offer_product(policy, np.arange(n), "premium", cost_each=0.0, accept_prob=1.0,
                                 success_sensitivity=0.0, backfire=0.0, account=policy.key)
    assert got["offered"].size > 0 and treated[got["offered"]].all()


# -- the analyst's estimator and power, against a hand computation -----------------------------------
def test_estimate_and_power_match_a_hand_delta_method():
    rng = np.random.default_rng(0)   # test data only (the model draws from sim/streams.py)
    units = pd.DataFrame({"unit": np.arange(40), "scale": rng.uniform(20, 60, 40),
                          "treatment": ["treatment"] * 20 + ["control"] * 20})
    units["target"] = units["scale"] * rng.uniform(0.01, 0.05, 40)
    got = analyse(units, confidence=0.9)

    def ratio_and_variance(arm):
        y, e = arm["target"].to_numpy(), arm["scale"].to_numpy()
        r = y.sum() / e.sum()
        # delta method for mean(y) / mean(e): var((y - r e) / mean(e)) / n, population moments
        return r, np.var((y - r * e) / e.mean()) / y.size

    rt, vt = ratio_and_variance(units[units.treatment == "treatment"])
    rc, vc = ratio_and_variance(units[units.treatment == "control"])
    se = math.sqrt(vt + vc)
    z = stats.norm.ppf(0.95)
    assert got["estimate"] == pytest.approx(MONTH_DAYS * (rt - rc), rel=1e-12)
    assert got["se"] == pytest.approx(MONTH_DAYS * se, rel=1e-9)
    assert got["ci_low"] == pytest.approx(MONTH_DAYS * (rt - rc - z * se), rel=1e-9)
    effect, s = 0.5, 0.2
    hand = stats.norm.cdf(-stats.norm.ppf(0.975) + effect / s) + stats.norm.cdf(-stats.norm.ppf(0.975) - effect / s)
    assert power(effect, s, 0.05) == pytest.approx(hand, rel=1e-12)
    # at the days it recommends, the same standard error shrunk by sqrt(days) gives the target power
    days = days_for_power(effect, s, 90, 0.05, 0.8)
    assert power(effect, s * math.sqrt(90 / days), 0.05) == pytest.approx(0.8, abs=0.01)


# -- the estimate against the rollout truth ------------------------------------------------------------
def test_negative_control_every_design_estimates_zero_and_the_gte_is_exactly_zero(tmp_path):
    result = run_plan(plan(parse_args(["policy=none", "design=all", "market=rides", "scale=tiny", "days=30",
                                       "replicates=2", "period_days=1", "confidence=0.999", *FAST])))
    assert set(result.table["design"]) == {"drivers", "clusters", "switchback"}
    assert (result.replicates["gte"] == 0.0).all()
    # no policy, so treated and control differ by the draw of units only: each 99.9% interval holds 0
    # (a chance miss has probability 0.001 per interval). Switchback runs 1-day periods: its interval treats
    # periods as exchangeable, which 4 weekly periods of a 30-day market still settling are not.
    assert ((result.replicates["ci_low"] <= 0) & (0 <= result.replicates["ci_high"])).all()


def test_two_sided_negative_control_and_its_trades_add_up():
    p = plan(parse_args(["policy=none", "design=two_sided", "metric=orders", "market=rides", "scale=tiny",
                         "days=30", "replicates=2", "confidence=0.999", *FAST]))
    assert p.designs == ["two_sided"] and (p.side, p.counterpart) == ("drivers", "buyers")
    runs = {(t.run, t.replicate): run_task(t) for t in p.tasks()}
    drivers = runs[("two_sided", 0)]["agents"]["drivers"]
    # every completed trip of a driver is with a treated or a control rider, once
    np.testing.assert_array_equal(drivers["trades_with_treated"] + drivers["trades_with_control"], drivers["orders"])
    assert drivers["trades_with_treated"].sum() > 0 and drivers["trades_with_control"].sum() > 0
    table, per_rep = summarise(p, runs)
    assert (per_rep["gte"] == 0.0).all()
    # no policy: treated-treated and control-control trips differ by the draw of arms only; each 99.9% interval
    # holds 0 (a chance miss has probability 0.001 per interval)
    assert ((per_rep["ci_low"] <= 0) & (0 <= per_rep["ci_high"])).all()


def test_two_sided_measures_trades_only():
    with pytest.raises(ConfigError, match="metric=orders"):
        plan(parse_args(["policy=fair_disputes", "design=two_sided", "market=rides", "scale=tiny", *FAST]))
    designs = plan(parse_args(["policy=fair_disputes", "design=all", "metric=orders", "market=rides",
                               "scale=tiny", *FAST])).designs
    assert "two_sided" in designs   # with the default metric (churn) design=all leaves it out: see the negative control


def test_a_policy_without_a_cross_agent_channel_is_estimated_without_bias():
    # Buyers of goods compete for nothing scarce (every seller serves every order), so treated buyers' extra
    # orders do not come out of control buyers'. Strong calls to every buyer every day, purchase rate very
    # sensitive to satisfaction: a large direct effect on orders.
    call = "policy.proactive_outreach."
    result = run_plan(plan(parse_args([
        "policy=proactive_outreach", "design=buyers", "metric=orders", "market=goods", "scale=tiny", "days=30",
        "replicates=3", "market.buyers.rate_sensitivity=8.0", f"{call}sides=[buyers]",
        f"{call}capacity_per_cadence=100000", f"{call}max_health=100", f"{call}cooldown_days=1",
        f"{call}cadence_days=1", f"{call}weight=1.0", f"{call}level=1.0", *FAST])))
    row = result.table.iloc[0]
    # the mean error over R replicates has sd about se / sqrt(R) (se: one pilot's standard error); 3 sd
    tolerance = 3 * row["se"] / math.sqrt(row["replicates"])
    assert row["gte"] > 2 * tolerance           # the effect is large enough that a missed filter would show
    assert abs(row["bias"]) < tolerance


# -- bad input: one paragraph, exit 2 --------------------------------------------------------------------
@pytest.mark.parametrize("args, key", [
    (["design=stepped_wedge"], "design"),
    (["share=1.0"], "share"),
    (["share=0"], "share"),
    (["design=clusters", "market=goods", "policy=proactive_outreach"], "design"),
    (["design=buyers", "market=rides"], "design"),
    (["design=drivers", "market=rides", "policy=referral_incentive"], "design"),
])
def test_bad_input_is_one_paragraph_and_exit_2(capsys, tmp_path, args, key):
    assert cli_main(["pilot", *args, "scale=tiny", f"out={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"Invalid config: `{key}`") and "\n" not in err
    assert "Allowed:" in err
    assert not (tmp_path / "out").exists()


def test_cli_writes_every_file(tmp_path):
    out = tmp_path / "p"
    assert cli_main(["pilot", "policy=none", "design=switchback", "market=rides", "scale=tiny", "days=30",
                     "replicates=2", *FAST, f"out={out}"]) == 0
    report = json.loads((out / "pilot.json").read_text())
    assert [d["design"] for d in report["designs"]] == ["switchback"]
    assert report["designs"][0]["gte"] == 0.0
    agents = pd.read_parquet(out / "pilot_agents.parquet")
    assert {"side", "id", "arm", "unit", "join_day", "churn_day", "orders", "margin"} <= set(agents.columns)
    assert set(agents["side"]) == {"buyers", "drivers"}
    assert "Recommended design" in (out / "report.md").read_text()
    assert (out / "report.html").read_text().count("data:image/png;base64") == 1
