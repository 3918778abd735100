"""Tests for sim/spatial.py: greedy nearest-driver matching on the unit torus.

Inputs come from the project's counter-based streams (sim.streams), never
from np.random. The grid kernels must agree *exactly* (same drivers, same
float distances) with a brute-force greedy reference written with numpy.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

from sim import spatial
from sim.spatial import (
    expected_nearest_distance,
    greedy_match,
    nearest_distance,
    torus_distance,
)
from sim.streams import Streams

REACH_ALL = 0.5 * math.sqrt(2.0)  # the largest distance on the unit torus


# ---------------------------------------------------------------------------
# references and input generators
# ---------------------------------------------------------------------------

def brute_greedy(rx, ry, px, py, available, max_distance):
    """Greedy matching by brute force: requests in order, nearest free driver
    within max_distance, ties to the lowest index (np.argmin takes the first)."""
    free = np.ones(len(px), bool) if available is None else np.array(available, bool)
    driver_of = np.full(len(rx), -1, np.int64)
    dist = np.full(len(rx), np.inf)
    for i in range(len(rx)):
        d = torus_distance(rx[i], ry[i], px, py)
        ok = free & (d <= max_distance)
        if ok.any():
            j = int(np.argmin(np.where(ok, d, np.inf)))
            driver_of[i] = j
            dist[i] = d[j]
            free[j] = False
    return driver_of, dist


def brute_nearest(qx, qy, px, py):
    if len(px) == 0:
        return np.full(len(qx), np.inf)
    return np.array([torus_distance(qx[i], qy[i], px, py).min() for i in range(len(qx))])


def uniform_xy(s, name, day, n):
    ids = np.arange(n)
    return s.uniform(name + ".x", day, ids), s.uniform(name + ".y", day, ids)


def positions(s, kind, name, day, n):
    """Positions of one of several shapes, all in [0, 1)."""
    x, y = uniform_xy(s, name, day, n)
    if kind == "uniform":
        return x, y
    if kind == "edges":
        # Within 0.03 of the city's edges (both sides), so wrap-around matters.
        x = np.mod(0.06 * x - 0.03, 1.0)
        y = np.mod(np.where(s.uniform(name + ".e", day, np.arange(n)) < 0.5, 0.06 * y - 0.03, y), 1.0)
        return x, y
    if kind == "lattice":
        # An 8 x 8 lattice: many exactly equal distances (and stacked drivers),
        # so ties must go to the lowest driver index.
        return np.floor(8 * x) / 8, np.floor(8 * y) / 8
    raise ValueError(kind)


def assert_same(got, want):
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])  # bit-identical distances
    assert got[0].dtype == np.int64 and got[1].dtype == np.float64


# ---------------------------------------------------------------------------
# torus_distance
# ---------------------------------------------------------------------------

def test_torus_distance_wraps_and_broadcasts():
    assert torus_distance(0.01, 0.5, 0.99, 0.5) == pytest.approx(0.02, abs=1e-15)
    assert torus_distance(0.01, 0.01, 0.99, 0.99) == pytest.approx(0.02 * math.sqrt(2), abs=1e-15)
    assert torus_distance(0.0, 0.0, 0.5, 0.5) == pytest.approx(REACH_ALL)
    assert torus_distance(0.2, 0.3, 0.2, 0.3) == 0.0
    # values outside [0, 1) are taken modulo 1
    assert torus_distance(-0.25, 1.5, 0.75, 0.5) == pytest.approx(0.0, abs=1e-15)
    d = torus_distance(np.array([0.1, 0.9]), 0.0, 0.5, np.array([[0.0], [0.25]]))
    assert d.shape == (2, 2)
    np.testing.assert_allclose(d, [[0.4, 0.4], [math.hypot(0.4, 0.25)] * 2])


# ---------------------------------------------------------------------------
# greedy_match: exact agreement with brute force
# ---------------------------------------------------------------------------

CASES = [
    # (kind, n_requests, n_drivers, max_distance)
    ("uniform", 40, 60, 0.1),
    ("uniform", 60, 40, 0.2),        # more requests than drivers
    ("uniform", 80, 80, 0.03),       # small max_distance: many unmatched
    ("uniform", 50, 30, REACH_ALL),  # everything reachable
    ("uniform", 120, 20, np.inf),    # drivers run out: grid rebuilt several times
    ("uniform", 30, 5, 0.4),         # 1 or 2 cells per side
    ("edges", 60, 60, 0.05),
    ("edges", 60, 40, REACH_ALL),
    ("lattice", 50, 70, 0.3),
    ("lattice", 70, 30, np.inf),
    ("lattice", 40, 40, 0.125),      # max_distance equal to lattice distances
]


@pytest.mark.parametrize("kind,n_req,n_drv,max_d", CASES)
def test_greedy_equals_bruteforce_small(kind, n_req, n_drv, max_d):
    s = Streams(20240611, any_name=True)
    for day in range(12):
        # vary the sizes a little so grids of many shapes are exercised
        nr = max(1, n_req - 3 * day)
        nd = max(1, n_drv - 2 * day)
        rx, ry = positions(s, kind, "req", day, nr)
        px, py = positions(s, kind, "drv", day, nd)
        available = s.uniform("avail", day, np.arange(nd)) < 0.8
        assert_same(greedy_match(rx, ry, px, py, available, max_d),
                    brute_greedy(rx, ry, px, py, available, max_d))
        assert_same(greedy_match(rx, ry, px, py, None, max_d),
                    brute_greedy(rx, ry, px, py, None, max_d))


@pytest.mark.parametrize("n_drv,n_req,max_d", [
    (5000, 4000, 0.02),
    (5000, 4000, 0.004),     # below the typical nearest distance: many unmatched
    (2000, 3000, np.inf),    # all reachable, drivers exhausted
    (3000, 3000, 0.05),
])
def test_greedy_equals_bruteforce_medium(n_drv, n_req, max_d):
    s = Streams(7, any_name=True)
    rx, ry = uniform_xy(s, "req", n_req, n_req)
    px, py = uniform_xy(s, "drv", n_drv, n_drv)
    available = s.uniform("avail", 0, np.arange(n_drv)) < 0.9
    got = greedy_match(rx, ry, px, py, available, max_d)
    assert_same(got, brute_greedy(rx, ry, px, py, available, max_d))
    # the grid path (not a single cell) is what was checked
    assert spatial._grid_side(int(available.sum()), max_d, spatial.CELL_FACTOR) >= 20
    matched = got[0][got[0] >= 0]
    assert len(np.unique(matched)) == len(matched)  # each driver used once
    assert available[matched].all()
    if max_d == 0.004:
        assert 0 < len(matched) < n_req


@pytest.mark.parametrize("max_d", [0.03, 0.1, np.inf])
def test_greedy_equals_bruteforce_hotspot(max_d):
    # Requests crowd a small area near a corner (wrapping), so they empty it
    # of drivers and later searches run over removed drivers: this exercises
    # the rebuilds that drop them.
    s = Streams(17, any_name=True)
    n_drv, n_req = 3000, 1500
    px, py = uniform_xy(s, "drv", 0, n_drv)
    rx, ry = uniform_xy(s, "req", 0, n_req)
    rx, ry = np.mod(0.98 + 0.04 * rx, 1.0), np.mod(0.99 + 0.02 * ry, 1.0)
    got = greedy_match(rx, ry, px, py, None, max_d)
    assert_same(got, brute_greedy(rx, ry, px, py, None, max_d))
    if np.isinf(max_d):
        assert (got[0] >= 0).all()
    else:
        assert 0 < (got[0] >= 0).sum() < n_req


def test_wraparound_match():
    # across the left/right edge: 0.02 away, nearer than 0.04 on the same side
    j, d = greedy_match([0.01], [0.5], [0.05, 0.99], [0.5, 0.5], None, 0.03)
    assert j[0] == 1 and d[0] == pytest.approx(0.02, abs=1e-15)
    # across a corner (both axes wrap)
    j, d = greedy_match([0.99], [0.995], [0.5, 0.005], [0.5, 0.01], None, 0.05)
    assert j[0] == 1 and d[0] == pytest.approx(math.hypot(0.015, 0.015), abs=1e-15)
    # exact 0 and the largest double below 1 sit in the first and last cells
    top = np.nextafter(1.0, 0.0)
    j, d = greedy_match([0.0, top], [0.0, top], [top, 0.0, 0.5], [top, 0.0, 0.5], None, 0.01)
    np.testing.assert_array_equal(j, [1, 0])


def test_order_ties_and_exclusivity():
    # two requests want the same driver: the first one gets it
    j, d = greedy_match([0.5, 0.5], [0.5, 0.5], [0.5, 0.6], [0.51, 0.5], None, 0.2)
    np.testing.assert_array_equal(j, [0, 1])
    # four drivers at exactly the same distance: the lowest index wins, then
    # the next lowest, and so on
    px = [0.5, 0.25, 0.5, 0.75]
    py = [0.75, 0.5, 0.25, 0.5]
    j, d = greedy_match([0.5] * 5, [0.5] * 5, px, py, None, 0.25)
    np.testing.assert_array_equal(j, [0, 1, 2, 3, -1])
    np.testing.assert_array_equal(d, [0.25] * 4 + [np.inf])
    # max_distance is inclusive; below it nothing is matched
    assert greedy_match([0.5], [0.5], px, py, None, 0.25)[0][0] == 0
    assert greedy_match([0.5], [0.5], px, py, None, 0.2499)[0][0] == -1
    assert greedy_match([0.5], [0.5], [0.5], [0.5], None, -1.0)[0][0] == -1
    assert greedy_match([0.5], [0.5], [0.5], [0.5], None, 0.0)[0][0] == 0


@pytest.mark.parametrize("max_d", [REACH_ALL, np.inf, 10.0])
def test_everything_reachable(max_d):
    s = Streams(3, any_name=True)
    for n_req, n_drv in [(100, 250), (250, 100), (1, 1), (300, 300)]:
        rx, ry = uniform_xy(s, "req", n_req, n_req)
        px, py = uniform_xy(s, "drv", n_drv, n_drv)
        j, d = greedy_match(rx, ry, px, py, None, max_d)
        assert (j >= 0).sum() == min(n_req, n_drv)
        assert (j[: min(n_req, n_drv)] >= 0).all()  # the first ones are served
        assert len(np.unique(j[j >= 0])) == min(n_req, n_drv)
        assert_same((j, d), brute_greedy(rx, ry, px, py, None, max_d))


def test_empty_inputs():
    j, d = greedy_match([], [], [0.5], [0.5], None, 0.1)
    assert j.shape == (0,) and d.shape == (0,)
    j, d = greedy_match([0.1, 0.2], [0.1, 0.2], [], [], None, 0.1)
    np.testing.assert_array_equal(j, [-1, -1])
    assert np.isinf(d).all()
    j, d = greedy_match([0.1], [0.1], [0.1], [0.1], [False], np.inf)
    assert j[0] == -1
    assert np.isinf(nearest_distance([0.3], [0.3], [], [])).all()


def test_determinism_inputs_untouched_and_any_array_types():
    s = Streams(11, any_name=True)
    rx, ry = positions(s, "edges", "req", 0, 500)
    px, py = positions(s, "edges", "drv", 0, 800)
    available = s.uniform("avail", 0, np.arange(800)) < 0.7
    copies = [a.copy() for a in (rx, ry, px, py, available)]
    first = greedy_match(rx, ry, px, py, available, 0.04)
    second = greedy_match(rx, ry, px, py, available, 0.04)
    assert_same(first, second)
    for a, c in zip((rx, ry, px, py, available), copies):
        np.testing.assert_array_equal(a, c)
    # strided views, float32, Python lists and positions outside [0, 1)
    big = np.stack([px, py, px, py]).T  # columns: non-contiguous views
    px32 = px.astype(np.float32)
    got = greedy_match(list(rx + 3.0), ry - 2.0, px32, big[:, 1], available, 0.04)
    want = brute_greedy(np.mod(rx + 3.0, 1.0), np.mod(ry - 2.0, 1.0),
                        px32.astype(np.float64), py, available, 0.04)
    assert_same(got, want)
    np.testing.assert_array_equal(px32, px.astype(np.float32))


def test_validation():
    with pytest.raises(ValueError):
        greedy_match([0.1, 0.2], [0.1], [0.5], [0.5], None, 0.1)
    with pytest.raises(ValueError):
        greedy_match([0.1], [0.1], [0.5, 0.6], [0.5, 0.6], [True], 0.1)
    with pytest.raises(TypeError):
        greedy_match([0.1], [0.1], [0.5], [0.5], [1], 0.1)
    with pytest.raises(ValueError):
        greedy_match([np.nan], [0.1], [0.5], [0.5], None, 0.1)
    with pytest.raises(ValueError):
        greedy_match([0.1], [0.1], [0.5], [0.5], None, float("nan"))
    with pytest.raises(ValueError):
        nearest_distance([[0.1]], [[0.1]], [0.5], [0.5])


def test_grid_size_rule():
    for n in [1, 3, 10, 100, 5000, 50_000, 100_000]:
        for max_d in [0.0, 0.001, 0.02, 0.1, np.inf]:
            g = spatial._grid_side(n, max_d, spatial.CELL_FACTOR)
            assert 1 <= g * g <= 4 * n  # at most ~4 cells per point
    # cells of about 1/sqrt(n) (one driver per cell on average)...
    assert spatial._grid_side(50_000, np.inf, 1.0) == int(math.sqrt(50_000))
    # ...but no bigger than a shorter max_distance
    assert spatial._grid_side(100, 0.02, 1.0) == 20


# ---------------------------------------------------------------------------
# nearest_distance and its closed form
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["uniform", "edges", "lattice"])
def test_nearest_distance_equals_bruteforce(kind):
    s = Streams(5, any_name=True)
    for day, (nq, npt) in enumerate([(200, 1), (200, 7), (300, 50), (300, 2000)]):
        qx, qy = positions(s, kind, "q", day, nq)
        px, py = positions(s, kind, "p", day, npt)
        got = nearest_distance(qx, qy, px, py)
        np.testing.assert_array_equal(got, brute_nearest(qx, qy, px, py))


def test_expected_nearest_distance_formula():
    for n in [1, 2, 5, 30, 150]:
        assert expected_nearest_distance(n) == pytest.approx(
            math.gamma(n + 1) / (2 * math.gamma(n + 1.5)), rel=1e-12)
    for n in [300, 3000]:  # past math.gamma's range: the log form is still exact enough
        assert expected_nearest_distance(n) == pytest.approx(
            0.5 * math.exp(special.gammaln(n + 1) - special.gammaln(n + 1.5)), rel=1e-12)
    # planar E[D] = integral of P(D > r) = (1 - pi r^2)^n over [0, 1/sqrt(pi)]
    from scipy import integrate
    for n in [3, 40]:
        val, _ = integrate.quad(lambda r: (1 - math.pi * r * r) ** n, 0, 1 / math.sqrt(math.pi))
        assert expected_nearest_distance(n) == pytest.approx(val, rel=1e-9)
    # large n: stable, and 0.5 / sqrt(n) * (1 - 3 / (8 n) + O(1 / n^2))
    for n in [10**4, 10**6, 10**9, 10**12]:
        assert expected_nearest_distance(n) == pytest.approx(
            0.5 / math.sqrt(n) * (1 - 3 / (8 * n)), rel=1 / n**2 + 1e-15)
    np.testing.assert_allclose(expected_nearest_distance(np.array([1, 100])),
                               [expected_nearest_distance(1), expected_nearest_distance(100)])
    assert expected_nearest_distance(0) == np.inf


@pytest.mark.parametrize("n,reps,queries", [(100, 100, 400), (1000, 60, 1000), (10_000, 30, 3000)])
def test_mean_nearest_distance_matches_closed_form(n, reps, queries):
    # Tolerance: 4 standard errors of the estimated mean distance.
    # The distances from queries to ONE set of n points are not independent of
    # each other (they share the point layout: a layout with a big empty patch
    # raises all of them), so a standard error computed from those distances
    # as if independent would be too small once queries >> n. Instead each
    # replicate draws a new point layout and new queries (streams keyed by the
    # replicate), making the replicate means i.i.d. with mean E[D]; the
    # standard error is sd(replicate means) / sqrt(reps), estimated from the
    # sample. With ~30-100 replicates the estimate is good, and 4 SE leaves a
    # false-alarm chance of about 1e-4 (normal) to 4e-4 (t with 29 df); the
    # inputs are fixed by the seed, so the test is deterministic. (Measured:
    # at n = 100 with 4n queries per layout this SE is ~1.5x the naive one.)
    # The SE comes out at 0.2-0.4% of E[D], so a bias of 2% (e.g. from
    # ignoring wrap-around, or from missing the nearest point now and then)
    # fails.
    s = Streams(99, any_name=True)
    means = np.empty(reps)
    for rep in range(reps):
        px, py = uniform_xy(s, f"points{n}", rep, n)
        qx, qy = uniform_xy(s, f"queries{n}", rep, queries)
        means[rep] = nearest_distance(qx, qy, px, py).mean()
    estimate = means.mean()
    se = means.std(ddof=1) / math.sqrt(reps)
    expected = expected_nearest_distance(n)
    assert se < 0.01 * expected  # the test has the power claimed above
    assert abs(estimate - expected) < 4 * se, (estimate, expected, se)


# ---------------------------------------------------------------------------
# repositioning: the steady-state idle layout keeps pickups at the torus law
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["toward_demand", "random_walk"])
def test_repositioning_keeps_steady_state_pickups_within_5_percent_of_the_torus_law(rule):
    # experiments.pickup_law: 500 always-online drivers, 2,400 uniform requests a day, the rides config's city
    # and repositioning speed; the ratio (observed / E[D] at each request's idle supply) over days 14-27.
    # Tolerance: each seed is an independent replicate (its own layout, requests and draws), so the seed
    # ratios are i.i.d. and their standard error is sd / sqrt(seeds). We require the whole 3-SE interval
    # around the mean (a false-alarm chance about 0.3% under normality, deterministic given the seeds) to lie
    # inside [0.95, 1.05], and the SE to be below 1% so the interval is informative.
    from experiments.pickup_law import ratio_with_error

    mean, se = ratio_with_error(rule, range(6))
    assert se < 0.01, se
    assert 0.95 < mean - 3 * se and mean + 3 * se < 1.05, (rule, mean, se)


def test_drivers_who_stay_put_drift_above_the_torus_law():
    # The same measurement can fail: with idle drivers standing still, trips remove the isolated drivers and
    # the idle layout clusters (about 1.3x the law here). 3 SE as above; 3 seeds suffice for a gap this wide.
    from experiments.pickup_law import ratio_with_error

    mean, se = ratio_with_error("stay", range(3))
    assert mean - 3 * se > 1.05, (mean, se)


def test_reposition_config_errors_name_the_key_and_what_is_allowed():
    from experiments.config import load_config
    from sim.config import ConfigError

    with pytest.raises(ConfigError, match=r"market\.drivers\.reposition\.rule.*teleport.*stay, random_walk, "
                                          r"toward_demand"):
        load_config(["market=rides", "market.drivers.reposition.rule=teleport"])
    with pytest.raises(ConfigError, match=r"market\.drivers\.reposition\.km_per_hour.*30.*speed_kmh"):
        load_config(["market=rides", "market.drivers.reposition.km_per_hour=30"])
    with pytest.raises(ConfigError, match=r"km_per_hour.*>= 0"):
        load_config(["market=rides", "market.drivers.reposition.km_per_hour=-1"])
