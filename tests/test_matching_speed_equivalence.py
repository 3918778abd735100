"""The compiled matching and supply-side rules equal their plain NumPy versions, bit for bit.

sim/matching.py, sim/spatial.py (dispatch_day), agents/drivers.py and
agents/sellers.py moved their daily work into numba passes. Each test below
runs the new function and a reference written here with NumPy (the
implementation it replaced, copied verbatim where it was NumPy already) on the
same inputs and asserts *exact* equality (np.testing.assert_array_equal on
the values and equal dtypes; float results must match to the last bit).
Random inputs come from the project's counter-based streams, never np.random.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import sim.model
from agents import drivers as drivers_rules
from agents import sellers as sellers_rules
from agents.lifecycle import experience_multiplier
from sim import Marketplace, matching, spatial
from sim.matching import NO_MATCH
from sim.spatial import greedy_match, torus_distance
from sim.streams import Streams, combine_keys


def same(got, want):
    """Exactly equal arrays: same dtype, same values (NaN where NaN), same bits."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_array_equal(got, want)
    assert got.tobytes() == want.tobytes()


def same_side(got, want):
    for field, values in want.table().items():
        same(getattr(got, field), values)


# ---------------------------------------------------------------------------
# reference implementations (the NumPy code the compiled passes replaced)
# ---------------------------------------------------------------------------

def ref_pick(weights, u, items):
    cumulative = np.cumsum(weights)
    pick = np.searchsorted(cumulative, u * cumulative[-1], side="right")
    return items[np.minimum(pick, items.size - 1)]


def ref_choose_sellers(sellers, conf, buyer_ids, purchase_index, day, streams):
    listed = np.flatnonzero(sellers.alive & (sellers.activation_day >= 0))
    if listed.size == 0 or buyer_ids.size == 0:
        return np.full(buyer_ids.size, NO_MATCH, dtype=np.int64)
    cumulative = np.cumsum(ref_choice_weights(sellers, listed, conf))
    u = streams.uniform("buyers.seller_choice", day, buyer_ids, sub=purchase_index)
    pick = np.searchsorted(cumulative, u * cumulative[-1], side="right")
    return listed[np.minimum(pick, listed.size - 1)]


def ref_choice_weights(sellers, listed, conf):
    c = conf.choice
    r = sellers_rules.rating(sellers, c.rating_prior_mean, c.rating_prior_count)[listed]
    log_w = (c.w_rating * (r - c.rating_prior_mean) + c.w_reviews * np.log1p(sellers.rating_count[listed])
             - c.w_price * np.log(sellers.price_level[listed]))
    weight = np.exp(log_w)
    weight *= np.where(sellers.segment[listed] == sellers_rules.ENTERPRISE, conf.enterprise_weight, 1.0)
    weight *= np.where(sellers.premium[listed], conf.premium.choice_boost, 1.0)
    weight *= np.where(sellers.promoted[listed], conf.promoted.choice_boost, 1.0)
    return weight


def ref_update_sales_experience(sellers, sales_today, conf, neutral):
    """Net income against the outside option, as plain NumPy in float64 (stored to the float32 fields)."""
    rate = sellers.sales_value_rate.astype(np.float64)
    rate = rate + (np.asarray(sales_today, dtype=np.float64) - rate) / float(conf.sales_window_days)
    sellers.sales_value_rate[:] = rate
    active = sellers.alive & (sellers.activation_day >= 0)
    fees = (np.where(sellers.premium[active], float(conf.premium.fee_per_day), 0.0)
            + np.where(sellers.promoted[active], float(conf.promoted.fee_per_day), 0.0))
    net = rate[active] * (1.0 - float(conf.commission)) - fees
    ratio = np.where(net > 0, net / sellers.outside_option[active].astype(np.float64), 0.0)
    boosted = ratio ** float(conf.sales_sensitivity) * (neutral / (1.0 - neutral))
    level = boosted / (1.0 + boosted)
    sat = sellers.satisfaction[active].astype(np.float64)
    sellers.satisfaction[active] = sat + float(conf.experience_learning_rate) * (level - sat)


