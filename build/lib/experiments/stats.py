"""Paired statistics of a policy comparison (arm against baseline, replicate by replicate).

Every arm and the baseline are run on the same replicate seeds (common random
numbers), so the effect of a policy in replicate r is the paired difference
d_r = arm_r - baseline_r, and the d_r are independent across replicates.

Formulas (n replicates with a finite value in both arms, confidence 1 - alpha):

* mean difference  d = mean(d_r); sd = sample standard deviation of d_r (ddof 1)
* interval         d +- t_{1-alpha/2, n-1} * sd / sqrt(n)            (paired t interval)
* relative change  d / |mean(baseline_r)|                             (undefined if the baseline mean is 0)
* p-value        two-sided paired t test of mean(d_r) = 0 (as scipy.stats.ttest_rel)
* Holm-adjusted p-values over a family of tests (statsmodels multipletests,
  method "holm"): the step-down Bonferroni correction, which keeps the chance
  of any false "resolved" in the family at most alpha
* replicates needed at 80% power: the smallest n at which a paired t test at
  level alpha detects a true difference d with probability 0.8, taking the
  observed sd of d_r as the truth (statsmodels TTestPower, effect size
  |d| / sd, noncentral t). Undefined (None) when d = 0.
* ROI = delta net contribution / delta CS spend (CS staff cost + incentives),
  currency back per currency of extra CS spend, net of that spend (ROI > 0
  pays back). Undefined when the extra spend is <= 0: a policy that costs
  nothing extra has no return ratio, judge it on net contribution.
* payback month = the first 30-day month at whose end the cumulative extra
  net contribution (arm minus baseline, from the daily figures, mean over
  replicates) is >= 0, counted from the day the policy starts; None if it
  never is within the horizon.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from sim.metrics import MONTH_DAYS

POWER = 0.8   # the power "replicates needed" is computed for


@dataclass
class PairedDiff:
    """The paired comparison of one metric: arm minus baseline."""

    n: int
    mean_arm: float
    mean_base: float
    diff: float
    sd: float
    lo: float
    hi: float
    rel: float | None
    p: float = math.nan             # two-sided paired t test of no difference
    confidence: float = 0.95

    @property
    def width(self) -> float:
        return self.hi - self.lo

    @property
    def resolved(self) -> bool:
        """Whether the interval excludes 0 (the difference is resolved at the chosen confidence)."""
        return bool(np.isfinite(self.lo) and (self.lo > 0 or self.hi < 0))

    @property
    def replicates_needed(self) -> int | None:
        """Replicates for 80% power at level 1 - confidence (see :func:`replicates_needed`; computed on demand,
        it takes a root finder)."""
        return replicates_needed(self.diff, self.sd, self.confidence) if self.n >= 2 else None


def t_crit(n: int, confidence: float) -> float:
    """Two-sided critical value of Student's t with n - 1 degrees of freedom."""
    if n < 2:
        return math.nan
    return float(_st.t.ppf(0.5 + confidence / 2.0, n - 1))


def t_crit_level(n: int, level: float) -> float:
    """Two-sided critical value of Student's t with n - 1 degrees of freedom at significance ``level``."""
    return t_crit(n, 1.0 - level)


def z_level(level: float) -> float:
    """Two-sided critical value of the standard normal at significance ``level``."""
    return float(_st.norm.ppf(1.0 - level / 2.0))


MIN_EFFECT = 1e-3
"""Standardised differences below this (about 8 million replicates at 80% power) count as unresolvable."""


