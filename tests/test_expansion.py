"""Paid products, revenue retention and the expansion_offers policy (docs/model.md, expansion)."""
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from agents import sellers as sellers_rules
from experiments.config import load_config
from sim import Marketplace
from sim.config import ConfigError
from sim.metrics import MONTH_DAYS, revenue_retention

# Rates raised so that a 120-day tiny run sees every kind of plan movement (take-up, cancellation while
# staying, end with the account) for both products.
BUSY_PRODUCTS = [f"market.sellers.{p}.{k}={v}" for p in sellers_rules.PRODUCTS
                 for k, v in (("upgrade_rate", 0.01), ("cancel_rate", 0.01))]


def test_product_counts_are_conserved_every_day(tiny):
    cfg = tiny("market=delivery", "policy=expansion_offers", "days=120", *BUSY_PRODUCTS)
    daily = Marketplace(cfg).run().daily
    for p in sellers_rules.PRODUCTS:
        holders = daily[f"sellers_{p}"].to_numpy()
        change = np.diff(holders, prepend=0)   # nobody holds a product on day 0's morning
        moves = daily[f"sellers_{p}_taken"] - daily[f"sellers_{p}_cancelled"] - daily[f"sellers_{p}_ended"]
        np.testing.assert_array_equal(change, moves.to_numpy())
        for kind in ("taken", "cancelled", "ended"):   # the identity was exercised by every term
            assert daily[f"sellers_{p}_{kind}"].sum() > 0, (p, kind)


def test_nrr_and_grr_match_a_hand_computation(tiny):
    """Snapshot every seller's revenue at each month end while stepping, and recompute NRR and GRR."""
    cfg = tiny("market=delivery", "days=150", "metrics.revenue_retention_months=2", *BUSY_PRODUCTS)
    model = Marketplace(cfg)
    ends = []
    while model.day < cfg.days:
        model.step()
        if model.day % MONTH_DAYS == 0:
            ends.append(model.sides["sellers"].revenue.copy())
    result = model.run()
    daily = result.daily
    n = ends[-1].size
    ends = [np.pad(e, (0, n - e.size)) for e in ends]
    monthly = [ends[0]] + [b - a for a, b in zip(ends[:-1], ends[1:])]
    for m, revenue in enumerate(monthly):   # the month's revenue agrees with the daily table
        assert revenue.sum() == pytest.approx(daily["sellers_revenue"].iloc[m * 30:(m + 1) * 30].sum(), rel=1e-9)
    kept = capped = base = 0.0
    for m in range(len(monthly) - 2):
        for i in range(n):
            if monthly[m][i] > 0:
                base += monthly[m][i]
                kept += monthly[m + 2][i]
                capped += min(monthly[m + 2][i], monthly[m][i])
    got = result.summary["sellers"]["expansion"]
    # the book keeps each month in float32: every term off by at most 2^-24 of itself, so each sum, and
    # a ratio of two sums at most twice that
    float32_ratio = 2 * 2.0 ** -24
    assert got["nrr"] == pytest.approx(kept / base, rel=float32_ratio)
    assert got["grr"] == pytest.approx(capped / base, rel=float32_ratio)
    assert got["grr"] < 1.0 and len(got["nrr_by_cohort"]) == len(monthly) - 2


def test_revenue_retention_on_a_known_book():
    # three sellers: one grows 10 -> 15, one shrinks 10 -> 4, one leaves; a newcomer in month 1 is no cohort member
    monthly = [np.array([10.0, 10.0, 10.0, 0.0]), np.array([12.0, 6.0, 0.0, 5.0]), np.array([15.0, 4.0, 0.0, 5.0])]
    got = revenue_retention(monthly, horizon=2)
    assert got["nrr"] == pytest.approx(19 / 30)
    assert got["grr"] == pytest.approx(14 / 30)
    assert revenue_retention(monthly, horizon=3)["nrr"] is None


@pytest.fixture(scope="module")
def scored_model():
    """A tiny delivery market after 60 days of reactive support, with health scored."""
    model = Marketplace(load_config(["scale=tiny", "market=delivery", "days=90"]))
    model.run_until(60)
    return model


def _policy(model, **params):
    """Make expansion_offers (conf/policy defaults, with ``params`` changed) the model's only policy."""
    base = yaml.safe_load((Path(__file__).parents[1] / "conf/policy/expansion_offers.yaml").read_text())
    model.set_policies({"expansion_offers": {**base["expansion_offers"], **params}})
    return model.cs.policies[0]