def ref_shifts(drivers, day, rounds_per_day, conf, behaviour_satisfaction, neutral, streams):
    ids = np.flatnonzero(drivers.alive & (drivers.activation_day >= 0))
    share = np.minimum(1.0, drivers.platform_share[ids] * experience_multiplier(
        behaviour_satisfaction[ids], neutral, conf.share_sensitivity))
    rounds_float = drivers.hours[ids] * share * rounds_per_day / 24.0
    rounds = np.floor(rounds_float + streams.uniform("drivers.shift_length", day, ids)).astype(np.int64)
    start = np.floor(streams.uniform("drivers.shift_start", day, ids) * rounds_per_day).astype(np.int64)
    working = rounds > 0
    return ids[working], start[working], np.minimum(rounds[working], rounds_per_day)


def ref_rate_trips(drivers, ids, day, conf, streams, trip_sub):
    u_quality = streams.uniform("drivers.trip_quality", day, ids, sub=trip_sub)
    u_luck = streams.uniform("drivers.bad_luck", day, ids, sub=trip_sub)
    at_fault = u_quality >= drivers.quality[ids]
    unfair = ~at_fault & (u_luck < conf.bad_luck_low_rating)
    score = np.where(at_fault, 2.0 + (u_luck < 0.5), np.where(unfair, 1.0 + np.floor(u_quality * 3), 5.0))
    low = score <= 3
    # rolling mean, one pass per repeat of a driver (ratings of one driver in trip order)
    window = conf.deactivation.window
    remaining = np.arange(ids.size)
    while remaining.size:
        _, first = np.unique(ids[remaining], return_index=True)
        pick = remaining[first]
        d = ids[pick]
        count = drivers.rating_count[d] + 1
        drivers.rating_count[d] = count
        weight = 1.0 / np.minimum(count, window)
        drivers.rating_mean[d] += (score[pick] - drivers.rating_mean[d]) * weight
        keep = np.ones(remaining.size, dtype=bool)
        keep[first] = False
        remaining = remaining[keep]
    unique, counts = np.unique(ids[low], return_counts=True)
    drivers.low_ratings[unique] += counts.astype(drivers.low_ratings.dtype)
    unique, counts = np.unique(ids[unfair], return_counts=True)
    drivers.unfair_low_ratings[unique] += counts.astype(drivers.unfair_low_ratings.dtype)
    return at_fault, unfair, score


def ref_reposition(rule, step, u, ids, driver_x, driver_y, last_pickup_x, last_pickup_y):
    """Idle drivers ``ids`` move one step (``u``: their uniforms), one by one in plain Python floats."""
    for d, ud in zip(ids, u):
        x, y = float(driver_x[d]), float(driver_y[d])
        if rule == "random_walk":
            angle = 2.0 * math.pi * ud
            x, y = x + step * math.cos(angle), y + step * math.sin(angle)
        elif rule == "toward_demand":
            source = min(int(ud * driver_x.size), driver_x.size - 1)
            tx, ty = float(last_pickup_x[source]), float(last_pickup_y[source])
            if tx == spatial.NO_PICKUP:
                continue
            ddx, ddy = tx - x, ty - y
            ddx -= math.floor(ddx + 0.5)
            ddy -= math.floor(ddy + 0.5)
            gap = math.sqrt(ddx * ddx + ddy * ddy)
            x, y = (tx, ty) if gap <= step else (x + ddx * (step / gap), y + ddy * (step / gap))
        x, y = x - math.floor(x), y - math.floor(y)
        driver_x[d], driver_y[d] = (0.0 if x >= 1.0 else x), (0.0 if y >= 1.0 else y)


