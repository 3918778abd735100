"""The configuration schema: types and allowed ranges, no numbers.

Every value of the model lives in conf/ (YAML). These dataclasses are the
Hydra structured-config schema that conf/ is merged into: OmegaConf checks
types and unknown keys, and :func:`validate` checks ranges, naming the key,
the value and what is allowed.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List

from omegaconf import MISSING

from sim.spatial import REPOSITION_RULES

SIDES = ("buyers", "sellers", "drivers")
MARKETS = ("goods", "rides", "delivery")


class ConfigError(ValueError):
    """A user's config value is not allowed; the message is one paragraph."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        end = "" if str(allowed).endswith(("?", ".")) else "."
        super().__init__(f"Invalid config: `{key}` = {value!r}. Allowed: {allowed}{end}")


# Range markers attached to fields (checked by validate()).
def _f(kind: str, **extra):
    return field(default=MISSING, metadata={"range": kind, **extra})


def positive():
    return _f("positive")


def nonneg():
    return _f("nonneg")


def prob():
    return _f("prob")


def count():
    return _f("count")


def one_of(*choices):
    return _f("choice", choices=choices)


_RANGE_TEXT = {
    "positive": "a number > 0",
    "nonneg": "a number >= 0",
    "prob": "a probability in [0, 1]",
    "count": "a whole number >= 0",
}


@dataclass
class Purchase:
    r: float = positive()
    alpha: float = positive()
    a: float = positive()
    b: float = positive()


@dataclass
class Spend:
    p: float = positive()
    q: float = _f("gamma_gamma_q")
    gamma: float = positive()


@dataclass
class Experience:
    learning_rate: float = prob()
    success: float = prob()
    failure: float = prob()
    wait_penalty_per_minute: float = nonneg()


@dataclass
class Onboarding:
    quality: float = prob()
    quality_concentration: float = positive()
    ttfv_days_at_best: float = nonneg()
    ttfv_days_at_worst: float = nonneg()
    activation_floor: float = prob()
    unactivated_hazard: float = nonneg()


@dataclass
class Acquisition:
    marketing_budget_per_1k: float = nonneg()
    base_cac: float = positive()
    cac_saturation_per_1k: float = positive()
    organic_per_1k: float = nonneg()
    network_elasticity: float = nonneg()
    referral_rate: float = nonneg()


@dataclass
class BuyersAcquisition(Acquisition):
    """Buyers' acquisition adds what a prospective buyer compares the market with (sim/attraction.py)."""

    signal_window_days: float = _f("at_least_one")
    reference_fill_rate: float = positive()
    reference_pickup_minutes: float = positive()
    selection_half: float = nonneg()


@dataclass
class Churn:
    beta_a: float = positive()
    beta_b: float = positive()
    satisfaction_sensitivity: float = nonneg()


@dataclass
class Buyers:
    purchase: Purchase = field(default_factory=Purchase)
    rate_sensitivity: float = nonneg()
    dropout_sensitivity: float = nonneg()
    has_basket: bool = MISSING
    spend: Spend = field(default_factory=Spend)
    fee_per_order: float = nonneg()
    payment_cost_rate: float = prob()
    referral_churn_multiplier: float = positive()
    referral_value_multiplier: float = positive()
    experience: Experience = field(default_factory=Experience)
    onboarding: Onboarding = field(default_factory=Onboarding)
    acquisition: BuyersAcquisition = field(default_factory=BuyersAcquisition)


@dataclass
class Choice:
    w_rating: float = nonneg()
    w_reviews: float = nonneg()
    w_price: float = nonneg()
    rating_prior_mean: float = _f("rating")
    rating_prior_count: float = nonneg()


@dataclass
class PaidProduct:
    """A paid product a seller can take and drop (the premium plan, promoted listings)."""

    fee_per_day: float = nonneg()
    upgrade_rate: float = nonneg()
    satisfaction_sensitivity: float = nonneg()
    success_sensitivity: float = nonneg()
    cancel_rate: float = nonneg()
    value_sensitivity: float = nonneg()
    choice_boost: float = positive()


@dataclass
class OutsideOption:
    take_rate: float = prob()


@dataclass
class Sellers:
    churn: Churn = field(default_factory=Churn)
    enterprise_share: float = prob()
    enterprise_weight: float = positive()
    quality_a: float = positive()
    quality_b: float = positive()
    price_level_cv: float = nonneg()
    commission: float = prob()
    choice: Choice = field(default_factory=Choice)
    expected_orders_per_day: float = positive()
    expected_orders_cv: float = nonneg()
    sales_window_days: float = positive()
    sales_sensitivity: float = nonneg()
    experience_learning_rate: float = prob()
    outside_option: OutsideOption = field(default_factory=OutsideOption)
    premium: PaidProduct = field(default_factory=PaidProduct)
    promoted: PaidProduct = field(default_factory=PaidProduct)
    onboarding: Onboarding = field(default_factory=Onboarding)
    acquisition: Acquisition = field(default_factory=Acquisition)
    referral_churn_multiplier: float = positive()
    referral_value_multiplier: float = positive()


