"""Metric definitions (DESIGN section 4): one module, so every number means one thing.

Units: days, currency, shares in [0, 1], NPS in points (-100 to 100).
"""
from __future__ import annotations

import math

import numpy as np

from agents import buyers as buyers_rules
from agents.base import CHANNEL, Side
from agents.lifecycle import experience_multiplier
from sim.streams import Streams

MONTH_DAYS = 30


class DailyLedger:
    """The day's figures, one dict per day (becomes daily.parquet)."""

    def __init__(self):
        self.rows: list[dict] = []

    def append(self, row: dict) -> None:
        self.rows.append(dict(row))


def survey(side: Side, day: int, metrics_conf, streams: Streams) -> float:
    """On the last day of each 30-day month, survey a sample of active agents; return NPS (else NaN).

    Each surveyed agent answers 0-10: round(10 * satisfaction + noise), clipped.
    NPS = % promoters (9-10) - % detractors (0-6) (Reichheld 2003). Answers are
    stored on the agents: CS can see them, unlike satisfaction.
    """
    if day % MONTH_DAYS != MONTH_DAYS - 1:
        return math.nan
    alive = np.flatnonzero(side.alive)
    asked = alive[streams.uniform(f"{side.name}.survey_asked", day, alive) < metrics_conf.survey_share_per_month]
    if asked.size == 0:
        return math.nan
    noise = metrics_conf.survey_noise_sd * streams.normal(f"{side.name}.survey_noise", day, asked)
    answer = np.clip(np.rint(10 * side.satisfaction[asked] + noise), 0, 10).astype(np.int8)
    side.survey_answer[asked] = answer
    return nps(answer)


def nps(answers: np.ndarray) -> float:
    """Net promoter score of 0-10 answers: % of 9-10 minus % of 0-6 (points)."""
    answers = np.asarray(answers)
    if answers.size == 0:
        return math.nan
    return float(100.0 * (np.mean(answers >= 9) - np.mean(answers <= 6)))


def monthly_churn_series(side: Side, days: int) -> np.ndarray:
    """Churn rate of each complete 30-day month: churned during it / active at its start.

    Active at the start of month m: joined before day 30m (or an initial agent) and not churned before it.
    """
    months = days // MONTH_DAYS
    rates = np.full(months, np.nan)
    join, churn_day = side.join_day, side.churn_day
    initial = side.channel == CHANNEL["initial"]  # present before day 0's events
    for m in range(months):
        start, end = m * MONTH_DAYS, (m + 1) * MONTH_DAYS
        active = ((join < start) | initial) & ((churn_day < 0) | (churn_day >= start))
        n = np.count_nonzero(active)
        if n:
            rates[m] = np.count_nonzero(active & (churn_day >= start) & (churn_day < end)) / n
    return rates


def agent_ltv(model, side: Side) -> np.ndarray:
    """Per-agent lifetime value, currency, discounted to the join day.

    Realised discounted margin, plus for agents alive at the horizon T the
    predicted margin: margin rate m (currency per day) times the annuity
    (1 - exp(-(h + d) H)) / (h + d) over ``ltv_horizon_days`` H, with h the
    agent's churn hazard per day and d the daily discount rate, discounted by
    exp(-d (T - join day)).
    """
    cfg, market = model.cfg, model.market
    d = model.discount_per_day
    horizon = cfg.metrics.ltv_horizon_days
    neutral = market.satisfaction.neutral
    sat = model.behaviour_satisfaction(side.name)
    if side.name == "buyers":
        b = market.buyers
        margin_per_order = _buyer_margin_per_order(model)
        rate = buyers_rules.expected_margin_rate(side, margin_per_order, sat, neutral, b.rate_sensitivity)
        hazard = buyers_rules.residual_hazard(side, sat, neutral, b.rate_sensitivity, b.dropout_sensitivity)
        rate = np.where(side.activation_day >= 0, rate, 0.0)
    else:
        conf = getattr(market, side.name)
        rate = side.margin_rate.astype(np.float64)
        hazard = side.base_hazard * experience_multiplier(sat, neutral, -conf.churn.satisfaction_sensitivity)
    k = hazard + d
    annuity = np.where(k > 0, -np.expm1(-k * horizon) / np.where(k > 0, k, 1.0), horizon)
    age = model.day - side.join_day
    predicted = np.where(side.alive, rate * annuity * np.exp(-d * age), 0.0)
    return side.margin_discounted + predicted


def _buyer_margin_per_order(model) -> float:
    """Average margin per completed order of buyers so far (fee less payment cost), currency."""
    rows = model.ledger.rows
    margin = sum(r.get("buyers_margin", 0.0) for r in rows)
    completed = sum(r.get("buyers_orders", 0) - r.get("buyers_failed", 0) for r in rows)
    return margin / completed if completed else model.market.buyers.fee_per_order


def side_summary(model, side: Side, daily) -> dict:
    """Headline metrics of one side (see DESIGN section 4)."""
    days = model.day
    name = side.name
    acquired = side.channel != CHANNEL["initial"]
    ltv = agent_ltv(model, side)
    marketing = float(daily[f"{name}_marketing_cost"].sum())
    n_acquired = int(np.count_nonzero(acquired))
    cac = marketing / n_acquired if n_acquired else math.nan
    ltv_new = float(ltv[acquired].mean()) if n_acquired else math.nan
    activated = acquired & (side.activation_day >= 0)
    ttfv = (side.activation_day - side.join_day)[activated]
    observable = acquired & (side.join_day <= days - MONTH_DAYS)
    within_30 = observable & (side.activation_day >= 0) & (side.activation_day - side.join_day <= MONTH_DAYS)
    churn_months = monthly_churn_series(side, days)
    nps_months = daily[f"{name}_nps"].dropna()
    return {
        "monthly_churn": _finite(np.nanmean(churn_months)) if np.isfinite(churn_months).any() else None,
        "ltv": _finite(ltv_new),
        "ltv_all": _finite(float(ltv.mean())) if side.n else None,
        "cac": _finite(cac),
        "ltv_cac": _finite(ltv_new / cac) if cac and np.isfinite(cac) and cac > 0 else None,
        "nps": _finite(float(nps_months.mean())) if len(nps_months) else None,
        "ttfv_days": _finite(float(ttfv.mean())) if ttfv.size else None,
        "activation_30d": _finite(np.count_nonzero(within_30) / np.count_nonzero(observable))
        if np.count_nonzero(observable) else None,
        "active_end": int(np.count_nonzero(side.alive)),
        "joined": n_acquired,
        "churned": int(np.count_nonzero(side.churn_day >= 0)),
        "satisfaction_end": _finite(float(side.satisfaction[side.alive].mean())) if side.alive.any() else None,
        "revenue": float(side.revenue.sum()),
        "margin": float(side.margin.sum()),
        "marketing_cost": marketing,
    }


def platform_summary(daily) -> dict:
    """Platform economics over the run, currency."""
    keys = ("gmv", "take_revenue", "payment_costs", "marketing_cost", "cs_cost", "incentive_cost",
            "net_contribution")
    out = {k: float(daily[k].sum()) for k in keys}
    out["expansion_revenue"] = float(daily["expansion_revenue"].sum()) if "expansion_revenue" in daily else 0.0
    out["days"] = int(len(daily))
    return out


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
