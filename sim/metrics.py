"""Metric definitions (DESIGN section 4): one module, so every number means one thing.

Units: days, currency, shares in [0, 1], NPS in points (-100 to 100).
"""
from __future__ import annotations

import math

import numpy as np

from agents import buyers as buyers_rules
from agents.base import CHANNEL, Side
from agents.lifecycle import discounted_to_join_day, experience_multiplier
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


def monthly_churn_series(side: Side, days: int, returns=None) -> np.ndarray:
    """Churn rate of each complete 30-day month: churned during it / active at its start.

    Active at the start of month m: joined before day 30m (or an initial agent) and not churned before it.
    ``returns`` (win-back: a list of (ids, churn_day, return_day) arrays) adds
    each won-back agent's earlier lives, so every departure counts, including
    those later won back; an agent is counted once per month.
    """
    months = days // MONTH_DAYS
    rates = np.full(months, np.nan)
    initial = side.channel == CHANNEL["initial"]  # present before day 0's events
    # one row per life: (agent, start, churn day or -1, initial)
    agent = np.arange(side.n)
    start_day, churn_day, first = side.join_day.astype(np.int64), side.churn_day.astype(np.int64), initial
    if returns:
        ids = np.concatenate([r[0] for r in returns])
        gone = np.concatenate([r[1] for r in returns]).astype(np.int64)
        back = np.concatenate([r[2] for r in returns]).astype(np.int64)
        # life starts: the join day, then each return day; life ends: each departure, then the current churn day
        starts = np.concatenate([start_day, back])
        owners = np.concatenate([agent, ids])
        life_order = np.lexsort((starts, owners))
        owners, starts = owners[life_order], starts[life_order]
        ends = np.empty_like(starts)
        last_of_agent = np.r_[owners[1:] != owners[:-1], True]
        ends[last_of_agent] = churn_day[owners[last_of_agent]]
        ends[~last_of_agent] = gone[np.lexsort((gone, ids))]   # earlier lives end at the logged departures
        first = np.r_[True, owners[1:] != owners[:-1]] & initial[owners]
        agent, start_day, churn_day = owners, starts, ends
    for m in range(months):
        start, end = m * MONTH_DAYS, (m + 1) * MONTH_DAYS
        active = ((start_day < start) | first) & ((churn_day < 0) | (churn_day >= start))
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
    return discounted_to_join_day(side, d) + predicted


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
    ops = getattr(model, "cs", None)
    churn_months = monthly_churn_series(side, days, ops.returns.get(name) if ops is not None else None)
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
        **cs_side_summary(model, side, daily),
    }


def cs_side_summary(model, side: Side, daily) -> dict:
    """CS figures of one side: CSAT (share of 4-5 answers after contacts), tickets, CS cost, health bands."""
    name = side.name
    out: dict = {}
    answers = daily.get(f"{name}_csat_answers")
    if answers is not None and answers.sum() > 0:
        share = (daily[f"{name}_csat"].fillna(0.0) * answers).sum() / answers.sum()
        out["csat"] = _finite(share)
        out["csat_answers"] = int(answers.sum())
    else:
        out["csat"], out["csat_answers"] = None, 0
    if f"cs_cost_{name}" in daily:
        out["cs_cost"] = float(daily[f"cs_cost_{name}"].sum())
    ops = getattr(model, "cs", None)
    if ops is not None:
        st = ops.state[name]
        out["tickets"] = int(st.tickets.sum())
        alive = side.alive
        band = ops._band(st.health)[alive]
        for code, label in enumerate(("red", "yellow", "green")):
            out[f"health_{label}_end"] = _finite(np.mean(band == code)) if band.size else None
        out["won_back"] = int(sum(r[0].size for r in ops.returns.get(name, [])))
    return out


def platform_summary(daily) -> dict:
    """Platform economics over the run, currency."""
    keys = ("gmv", "take_revenue", "payment_costs", "marketing_cost", "cs_cost", "incentive_cost",
            "net_contribution")
    out = {k: float(daily[k].sum()) for k in keys}
    out["expansion_revenue"] = float(daily["expansion_revenue"].sum()) if "expansion_revenue" in daily else 0.0
    out["days"] = int(len(daily))
    out["cs_cost_by_policy"] = {c[len("cs_cost_"):]: float(daily[c].sum()) for c in daily.columns
                                if c.startswith("cs_cost_") and c[len("cs_cost_"):] not in
                                ("buyers", "sellers", "drivers")}
    if "cs_tickets" in daily:
        finished = daily["cs_finished"].sum()
        waits = (daily["cs_wait_days_mean"].fillna(0.0) * daily["cs_finished"]).sum()
        out["cs_desk"] = {
            "tickets": int(daily["cs_tickets"].sum()),
            "resolved": int(daily["cs_resolved"].sum()),
            "abandon_share": _finite(daily["cs_abandoned"].sum() / finished) if finished else None,
            "mean_wait_days": _finite(waits / finished) if finished else None,
            "utilisation": _finite(daily["cs_utilisation"].mean()),
        }
    return out


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
