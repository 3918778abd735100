"""A reference model written the way a Mesa user would write it.

One Python object per agent (``mesa.Agent`` subclasses :class:`Buyer` and
:class:`Seller`), scheduled with ``AgentSet.shuffle_do("step")``, data
collected with ``mesa.DataCollector``, and per-agent random draws from the
model's ``self.random`` inside ``__init__`` and ``step()``. It implements the
same rules as the engine (sim.Marketplace) on ``market=goods`` with no
policies, ``experience_effects=false`` and no acquisition, and reads the same
config object, so two things can be checked against it:

* correctness: daily active buyers and sellers and purchases agree with the
  engine within sampling error (tests/test_mesa_reference.py);
* speed: ``twosided bench`` times both on the same case (experiments/benchmark.py).

The rules (agents/buyers.py, agents/sellers.py, agents/lifecycle.py,
sim/matching.py, sim/model.py), with experience effects off:

* Buyers: purchase rate lambda ~ Gamma(r, rate alpha) per day and drop-out
  probability p ~ Beta(a, b). Purchase intentions are a Poisson process in
  continuous time (exact exponential gaps, as in the engine), starting at time
  0; after each purchase the buyer drops out (leaves the model) with
  probability p. A purchase counts even when it fails.
* Each purchase goes to a listed (alive, activated) seller, chosen with weight
  exp(w_rating (rating - 4.5) + w_reviews ln(1 + reviews) - w_price ln(price))
  x enterprise_weight (enterprise sellers) x choice_boost (premium sellers),
  the weights being fixed for the day (the engine computes them once a day);
  rating = (sum of stars + prior_mean prior_count) / (reviews + prior_count).
  The order succeeds with the seller's quality; the buyer then leaves a review:
  4 or 5 stars on success (5 with probability quality), 1 or 2 on failure.
* Sellers: segment enterprise with probability enterprise_share, quality
  ~ Beta, price level log-normal with mean 1, monthly churn theta ~ Beta(a, b)
  so a constant daily hazard -ln(1 - theta) / 30; each day (after the
  buyers) a seller buys the premium plan with probability 1 - exp(-upgrade_rate)
  and then leaves with probability 1 - exp(-hazard). (The engine draws an Exp(1)
  threshold once and accumulates the hazard: the same geometric law.)

Not modelled (they do not change these outputs with experience effects and
acquisition off): money, satisfaction, surveys, sellers' positions and sales
expectations.
"""
from __future__ import annotations

import math

import mesa
import pandas as pd

REFERENCE_OVERRIDES = [
    "market=goods",
    "policy=none",
    "experience_effects=false",
    *(f"market.{side}.acquisition.{key}=0" for side in ("buyers", "sellers")
      for key in ("marketing_budget_per_1k", "organic_per_1k", "referral_rate")),
]
"""Config overrides under which the engine and this reference implement the same model."""


class Buyer(mesa.Agent):
    """A shopper: BG/NBD purchases in continuous time (days)."""

    def __init__(self, model: "MesaMarketplace", purchase):
        super().__init__(model)
        # random.gammavariate(shape, scale): rate alpha per day -> scale 1 / alpha
        self.rate = self.random.gammavariate(purchase.r, 1.0 / purchase.alpha)
        self.dropout_p = self.random.betavariate(purchase.a, purchase.b)
        self.orders = 0
        self.next_purchase = self.random.expovariate(self.rate) if self.rate > 0 else math.inf

    def step(self) -> None:
        model = self.model
        end = model.day + 1
        while self.next_purchase < end:
            self.orders += 1
            model.place_order(self)
            if self.random.random() < self.dropout_p:
                self.remove()  # silent drop-out: the buyer leaves the model
                return
            self.next_purchase += self.random.expovariate(self.rate)