def ref_dispatch_day(round_bounds, rx, ry, dx, dy, shift_driver, shift_start, shift_rounds, driver_x, driver_y,
                     busy_until, day, rounds_per_day, max_distance, size_km, speed_kmh, handling_minutes,
                     rule="stay", step=0.0, streams=None, last_pickup_x=None, last_pickup_y=None):
    """Round by round in Python: online drivers by the modulo rule, greedy_match, then move them.

    Returns (driver of each request, pickup distance, idle drivers each request could choose from).
    Idle drivers left after a round reposition under ``rule`` with the ``drivers.reposition`` stream
    of ``streams`` (sub-counter: the round); matched drivers' pickups go to ``last_pickup_x/y``.
    """
    n = rx.size
    driver_of = np.full(n, -1, np.int64)
    pickup = np.full(n, np.inf)
    idle_drivers = np.zeros(n, np.int64)
    for r in range(rounds_per_day):
        lo, hi = round_bounds[r], round_bounds[r + 1]
        if lo == hi and rule == "stay":
            continue
        round_start = day + r / rounds_per_day
        on = np.mod(r - shift_start, rounds_per_day) < shift_rounds
        if not on.any():
            continue
        online = shift_driver[on]
        idle = busy_until[online] <= round_start
        if lo < hi:
            match, distance = greedy_match(rx[lo:hi], ry[lo:hi], driver_x[online], driver_y[online], idle,
                                           max_distance)
            taken = match[match >= 0]
            idle_drivers[lo:hi] = idle.sum() - (np.cumsum(match >= 0) - (match >= 0))
            for i in range(hi - lo):
                if match[i] < 0:
                    continue
                req = lo + i
                d = online[match[i]]
                driver_of[req] = d
                pickup[req] = distance[i]
                trip = float(torus_distance(rx[req], ry[req], dx[req], dy[req]))
                minutes = (distance[i] + trip) * size_km / speed_kmh * 60.0 + handling_minutes
                busy_until[d] = round_start + minutes / 1440.0
                driver_x[d] = dx[req]
                driver_y[d] = dy[req]
                if last_pickup_x is not None:
                    last_pickup_x[d], last_pickup_y[d] = rx[req], ry[req]
            idle[taken] = False
        if rule != "stay":
            still_idle = online[idle]
            u = streams.uniform("drivers.reposition", day, still_idle, sub=np.full(still_idle.size, r))
            ref_reposition(rule, step, u, still_idle, driver_x, driver_y, last_pickup_x, last_pickup_y)
    return driver_of, pickup, idle_drivers


# ---------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------

S = Streams(20240611, any_name=True)


def uniforms(name, n, day=0):
    return S.uniform(name, day, np.arange(n))


def small_model(market, days, *overrides):
    from experiments.config import load_config

    population = ["population.buyers=3000", "population.sellers=400"]
    if market != "goods":
        population.append("population.drivers=300")
    if market == "rides":
        population = [p for p in population if "sellers" not in p]
    m = Marketplace(load_config([f"market={market}", "policy=none", f"days={days}", *population, *overrides]))
    m.run_until(days)
    return m


@pytest.fixture(scope="module")
def delivery_model():
    return small_model("delivery", 12)


def scrambled_sellers(model, variant):
    """A copy of the model's sellers with state moved away from the defaults (dead, premium, reviews)."""
    sellers = copy.deepcopy(model.sides["sellers"])
    n = sellers.n
    u = uniforms(f"sellers.variant{variant}", n)
    sellers.alive[u < 0.15] = False
    sellers.activation_day[(u > 0.15) & (u < 0.2)] = -1
    sellers.premium[u > 0.85] = True
    sellers.promoted[(u > 0.5) & (u < 0.6) | (u > 0.95)] = True
    sellers.segment[:] = (uniforms(f"sellers.segment{variant}", n) < 0.3).astype(np.int8)
    counts = np.floor(uniforms(f"sellers.reviews{variant}", n) ** 4 * 400)
    sellers.rating_count[:] = counts
    sellers.rating_sum[:] = counts * (1 + 4 * uniforms(f"sellers.stars{variant}", n))
    sellers.sales_value_rate[:] = uniforms(f"sellers.sales{variant}", n) * 90
    sellers.satisfaction[:] = uniforms(f"sellers.sat{variant}", n)
    sellers.premium_hazard[:] = uniforms(f"sellers.hazard{variant}", n) * 2
    return sellers


# ---------------------------------------------------------------------------
# choose_sellers: the inverse-CDF pick
# ---------------------------------------------------------------------------

