"""Tests of CS operations (sim/cs.py): observable view, health, desk in the loop, costs, CRN, snapshots."""
import dataclasses
import math

import numpy as np
import pytest

from agents.base import Side
from sim import ConfigError, Marketplace, load_config
from sim.cs import LatentAccessError, ObservableView, auc
from sim.metrics import monthly_churn_series
from policies.base import Policy


@pytest.fixture(scope="module")
def tiny_run():
    cfg = load_config(["scale=tiny", "market=delivery", "policy=[proactive_outreach,tech_touch,fair_disputes]"])
    model = Marketplace(cfg)
    return model, model.run()


# -- what CS can see --------------------------------------------------------------

def test_view_refuses_latent_state(tiny_run):
    model, _ = tiny_run
    for side in model.sides:
        view = model.cs.view(side)
        for latent in ("satisfaction", "churn_threshold", "base_hazard", "cum_hazard", "activation_due"):
            with pytest.raises(LatentAccessError, match="latent"):
                getattr(view, latent)
    with pytest.raises(LatentAccessError):
        model.cs.view("drivers").quality
    with pytest.raises(LatentAccessError):
        model.cs.view("drivers").unfair_low_ratings
    with pytest.raises(LatentAccessError):
        model.cs.view("buyers").purchase_rate


def test_view_is_read_only_copies(tiny_run):
    model, _ = tiny_run
    view = model.cs.view("sellers")
    health = view.health
    with pytest.raises(ValueError):
        health[0] = 0.0
    with pytest.raises(AttributeError):
        view.health = None
    assert not np.shares_memory(view.orders, model.sides["sellers"].orders)
    # buyers' silent drop-out is not observable
    assert view.alive.sum() == model.sides["sellers"].alive.sum()
    assert model.cs.view("buyers").alive.all()
    assert (model.cs.view("buyers").churn_day == -1).all()


class _Peeker(Policy):
    name = "peeker"

    def setup(self, cs):
        cs.open_account(self.name, 30)

    def act(self, day, cs):
        cs.view("sellers").satisfaction    # a policy that tries to read the latent satisfaction


def test_policy_reading_satisfaction_fails_in_a_run():
    cfg = load_config(["scale=tiny", "market=goods", "days=5"])
    model = Marketplace(cfg)
    model.cs.set_policies([_Peeker({}, cfg.market, cfg.cs)])
    with pytest.raises(LatentAccessError, match="satisfaction"):
        model.run()


# -- health -----------------------------------------------------------------------

def test_health_range_bands_and_daily_columns(tiny_run):
    model, result = tiny_run
    daily = result.daily
    for side in model.sides:
        h = model.cs.view(side).health[model.sides[side].alive]
        assert np.nanmin(h) >= 0 and np.nanmax(h) <= 100
        bands = daily[[f"{side}_health_red", f"{side}_health_yellow", f"{side}_health_green"]].sum(axis=1)
        vectors = daily[[f"{side}_vector_negative", f"{side}_vector_neutral", f"{side}_vector_positive"]].sum(axis=1)
        # every alive agent is in one band and one vector (counted at the last weekly computation)
        weekly = daily["day"] % model.cfg.cs.health.every_days == 0
        at_cs_step = daily.loc[weekly, f"{side}_active"] + daily.loc[weekly, f"{side}_churned"]
        assert (bands[weekly] <= at_cs_step).all() and (bands[weekly] >= 0.9 * at_cs_step).all()
        assert (bands == vectors).all()
        assert set(model.cs.view(side).band[model.sides[side].alive]) <= {-1, 0, 1, 2}
    assert daily["sellers_health_red"].sum() > 0 and daily["sellers_health_green"].sum() > 0


def test_health_predicts_churn_better_than_chance():
    # Health is scored on day 90; churn is observed over the next 30 days. Sellers' churn is
    # largely their latent baseline hazard, so health predicts it only modestly (AUC ~0.57 at
    # the defaults): the test needs many sellers. Tolerance: under "no information" the AUC
    # has standard error sqrt((n1 + n0 + 1) / (12 n1 n0)) (Mann-Whitney); we require 3 of them.
    cfg = load_config(["scale=tiny", "market=goods", "days=120", "population.buyers=30000",
                       "population.sellers=10000"])
    model = Marketplace(cfg)
    model.run_until(90)
    sellers = model.sides["sellers"]
    health = model.cs.view("sellers").health
    ids = np.flatnonzero(sellers.alive & ~np.isnan(health))
    health = health[ids]
    model.run_until(120)
    churned = sellers.churn_day[ids] >= 0
    n1, n0 = int(churned.sum()), int((~churned).sum())
    assert n1 > 100
    null_se = np.sqrt((n1 + n0 + 1) / (12 * n1 * n0))
    assert auc(-health, churned) > 0.5 + 3 * null_se


