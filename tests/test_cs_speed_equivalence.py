"""The fast paths of CS operations (sim/cs/, policies/) against straightforward NumPy references.

Each optimised function is checked, during real runs of small markets
(delivery with every policy, goods with none), against the plain NumPy
formulas it replaced, written out here: health (signals, weights, activity
rate, trend mean), bands and vectors and their counts, the ranking by health,
the reactive tickets raised (and their draws), the policies' target lists, and
the view's per-agent accessor. Every comparison is exact (bit for bit): the
compiled passes follow NumPy's dtypes (float32 where NumPy computes in
float32), so no tolerance is needed.
"""
import math
from types import SimpleNamespace

import numpy as np
import pytest

from experiments.config import load_config
from policies.base import first_eligible, smallest_first
from policies.proactive_outreach import ProactiveOutreach
from policies.tech_touch import TechTouch
from policies.win_back import WinBack
from sim import Marketplace
from sim.cs import BANDS, KIND, KINDS, REACTIVE, SIDE_CODE, VECTORS, LatentAccessError, ObservableView
from sim.cs.health import _rank_by_health
from sim.streams import combine_keys

ALL_POLICIES = ("policy=[fair_disputes,onboarding_program,proactive_outreach,referral_incentive,segmented,"
                "tech_touch,win_back]")
SMALL = ["scale=tiny", "population.buyers=3000", "population.sellers=300", "population.drivers=60", "days=60"]


# -- the references: the NumPy formulas the compiled passes replaced ------------------------------------

def ref_band(cs, health):
    h = cs.conf.health
    band = np.where(health < h.red_below, 0, np.where(health < h.green_from, 1, 2))
    return np.where(np.isnan(health), -1, band).astype(np.int8)


def ref_vector(cs, health, health_mean):
    thr = cs.conf.health.trend_threshold
    trend = health - health_mean
    band = ref_band(cs, health)
    negative = (trend <= -thr) | ((band == 0) & (trend <= 0))
    positive = ~negative & ((trend >= thr) | ((band == 2) & (trend >= 0)))
    vector = np.where(negative, -1, np.where(positive, 1, 0))
    return np.where(band < 0, -2, vector).astype(np.int8)


def snapshot(model, name):
    """Copies of everything compute_health reads or writes for one side, taken just before it runs."""
    s, st, cs = model.sides[name], model.cs.state[name], model.cs
    side = SimpleNamespace(**{f: getattr(s, f).copy() for f in (
        "orders", "activation_day", "join_day", "last_active_day", "survey_answer", "alive")})
    state = SimpleNamespace(**{f: getattr(st, f).copy() for f in (
        "orders_seen", "activity_rate", "health", "health_mean", "open_tickets", "bad_contact_day")})
    return side, state, cs.health.rating(name)


def ref_compute_health(cs, model, name, day, snap):
    """The former compute_health + health_parts + _band_counts for one side, on copies."""
    s, st, rating = snap
    h = cs.conf.health
    w = h.weights
    every = h.every_days
    recent = (s.orders - st.orders_seen).astype(np.float32) / every
    st.orders_seen[:] = s.orders
    st.activity_rate[:] += (recent - st.activity_rate) * min(1.0, every / h.frequency_window_days)
    start = np.where(s.activation_day >= 0, s.activation_day, s.join_day)
    active_days = np.maximum(day - start + 1, 1).astype(np.float64)
    lifetime_rate = s.orders / active_days
    usual_gap = np.where(s.orders > 0, active_days / np.maximum(s.orders, 1), active_days)
    last = np.where(s.last_active_day >= 0, s.last_active_day, s.join_day)
    idle = day - last
    recency = 1.0 / (1.0 + idle / np.maximum(usual_gap, 1.0) / h.recency_scale)
    ratio = st.activity_rate / np.maximum(lifetime_rate, 1e-9)
    frequency = np.where(s.orders > 0, np.minimum(1.0, ratio), 0.5)
    rating_score = np.where(np.isnan(rating), 1.0, np.clip((rating - h.rating_floor) / (5 - h.rating_floor), 0, 1))
    bad_recent = (day - st.bad_contact_day) <= h.ticket_memory_days
    tickets = np.clip(1.0 - 0.5 * st.open_tickets - 0.5 * bad_recent, 0, 1)
    waited = day - s.join_day
    onboarding = np.where(s.activation_day >= 0, 1.0,
                          np.clip(1 - waited / max(cs.conf.onboarding_question_days, 1), 0, 1))
    tenure = np.minimum(1.0, waited / h.tenure_full_days)
    survey = np.where(s.survey_answer >= 0, s.survey_answer / 10.0, model.market.satisfaction.neutral)
    parts = [recency, frequency, rating_score, tickets, onboarding, tenure, survey]
    weights = [w.recency, w.frequency, 0.0 if name == "buyers" else w.rating, w.tickets, w.onboarding,
               w.tenure, w.survey]
    health = 100.0 * sum(wt * p for wt, p in zip(weights, parts) if wt) / sum(weights)
    st.health[:] = health
    fresh = np.isnan(st.health_mean)
    alpha = min(1.0, h.every_days / h.trend_days)
    st.health_mean[:] = np.where(fresh, health, st.health_mean + (health - st.health_mean) * alpha)
    band = ref_band(cs, st.health)
    vector = ref_vector(cs, st.health, st.health_mean)
    counts = {}
    alive = s.alive
    for code, b in enumerate(BANDS):
        counts[f"{name}_health_{b}"] = int(np.count_nonzero(band[alive] == code))
    for code, v in enumerate(VECTORS):
        counts[f"{name}_vector_{v}"] = int(np.count_nonzero(vector[alive] == code - 1))
    counts[f"{name}_health_mean"] = float(st.health[alive].mean()) if alive.any() else math.nan
    return st, band, vector, counts


