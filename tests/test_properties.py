"""Properties of every run, over random valid configs at tiny size (hypothesis), and metamorphic relations.

Hypothesis draws configs (market, policy, populations, days, seed, commission,
staff, experience effects) with ``derandomize=True``, so the examples are the
same on every machine and every run. Sizes are small (at most 200 buyers for
at most 25 days) and example counts few (see each ``settings``),
which keeps the file to a few minutes on two busy cores.

Exact relations (conservation, money identities, determinism, commission 0,
no drivers, paid joins rising with the budget) hold run by run. "More CS staff
never raises churn nor lowers CSAT" holds only on average: with common random
numbers two staff levels share every draw, but once a ticket is answered on a
different day the agents' paths, and so the draws they consume, diverge; per
seed the relation fails (rides, scale=tiny, 60 days, seed 2: 301 churned with
1 staff, 303 with 4). It is tested on the mean of paired seeds.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from golden_cases import NOT_IN_MARKET
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from experiments.checks import daily_joins
from experiments.config import group_options, load_config
from sim import Marketplace
from sim.config import SIDES

FAST = settings(max_examples=4, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=2, deadline=None, derandomize=True, database=None,
               suppress_health_check=[HealthCheck.too_slow])


@st.composite
def tiny_configs(draw, markets=("goods", "rides", "delivery")):
    """Overrides of a random valid tiny run."""
    market = draw(st.sampled_from(markets))
    # only policies whose sides the market has (fair disputes: drivers; segmented, expansion offers: sellers)
    policy = draw(st.sampled_from([p for p in group_options("policy") if (market, p) not in NOT_IN_MARKET]))
    return [f"market={market}", f"policy={policy}", "scale=tiny",
            f"population.buyers={draw(st.integers(50, 200))}",
            f"population.sellers={draw(st.integers(2, 30))}",
            f"population.drivers={draw(st.integers(0, 15))}",
            f"days={draw(st.integers(5, 25))}",
            f"seed={draw(st.integers(0, 2**64 - 1))}",
            f"market.sellers.commission={draw(st.sampled_from([0.0, 0.1, 0.3]))}",
            f"market.drivers.commission={draw(st.sampled_from([0.0, 0.2, 0.4]))}",
            f"cs.staff={draw(st.integers(0, 3))}",
            f"experience_effects={draw(st.booleans())}"]


def simulate(overrides: list[str]):
    cfg = load_config(overrides)
    return cfg, Marketplace(cfg).run()


def sides_of(cfg) -> list[str]:
    return list(cfg.market.sides)


# ---------------------------------------------------------------- invariants of every run


@FAST
@given(tiny_configs())
def test_agents_conserved_money_identities_hold_and_nothing_is_nan(overrides):
    cfg, result = simulate(overrides)
    daily, summary = result.daily, result.summary
    for side in sides_of(cfg):
        s = summary[side]
        start = getattr(cfg.population, side)
        # every agent who ever joined is either active at the end or has churned (won-back agents count again)
        assert start + s["joined"] + s["won_back"] - s["churned"] == s["active_end"], (side, s)
        assert daily[f"{side}_joined"].sum() == s["joined"]
        assert daily[f"{side}_active"].iloc[-1] == s["active_end"]
    # money: the day's net contribution is take minus every cost, to the cent (float sums in the same order)
    costs = daily["payment_costs"] + daily["marketing_cost"] + daily["cs_cost"] + daily["incentive_cost"]
    assert np.allclose(daily["net_contribution"], daily["take_revenue"] - costs, rtol=0, atol=1e-6)
    side_marketing = sum(daily[f"{side}_marketing_cost"] for side in sides_of(cfg))
    assert np.allclose(daily["marketing_cost"], side_marketing, rtol=1e-12, atol=1e-6)
    platform = summary["platform"]
    for key in ("gmv", "take_revenue", "marketing_cost", "cs_cost", "net_contribution"):
        assert platform[key] == pytest.approx(daily[key].sum(), rel=1e-12, abs=1e-6), key
    # no NaN or infinity in the summary (None: a metric without data yet, e.g. NPS before any survey)
    for value in _numbers(summary):
        assert math.isfinite(value), summary
    money = daily[["gmv", "take_revenue", "payment_costs", "marketing_cost", "cs_cost", "incentive_cost",
                   "net_contribution", *[f"{side}_active" for side in sides_of(cfg)]]]
    assert np.isfinite(money.to_numpy(dtype=float)).all()


def _numbers(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _numbers(value)
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield float(tree)


@FEW
@given(tiny_configs())
def test_same_config_same_output_and_a_changed_seed_changes_it(overrides):
    _, first = simulate(overrides)
    _, again = simulate(overrides)
    pd.testing.assert_frame_equal(first.daily, again.daily)
    pd.testing.assert_frame_equal(first.agents, again.agents)
    assert first.summary == again.summary or _same_with_nan(first.summary, again.summary)
    # negative control: the comparison above can fail; a changed seed changes the agents drawn
    seed = next(int(o.split("=")[1]) for o in overrides if o.startswith("seed="))
    _, other = simulate([*overrides, f"seed={(seed + 1) % 2**64}"])
    assert not first.agents.equals(other.agents)


def _same_with_nan(a, b) -> bool:
    return pd.Series(_flat(a)).equals(pd.Series(_flat(b)))


def _flat(tree, prefix=""):
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# ---------------------------------------------------------------- metamorphic relations (exact)


@FAST
@given(tiny_configs())
def test_commission_zero_means_no_commission_revenue(overrides):
    cfg, result = simulate([*overrides, "market.sellers.commission=0", "market.drivers.commission=0"])
    daily = result.daily
    if "sellers" in cfg.market.sides:  # sellers' revenue is commission plus premium fees (expansion)
        commission = daily["sellers_revenue"] - daily.get("expansion_revenue", 0.0)
        assert np.allclose(commission, 0.0, atol=1e-9)
    if "drivers" in cfg.market.sides:
        assert (daily["drivers_revenue"].fillna(0.0) == 0).all()


NO_DRIVER_ACQUISITION = [f"market.drivers.acquisition.{key}=0"
                         for key in ("marketing_budget_per_1k", "organic_per_1k", "referral_rate")]


@FAST
@given(tiny_configs(markets=("rides", "delivery")))
def test_no_drivers_means_no_completed_rides(overrides):
    cfg, result = simulate([*overrides, "population.drivers=0", *NO_DRIVER_ACQUISITION])
    daily = result.daily
    assert (daily["drivers_active"] == 0).all()
    assert daily["drivers_orders"].fillna(0).sum() == 0
    assert daily["drivers_revenue"].fillna(0).sum() == 0
    assert result.summary["platform"]["gmv"] == 0  # nothing is delivered or driven without a driver


@FAST
@example(overrides=["market=goods", "scale=tiny", "population.buyers=300", "days=30", "seed=5"],
         side="buyers", factor=20.0)
@given(tiny_configs(), st.sampled_from(SIDES), st.floats(1.5, 20.0))
def test_more_marketing_means_more_paid_joins(overrides, side, factor):
    """Paid joins each day are a stochastic rounding of budget-driven expected joins, drawn with the
    same uniform at both budgets (common random numbers): day by day they can only rise, and over the
    run they must rise when the expected gain is 10 agents or more (checks.daily_joins)."""
    cfg = load_config(overrides)
    if side not in cfg.market.sides:
        return
    key = f"market.{side}.acquisition.marketing_budget_per_1k"
    budget = getattr(cfg.market, side).acquisition.marketing_budget_per_1k
    low = Marketplace(cfg).run().daily[f"{side}_joined_paid"]
    richer, more = simulate([*overrides, f"{key}={budget * factor}"])
    high = more.daily[f"{side}_joined_paid"]
    assert (high.to_numpy() >= low.to_numpy()).all()
    expected_gain = cfg.days * (daily_joins(richer, side) - daily_joins(cfg, side))
    if expected_gain >= 10:
        assert high.sum() > low.sum()


# ---------------------------------------------------------------- metamorphic relation (on average)


STAFF_SEEDS = range(1, 5)


@pytest.mark.parametrize("market", ["goods", "rides"])
def test_more_cs_staff_lowers_churn_and_raises_csat_on_average(market):
    """Staff 0 against 2, paired by seed (common random numbers). The mean paired difference in churned
    agents must not be above 0 by more than 3 standard errors of that mean (a one-sided check that fails
    about once in 700 if the relation holds only at equality); CSAT the same way, downwards."""
    base = [f"market={market}", "scale=tiny", "days=30", "population.buyers=400"]
    churn_diff, csat_diff = [], []
    for seed in STAFF_SEEDS:
        few = simulate([*base, "cs.staff=0", f"seed={seed}"])[1].summary
        more = simulate([*base, "cs.staff=2", f"seed={seed}"])[1].summary
        sides = [s for s in SIDES if s in few]
        churn_diff.append(sum(more[s]["churned"] - few[s]["churned"] for s in sides))
        csat_diff.append((more["buyers"]["csat"] or 0.0) - (few["buyers"]["csat"] or 0.0))
    for diffs, sign in ((np.array(churn_diff, float), 1), (np.array(csat_diff, float), -1)):
        se = diffs.std(ddof=1) / math.sqrt(diffs.size)
        assert sign * diffs.mean() <= 3 * se + 1e-12, (market, diffs)