@dataclass
class Deactivation:
    enabled: bool = True
    min_rating: float = _f("rating")
    min_ratings: int = count()
    window: int = count()


@dataclass
class Reposition:
    rule: str = one_of(*REPOSITION_RULES)
    km_per_hour: float = nonneg()


@dataclass
class Drivers:
    churn: Churn = field(default_factory=Churn)
    hours_per_day_mean: float = _f("hours")
    hours_per_day_cv: float = nonneg()
    platform_share_a: float = positive()
    platform_share_b: float = positive()
    share_sensitivity: float = nonneg()
    quality_a: float = positive()
    quality_b: float = positive()
    good_quality: float = prob()
    bad_luck_low_rating: float = prob()
    outside_option_per_hour: float = positive()
    earnings_sensitivity: float = nonneg()
    fairness_penalty: float = prob()
    experience_learning_rate: float = prob()
    commission: float = prob()
    fare_base: float = nonneg()
    fare_per_km: float = nonneg()
    handling_minutes: float = nonneg()
    deactivation: Deactivation = field(default_factory=Deactivation)
    reposition: Reposition = field(default_factory=Reposition)
    onboarding: Onboarding = field(default_factory=Onboarding)
    acquisition: Acquisition = field(default_factory=Acquisition)
    referral_churn_multiplier: float = positive()
    referral_value_multiplier: float = positive()


@dataclass
class Satisfaction:
    neutral: float = prob()
    initial_mean: float = _f("open_prob")
    initial_concentration: float = positive()
    promoter_level: float = prob()


@dataclass
class City:
    size_km: float = positive()
    speed_kmh: float = positive()
    max_pickup_minutes: float = positive()
    rounds_per_day: int = _f("rounds")


@dataclass
class Market:
    name: str = one_of(*MARKETS)
    sides: List[str] = MISSING
    satisfaction: Satisfaction = field(default_factory=Satisfaction)
    city: City = field(default_factory=City)
    buyers: Buyers = field(default_factory=Buyers)
    sellers: Sellers = field(default_factory=Sellers)
    drivers: Drivers = field(default_factory=Drivers)


@dataclass
class Population:
    buyers: int = count()
    sellers: int = count()
    drivers: int = count()


@dataclass
class TicketKind:
    """One kind of reactive ticket: how often it arises, how long it takes, how long its sender waits."""

    rate: float = prob()              # chance per triggering event (see conf/config.yaml)
    service_minutes: float = positive()  # mean handling time, minutes of one CS agent (exponential)
    patience_days: float = positive()   # mean patience before giving up, days (exponential)
    priority: int = count()           # lower is served first


@dataclass
class Tickets:
    failed_order: TicketKind = field(default_factory=TicketKind)
    bad_order: TicketKind = field(default_factory=TicketKind)
    onboarding: TicketKind = field(default_factory=TicketKind)
    payout: TicketKind = field(default_factory=TicketKind)


@dataclass
class Contact:
    resolved_level: float = prob()
    abandoned_level: float = prob()
    wait_penalty_per_day: float = nonneg()
    weight: float = prob()
    csat_noise_sd: float = nonneg()


@dataclass
class HealthWeights:
    recency: float = nonneg()
    frequency: float = nonneg()
    rating: float = nonneg()
    tickets: float = nonneg()
    onboarding: float = nonneg()
    tenure: float = nonneg()
    survey: float = nonneg()


@dataclass
class Health:
    weights: HealthWeights = field(default_factory=HealthWeights)
    every_days: int = _f("every")
    red_below: float = _f("score")
    green_from: float = _f("score")
    recency_scale: float = positive()
    frequency_window_days: float = positive()
    tenure_full_days: float = positive()
    ticket_memory_days: float = positive()
    trend_days: float = positive()
    trend_threshold: float = nonneg()
    rating_floor: float = _f("rating")


@dataclass
class CS:
    staff: int = count()
    staff_cost_per_day: float = nonneg()
    workday_hours: float = _f("hours")
    onboarding_question_days: int = count()
    tickets: Tickets = field(default_factory=Tickets)
    contact: Contact = field(default_factory=Contact)
    health: Health = field(default_factory=Health)


@dataclass
class Metrics:
    discount_rate_annual: float = nonneg()
    ltv_horizon_days: int = count()
    revenue_retention_months: int = _f("months")
    survey_share_per_month: float = prob()
    survey_noise_sd: float = nonneg()
    ltv_shrink_active_days: float = nonneg()


@dataclass
class Output:
    dir: str = "runs"


