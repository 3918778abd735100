"""Maximum-likelihood fits of the textbook models the engine nests.

- BG/NBD (Fader, Hardie & Lee 2005): repeat purchases in continuous time, in
  days. Purchase rate lambda ~ Gamma(r, rate alpha); after each repeat purchase
  the customer drops out with probability p ~ Beta(a, b).
- Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"): the value of each
  transaction ~ Gamma(p, rate nu), nu ~ Gamma(q, rate v) across customers.
  (The engine calls v ``gamma``: market.buyers.spend.gamma.)
- Shifted-beta-geometric (Fader & Hardie 2007): each member of a cohort
  churns in each period with its own probability theta ~ Beta(a, b).

Every log-likelihood is written with scipy.special (gammaln, betaln,
hyp2f1); the optimiser works on log parameters, and standard errors come from
the inverse of a central-difference Hessian of the log-likelihood (taken in
log space and mapped back with the delta method, which is exact at the
maximum because the gradient vanishes there).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special

# --------------------------------------------------------------------------
# generic maximum likelihood
# --------------------------------------------------------------------------


@dataclass
class Fit:
    """A maximum-likelihood fit: estimates, standard errors, log-likelihood."""

    names: tuple[str, ...]
    values: np.ndarray
    se: np.ndarray
    cov: np.ndarray
    loglik: float
    n: int                      # units behind the likelihood (customers, cohort members)
    converged: bool
    message: str = ""
    extra: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> float:
        return float(self.values[self.names.index(name)])

    def params(self) -> dict[str, float]:
        return {k: float(v) for k, v in zip(self.names, self.values)}

    def as_dict(self, rename: dict[str, str] | None = None) -> dict:
        """JSON-ready: each parameter with its estimate and standard error."""
        rename = rename or {}
        out = {rename.get(k, k): {"value": float(v), "se": float(s)}
               for k, v, s in zip(self.names, self.values, self.se)}
        out.update({"log_likelihood": float(self.loglik), "n": int(self.n), "converged": bool(self.converged)})
        if self.message:
            out["message"] = self.message
        out.update(self.extra)
        return out


def numerical_hessian(f, x: np.ndarray, step: float = 1e-3) -> np.ndarray:
    """Central-difference Hessian of a scalar function ``f`` at ``x``."""
    x = np.asarray(x, dtype=float)
    k = x.size
    h = np.full(k, step)
    hess = np.empty((k, k))
    f0 = f(x)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h[i]
        hess[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h[i] ** 2
        for j in range(i):
            ej = np.zeros(k)
            ej[j] = h[j]
            value = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h[i] * h[j])
            hess[i, j] = hess[j, i] = value
    return hess


def fit_log_params(loglik, names: tuple[str, ...], starts: list[np.ndarray], n: int) -> Fit:
    """Maximise ``loglik(theta)`` (theta > 0) over log theta from several starts.

    Standard errors: inverse of the observed information in log space, mapped
    to theta with the delta method (cov_theta = D cov_log D, D = diag(theta)).
    """
    def negative(log_theta):
        value = loglik(np.exp(log_theta))
        return -value / n if np.isfinite(value) else 1e100

    best = None
    for start in starts:
        res = optimize.minimize(negative, np.log(np.asarray(start, dtype=float)), method="L-BFGS-B",
                                bounds=[(-12.0, 12.0)] * len(names))
        # polish: Nelder-Mead does not stop on a noisy gradient estimate
        res2 = optimize.minimize(negative, res.x, method="Nelder-Mead",
                                 options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 4000})
        if res2.fun <= res.fun:
            res = res2
        if best is None or res.fun < best.fun:
            best = res
    log_theta = best.x
    theta = np.exp(log_theta)
    ll = loglik(theta)
    hess = numerical_hessian(lambda lt: loglik(np.exp(lt)), log_theta)
    converged = bool(np.all(np.abs(log_theta) < 11.9))
    message = ""
    try:
        cov_log = np.linalg.inv(-hess)
        if not np.all(np.diag(cov_log) > 0):
            raise np.linalg.LinAlgError("information matrix not positive definite")
    except np.linalg.LinAlgError as error:
        cov_log = np.full_like(hess, np.nan)
        converged = False
        message = f"standard errors unavailable: {error}"
    cov = cov_log * np.outer(theta, theta)
    se = np.sqrt(np.diag(cov))
    if not converged and not message:
        message = "a parameter ran to the bound of the search (the likelihood is flat there)"
    return Fit(tuple(names), theta, se, cov, float(ll), int(n), converged, message)


# --------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------

BGNBD = ("r", "alpha", "a", "b")


def bgnbd_loglik_individual(params, x, t_x, T) -> np.ndarray:
    """Log-likelihood of each customer's (x, t_x, T): x repeat transactions,
    the last at t_x, observed for T since the first (all in days)."""
    r, alpha, a, b = (float(v) for v in params)
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    still_alive = special.betaln(a, b + x) - special.betaln(a, b) - (r + x) * np.log(alpha + T)
    repeat = x > 0
    dropped = np.full_like(x, -np.inf)
    xr = x[repeat]
    dropped[repeat] = (special.betaln(a + 1, b + xr - 1) - special.betaln(a, b)
                       - (r + xr) * np.log(alpha + t_x[repeat]))
    return common + np.logaddexp(still_alive, dropped)


def summarise_bgnbd(x, t_x, T):
    """Unique (x, t_x, T) rows and their counts: the likelihood needs only these."""
    table = np.column_stack([np.asarray(x, float), np.asarray(t_x, float), np.asarray(T, float)])
    unique, counts = np.unique(table, axis=0, return_counts=True)
    return unique[:, 0], unique[:, 1], unique[:, 2], counts.astype(float)


def bgnbd_fit(x, t_x, T) -> Fit:
    """Fit BG/NBD by maximum likelihood (rates per day if times are in days)."""
    ux, ut, uT, w = summarise_bgnbd(x, t_x, T)
    n = int(w.sum())

    def loglik(theta):
        return float(np.sum(w * bgnbd_loglik_individual(theta, ux, ut, uT)))

    mean_rate = max(float(np.sum(w * ux) / np.sum(w * uT)), 1e-6)
    starts = [np.array([0.5, 0.5 / mean_rate, 1.0, 2.0]), np.array([1.0, 1.0 / mean_rate, 0.5, 3.0]),
              np.array([0.25, 0.25 / mean_rate, 0.8, 2.5])]
    return fit_log_params(loglik, BGNBD, starts, n)


def _bgnbd_bracket(t, r, alpha, a, b, x=0.0, T=0.0):
    """(1 - (A/(A+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(A+t))), A = alpha + T, written with
    Euler's transformation so it stays finite for large x: (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)."""
    t = np.asarray(t, dtype=float)
    z = t / (alpha + T + t)
    return 1.0 - (1.0 - z) ** (a - 1.0) * special.hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)


