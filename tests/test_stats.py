"""Paired statistics of experiments/stats.py against cases with a known answer."""
from __future__ import annotations

import math

import numpy as np
import pytest

from experiments import stats


def test_paired_interval_matches_hand_computation():
    # differences 1..5 exactly: mean 3, sd sqrt(2.5), n 5, t(0.975, 4) = 2.7764451051977987
    base = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    arm = base + np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    p = stats.paired(arm, base, 0.95)
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert p.n == 5
    assert p.diff == pytest.approx(3.0, abs=1e-12)
    assert p.sd == pytest.approx(math.sqrt(2.5), abs=1e-12)
    assert p.lo == pytest.approx(3.0 - half, abs=1e-9)
    assert p.hi == pytest.approx(3.0 + half, abs=1e-9)
    assert p.rel == pytest.approx(3.0 / 30.0)
    assert p.resolved
    # n needed: smallest n with n >= (t_{n-1} sd / d)^2, (sd / d)^2 = 0.278:
    # n = 3: t_2^2 * 0.278 = 18.5 * 0.278 = 5.14 > 3; n = 4: t_3^2 * 0.278 = 10.1 * 0.278 = 2.81 <= 4
    assert p.replicates_needed == 4


def test_paired_drops_missing_pairs_and_handles_degenerate_cases():
    p = stats.paired([1.0, np.nan, 3.0, 5.0], [0.0, 1.0, None, 1.0], 0.95)
    assert p.n == 2 and p.diff == pytest.approx(2.5)
    zero = stats.paired([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert zero.diff == 0 and zero.width == 0 and not zero.resolved and zero.replicates_needed is None
    one = stats.paired([2.0], [1.0])
    assert one.n == 1 and math.isnan(one.lo)
    with pytest.raises(ValueError):
        stats.paired([1.0, 2.0], [1.0])


def test_replicates_needed_is_the_smallest_resolving_n():
    # sd = |d|: t_6^2 = 5.99 <= 7 but t_5^2 = 6.61 > 6, so 7
    assert stats.replicates_needed(1.0, 1.0, 0.95) == 7
    for d, sd, conf in [(0.3, 1.0, 0.95), (2.0, 7.5, 0.9), (1.0, 0.2, 0.99), (0.01, 1.0, 0.95)]:
        n = stats.replicates_needed(d, sd, conf)
        assert n >= stats.t_crit(n, conf) ** 2 * (sd / d) ** 2 - 1e-9
        if n > 2:
            assert n - 1 < stats.t_crit(n - 1, conf) ** 2 * (sd / d) ** 2
    assert stats.replicates_needed(1.0, 0.0, 0.95) == 2
    assert stats.replicates_needed(0.0, 1.0, 0.95) is None


def test_paired_interval_covers_the_true_difference_at_its_level():
    """Synthetic paired experiments with a known effect (0.4) and a shared replicate effect (sd 5).

    2,000 experiments of n = 5: coverage is binomial, sd sqrt(0.95 * 0.05 / 2000) = 0.0049,
    so 0.95 +- 0.02 is a 4-sd band. With the shared effect the unpaired width is ~ 5x the paired one.
    """
    rng = np.random.default_rng(20240501)
    k, n, effect = 2000, 5, 0.4
    shared = rng.normal(0, 5.0, (k, n))
    base = 100 + shared + rng.normal(0, 0.7, (k, n))
    arm = 100 + effect + shared + rng.normal(0, 0.7, (k, n))
    covered = 0
    ratios = []
    for i in range(k):
        p = stats.paired(arm[i], base[i], 0.95)
        covered += p.lo <= effect <= p.hi
        ratios.append(p.width / stats.unpaired_width(arm[i], base[i], 0.95))
    assert abs(covered / k - 0.95) < 0.02
    # paired sd = 0.7 sqrt(2) = 0.99, unpaired sd = sqrt(2 (25 + 0.49)) = 7.14: expected ratio ~ 0.14
    assert 0.1 < np.median(ratios) < 0.2


def test_roi_and_its_interval():
    assert stats.roi(500.0, 1000.0) == 0.5
    assert stats.roi(500.0, 0.0) is None and stats.roi(500.0, -10.0) is None
    # proportional data: every replicate has ROI exactly -0.25, so the interval has zero width
    value, lo, hi = stats.roi_interval([-250.0, -500.0, -750.0], [1000.0, 2000.0, 3000.0])
    assert value == pytest.approx(-0.25) and lo == pytest.approx(-0.25) and hi == pytest.approx(-0.25)
    value, lo, hi = stats.roi_interval([100.0, 300.0], [0.0, 0.0])
    assert value is None and lo is None


def test_payback_month():
    # costs 100 a day for 45 days, then earns 300 a day: cumulative -4500 + 15 * 300 = 0 at day 59 (month 2)
    extra = np.r_[np.full(45, -100.0), np.full(135, 300.0)]
    assert stats.payback_month(extra) == 2
    assert stats.payback_month(np.full(100, -1.0)) is None
    assert stats.payback_month(np.full(90, 5.0)) == 1
    # counted from the policy start: a warm-up of 30 identical days
    assert stats.payback_month(np.r_[np.zeros(30), extra], start_day=30) == 2
    # a partial last month counts at the horizon
    assert stats.payback_month(np.r_[np.full(30, -10.0), np.full(10, 40.0)]) == 2