def test_auc_hand_values():
    assert auc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert auc([4, 3, 2, 1], [0, 0, 1, 1]) == 0.0
    assert auc([1, 1, 1, 1], [0, 1, 0, 1]) == 0.5
    assert math.isnan(auc([1, 2], [0, 0]))


# -- desk in the loop, CSAT, costs ------------------------------------------------

def test_desk_figures_and_csat(tiny_run):
    model, result = tiny_run
    d, s = result.daily, result.summary
    assert d["cs_tickets"].sum() > 50
    assert (d["cs_utilisation"].between(0, 1.0 + 1e-9)).all()
    assert d["cs_resolved"].sum() + d["cs_abandoned"].sum() == d["cs_finished"].sum()
    for side in model.sides:
        assert s[side]["csat"] is None or 0 <= s[side]["csat"] <= 1
        assert s[side]["csat_answers"] > 0
    desk = s["platform"]["cs_desk"]
    assert 0 <= desk["abandon_share"] <= 1 and desk["mean_wait_days"] >= 0
    # open tickets are the ones not finished
    T = model.cs.tickets
    open_now = sum(int(model.cs.state[side].open_tickets.sum()) for side in model.sides)
    assert open_now == T.n - int(T["finished"][: T.n].sum())


def test_costs_add_up(tiny_run):
    model, result = tiny_run
    d = result.daily
    total = d["cs_cost"] + d["incentive_cost"]
    per_side = sum(d[f"cs_cost_{side}"] for side in model.sides)
    per_policy = d["cs_cost_desk"] + sum(d[f"cs_cost_{p.name}"] for p in model.cs.policies)
    assert np.allclose(per_side, total) and np.allclose(per_policy, total)
    assert (d["cs_cost_desk"] == model.cfg.cs.staff * model.cfg.cs.staff_cost_per_day).all()
    assert result.summary["platform"]["cs_cost_by_policy"]["proactive_outreach"] > 0
    net = d["take_revenue"] - d["payment_costs"] - d["marketing_cost"] - d["cs_cost"] - d["incentive_cost"]
    assert np.allclose(net, d["net_contribution"])


def test_satisfaction_moves_but_behaviour_neutral_with_effects_off():
    cfg = load_config(["scale=tiny", "market=goods", "days=40", "experience_effects=false",
                       "policy=proactive_outreach"])
    model = Marketplace(cfg)
    before = None
    for day in range(40):
        model.step()
        if day == 0:
            before = model.sides["sellers"].satisfaction.copy()
    assert (model.behaviour_satisfaction("sellers") == cfg.market.satisfaction.neutral).all()
    assert not np.array_equal(before, model.sides["sellers"].satisfaction[: before.size])


def test_common_random_numbers_for_tickets():
    """A ticket's times are keyed by its event, not by the order tickets were raised in."""
    cfg = load_config(["scale=tiny", "market=delivery", "days=30"])
    a, b = Marketplace(cfg), Marketplace(cfg)
    a.run_until(30)
    b.run_until(30)
    Ta, Tb = a.cs.tickets, b.cs.tickets
    assert Ta.n == Tb.n and np.array_equal(Ta["service"][: Ta.n], Tb["service"][: Tb.n])
    # the same event in another arm (outreach on) gets the same service time
    c = Marketplace(load_config(["scale=tiny", "market=delivery", "days=30", "policy=tech_touch"]))
    c.run_until(20)
    a5 = Marketplace(cfg)
    a5.run_until(20)
    key = lambda T: {(int(T["day"][i]), int(T["side"][i]), int(T["agent"][i]), int(T["kind"][i]), int(T["sub"][i])):
                     float(T["service"][i]) for i in range(T.n)}
    ka, kc = key(a5.cs.tickets), key(c.cs.tickets)
    common = set(ka) & set(kc)
    assert len(common) > 10 and all(ka[k] == kc[k] for k in common)