@dataclass
class Config:
    """The whole run configuration (conf/config.yaml merged into this)."""

    seed: int = _f("seed")
    days: int = _f("days")
    experience_effects: bool = MISSING
    population: Population = field(default_factory=Population)
    market: Market = field(default_factory=Market)
    policy: Dict[str, Any] = field(default_factory=dict)
    cs: CS = field(default_factory=CS)
    metrics: Metrics = field(default_factory=Metrics)
    output: Output = field(default_factory=Output)


_EXTRA_RANGES = {
    "at_least_one": (lambda v: v >= 1, "a number of days >= 1"),
    "rating": (lambda v: 1 <= v <= 5, "a rating in [1, 5]"),
    "hours": (lambda v: 0 < v <= 24, "hours per day in (0, 24]"),
    "open_prob": (lambda v: 0 < v < 1, "a number strictly between 0 and 1"),
    "gamma_gamma_q": (lambda v: v > 1, "a number > 1 (the mean spend p gamma / (q - 1) must exist)"),
    "rounds": (lambda v: 1 <= v <= 1440, "a whole number of matching rounds per day in [1, 1440]"),
    "days": (lambda v: 1 <= v <= 36500, "a whole number of days in [1, 36500]"),
    # the streams mix the seed as 64 bits: 2^64 would silently equal seed 0
    "seed": (lambda v: 0 <= v < 2**64 and float(v).is_integer(), "a whole number in [0, 2^64 - 1]"),
    "score": (lambda v: 0 <= v <= 100, "a health score in [0, 100]"),
    "every": (lambda v: 1 <= v <= 365 and float(v).is_integer(), "a whole number of days in [1, 365]"),
    "months": (lambda v: 1 <= v <= 120 and float(v).is_integer(), "a whole number of months in [1, 120]"),
}


def _check(key: str, value: Any, meta: dict) -> None:
    kind = meta.get("range")
    if kind is None:
        return
    if kind == "choice":
        if value not in meta["choices"]:
            raise ConfigError(key, value, "one of " + ", ".join(meta["choices"]))
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(key, value, _RANGE_TEXT.get(kind) or _EXTRA_RANGES[kind][1])
    ok = {
        "positive": lambda v: v > 0,
        "nonneg": lambda v: v >= 0,
        "prob": lambda v: 0 <= v <= 1,
        "count": lambda v: v >= 0 and float(v).is_integer(),
    }.get(kind) or _EXTRA_RANGES[kind][0]
    if not ok(value):
        raise ConfigError(key, value, _RANGE_TEXT.get(kind) or _EXTRA_RANGES[kind][1])


def _walk(obj: Any, prefix: str) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}.{f.name}" if prefix else f.name
        if dataclasses.is_dataclass(value):
            _walk(value, key)
        else:
            _check(key, value, dict(f.metadata))


def validate(cfg: Config) -> Config:
    """Check every range and cross-field rule of a typed config; raise ConfigError."""
    _walk(cfg, "")
    sides = list(cfg.market.sides)
    for side in sides:
        if side not in SIDES:
            raise ConfigError("market.sides", sides, "a list of sides from " + ", ".join(SIDES))
    if "buyers" not in sides or len(sides) < 2 or len(set(sides)) != len(sides):
        raise ConfigError("market.sides", sides, "buyers plus at least one supply side (sellers, drivers), each once")
    if "sellers" in sides and cfg.population.sellers < 1:  # zero buyers or drivers is a valid, idle market
        raise ConfigError("population.sellers", cfg.population.sellers,
                          f"at least 1 in the {cfg.market.name} market: buyers choose among its sellers from the "
                          "first day (zero buyers or zero drivers is allowed: a market where nothing is sold)")
    for side in ("buyers", "sellers", "drivers"):
        ob = getattr(cfg.market, side).onboarding
        if ob.ttfv_days_at_best > ob.ttfv_days_at_worst:
            raise ConfigError(f"market.{side}.onboarding.ttfv_days_at_best", ob.ttfv_days_at_best,
                              f"at most ttfv_days_at_worst ({ob.ttfv_days_at_worst})")
    city, reposition = cfg.market.city, cfg.market.drivers.reposition
    if reposition.km_per_hour > city.speed_kmh:
        raise ConfigError("market.drivers.reposition.km_per_hour", reposition.km_per_hour,
                          f"a number in [0, market.city.speed_kmh] ({city.speed_kmh}): an idle driver cannot "
                          "cover more ground than driving flat out")
    h = cfg.cs.health
    if h.red_below > h.green_from:
        raise ConfigError("cs.health.red_below", h.red_below, f"at most cs.health.green_from ({h.green_from})")
    if sum(dataclasses.asdict(h.weights).values()) <= 0:
        raise ConfigError("cs.health.weights", dataclasses.asdict(h.weights), "weights >= 0, at least one > 0")
    if not isinstance(cfg.policy, dict):
        raise ConfigError("policy", cfg.policy, "a mapping of policy names to their parameters")
    return cfg