def bgnbd_expected(t, params) -> np.ndarray:
    """E[X(t)]: expected repeat transactions of a new customer in (0, t] (days)."""
    r, alpha, a, b = (float(v) for v in params)
    return (a + b - 1.0) / (a - 1.0) * _bgnbd_bracket(t, r, alpha, a, b)


def bgnbd_p_alive(params, x, t_x, T) -> np.ndarray:
    """P(still active at T | x, t_x, T)."""
    r, alpha, a, b = (float(v) for v in params)
    x = np.asarray(x, dtype=float)
    ratio = np.exp((r + x) * (np.log(alpha + np.asarray(T, float)) - np.log(alpha + np.asarray(t_x, float))))
    odds = np.where(x > 0, a / np.maximum(b + x - 1.0, 1e-300) * ratio, 0.0)
    return 1.0 / (1.0 + odds)


def bgnbd_conditional_expected(t, params, x, t_x, T) -> np.ndarray:
    """E[X(T, T + t] | x, t_x, T]: expected repeat transactions in the next t days."""
    r, alpha, a, b = (float(v) for v in params)
    x = np.asarray(x, dtype=float)
    T = np.asarray(T, dtype=float)
    lead = (a + b + x - 1.0) / (a - 1.0)
    return lead * _bgnbd_bracket(t, r, alpha, a, b, x, T) * bgnbd_p_alive(params, x, t_x, T)


# --------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------

GAMMA_GAMMA = ("p", "q", "v")


def gamma_gamma_loglik_individual(params, x, mean_value) -> np.ndarray:
    """Log density of each customer's mean transaction value over its x transactions."""
    p, q, v = (float(t) for t in params)
    x = np.asarray(x, dtype=float)
    m = np.asarray(mean_value, dtype=float)
    px = p * x
    return (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(v)
            + px * np.log(x) + (px - 1.0) * np.log(m) - (px + q) * np.log(v + x * m))


def gamma_gamma_fit(x, mean_value) -> Fit:
    """Fit Gamma-Gamma on customers with x >= 1 transactions and a positive mean value."""
    x = np.asarray(x, dtype=float)
    m = np.asarray(mean_value, dtype=float)
    n = x.size

    def loglik(theta):
        return float(np.sum(gamma_gamma_loglik_individual(theta, x, m)))

    level = float(np.mean(m))
    starts = [np.array([2.0, 3.0, 2.0 * level]), np.array([5.0, 4.0, 2.0 * level / 5 * 3]),
              np.array([1.0, 2.0, level])]
    return fit_log_params(loglik, GAMMA_GAMMA, starts, n)


# --------------------------------------------------------------------------
# shifted-beta-geometric
# --------------------------------------------------------------------------

SBG = ("a", "b")


def sbg_survival(t, params) -> np.ndarray:
    """S(t) = B(a, b + t) / B(a, b): share of a cohort still active after t periods."""
    a, b = (float(v) for v in params)
    t = np.asarray(t, dtype=float)
    return np.exp(special.betaln(a, b + t) - special.betaln(a, b))


def sbg_loglik(params, cohorts: list[np.ndarray]) -> float:
    """Log-likelihood of cohort survival tables: each an array of active counts n_0, n_1, ..., n_k
    (n_0 the cohort's size at joining); those still active at k are right-censored."""
    a, b = (float(v) for v in params)
    total = 0.0
    base = special.betaln(a, b)
    for counts in cohorts:
        counts = np.asarray(counts, dtype=float)
        k = counts.size - 1
        if k < 1:
            continue
        t = np.arange(1, k + 1, dtype=float)
        churned = counts[:-1] - counts[1:]
        log_pt = special.betaln(a + 1.0, b + t - 1.0) - base
        total += float(np.sum(churned * log_pt)) + counts[-1] * (special.betaln(a, b + k) - base)
    return total


def sbg_fit(cohorts: list[np.ndarray]) -> Fit:
    """Fit the shifted-beta-geometric model to one or more cohorts' survival counts."""
    n = int(sum(np.asarray(c)[0] for c in cohorts))

    def loglik(theta):
        return sbg_loglik(theta, cohorts)

    starts = [np.array([1.0, 1.0]), np.array([0.5, 5.0]), np.array([2.0, 20.0])]
    return fit_log_params(loglik, SBG, starts, n)