class Seller(mesa.Agent):
    """A merchant: segment, quality, price level, rating, premium plan, constant churn hazard."""

    def __init__(self, model: "MesaMarketplace", conf):
        super().__init__(model)
        self.enterprise = self.random.random() < conf.enterprise_share
        self.quality = self.random.betavariate(conf.quality_a, conf.quality_b)
        sigma = math.sqrt(math.log1p(conf.price_level_cv ** 2))
        self.price_level = self.random.lognormvariate(-sigma * sigma / 2, sigma)  # mean 1
        monthly = min(self.random.betavariate(conf.churn.beta_a, conf.churn.beta_b), 1 - 1e-9)
        self.hazard = -math.log1p(-monthly) / 30.0
        self.premium = False
        self.rating_sum = 0.0
        self.rating_count = 0
        self.orders = 0

    def choice_weight(self, conf) -> float:
        c = conf.choice
        rating = (self.rating_sum + c.rating_prior_mean * c.rating_prior_count) / (
            self.rating_count + c.rating_prior_count)
        weight = math.exp(c.w_rating * (rating - 4.5) + c.w_reviews * math.log1p(self.rating_count)
                          - c.w_price * math.log(self.price_level))
        if self.enterprise:
            weight *= conf.enterprise_weight
        if self.premium:
            weight *= conf.premium.choice_boost
        return weight

    def review(self, stars: float) -> None:
        self.rating_sum += stars
        self.rating_count += 1

    def step(self) -> None:
        conf = self.model.market.sellers
        if not self.premium and self.random.random() < -math.expm1(-conf.premium.upgrade_rate):
            self.premium = True
        if self.random.random() < -math.expm1(-self.hazard):
            self.remove()


class MesaMarketplace(mesa.Model):
    """The goods market with Mesa agent objects; ``step()`` is one day.

    Reads the same :class:`sim.config.Config` as the engine; only the case of
    :data:`REFERENCE_OVERRIDES` is supported (it raises ValueError otherwise).
    """

    def __init__(self, cfg):
        super().__init__(seed=cfg.seed)
        _check_supported(cfg)
        self.cfg = cfg
        self.market = cfg.market
        self.day = 0
        self.orders_today = 0
        self.succeeded_today = 0
        # every buyer ever created (drop-outs leave the model, not this list): per-buyer purchase counts
        self.all_buyers = list(Buyer.create_agents(self, int(cfg.population.buyers), cfg.market.buyers.purchase))
        Seller.create_agents(self, int(cfg.population.sellers), cfg.market.sellers)
        self._listed: list[Seller] = []
        self._cum_weights: list[float] = []
        self.datacollector = mesa.DataCollector(model_reporters={
            "buyers_active": lambda m: len(m.agents_by_type[Buyer]),
            "sellers_active": lambda m: len(m.agents_by_type[Seller]),
            "buyers_orders": "orders_today",
            "orders_succeeded": "succeeded_today",
        })

    def place_order(self, buyer: Buyer) -> None:
        """One purchase: choose a listed seller by today's weights; success by its quality; a review."""
        self.orders_today += 1
        if not self._listed:
            return
        seller = self.random.choices(self._listed, cum_weights=self._cum_weights)[0]
        seller.orders += 1
        success = self.random.random() < seller.quality
        if success:
            self.succeeded_today += 1
            seller.review(5.0 if self.random.random() < seller.quality else 4.0)
        else:
            seller.review(2.0 if self.random.random() < 0.5 else 1.0)

    def step(self) -> None:
        self.orders_today = 0
        self.succeeded_today = 0
        sellers = self.agents_by_type[Seller]
        conf = self.market.sellers
        self._listed = list(sellers)  # every seller is activated: there are only initial sellers
        total = 0.0
        self._cum_weights = []
        for seller in self._listed:
            total += seller.choice_weight(conf)
            self._cum_weights.append(total)
        self.agents_by_type[Buyer].shuffle_do("step")
        sellers.shuffle_do("step")
        self.datacollector.collect(self)
        self.day += 1

    def run(self, days: int | None = None) -> pd.DataFrame:
        """Simulate ``days`` days (default ``cfg.days``); return the daily table (one row per day)."""
        days = self.cfg.days if days is None else days
        for _ in range(days):
            self.step()
        daily = self.datacollector.get_model_vars_dataframe().reset_index(drop=True)
        daily.insert(0, "day", range(len(daily)))
        return daily


def _check_supported(cfg) -> None:
    m = cfg.market
    problems = []
    if list(m.sides) != ["buyers", "sellers"]:
        problems.append(f"market.sides = {list(m.sides)} (needs [buyers, sellers]: market=goods)")
    if cfg.experience_effects:
        problems.append("experience_effects = true (needs false)")
    if any(k != "name" and v not in (None, "none", [], ["none"]) for k, v in dict(cfg.policy or {}).items()):
        problems.append(f"policy = {dict(cfg.policy)} (needs policy=none)")
    for side in ("buyers", "sellers"):
        acq = getattr(m, side).acquisition
        for key in ("marketing_budget_per_1k", "organic_per_1k", "referral_rate"):
            if getattr(acq, key) != 0:
                problems.append(f"market.{side}.acquisition.{key} = {getattr(acq, key)} (needs 0)")
    if problems:
        raise ValueError("The Mesa reference implements only the case of REFERENCE_OVERRIDES: "
                         + "; ".join(problems) + ".")