def ref_reactive(cs, model, day, events):
    """The former _reactive_tickets' choice of tickets: (side, agent, kind, sub) of each, in order."""
    t = cs.conf.tickets
    empty = (np.empty(0, np.int64), np.empty(0, np.int64))
    groups = [("buyers", "failed_order", *events.get("failed", empty)),
              ("buyers", "bad_order", *events.get("bad", empty))]
    horizon = cs.conf.onboarding_question_days
    for name, s in model.sides.items():
        first = int(np.searchsorted(s.join_day, day - horizon, side="left"))
        tail = np.arange(first, s.n)
        new = tail[s.alive[first:] & (s.activation_day[first:] < 0)]
        groups.append((name, "onboarding", new, np.zeros(new.size, np.int64)))
    if model.has("sellers") and model._sales_today is not None:
        earners = np.flatnonzero(model._sales_today > 0)
        groups.append(("sellers", "payout", earners, np.zeros(earners.size, np.int64)))
    if model.has("drivers"):
        d = model.sides["drivers"]
        earners = np.flatnonzero((d.earnings_today > 0) & d.alive)
        groups.append(("drivers", "payout", earners, np.zeros(earners.size, np.int64)))
    groups = [g for g in groups if g[2].size and getattr(t, g[1]).rate > 0]
    if not groups:
        return [np.empty(0, np.int64)] * 4
    side = np.concatenate([np.full(g[2].size, SIDE_CODE[g[0]], np.int64) for g in groups])
    kind = np.concatenate([np.full(g[2].size, KIND[g[1]], np.int64) for g in groups])
    ids = np.concatenate([g[2] for g in groups]).astype(np.int64)
    sub = np.concatenate([g[3] for g in groups]).astype(np.int64)
    rate = np.array([getattr(t, k).rate for k in KINDS[:len(REACTIVE)]])[kind]
    key = combine_keys(sub, kind, side)
    asks = model.streams.uniform("cs.ticket_raised", day, ids, sub=key) < rate
    return [side[asks], ids[asks], kind[asks], sub[asks]]


def ref_targets(policy, day, view):
    """The former full-array target lists of proactive outreach, tech touch and win-back."""
    if isinstance(policy, ProactiveOutreach):
        health = view.health
        ok = view.alive & (health < policy.max_health) & (day - view.last_touch_day >= policy.cooldown_days)
        if policy.segment is not None:
            ok &= view.segment == policy.segment
        ids = np.flatnonzero(ok)
        return ids[np.argsort(health[ids], kind="stable")]
    if isinstance(policy, TechTouch):
        cs = view._ops
        health = view.health
        st = cs.state[view.name]
        band, vector = ref_band(cs, st.health), ref_vector(cs, st.health, st.health_mean)
        dropping = (vector == -1) | (band == 0)
        ok = (view.alive & dropping & (day - view.last_nudge_day >= policy.cooldown_days)
              & (view.nudges < policy.max_nudges))
        if policy.segment is not None:
            ok &= view.segment == policy.segment
        ids = np.flatnonzero(ok)
        return ids[np.argsort(health[ids], kind="stable")]
    assert isinstance(policy, WinBack)
    if view.name == "buyers":
        idle = view.days_idle
        since = day - idle
        ok = (view.activated & (idle >= policy.lapse_days) & (idle <= policy.lapse_days + policy.window_days)
              & (view.last_offer_day < since))
        ids = np.flatnonzero(ok)
        return ids[np.argsort(-since[ids], kind="stable")]
    churn_day = view.churn_day
    gone = day - churn_day
    ok = ((churn_day >= 0) & view.activated & ~view.deactivated & (gone >= policy.offer_after_days)
          & (gone <= policy.window_days) & (view.last_offer_day < churn_day))
    ids = np.flatnonzero(ok)
    return ids[np.argsort(-churn_day[ids], kind="stable")]