def weight_cases():
    n = 5000
    base = uniforms("w.base", n)
    yield "uniform f32", base.astype(np.float32)
    yield "uniform f64", base
    yield "lognormal f32", np.exp(8 * (base - 0.5)).astype(np.float32)
    yield "very skewed f64", np.exp(60 * (base - 0.5))
    zeros = base.astype(np.float32)
    zeros[base < 0.6] = 0.0
    yield "mostly zero", zeros
    yield "equal", np.full(n, 0.25, np.float32)
    yield "integers", np.floor(base * 4).astype(np.float32)     # many exact ties between u*total and the sums
    yield "one", np.array([2.5], np.float32)
    yield "tiny", np.full(7, 1e-30, np.float32)
    leading_zero = base[:50].astype(np.float32)
    leading_zero[:10] = 0.0
    yield "leading zeros", leading_zero


@pytest.mark.parametrize("case", list(weight_cases()), ids=lambda c: c[0])
def test_pick_equals_cumsum_searchsorted(case):
    _, weights = case
    items = np.arange(weights.size, dtype=np.int64) * 3 + 7
    u = uniforms("w.u", 20000)
    u = np.concatenate([u, [1e-300, 0.5, 1 - 2**-53, 0.0]])
    same(matching.pick_by_cumulative_weight(weights, u, items), ref_pick(weights, u, items))
    # keys landing exactly on the cumulative sums (the side="right" ties), and on bucket edges
    cumulative = np.cumsum(weights).astype(np.float64)
    total = cumulative[-1]
    if total > 0:
        exact = cumulative / total
        edges = np.arange(weights.size) / weights.size
        for keys in (exact, np.nextafter(exact, 0), np.nextafter(exact, 1), edges, np.nextafter(edges, 1)):
            keys = np.clip(keys, 0.0, np.nextafter(1.0, 0))
            same(matching.pick_by_cumulative_weight(weights, keys, items), ref_pick(weights, keys, items))


def test_pick_falls_back_to_numpy_for_odd_weights():
    items = np.arange(6)
    u = uniforms("w.odd", 1000)
    for weights in (np.array([1.0, -0.5, 2.0, 0.1, 3.0, 1.0]), np.array([1.0, np.nan, 1.0, 1.0, 1.0, 1.0]),
                    np.array([1.0, np.inf, 1.0, 1.0, 1.0, 1.0]), np.zeros(6, np.float32)):
        same(matching.pick_by_cumulative_weight(weights, u, items), ref_pick(weights, u, items))


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_choose_sellers_and_choice_weights_equal_reference(delivery_model, variant):
    m = delivery_model
    sellers = m.sides["sellers"] if variant == 0 else scrambled_sellers(m, variant)
    conf = m.market.sellers
    listed = np.flatnonzero(sellers.alive & (sellers.activation_day >= 0))
    same(sellers_rules.choice_weights(sellers, listed, conf), ref_choice_weights(sellers, listed, conf))
    buyers = np.repeat(np.arange(4000), 2)
    k = np.tile(np.arange(2), 4000)
    same(matching.choose_sellers(sellers, conf, buyers, k, 3, m.streams),
         ref_choose_sellers(sellers, conf, buyers, k, 3, m.streams))


def test_choice_weights_without_the_log1p_table(delivery_model):
    """Non-integer or very large review counts take np.log1p directly; still the same weights."""
    m = delivery_model
    conf = m.market.sellers
    sellers = scrambled_sellers(m, 4)
    n = sellers.n
    for counts in (uniforms("reviews.frac", n) * 30, np.full(n, 5000.0), np.full(n, 0.0)):
        sellers.rating_count[:] = counts.astype(np.float32)
        sellers.rating_sum[:] = sellers.rating_count * (1 + 4 * uniforms("reviews.stars", n)).astype(np.float32)
        listed = np.flatnonzero(sellers.alive)
        same(sellers_rules.choice_weights(sellers, listed, conf), ref_choice_weights(sellers, listed, conf))
        same(sellers_rules.choice_weights(sellers, listed[:0], conf), ref_choice_weights(sellers, listed[:0], conf))


def test_choice_weights_with_numpy_scalars_in_the_config(delivery_model):
    """A config number that is a NumPy float64 changes NumPy's dtypes; the NumPy path is then used."""
    m = delivery_model
    conf = copy.deepcopy(m.market.sellers)
    conf.choice.w_rating = np.float64(conf.choice.w_rating)
    sellers = scrambled_sellers(m, 5)
    listed = np.flatnonzero(sellers.alive)
    same(sellers_rules.choice_weights(sellers, listed, conf), ref_choice_weights(sellers, listed, conf))