def replicates_needed(diff: float, sd: float, confidence: float, power: float = POWER) -> int | None:
    """Replicates a paired t test at level 1 - confidence needs to detect ``diff`` with ``power`` (sd of d_r = ``sd``).

    None when diff = 0 (nothing to detect) or not finite; 2 when sd = 0 (any pair shows it).
    """
    if not (np.isfinite(diff) and np.isfinite(sd)) or diff == 0:
        return None
    if sd == 0:
        return 2
    effect, alpha = abs(diff) / sd, 1.0 - confidence
    if effect < MIN_EFFECT:   # a rounding-level difference: no number of replicates resolves it
        return None
    solver = TTestPower()
    if solver.power(effect, nobs=2, alpha=alpha, alternative="two-sided") >= power:
        return 2  # the root finder cannot go below 2 observations
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # its root finder failed: n is NaN, handled below
        n = float(np.asarray(solver.solve_power(effect_size=effect, alpha=alpha, power=power,
                                                alternative="two-sided")).item())
    if np.isfinite(n):
        return max(2, math.ceil(n - 1e-9))
    n = 3  # the root finder fails for large effects, where the answer is a few replicates: count up
    while n < 10_000 and solver.power(effect, nobs=n, alpha=alpha, alternative="two-sided") < power:
        n += 1
    return n


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values of a family (NaN entries are left out of the family and stay NaN)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def paired(arm, base, confidence: float = 0.95) -> PairedDiff:
    """Paired t comparison of ``arm`` against ``base`` (same replicate order; NaN/None pairs dropped)."""
    a = np.asarray(arm, dtype=float)
    b = np.asarray(base, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples need the same length, got {a.shape} and {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    n = int(a.size)
    if n == 0:
        return PairedDiff(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, None, math.nan, confidence)
    d = a - b
    mean = float(d.mean())
    mean_base = float(b.mean())
    rel = mean / abs(mean_base) if mean_base != 0 else None
    if n < 2:
        return PairedDiff(n, float(a.mean()), mean_base, mean, math.nan, math.nan, math.nan, rel, math.nan, confidence)
    sd = float(d.std(ddof=1))
    half = t_crit(n, confidence) * sd / math.sqrt(n)
    if sd == 0:  # every replicate shows the same difference: certain, or certainly none
        p = 1.0 if mean == 0 else 0.0
    else:  # what scipy.stats.ttest_rel gives, from the statistic the interval uses
        p = float(2.0 * _st.t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1))
    return PairedDiff(n, float(a.mean()), mean_base, mean, sd, mean - half, mean + half, rel, p, confidence)


def unpaired_width(arm, base, confidence: float = 0.95) -> float:
    """Width of the interval for the difference if the arms had independent seeds.

    Estimated from the same runs: the variance of a difference of independent
    runs is var(arm) + var(base), so width = 2 t_{n-1} sqrt((s_a^2 + s_b^2) / n).
    (The marginal distribution of each arm does not depend on whether seeds are shared.)
    """
    a = np.asarray(arm, dtype=float)
    b = np.asarray(base, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    n = a.size
    if n < 2:
        return math.nan
    return 2 * t_crit(n, confidence) * math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / n)


def roi(d_net: float, d_spend: float) -> float | None:
    """Extra net contribution per unit of extra CS spend; None when the extra spend is <= 0."""
    if not (np.isfinite(d_net) and np.isfinite(d_spend)) or d_spend <= 0:
        return None
    return d_net / d_spend


def roi_interval(d_net, d_spend, confidence: float = 0.95) -> tuple[float | None, float | None, float | None]:
    """ROI and an interval (Fieller-free delta method on the ratio of paired means); Nones when undefined.

    ROI = mean(d_net) / mean(d_spend). The interval uses the linearised
    residuals e_r = d_net_r - ROI * d_spend_r: se(ROI) = sd(e) / (sqrt(n) * mean(d_spend)).
    """
    x = np.asarray(d_net, dtype=float)
    y = np.asarray(d_spend, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size == 0:
        return None, None, None
    value = roi(float(x.mean()), float(y.mean()))
    if value is None or x.size < 2:
        return value, None, None
    e = x - value * y
    se = float(e.std(ddof=1)) / (math.sqrt(x.size) * float(y.mean()))
    half = t_crit(x.size, confidence) * se
    return value, value - half, value + half


def payback_month(extra_net_daily, start_day: int = 0) -> int | None:
    """First month (1 = the first 30 days after ``start_day``) whose end has cumulative extra net >= 0.

    ``extra_net_daily``: arm minus baseline net contribution per day (currency),
    indexed by day. A partial last month counts at the horizon.
    """
    x = np.asarray(extra_net_daily, dtype=float)[start_day:]
    if x.size == 0:
        return None
    cum = np.cumsum(np.nan_to_num(x))
    ends = list(range(MONTH_DAYS - 1, x.size, MONTH_DAYS))
    if not ends or ends[-1] != x.size - 1:
        ends.append(x.size - 1)
    for month, end in enumerate(ends, start=1):
        if cum[end] >= -1e-9:
            return month
    return None