# -- instrumented runs --------------------------------------------------------------------------------

def _leaf_policies(policies):
    for p in policies:
        parts = [getattr(p, a) for a in ("high_touch", "tech_touch") if hasattr(p, a)]
        yield from (_leaf_policies(parts) if parts else [p])


def checked_run(overrides, win_back_buyers=False):
    """Run a small market with every fast path compared against its reference as it goes."""
    cfg = load_config(SMALL + list(overrides))
    model = Marketplace(cfg)
    cs = model.cs
    seen = {"health": 0, "tickets": 0, "targets": 0, "nonempty_targets": 0}

    compute_health = cs.health.compute

    def checked_compute_health(day):
        snaps = {name: snapshot(model, name) for name in model.sides}
        compute_health(day)
        for name in model.sides:
            st_ref, band, vector, counts = ref_compute_health(cs, model, name, day, snaps[name])
            st = cs.state[name]
            for f in ("orders_seen", "activity_rate", "health", "health_mean"):
                assert np.array_equal(getattr(st, f), getattr(st_ref, f), equal_nan=True), (day, name, f)
            assert np.array_equal(st.band, band) and np.array_equal(st.vector, vector), (day, name)
            assert np.array_equal(cs.health.band(st.health), band)
            for key, value in counts.items():
                got = cs.health.counts[key]
                assert got == value or (math.isnan(got) and math.isnan(value)), (day, key, got, value)
            # the ranking by health: the scored ids in a stable sort of health
            scored = np.flatnonzero(~np.isnan(st.health))
            assert np.array_equal(cs.actions.view(name).by_health, scored[np.argsort(st.health[scored], kind="stable")])
        keys = [f"{name}_{k}" for name in model.sides for k in
                [f"health_{b}" for b in BANDS] + [f"vector_{v}" for v in VECTORS] + ["health_mean"]]
        assert list(cs.health.counts) == keys     # the daily columns keep their order
        seen["health"] += 1

    cs.health.compute = checked_compute_health

    reactive = cs.ticketing.raise_reactive

    def checked_reactive(day, events):
        side, ids, kind, sub = ref_reactive(cs, model, day, events)
        n0 = cs.tickets.n
        reactive(day, events)
        T = cs.tickets
        rows = slice(n0, T.n)
        assert np.array_equal(T["side"][rows], side) and np.array_equal(T["agent"][rows], ids)
        assert np.array_equal(T["kind"][rows], kind) and np.array_equal(T["sub"][rows], sub)
        key = combine_keys(sub, kind, side)
        arrival = np.minimum(day + model.streams.uniform("cs.ticket_arrival", day, ids, sub=key), day + 1 - 1e-9)
        minutes = np.array([getattr(cs.conf.tickets, k).service_minutes for k in REACTIVE])[kind]
        service = (model.streams.exponential("cs.ticket_service", day, ids, sub=key) * minutes
                   / (60.0 * cs.conf.workday_hours))
        assert np.array_equal(T["arrival"][rows], arrival) and np.array_equal(T["service"][rows], service)
        seen["tickets"] += ids.size

    cs.ticketing.raise_reactive = checked_reactive

    for policy in _leaf_policies(cs.policies):
        if not isinstance(policy, (ProactiveOutreach, TechTouch, WinBack)):
            continue
        act = policy.act

        def checked_act(day, ops, policy=policy, act=act):
            sides = list(policy.sides) + (["buyers"] if isinstance(policy, WinBack) and win_back_buyers
                                          and "buyers" not in policy.sides else [])
            for side in sides:
                view = ops.view(side)
                ref = ref_targets(policy, day, view)
                assert np.array_equal(policy.targets(day, view), ref), (type(policy).__name__, day, side)
                for limit in (0, 1, 3, 50, math.inf):
                    assert np.array_equal(policy.targets(day, view, limit), ref[: min(limit, ref.size)])
                seen["targets"] += 1
                seen["nonempty_targets"] += ref.size > 0
            act(day, ops)

        policy.act = checked_act
    model.run_until(cfg.days)
    return model, seen


@pytest.fixture(scope="module")
def delivery_run():
    return checked_run(["market=delivery", ALL_POLICIES], win_back_buyers=True)


@pytest.fixture(scope="module")
def goods_run():
    return checked_run(["market=goods", "policy=none"])


def test_delivery_with_every_policy_matches_the_references(delivery_run):
    model, seen = delivery_run
    assert seen["health"] == 9 and seen["tickets"] > 100
    assert seen["targets"] > 100 and seen["nonempty_targets"] > 20
    assert model.cs.state["drivers"].nudges.sum() > 0 and model.cs.state["sellers"].touches.sum() > 0