# ---------------------------------------------------------------------------
# sellers' daily rules
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("variant", [0, 1, 2])
def test_update_sales_experience_equals_reference(delivery_model, variant):
    m = delivery_model
    conf = m.market.sellers
    sellers = m.sides["sellers"] if variant == 0 else scrambled_sellers(m, variant)
    sales = np.floor(uniforms(f"orders{variant}", sellers.n) ** 3 * 5) * 30.0   # currency, zero for many
    got, want = copy.deepcopy(sellers), copy.deepcopy(sellers)
    for neutral in (0.5, 0.62):
        sellers_rules.update_sales_experience(got, sales, conf, neutral)
        ref_update_sales_experience(want, sales, conf, neutral)
        same_side(got, want)


# ---------------------------------------------------------------------------
# drivers: shifts and ratings
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shifts_equal_reference(delivery_model, dtype):
    m = delivery_model
    drivers = copy.deepcopy(m.sides["drivers"])
    drivers.alive[uniforms("d.dead", drivers.n) < 0.1] = False
    satisfaction = uniforms("d.sat", drivers.n).astype(dtype)
    for day, rounds in ((3, 48), (4, 24), (5, 7)):
        got = drivers_rules.shifts(drivers, day, rounds, m.market.drivers, satisfaction, 0.5, m.streams)
        want = ref_shifts(drivers, day, rounds, m.market.drivers, satisfaction, 0.5, m.streams)
        for g, w in zip(got, want):
            same(g, w)


def test_rate_trips_equals_reference_with_repeated_drivers(delivery_model):
    m = delivery_model
    conf = copy.deepcopy(m.market.drivers)
    conf.bad_luck_low_rating = 0.2
    drivers = copy.deepcopy(m.sides["drivers"])
    drivers.rating_count[:] = np.floor(uniforms("d.count", drivers.n) * 120).astype(np.int32)   # some past window
    n_trips = 5000
    ids = np.floor(uniforms("trip.driver", n_trips) ** 2 * drivers.n).astype(np.int64)   # heavy repeats
    trip = combine_keys(np.arange(n_trips), 3)
    got, want = copy.deepcopy(drivers), copy.deepcopy(drivers)
    for day in (7, 8):
        result = drivers_rules.rate_trips(got, ids, day, conf, m.streams, trip_sub=trip)
        expected = ref_rate_trips(want, ids, day, conf, m.streams, trip)
        for g, w in zip(result, expected):
            same(g, w)
        same_side(got, want)
    empty = np.zeros(0, np.int64)
    for g, w in zip(drivers_rules.rate_trips(got, empty, 9, conf, m.streams, trip_sub=empty),
                    ref_rate_trips(want, empty, 9, conf, m.streams, empty)):
        same(g, w)


# ---------------------------------------------------------------------------
# dispatch_day
# ---------------------------------------------------------------------------

def dispatch_inputs(n_requests, n_drivers, rounds_per_day, tag, odd_shifts=False):
    day = 11
    t = np.sort(uniforms(f"{tag}.t", n_requests))
    request_round = np.minimum((t * rounds_per_day).astype(np.int64), rounds_per_day - 1)
    bounds = np.searchsorted(request_round, np.arange(rounds_per_day + 1), side="left")
    rx, ry = uniforms(f"{tag}.rx", n_requests), uniforms(f"{tag}.ry", n_requests)
    dx, dy = uniforms(f"{tag}.dx", n_requests), uniforms(f"{tag}.dy", n_requests)
    n_shifts = n_drivers * 3 // 4
    shift_driver = np.sort(np.floor(uniforms(f"{tag}.sd", n_shifts) * n_drivers).astype(np.int64))
    shift_driver = np.unique(shift_driver)
    k = shift_driver.size
    start = np.floor(uniforms(f"{tag}.st", k) * rounds_per_day).astype(np.int64)
    length = 1 + np.floor(uniforms(f"{tag}.len", k) * rounds_per_day / 3).astype(np.int64)
    if odd_shifts:   # starts outside [0, R), zero, negative and over-long shifts
        start = start + rounds_per_day * np.floor((uniforms(f"{tag}.wrap", k) - 0.5) * 6).astype(np.int64)
        length = np.floor((uniforms(f"{tag}.len2", k) - 0.1) * rounds_per_day * 1.4).astype(np.int64)
    x, y = uniforms(f"{tag}.x", n_drivers), uniforms(f"{tag}.y", n_drivers)
    busy = day + uniforms(f"{tag}.busy", n_drivers) * 0.3
    return bounds, rx, ry, dx, dy, shift_driver, start, length, x, y, busy, day


