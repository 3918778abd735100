"""The Mesa-object reference model (experiments/mesa_reference.py) against the engine.

Both simulate market=goods with no policy, experience effects off and no
acquisition (REFERENCE_OVERRIDES), from independent random numbers, so they
agree only up to sampling error. Every tolerance below is Z standard errors of
the difference of two independent runs (or of one run against the textbook
closed form), the standard error being derived from the model itself:

* active buyers (or sellers) on day d is a sum of n independent Bernoulli(q_d)
  (agents do not interact in whether they stay): variance n q_d (1 - q_d) per
  run, q_d from the closed form;
* total purchases is a sum of n independent per-buyer counts X_i: variance
  n Var(X), Var(X) estimated from both runs' per-buyer counts pooled.

Z = 4: a two-sided normal tail of 6e-5 per comparison; the 90 daily
comparisons of one curve are strongly correlated, and even a union bound over
them gives under 1% chance of a false alarm. Seeds are fixed, so the test is
deterministic.
"""
import math

import numpy as np
import pytest
from scipy import integrate, special

from experiments.config import load_config
from experiments.mesa_reference import REFERENCE_OVERRIDES, Buyer, MesaMarketplace
from sim import Marketplace

Z = 4.0
BUYERS, SELLERS, DAYS = 2000, 200, 90


@pytest.fixture(scope="module")
def runs():
    cfg = load_config(REFERENCE_OVERRIDES + [f"days={DAYS}", f"population.buyers={BUYERS}",
                                             f"population.sellers={SELLERS}", "seed=11"])
    mesa_model = MesaMarketplace(cfg)
    mesa_daily = mesa_model.run()
    mesa_orders = np.array([b.orders for b in mesa_model.all_buyers])
    engine = Marketplace(cfg).run()
    engine_orders = engine.agents.loc[engine.agents.side == "buyers", "orders"].to_numpy()
    return cfg, mesa_daily, mesa_orders, engine.daily, engine_orders


def buyer_alive_share(t, r, alpha, a, b):
    """BG/NBD: P(alive at time t) = E_p[(alpha / (alpha + p t))^r], p ~ Beta(a, b).

    Drop-outs are the purchases (rate lambda) thinned by p, so given lambda and
    p survival is exp(-lambda p t); the Gamma(r, alpha) mean of that is the
    power; the Beta mean is a one-dimensional integral.
    """
    def integrand(p):
        return (alpha / (alpha + p * t)) ** r * math.exp((a - 1) * math.log(p) + (b - 1) * math.log1p(-p)
                                                         - special.betaln(a, b))
    return integrate.quad(integrand, 0, 1)[0]


def seller_alive_share(t, a, b):
    """Constant hazard -ln(1 - theta) / 30, theta ~ Beta(a, b): E[(1 - theta)^(t/30)] = B(a, b + t/30) / B(a, b)."""
    return math.exp(special.betaln(a, b + t / 30) - special.betaln(a, b))


def bgnbd_expected_purchases(t, r, alpha, a, b):
    """DESIGN section 7: E[X(t)] of BG/NBD (Fader, Hardie & Lee 2005)."""
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def _expected_curves(cfg):
    p, c = cfg.market.buyers.purchase, cfg.market.sellers.churn
    # Counted at the end of day d, after the purchases of [d, d + 1): time d + 1.
    t = np.arange(1, DAYS + 1)
    q_buyers = np.array([buyer_alive_share(x, p.r, p.alpha, p.a, p.b) for x in t])
    q_sellers = np.array([seller_alive_share(x, c.beta_a, c.beta_b) for x in t])
    return q_buyers, q_sellers


def test_one_row_per_day_and_agents_are_mesa_objects(runs):
    cfg, mesa_daily, _, engine_daily, _ = runs
    assert len(mesa_daily) == len(engine_daily) == DAYS
    model = MesaMarketplace(load_config(REFERENCE_OVERRIDES + ["days=2", "population.buyers=50",
                                                               "population.sellers=5"]))
    assert len(model.agents_by_type[Buyer]) == 50
    model.step()
    assert model.datacollector.get_model_vars_dataframe().shape[0] == 1


@pytest.mark.parametrize("side", ["buyers", "sellers"])
def test_daily_active_counts_agree(runs, side):
    cfg, mesa_daily, _, engine_daily, _ = runs
    q_buyers, q_sellers = _expected_curves(cfg)
    n, q = (BUYERS, q_buyers) if side == "buyers" else (SELLERS, q_sellers)
    se_one = np.sqrt(n * q * (1 - q))          # one run against its expectation
    mesa = mesa_daily[f"{side}_active"].to_numpy()
    engine = engine_daily[f"{side}_active"].to_numpy()
    diff = np.abs(mesa - engine)
    worst = int(np.argmax(diff / (np.sqrt(2) * se_one)))
    assert np.all(diff <= Z * np.sqrt(2) * se_one), (
        f"{side} active, day {worst}: Mesa {mesa[worst]}, engine {engine[worst]}, "
        f"allowed difference {Z * np.sqrt(2) * se_one[worst]:.1f}")
    for name, curve in (("Mesa", mesa), ("engine", engine)):
        assert np.all(np.abs(curve - n * q) <= Z * se_one), f"{name} {side} active off the closed form"


def test_total_purchases_agree(runs):
    cfg, mesa_daily, mesa_orders, engine_daily, engine_orders = runs
    p = cfg.market.buyers.purchase
    # Per-buyer purchase counts: they sum to the daily totals of each run.
    assert mesa_orders.sum() == mesa_daily["buyers_orders"].sum()
    assert engine_orders.sum() == engine_daily["buyers_orders"].sum()
    var_x = np.concatenate([mesa_orders, engine_orders]).var(ddof=1)
    se_one = math.sqrt(BUYERS * var_x)
    mesa, engine = int(mesa_orders.sum()), int(engine_orders.sum())
    assert abs(mesa - engine) <= Z * math.sqrt(2) * se_one, (mesa, engine, Z * math.sqrt(2) * se_one)
    expected = BUYERS * bgnbd_expected_purchases(DAYS, p.r, p.alpha, p.a, p.b)
    for name, total in (("Mesa", mesa), ("engine", engine)):
        assert abs(total - expected) <= Z * se_one, f"{name}: {total} purchases, BG/NBD expects {expected:.0f}"


def test_rejects_cases_it_does_not_implement():
    cfg = load_config(["market=goods", "days=2", "population.buyers=10", "population.sellers=2"])
    with pytest.raises(ValueError, match="experience_effects"):
        MesaMarketplace(cfg)