def test_branch_continues_identically_and_set_policies():
    cfg = load_config(["scale=tiny", "market=rides", "days=60", "policy=fair_disputes"])
    model = Marketplace(cfg)
    model.run_until(20)
    twin = model.branch()
    r1, r2 = model.run(), twin.run()
    cols = [c for c in r1.daily.columns if c != "pickup_minutes_mean"]
    assert r1.daily[cols].equals(r2.daily[cols])
    # after a warm-up, switch policies on one branch
    base = Marketplace(load_config(["scale=tiny", "market=rides", "days=60"]))
    base.run_until(20)
    arm = base.branch()
    arm.set_policies({"proactive_outreach": load_config(["policy=proactive_outreach"]).policy["proactive_outreach"]})
    ra = arm.run()
    assert ra.daily.loc[ra.daily.day >= 20, "cs_cost_proactive_outreach"].sum() > 0
    assert "proactive_outreach" in ra.summary["platform"]["cs_cost_by_policy"]
    assert arm.cfg.policy.keys() == {"proactive_outreach"}


def test_zero_staff_desk_abandons_everything():
    cfg = load_config(["scale=tiny", "market=delivery", "days=20", "cs.staff=0"])
    r = Marketplace(cfg).run()
    assert r.daily["cs_resolved"].sum() == 0 and r.daily["cs_abandoned"].sum() > 0


# -- config errors ----------------------------------------------------------------

def test_unknown_policy_lists_options():
    with pytest.raises(ConfigError, match="policy.*one of .*fair_disputes.*win_back"):
        load_config(["policy=friendly_chat"])
    cfg = load_config(["scale=tiny"])
    with pytest.raises(ConfigError, match="one of"):
        Marketplace(dataclasses.replace(cfg, policy={"friendly_chat": {}}))


def test_bad_policy_parameter_names_the_key():
    with pytest.raises(ConfigError, match=r"policy\.tech_touch\.cooldown_days.*-3"):
        load_config(["policy=tech_touch", "policy.tech_touch.cooldown_days=-3"])
    with pytest.raises(ConfigError, match=r"policy\.proactive_outreach\.level"):
        load_config(["policy=proactive_outreach", "policy.proactive_outreach.level=1.5"])
    with pytest.raises(ConfigError, match=r"policy\.win_back\.colour.*a parameter of this policy"):
        load_config(["policy=win_back", "+policy.win_back.colour=red"])
    cfg = load_config(["scale=tiny"])
    with pytest.raises(ConfigError, match=r"policy\.tech_touch\.cost_per_message.*missing"):
        Marketplace(dataclasses.replace(cfg, policy={"tech_touch": {"sides": ["buyers"]}}))


@pytest.mark.parametrize("market,policy,key", [("goods", "fair_disputes", "policy.fair_disputes.sides"),
                                               ("rides", "segmented", "policy.segmented.sides"),
                                               ("goods", "proactive_outreach", "policy.proactive_outreach.sides")])
def test_policy_on_a_market_it_cannot_apply_to(market, policy, key):
    extra = [f"policy.{policy}.sides=[drivers]"] if policy == "proactive_outreach" else []
    with pytest.raises(ConfigError) as err:
        load_config([f"market={market}", f"policy={policy}", *extra])
    assert err.value.key == key and "market " + market in str(err.value)


def test_health_config_checked():
    with pytest.raises(ConfigError, match="cs.health.red_below"):
        load_config(["cs.health.red_below=90"])


# -- churn with win-back -----------------------------------------------------------

def test_monthly_churn_counts_first_departures_of_won_back_agents():
    side = Side("sellers", {}, capacity=4)
    ids = side.add(4)
    side.join_day[ids] = 0
    side.channel[ids] = 0                     # initial
    side.churn_day[ids] = [-1, 10, -1, 70]    # agent 2 churned on day 40 and returned on day 50
    returns = [(np.array([2]), np.array([40]), np.array([50]))]
    rates = monthly_churn_series(side, 90, returns)
    assert rates[0] == pytest.approx(1 / 4)   # agent 1 leaves in month 0
    assert rates[1] == pytest.approx(1 / 3)   # agent 2 leaves in month 1 (later won back)
    assert rates[2] == pytest.approx(1 / 2)   # agent 2's second life is not churn's business: 0, 3 at the start
    # without the log, agent 2's departure would be lost
    assert monthly_churn_series(side, 90, None)[1] == pytest.approx(0.0)
    assert np.allclose(monthly_churn_series(side, 90, None)[0], 1 / 4)


def test_observable_view_lists_no_latent_name():
    from sim.cs import LATENT
    assert not set(ObservableView.OBSERVABLE) & LATENT