def test_offers_go_to_healthy_accounts_highest_first_at_staff_cost(scored_model):
    model = scored_model.branch()
    policy = _policy(model, capacity_per_cadence=5)
    cs = model.cs.actions
    view = cs.view("sellers")
    ids = policy.targets(cs.day, view, cs.allowance(policy.key, policy.cost_per_offer))
    assert 0 < ids.size <= 5
    assert (view.at("band", ids) == 2).all() and (view.at("vector", ids) == 1).all()
    health = view.at("health", ids)
    assert (np.diff(health) <= 0).all()
    everyone = policy.targets(cs.day, view)   # without the capacity: every eligible account
    assert ids.size == min(5, everyone.size)
    assert (view.health[everyone].min() if everyone.size else 0) <= health.min()
    model.cs.book.cost_today.clear()
    offered = cs.offer_product(policy, ids, "premium", cost_each=policy.cost_per_offer, accept_prob=1.0,
                               success_sensitivity=0.0, backfire=policy.backfire, account=policy.key)
    minutes = 20.0   # conf/policy/expansion_offers.yaml
    cost = ids.size * minutes / (60 * model.cfg.cs.workday_hours) * model.cfg.cs.staff_cost_per_day
    assert model.cs.book.cost_today[("expansion_offers", "sellers")] == pytest.approx(cost)
    sellers = model.sides["sellers"]
    fresh = ids[~scored_model.sides["sellers"].premium[ids]]
    np.testing.assert_array_equal(np.sort(offered["accepted"]), np.sort(fresh))   # accept_prob 1, no success term
    assert sellers.premium[ids].all() and offered["backfired"].size == 0


def test_an_offer_to_a_struggling_account_backfires(scored_model):
    model = scored_model.branch()
    policy = _policy(model, min_band="red", min_vector="negative", capacity_per_cadence=1000, cooldown_days=0)
    cs, sellers = model.cs.actions, model.sides["sellers"]
    view = cs.view("sellers")
    ids = policy.targets(cs.day, view)
    negative = ids[view.at("vector", ids) == -1]
    assert negative.size > 0   # the loose rule lets struggling accounts through
    before = sellers.satisfaction.copy()
    got = cs.offer_product(policy, ids, "premium", cost_each=policy.cost_per_offer, accept_prob=1.0,
                           success_sensitivity=0.0, backfire=0.1, account=policy.key)
    np.testing.assert_array_equal(np.sort(got["backfired"]), np.sort(negative))
    np.testing.assert_allclose(sellers.satisfaction[negative], np.maximum(0, before[negative] - np.float32(0.1)),
                               rtol=1e-6)
    assert not np.isin(negative, got["accepted"]).any()
    # the default rule never offers to them
    strict = _policy(model.branch(), cooldown_days=0, capacity_per_cadence=1000)
    assert (view.at("vector", strict.targets(cs.day, view)) == 1).all()


def test_acceptance_rises_with_success(scored_model):
    model = scored_model.branch()
    policy = _policy(model)
    sellers = model.sides["sellers"]
    ids = np.flatnonzero(sellers.alive & ~sellers.premium)
    success = sellers_rules.sales_success(sellers, ids, model.market)
    got = model.cs.actions.offer_product(policy, ids, "premium", cost_each=0.0, accept_prob=0.3,
                                         success_sensitivity=2.0, backfire=0.0, account=policy.key)
    took = np.isin(ids, got["accepted"])
    high = success > np.median(success)
    assert took[high].mean() > took[~high].mean()


def test_expansion_offers_raise_products_nrr_in_paired_runs(tiny):
    """Paired seeds (common random numbers): NRR of paid-product fees rises under expansion_offers.

    The interval is the 95% t interval of the paired differences over the seeds (their sampling error);
    its lower end must be above 0."""
    diffs = []
    for seed in range(4):
        common = ["market=delivery", "days=90", "metrics.revenue_retention_months=1", f"seed={seed}"]
        base = Marketplace(tiny(*common)).run().summary["sellers"]["expansion"]
        offers = Marketplace(tiny(*common, "policy=expansion_offers")).run().summary["sellers"]["expansion"]
        diffs.append(offers["nrr_products"] - base["nrr_products"])
    diffs = np.array(diffs)
    half = stats.t.ppf(0.975, diffs.size - 1) * diffs.std(ddof=1) / math.sqrt(diffs.size)
    assert diffs.mean() - half > 0, (diffs.mean(), half)


@pytest.mark.parametrize("overrides,names", [
    (["market=rides", "policy=expansion_offers"], ["policy.expansion_offers.sides", "only sellers"]),
    (["market=delivery", "policy=expansion_offers", "policy.expansion_offers.min_vector=upward"],
     ["policy.expansion_offers.min_vector", "upward", "negative, neutral, positive"]),
    (["market=goods", "metrics.revenue_retention_months=0"], ["metrics.revenue_retention_months", "[1, 120]"]),
])
def test_bad_settings_get_a_one_paragraph_error(overrides, names):
    with pytest.raises(ConfigError) as err:
        load_config(["scale=tiny", *overrides])
    for name in names:
        assert name in str(err.value)
