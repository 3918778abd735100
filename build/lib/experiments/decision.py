"""A decision under parameter uncertainty: pure functions on a draws x replicates x arms table of gains.

``gains[d, r, a]``: the extra net contribution (currency units) of option a over the baseline in parameter
draw d, replicate r (the baseline itself is an option, with gain 0). Seed noise is averaged within a draw
(``per_draw = gains.mean(axis=1)``); what remains between draws is parameter uncertainty plus the
Monte Carlo noise of those means.

- probability best: the share of draws in which an option has the largest mean gain (ties shared);
- expected gain: the mean over draws, with the interval of the draws' gains (its central quantiles: what the
  gain may be, given what we do not know), and the share of that spread which is Monte Carlo (seed) noise,
  (within-draw variance / replicates) / variance between draws;
- EVPI = E[max_a g_a] - max_a E[g_a], over the draws;
- EVPPI of a parameter group: Strong, Oakley & Brennan's (2014, Medical Decision Making 34(3)) nonparametric
  regression: each option's per-draw gain is regressed on the group's parameters, and EVPPI = E[max_a fit_a] -
  max_a E[fit_a]. The regression is an additive model of penalised regression splines (P-splines, smoothness
  chosen by generalised cross-validation, as mgcv's GAMs that Strong & Oakley use), fitted by backfitting;
  a one-dimensional group is a single P-spline. Additive: interactions inside a group are not modelled.
"""
from __future__ import annotations

import math

import numpy as np

MIN_DRAWS_EVPPI = 5   # fewer draws: EVPPI is not estimated (NaN, null in decision.json)
DRAWS_PER_PARAMETER = 5   # ...nor with fewer draws than this per parameter of the group (the fit would interpolate)
MAX_SEGMENTS = 20     # knot intervals of a P-spline (fewer with few draws: about one per 4 draws)
BACKFIT_ROUNDS = 20   # backfitting sweeps (an additive fit settles in a few)
BACKFIT_TOL = 1e-9    # relative change of the fit at which backfitting stops


def gains_table(runs: list, options: list[str], draws: int, replicates: int) -> np.ndarray:
    """draws x replicates x options: each run's net contribution minus its baseline twin's (same seed), from a
    comparison's reduced runs (``replicate`` = draw x replicates + r; options[0] is the baseline)."""
    net = np.full((draws, replicates, len(options)), math.nan)
    column = {name: a for a, name in enumerate(options)}
    for res in runs:
        if res["arm_name"] in column:
            d, r = divmod(res["replicate"], replicates)
            net[d, r, column[res["arm_name"]]] = res["metrics"][("platform", "net_contribution")]
    return net - net[:, :, :1]


def per_draw(gains: np.ndarray) -> np.ndarray:
    """Mean over replicates: draws x options."""
    return np.asarray(gains, dtype=float).mean(axis=1)


def p_best(values: np.ndarray) -> np.ndarray:
    """Share of draws (rows) in which each option (column) is largest; ties share the draw."""
    values = np.asarray(values, dtype=float)
    top = values == values.max(axis=1, keepdims=True)
    return (top / top.sum(axis=1, keepdims=True)).mean(axis=0)


def evpi(values: np.ndarray) -> float:
    """Expected value of perfect information, E[max_a v_a] - max_a E[v_a], over the draws (rows); >= 0."""
    values = np.asarray(values, dtype=float)
    return float(values.max(axis=1).mean() - values.mean(axis=0).max())


def mc_share(gains: np.ndarray) -> np.ndarray:
    """Per option: the share of the variance of its per-draw mean gains that is seed noise, in [0, 1].

    Seed noise of a draw's mean: within-draw variance (ddof 1) / replicates, averaged over draws; NaN for an
    option whose gains do not vary (the baseline) or with one replicate.
    """
    gains = np.asarray(gains, dtype=float)
    draws, reps, _ = gains.shape
    if reps < 2 or draws < 2:
        return np.full(gains.shape[2], math.nan)
    noise = gains.var(axis=1, ddof=1).mean(axis=0) / reps
    total = per_draw(gains).var(axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.clip(noise / total, 0.0, 1.0), math.nan)


def gain_summary(values: np.ndarray, confidence: float) -> list[dict]:
    """Per option: mean gain over draws and the central ``confidence`` interval of the draws' gains."""
    values = np.asarray(values, dtype=float)
    tail = (1.0 - confidence) / 2
    lo, hi = np.quantile(values, [tail, 1.0 - tail], axis=0)
    return [{"mean": float(m), "low": float(a), "high": float(b)} for m, a, b in zip(values.mean(axis=0), lo, hi)]


