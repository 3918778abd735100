"""Paired statistics of experiments/stats.py against cases with a known answer."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

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
    # two-sided paired t: t = 3 / (sqrt(2.5) / sqrt(5)) = 4.243 with 4 df -> p = 0.01324, as scipy's ttest_rel
    assert p.p == pytest.approx(0.013236, abs=1e-5)
    assert p.p == pytest.approx(scipy_stats.ttest_rel(arm, base).pvalue, rel=1e-9)
    # effect size d / sd = 1.897: 80% power needs 5 replicates (power 0.88 at 5, 0.71 at 4)
    assert p.replicates_needed == 5


def test_paired_drops_missing_pairs_and_handles_degenerate_cases():
    p = stats.paired([1.0, np.nan, 3.0, 5.0], [0.0, 1.0, None, 1.0], 0.95)
    assert p.n == 2 and p.diff == pytest.approx(2.5)
    zero = stats.paired([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert zero.diff == 0 and zero.width == 0 and not zero.resolved and zero.replicates_needed is None
    assert zero.p == 1.0
    one = stats.paired([2.0], [1.0])
    assert one.n == 1 and math.isnan(one.lo)
    with pytest.raises(ValueError):
        stats.paired([1.0, 2.0], [1.0])


def test_replicates_needed_for_80_percent_power_matches_the_textbook():
    # Cohen (1988), one-sample / paired t, alpha 0.05 two-sided, power 0.8: d = 0.5 -> 34, d = 1 -> 10
    assert stats.replicates_needed(0.5, 1.0, 0.95) == 34
    assert stats.replicates_needed(1.0, 1.0, 0.95) == 10
    assert stats.replicates_needed(-1.0, 1.0, 0.95) == 10          # the sign does not matter
    assert stats.replicates_needed(1.0, 1.0, 0.99) > 10             # a stricter level needs more
    assert stats.replicates_needed(20.0, 1.0, 0.95) == 3            # huge effects: a few replicates
    assert stats.replicates_needed(1.0, 0.0, 0.95) == 2
    assert stats.replicates_needed(0.0, 1.0, 0.95) is None


def test_replicates_needed_gives_80_percent_power_in_simulated_experiments():
    """At the n it gives, 4,000 simulated paired experiments (effect 0.5, sd 1) resolve the effect about 80% of
    the time: binomial sd sqrt(0.8 * 0.2 / 4000) = 0.0063, so 0.8 +- 0.025 is a 4-sd band."""
    n = stats.replicates_needed(0.5, 1.0, 0.95)
    rng = np.random.default_rng(7)
    d = rng.normal(0.5, 1.0, (4000, n))
    half = stats.t_crit(n, 0.95) * d.std(axis=1, ddof=1) / np.sqrt(n)  # the paired interval of stats.paired
    resolved = np.mean(np.abs(d.mean(axis=1)) > half)
    assert abs(resolved - 0.8) < 0.025


def test_holm_adjusts_like_the_step_down_bonferroni_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    adjusted = stats.holm([0.01, 0.04, 0.03, 0.005, np.nan])
    np.testing.assert_allclose(adjusted[:4], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(adjusted[4])  # a missing test is left out of the family


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