@pytest.mark.parametrize("rounds_per_day,max_distance,odd", [(48, 0.52, False), (24, 0.05, False),
                                                             (48, 0.2, True), (5, 0.1, True)])
@pytest.mark.parametrize("rule,step", [("stay", 0.0), ("random_walk", 0.03), ("toward_demand", 0.03),
                                       ("toward_demand", 0.9)])
def test_dispatch_day_equals_round_by_round_reference(rounds_per_day, max_distance, odd, rule, step):
    (bounds, rx, ry, dx, dy, shift_driver, start, length, x, y, busy,
     day) = dispatch_inputs(3000, 600, rounds_per_day, f"dd{rounds_per_day}{odd}", odd_shifts=odd)
    # a third of the drivers have a pickup from before (the rest NO_PICKUP: they have not driven yet)
    known = uniforms("dd.known", x.size) < 1 / 3
    last_x = np.where(known, uniforms("dd.lx", x.size), spatial.NO_PICKUP)
    last_y = np.where(known, uniforms("dd.ly", x.size), spatial.NO_PICKUP)
    got_state = [x.copy(), y.copy(), busy.copy()]
    want_state = [x.copy(), y.copy(), busy.copy()]
    got_last, want_last = [last_x.copy(), last_y.copy()], [last_x.copy(), last_y.copy()]
    args = (12.0, 25.0, 10.0)
    got = spatial.dispatch_day(bounds, rx, ry, dx, dy, shift_driver, start, length, *got_state, day,
                               rounds_per_day, max_distance, *args, reposition_rule=rule, reposition_step=step,
                               reposition_key=S.day_key("drivers.reposition", day), last_pickup_x=got_last[0],
                               last_pickup_y=got_last[1])
    want = ref_dispatch_day(bounds, rx, ry, dx, dy, shift_driver, start, length, *want_state, day,
                            rounds_per_day, max_distance, *args, rule=rule, step=step, streams=S,
                            last_pickup_x=want_last[0], last_pickup_y=want_last[1])
    same(got.driver, want[0])
    same(got.pickup, want[1])
    same(got.idle_drivers, want[2])
    same(got.trip_km, torus_distance(rx, ry, dx, dy) * 12.0)
    for g, w in zip(got_state + got_last, want_state + want_last):
        same(g, w)
    assert (got.driver >= 0).sum() > 100
    stay_x = x.copy()
    ref_dispatch_day(bounds, rx, ry, dx, dy, shift_driver, start, length, stay_x, y.copy(), busy.copy(), day,
                     rounds_per_day, max_distance, *args)
    if rounds_per_day >= 24:   # (with 5 rounds of 600 requests every idle driver is taken: nobody left to move)
        assert np.array_equal(got_state[0], stay_x) == (rule == "stay")   # the rule moved somebody
    assert ((got_state[0] >= 0) & (got_state[0] < 1) & (got_state[1] >= 0) & (got_state[1] < 1)).all()


def test_dispatch_day_rejects_unknown_rule_and_bad_step():
    (bounds, rx, ry, dx, dy, shift_driver, start, length, x, y, busy,
     day) = dispatch_inputs(30, 10, 4, "ddbad")
    with pytest.raises(ValueError, match="reposition_rule"):
        spatial.dispatch_day(bounds, rx, ry, dx, dy, shift_driver, start, length, x, y, busy, day, 4, 0.5,
                             12.0, 25.0, 10.0, reposition_rule="teleport")
    for step in (-0.1, math.nan, math.inf):
        with pytest.raises(ValueError, match="reposition_step"):
            spatial.dispatch_day(bounds, rx, ry, dx, dy, shift_driver, start, length, x, y, busy, day, 4, 0.5,
                                 12.0, 25.0, 10.0, reposition_rule="random_walk", reposition_step=step)
    with pytest.raises(ValueError, match="last_pickup"):
        spatial.dispatch_day(bounds, rx, ry, dx, dy, shift_driver, start, length, x, y, busy, day, 4, 0.5,
                             12.0, 25.0, 10.0, reposition_rule="toward_demand", reposition_step=0.1)