def test_goods_without_policies_matches_the_references(goods_run):
    model, seen = goods_run
    assert seen["health"] == 9 and seen["tickets"] > 30


# -- the compiled pieces on their own ------------------------------------------------------------------

def test_rank_by_health_is_a_stable_sort_of_the_scored():
    rng = np.random.default_rng(5)
    for n in (0, 1, 7, 3000, 70000):
        h = rng.choice(np.float32([0.0, -0.0, 12.5, 60.0, 99.9, np.nan]), n) if n < 100 else \
            np.round(rng.uniform(0, 100, n), 1).astype(np.float32)
        if n >= 100:
            h[rng.integers(0, n, n // 10)] = np.nan
            h[:5] = [-0.0, 0.0, np.inf, 0.0, -0.0]
        scored = np.flatnonzero(~np.isnan(h))
        assert np.array_equal(_rank_by_health(h), scored[np.argsort(h[scored], kind="stable")])


def test_selection_helpers_equal_full_sorts():
    rng = np.random.default_rng(11)
    for n in (0, 1, 5, 100, 5000):
        for keys in (rng.integers(-20, 20, n), rng.integers(-20, 20, n).astype(np.float64)):
            if keys.dtype.kind == "f" and n > 3:
                keys[rng.integers(0, n, n // 3)] = np.nan
            full = np.argsort(keys, kind="stable")
            for limit in (None, 0, 1, 2, 7, n // 5, n - 1, n, n + 3, math.inf):
                want = full if limit is None or limit == math.inf else full[: max(int(limit), 0)]
                assert np.array_equal(smallest_first(keys, limit), want), (n, limit)
        order = rng.permutation(n)
        mask = rng.random(n) < 0.3
        for limit in (None, 0, 1, 2, 7, n // 5, n, math.inf):
            want = order[mask[order]]
            want = want if limit is None or limit == math.inf else want[: int(limit)]
            assert np.array_equal(first_eligible(order, lambda ids: mask[ids], limit), want)


# -- the view's accessors ----------------------------------------------------------------------------

def test_view_at_equals_the_full_arrays(delivery_run):
    model, _ = delivery_run
    rng = np.random.default_rng(2)
    fields = [f for f in ObservableView.OBSERVABLE if f not in ("n", "alive_ids")]
    for side in model.sides:
        view = model.cs.actions.view(side)
        n = view.n
        for ids in (rng.integers(0, n, 50), np.arange(n), np.empty(0, np.int64), rng.random(n) < 0.2,
                    np.array([3, 3, 1])):
            for f in fields:
                full, part = getattr(view, f), view.at(f, ids)
                assert part.dtype == full.dtype and np.array_equal(part, full[ids], equal_nan=True), (side, f)
                assert not part.flags.writeable
        with pytest.raises(LatentAccessError):
            view.at("satisfaction", np.arange(3))
        with pytest.raises(AttributeError):
            view.at("no_such_field", np.arange(3))
        order = view.by_health
        with pytest.raises(ValueError):
            order[0] = 0
        with pytest.raises(ValueError):
            order.flags.writeable = True
        # whole-array observables are still copies the engine does not hold
        assert not np.shares_memory(view.health, model.cs.state[side].health)
        assert not np.shares_memory(view.join_day, model.sides[side].join_day)


def test_allowance_is_what_an_action_would_grant():
    model = Marketplace(load_config(["scale=tiny", "days=1"]))
    ops = model.cs
    cs, book = ops.actions, ops.book
    cs.open_account("a", 30, budget=10.0)
    cs.open_account("b", 7, capacity=4)
    cs.open_account("c", 30)
    assert cs.allowance("a", 0.3) == 33 and cs.allowance("b", 5.0) == 4 and cs.allowance("c", 1.0) == math.inf
    assert cs.allowance("a", 0.0) == math.inf
    assert book.grant("a", 5, 0.3) == 5 and cs.allowance("a", 0.3) == 28
    assert book.grant("a", 100, 0.3) == 28 and cs.allowance("a", 0.3) == 0
    assert book.grant("b", 3, 5.0) == 3 and cs.allowance("b", 5.0) == 1
    ops.day = 7     # b's period renews
    spent = book.accounts["b"].used
    assert cs.allowance("b", 5.0) == 4 and book.accounts["b"].used == spent   # nothing booked
    assert book.grant("b", 10, 5.0) == 4


def test_seconds_accounting_is_not_part_of_results():
    model = Marketplace(load_config(["scale=tiny", "market=delivery", "days=10"]))
    result = model.run()
    secs = model.cs.seconds
    assert set(secs) == {"desk", "cs_total"} and 0 < secs["desk"] <= secs["cs_total"]
    assert not any("seconds" in c for c in result.daily.columns)
