"""Tests of CS operations (sim/cs/): observable view, health, desk in the loop, costs, CRN, snapshots."""
import dataclasses
import math

import numpy as np
import pytest
from scipy.stats import rankdata

from agents.base import Side
from experiments.config import load_config
from policies.base import Policy
from sim import ConfigError, Marketplace
from sim.cs import LatentAccessError, ObservableView
from sim.metrics import monthly_churn_series


def auc(score, label) -> float:
    """Area under the ROC curve of ``score`` for binary ``label`` (Mann-Whitney, ties averaged)."""
    score, label = np.asarray(score, float), np.asarray(label, bool)
    n1, n0 = np.count_nonzero(label), np.count_nonzero(~label)
    if n1 == 0 or n0 == 0:
        return math.nan
    ranks = rankdata(score)
    return float((ranks[label].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@pytest.fixture(scope="module")
def tiny_run():
    cfg = load_config(["scale=tiny", "market=delivery", "policy=[proactive_outreach,tech_touch,fair_disputes]"])
    model = Marketplace(cfg)
    return model, model.run()


# -- what CS can see --------------------------------------------------------------

def test_view_refuses_latent_state(tiny_run):
    model, _ = tiny_run
    for side in model.sides:
        view = model.cs.actions.view(side)
        for latent in ("satisfaction", "churn_threshold", "base_hazard", "cum_hazard", "activation_due"):
            with pytest.raises(LatentAccessError, match="latent"):
                getattr(view, latent)
    with pytest.raises(LatentAccessError):
        model.cs.actions.view("drivers").quality
    with pytest.raises(LatentAccessError):
        model.cs.actions.view("drivers").unfair_low_ratings
    with pytest.raises(LatentAccessError):
        model.cs.actions.view("buyers").purchase_rate


def test_view_is_read_only_copies(tiny_run):
    model, _ = tiny_run
    view = model.cs.actions.view("sellers")
    health = view.health
    with pytest.raises(ValueError):
        health[0] = 0.0
    with pytest.raises(AttributeError):
        view.health = None
    assert not np.shares_memory(view.orders, model.sides["sellers"].orders)
    # buyers' silent drop-out is not observable
    assert view.alive.sum() == model.sides["sellers"].alive.sum()
    assert model.cs.actions.view("buyers").alive.all()
    assert (model.cs.actions.view("buyers").churn_day == -1).all()


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
        h = model.cs.actions.view(side).health[model.sides[side].alive]
        assert np.nanmin(h) >= 0 and np.nanmax(h) <= 100
        bands = daily[[f"{side}_health_red", f"{side}_health_yellow", f"{side}_health_green"]].sum(axis=1)
        vectors = daily[[f"{side}_vector_negative", f"{side}_vector_neutral", f"{side}_vector_positive"]].sum(axis=1)
        # every alive agent is in one band and one vector (counted at the last weekly computation)
        weekly = daily["day"] % model.cfg.cs.health.every_days == 0
        at_cs_step = daily.loc[weekly, f"{side}_active"] + daily.loc[weekly, f"{side}_churned"]
        assert (bands[weekly] <= at_cs_step).all() and (bands[weekly] >= 0.9 * at_cs_step).all()
        assert (bands == vectors).all()
        assert set(model.cs.actions.view(side).band[model.sides[side].alive]) <= {-1, 0, 1, 2}
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
    health = model.cs.actions.view("sellers").health
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


# -- policy effects through the model's mechanisms ----------------------------------------

class _Caller(Policy):
    name = "caller"

    def setup(self, cs):
        cs.open_account(self.name, 30)


def _model_with_caller(*overrides):
    cfg = load_config(["scale=tiny", *overrides])
    model = Marketplace(cfg)
    caller = _Caller({}, cfg.market, cfg.cs)
    model.cs.set_policies([caller])
    return model, caller


def test_a_touch_never_activates_an_agent_who_would_never_activate():
    from agents.base import NEVER

    model, caller = _model_with_caller("market=goods", "days=90", "population.sellers=6000")
    model.run_until(30)
    s = model.sides["sellers"]
    waiting = np.flatnonzero(s.alive[: s.n] & (s.activation_day[: s.n] < 0))
    never = waiting[s.activation_due[waiting] == NEVER]
    pending = waiting[s.activation_due[waiting] != NEVER]
    assert never.size > 5 and pending.size > 5       # both kinds are there to be called
    due_before = s.activation_due[pending].copy()
    quality_before = s.onboarding_quality[waiting].copy()
    day = model.cs.day = model.day - 1     # the calls of the last simulated day's CS operations
    model.cs.actions.contact(caller, "sellers", waiting, cost_each=0.0, level=0.9, weight=0.5, onboarding_fix=1.0)
    # the gap is closed for every waiting agent, but only those whose first value was coming get it sooner
    assert (s.onboarding_quality[waiting] >= quality_before).all() and np.allclose(s.onboarding_quality[waiting], 1)
    assert (s.activation_due[never] == NEVER).all()
    assert (s.activation_due[pending] <= due_before).all() and (s.activation_due[pending] > day).all()
    assert (s.activation_due[pending] < due_before).any()
    model.run_until(90)
    assert (s.activation_day[never] < 0).all()


def test_onboarding_fix_shortens_the_remaining_time_by_the_onboarding_model():
    """Remaining days scale by mean_ttfv(q') / mean_ttfv(q), rounded stochastically (mean exact)."""
    from agents.base import NEVER
    from agents.lifecycle import mean_ttfv_days

    model, caller = _model_with_caller("market=goods", "days=30", "population.sellers=2000")
    model.run_until(1)
    s = model.sides["sellers"]
    ob = model.market.sellers.onboarding
    ids = s.add(400)      # agents waiting for first value, 40 days from now, at quality 0.3
    s.alive[ids], s.join_day[ids], s.activation_day[ids] = True, model.day, -1
    s.onboarding_quality[ids], s.activation_due[ids] = 0.3, model.day + 40
    model.cs.grow_state()
    model.cs.day = model.day
    model.cs.actions.contact(caller, "sellers", ids, cost_each=0.0, level=0.5, weight=0.0, onboarding_fix=0.5)
    ratio = float(mean_ttfv_days(0.65, ob) / mean_ttfv_days(0.3, ob))
    remaining = s.activation_due[ids] - model.day
    assert set(np.unique(remaining)) <= {math.floor(40 * ratio), math.ceil(40 * ratio)}
    # the mean of stochastic rounding is exact: the fractional part's binomial error, 3 standard errors
    frac = 40 * ratio - math.floor(40 * ratio)
    assert abs(remaining.mean() - 40 * ratio) < 3 * math.sqrt(frac * (1 - frac) / ids.size) + 1e-9
    assert (s.activation_due[ids] != NEVER).all()


def test_csat_after_a_touch_follows_the_agents_state():
    model, caller = _model_with_caller("market=goods", "days=10", "population.sellers=400")
    model.run_until(2)
    s, cs = model.sides["sellers"], model.cs
    alive = np.flatnonzero(s.alive[: s.n])
    unhappy, happy = alive[:150], alive[150:300]
    s.satisfaction[unhappy], s.satisfaction[happy] = 0.2, 0.9
    cs.start_day(model.day)
    touched = cs.actions.contact(caller, "sellers", np.concatenate([unhappy, happy]), cost_each=0.0, level=0.85,
                                 weight=0.3)
    answers = cs.touch_answers["sellers"][0]
    # the answer is the agent's satisfaction after the call, with the survey noise of conf
    after = s.satisfaction[touched]
    noise = model.streams.normal("cs.touch_csat", model.day, touched)
    expected = np.clip(np.rint(1 + 4 * after + model.cfg.cs.contact.csat_noise_sd * noise), 1, 5)
    assert np.array_equal(answers, expected)
    # the same call (level, weight) gives different answers to agents who lived through different things:
    # expected gap 4 * (1 - 0.3) * 0.7 = 1.96 points; noise sd 0.8 over 150 answers each gives a
    # standard error of the gap near 0.1, so 1.2 is far from both 0 and the expectation's sampling range
    gap = answers[150:].mean() - answers[:150].mean()
    assert gap > 1.2
    assert np.count_nonzero(answers[150:] >= 4) > 2 * np.count_nonzero(answers[:150] >= 4)


def _disputes_midway(accuracy):
    """A rides run with fair disputes, stopped when disputes and appeals have been filed.

    A stricter rating bar than the default (4.4, not 4.2) so that enough drivers appeal within 60 days."""
    cfg = load_config(["scale=tiny", "market=rides", "days=90", "population.drivers=120", "policy=fair_disputes",
                       f"policy.fair_disputes.evidence_accuracy={accuracy}",
                       "market.drivers.deactivation.min_rating=4.4"])
    model = Marketplace(cfg)
    model.run_until(60)
    return model


def _finished(model, tid):
    """Finished tickets ``tid`` of the drivers, all resolved (as the desk hands them to their policy)."""
    from sim.cs import Finished

    T = model.cs.tickets
    return Finished("drivers", T["agent"][tid].copy(), T["kind"][tid].copy(), np.ones(tid.size, bool),
                    np.zeros(tid.size), tid.copy())


def _truth_based_decisions(model, kind, tid):
    """The decisions of a reviewer who knows the truth (unfair rating; genuinely good driver)."""
    from sim.streams import ATTRIBUTE_DAY, combine_keys

    policy, T, drivers = model.cs.policies[0], model.cs.tickets, model.sides["drivers"]
    agents, sub = T["agent"][tid], T["sub"][tid]
    if kind == "rating_dispute":
        p = np.where(T["flag"][tid], policy.reverse_unfair, policy.reverse_fair)
        u = model.streams.uniform("cs.dispute_decision", ATTRIBUTE_DAY, agents, sub=combine_keys(sub, T["day"][tid]))
    else:
        good = drivers.quality[agents] >= model.market.drivers.good_quality
        p = np.where(good, policy.reinstate_good, policy.reinstate_bad)
        u = model.streams.uniform("cs.appeal_decision", ATTRIBUTE_DAY, agents, sub=sub)
    return (u < p) & drivers.alive[agents]


@pytest.mark.parametrize("kind", ["rating_dispute", "deactivation_appeal"])
def test_reviewer_with_perfect_evidence_decides_as_the_truth_would(kind):
    from sim.cs import KIND

    model = _disputes_midway(1.0)
    T = model.cs.tickets
    tid = np.flatnonzero(T["kind"][: T.n] == KIND[kind])
    assert tid.size > 3
    expected = _truth_based_decisions(model, kind, tid)
    twin = model.branch()      # deciding changes the drivers: do it on a copy
    policy = twin.cs.policies[0]
    penalty = policy.on_tickets(twin.day, twin.cs.actions, _finished(twin, tid))
    assert np.array_equal(penalty == 0, expected)
    assert np.array_equal(penalty[~expected], np.full(np.count_nonzero(~expected), policy.denied_penalty))
    assert 0 < expected.sum() < expected.size


def test_reviewer_decides_on_evidence_not_on_the_truth():
    from sim.cs import KIND

    model = _disputes_midway(0.0)
    cs, drivers, T = model.cs, model.sides["drivers"], model.cs.tickets
    conf = model.market.drivers
    appeals = np.flatnonzero(T["kind"][: T.n] == KIND["deactivation_appeal"])
    _, first = np.unique(T["agent"][appeals], return_index=True)
    tid = appeals[np.sort(first)[:2]]         # appeals of two different drivers
    clean, smeared = T["agent"][tid]
    # both genuinely good, one with a clean record and one with many low ratings: without conclusive
    # trip records the reviewer can only tell them apart by their record
    drivers.quality[[clean, smeared]] = 0.99
    drivers.rating_count[[clean, smeared]] = 40
    drivers.low_ratings[clean], drivers.low_ratings[smeared] = 1, 20
    assert cs.actions.review_findings(_finished(model, tid), 0.0).tolist() == [True, False]
    assert cs.actions.review_findings(_finished(model, tid), 1.0).tolist() == [True, True]
    # the track record: quality estimated from the share of low ratings net of riders' bad luck
    share = np.array([1, 20]) / 40
    assert cs.disputes.track_record_good(np.array([clean, smeared])).tolist() == list(
        (1 - share) / (1 - conf.bad_luck_low_rating) >= conf.good_quality)
    # and the decision follows the finding: the smeared good driver is reinstated with the bad ones' chance
    policy = model.cs.policies[0]
    twin = model.branch()
    kept = twin.cs.policies[0].on_tickets(twin.day, twin.cs.actions, _finished(twin, tid)) == 0
    from sim.streams import ATTRIBUTE_DAY
    u = model.streams.uniform("cs.appeal_decision", ATTRIBUTE_DAY, T["agent"][tid], sub=T["sub"][tid])
    alive = drivers.alive[T["agent"][tid]]
    assert kept.tolist() == ((u < [policy.reinstate_good, policy.reinstate_bad]) & alive).tolist()


def test_reviewer_accuracy_between_truth_and_track_record():
    """At accuracy a, a share a of findings come from the records (the truth), the rest from the track record."""
    from sim.cs import KIND

    model = _disputes_midway(0.5)
    cs, drivers, T = model.cs, model.sides["drivers"], model.cs.tickets
    n = 4000
    tid = T.add(n)            # disputes made up for the test: many events of the drivers there are
    agents = np.arange(n) % drivers.n
    T["agent"][tid], T["kind"][tid], T["sub"][tid], T["day"][tid] = agents, KIND["rating_dispute"], np.arange(n), 0
    T["flag"][tid] = ~cs.disputes.track_record_good(agents)     # the truth always disagrees with the record here
    found = cs.actions.review_findings(_finished(model, tid), 0.5)
    agrees = np.mean(found == T["flag"][tid])
    # binomial share of n draws at 0.5: 4 standard errors
    assert abs(agrees - 0.5) < 4 * math.sqrt(0.25 / n)