def test_shifts_by_round_lists_online_shifts_in_order():
    for rounds_per_day in (1, 2, 7, 48):
        start = np.floor((uniforms(f"sbr.s{rounds_per_day}", 500) - 0.5) * 5 * rounds_per_day).astype(np.int64)
        length = np.floor((uniforms(f"sbr.l{rounds_per_day}", 500) - 0.2) * 1.5 * rounds_per_day).astype(np.int64)
        round_start, shift = spatial._shifts_by_round(start, length, rounds_per_day)
        for r in range(rounds_per_day):
            want = np.flatnonzero(np.mod(r - start, rounds_per_day) < length)
            same(shift[round_start[r]:round_start[r + 1]], want)


# ---------------------------------------------------------------------------
# whole runs: the engine with the reference rules patched in gives the same state
# ---------------------------------------------------------------------------

def ref_dispatch(drivers, conf_drivers, city, day, request_time, pickup_x, pickup_y, drop_x, drop_y,
                 behaviour_satisfaction, neutral, streams):
    rounds_per_day = city.rounds_per_day
    ids, start, length = ref_shifts(drivers, day, rounds_per_day, conf_drivers, behaviour_satisfaction, neutral,
                                    streams)
    drivers.online_hours[:] = 0.0
    drivers.online_hours[ids] = length * (24.0 / rounds_per_day)
    max_distance = city.max_pickup_minutes / 60.0 * city.speed_kmh / city.size_km
    request_round = np.minimum(((request_time - day) * rounds_per_day).astype(np.int64), rounds_per_day - 1)
    bounds = np.searchsorted(request_round, np.arange(rounds_per_day + 1), side="left")
    reposition = conf_drivers.reposition
    driver_of, pickup, _ = ref_dispatch_day(bounds, pickup_x, pickup_y, drop_x, drop_y, ids, start, length,
                                            drivers.x, drivers.y, drivers.busy_until, day, rounds_per_day,
                                            max_distance, city.size_km, city.speed_kmh,
                                            conf_drivers.handling_minutes, rule=reposition.rule,
                                            step=matching.reposition_step(reposition, city),
                                            streams=streams, last_pickup_x=drivers.last_pickup_x,
                                            last_pickup_y=drivers.last_pickup_y)
    trip_km = torus_distance(pickup_x, pickup_y, drop_x, drop_y) * city.size_km
    return matching.Dispatch(driver_of, pickup * city.size_km, trip_km, float(drivers.online_hours.sum()))


def reference_rules(monkeypatch):
    monkeypatch.setattr(sim.model, "choose_sellers", ref_choose_sellers)
    monkeypatch.setattr(sim.model, "dispatch", ref_dispatch)
    monkeypatch.setattr(drivers_rules, "rate_trips", ref_rate_trips)
    monkeypatch.setattr(sellers_rules, "update_sales_experience", ref_update_sales_experience)


@pytest.mark.parametrize("market,overrides", [("delivery", ()), ("goods", ()), ("rides", ()),
                                              ("delivery", ("experience_effects=false",)),
                                              ("rides", ("market.drivers.reposition.rule=random_walk",)),
                                              ("delivery", ("market.drivers.reposition.rule=toward_demand",))])
def test_whole_run_equals_run_with_reference_rules(monkeypatch, market, overrides):
    fast = small_model(market, 25, *overrides)
    with monkeypatch.context() as patch:
        reference_rules(patch)
        slow = small_model(market, 25, *overrides)
    for name, side in slow.sides.items():
        same_side(fast.sides[name], side)
    assert len(fast.ledger.rows) == len(slow.ledger.rows)
    for a, b in zip(fast.ledger.rows, slow.ledger.rows):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == b[key] or (isinstance(a[key], float) and math.isnan(a[key]) and math.isnan(b[key])), key