def pspline_fit(x: np.ndarray, y: np.ndarray, max_edf: float = math.inf) -> np.ndarray:
    """Fitted values of a one-dimensional P-spline (Eilers & Marx 1996): cubic B-splines on equally spaced knots,
    a second-difference penalty, its weight chosen by generalised cross-validation among the fits with at most
    ``max_edf`` effective degrees of freedom. Heavy smoothing tends to the least-squares line (the penalty's
    null space, 2 degrees of freedom), so a linear relation is fitted exactly."""
    from scipy.interpolate import BSpline

    n = x.size
    low, high = float(x.min()), float(x.max())
    if not high > low:
        return np.full(n, y.mean())
    segments = int(min(MAX_SEGMENTS, max(3, n // 4)))
    step = (high - low) / segments
    inner = np.linspace(low, high, segments + 1)   # exact ends: every x lies inside the basis's span
    knots = np.concatenate([low - step * np.arange(3, 0, -1), inner, high + step * np.arange(1, 4)])
    basis = BSpline.design_matrix(np.clip(x, low, high), knots, 3).toarray()
    diff = np.diff(np.eye(basis.shape[1]), n=2, axis=0)
    btb, penalty, bty = basis.T @ basis, diff.T @ diff, basis.T @ y
    unit = np.trace(btb) / np.trace(penalty)
    best, fitted = math.inf, None
    for lam in unit * np.logspace(-6, 8, 57):
        inverse = np.linalg.pinv(btb + lam * penalty)
        candidate = basis @ (inverse @ bty)
        edf = float(np.sum(inverse * btb))   # trace of the hat matrix
        rss = float(np.sum((y - candidate) ** 2))
        gcv = n * rss / max(n - edf, 1e-9) ** 2
        if edf <= max(max_edf, 2.0 + 1e-6) and gcv < best * (1 - 1e-12):
            best, fitted = gcv, candidate
    return fitted


def smooth_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fitted values of y on x (draws x parameters): an additive model of P-splines (:func:`pspline_fit`, each
    with its own GCV smoothing), fitted by backfitting. The terms share at most half the draws as degrees of
    freedom (beyond the intercept), so few draws give near-linear terms rather than an interpolation."""
    x = np.asarray(x, dtype=float).reshape(len(y), -1)
    y = np.asarray(y, dtype=float)
    n, k = x.shape
    centre = y.mean()
    parts = np.zeros((k, n))
    scale = max(float(np.abs(y - centre).max()), 1e-300)
    for _ in range(BACKFIT_ROUNDS if k > 1 else 1):
        change = 0.0
        for j in range(k):
            partial = y - centre - parts.sum(axis=0) + parts[j]
            fitted = pspline_fit(x[:, j], partial, max_edf=1.0 + (n / 2 - 1) / k)
            fitted -= fitted.mean()
            change = max(change, float(np.abs(fitted - parts[j]).max()) / scale)
            parts[j] = fitted
        if change < BACKFIT_TOL:
            break
    return centre + parts.sum(axis=0)


def evppi(values: np.ndarray, x: np.ndarray, depends=None) -> float:
    """EVPPI of the parameters ``x`` (draws x parameters): E[max_a fit_a(x)] - max_a E[fit_a(x)], >= 0.

    ``depends``: per option, whether its gain can depend on x (default: all). The parameters are drawn
    independently, so an option they do not reach has E[gain | x] = E[gain]: its fit is its mean, and the
    noise of its gains is not mistaken for information.
    NaN with fewer than MIN_DRAWS_EVPPI draws or fewer than DRAWS_PER_PARAMETER per parameter.
    """
    values = np.asarray(values, dtype=float)
    x = np.asarray(x, dtype=float).reshape(values.shape[0], -1)
    if values.shape[0] < max(MIN_DRAWS_EVPPI, DRAWS_PER_PARAMETER * x.shape[1]):
        return math.nan
    depends = np.ones(values.shape[1], dtype=bool) if depends is None else np.asarray(depends, dtype=bool)
    fits = np.column_stack([smooth_fit(x, values[:, a]) if depends[a] and np.ptp(values[:, a]) > 0
                            else np.full(values.shape[0], values[:, a].mean()) for a in range(values.shape[1])])
    return max(0.0, evpi(fits))


def decide(gains: np.ndarray, options: list[str], groups: dict, confidence: float) -> dict:
    """decision.json: ``{"arms": {ARM: {"p_best", "gain": {"mean", "low", "high"}}}, "evpi", "evppi": {GROUP}}``.

    ``gains``: draws x replicates x options (currency units, the baseline's column 0); ``groups``: group ->
    (draws x parameters array, per option whether the group reaches it), or None when it reaches no option
    (EVPPI 0).
    """
    values = per_draw(gains)
    best = p_best(values)
    summary = gain_summary(values, confidence)
    return {"arms": {name: {"p_best": float(best[a]), "gain": summary[a]} for a, name in enumerate(options)},
            "evpi": evpi(values),
            "evppi": {g: (0.0 if spec is None else _none_if_nan(evppi(values, *spec))) for g, spec in groups.items()}}


def _none_if_nan(x: float):
    return None if math.isnan(x) else x
