"""Metric definitions (docs/model.md, Metrics): one module, so every number means one thing.

Units: days, currency, shares in [0, 1], NPS in points (-100 to 100).
"""
from __future__ import annotations

import math

import numpy as np

from agents import buyers as buyers_rules
from agents import sellers as sellers_rules
from agents.base import CHANNEL, NEVER, Side
from agents.lifecycle import discounted_to_join_day, experience_multiplier
from sim.columns import Column
from sim.streams import Streams

MONTH_DAYS = 30


class DailyLedger:
    """The day's figures, one dict per day (becomes daily.parquet), checked against the declared columns.

    :meth:`expect` sets the columns every day must have (sim/columns.py
    ``daily_columns``); :meth:`append` then refuses a day with an undeclared
    figure or without a declared one (one comparison of key sets per day).
    """

    def __init__(self):
        self.rows: list[dict] = []
        self.columns: dict[str, Column] = {}

    def expect(self, columns: dict[str, Column]) -> None:
        """From now on every day has exactly ``columns`` ({name: declaration})."""
        self.columns = dict(columns)

    def append(self, row: dict) -> None:
        """Record one day's figures; ValueError naming the columns that are not as declared."""
        if self.columns and row.keys() != self.columns.keys():
            undeclared = sorted(set(row) - set(self.columns))
            missing = sorted(set(self.columns) - set(row))
            raise ValueError(
                f"day {row.get('day')}: the daily figures do not match the columns declared in sim/columns.py "
                f"(DAILY_COLUMNS): undeclared {undeclared or 'none'}, missing {missing or 'none'}. Declare a new "
                "figure there with its unit, and write every declared one every day (a policy books its costs "
                "under its own name: cs_cost_<policy>).")
        self.rows.append(dict(row))


class RevenueBook:
    """Sellers' cumulative revenue and paid-product fees per seller at the end of every 30-day month.

    ``month_end[m]`` holds (revenue, fees) to date of every seller at the end of
    month m (currency, float64, one per seller created by then); a month's
    revenue of a seller is the difference of two ends. Cheap: one copy per month.
    """

    def __init__(self):
        self.month_end: list[tuple[np.ndarray, np.ndarray]] = []

    def record(self, day: int, sellers: Side) -> int | None:
        """At the end of a month, store the sellers' totals and return how many took up a paid product
        during it (``expansion_day`` within the month); None on other days."""
        if day % MONTH_DAYS != MONTH_DAYS - 1:
            return None
        self.month_end.append((sellers.revenue.copy(), sellers.fees_paid.copy()))
        return int(np.count_nonzero(sellers.expansion_day >= day - (MONTH_DAYS - 1)))

    def monthly(self, fees_only: bool = False) -> list[np.ndarray]:
        """Each month's revenue per seller (currency; all revenue, or the paid-product fees only),
        padded to the number of sellers at the last month end."""
        if not self.month_end:
            return []
        n = self.month_end[-1][0].size
        k = 1 if fees_only else 0
        ends = [np.pad(e[k], (0, n - e[k].size)) for e in self.month_end]
        return [ends[0]] + [b - a for a, b in zip(ends[:-1], ends[1:])]


def revenue_retention(monthly: list[np.ndarray], horizon: int) -> dict:
    """Net and gross revenue retention of monthly paying cohorts after ``horizon`` months (shares).

    Cohort m = the sellers with revenue R_m > 0 in month m (paying accounts);
    NRR_m = sum R_{m+H} / sum R_m over the cohort (expansion counts, so it may
    exceed 1); GRR_m = sum min(R_{m+H}, R_m) / sum R_m (each account capped at
    its starting revenue: contraction and churn only, at most 1). Overall: the
    same sums pooled over every cohort whose month m + H is complete. None
    where no cohort has a complete horizon.
    """
    cohorts = []
    start_sum = kept_sum = capped_sum = 0.0
    for m in range(len(monthly) - horizon):
        start, later = monthly[m], monthly[m + horizon][: monthly[m].size]
        paying = start > 0
        base = float(start[paying].sum())
        if not base:
            continue
        kept = float(later[paying].sum())
        capped = float(np.minimum(later[paying], start[paying]).sum())
        cohorts.append({"month": m, "accounts": int(np.count_nonzero(paying)), "revenue": base,
                        "nrr": kept / base, "grr": capped / base})
        start_sum, kept_sum, capped_sum = start_sum + base, kept_sum + kept, capped_sum + capped
    return {"horizon_months": horizon,
            "nrr": kept_sum / start_sum if start_sum else None,
            "grr": capped_sum / start_sum if start_sum else None,
            "by_cohort": cohorts}


def expansion_summary(model, daily) -> dict:
    """Sellers' revenue retention and paid-product movements over the run (docs/model.md, revenue retention).

    ``nrr``/``grr``: all revenue a seller pays (commission + plan + promoted
    fees); ``nrr_products``/``grr_products``: the paid-product fees only.
    ``expansion_rate``: mean over complete months of the sellers taking up any
    paid product during the month / sellers active at its start. Per product:
    take-ups, cancellations by sellers who stay (contraction), products ended
    with the account, and cancellations per holder-month (shares).
    """
    book = model.revenue_book
    horizon = int(model.cfg.metrics.revenue_retention_months)
    everything = revenue_retention(book.monthly(), horizon)
    fees = revenue_retention(book.monthly(fees_only=True), horizon)
    ends = daily.index[daily["sellers_expanded_accounts"].notna()] if "sellers_expanded_accounts" in daily else []
    rates = []
    for end in ends:
        start = end - (MONTH_DAYS - 1)
        active = daily["sellers_active"].iloc[start - 1] if start > 0 else model.initial_size["sellers"]
        if active:
            rates.append(daily["sellers_expanded_accounts"].iloc[end] / active)
    out = {"revenue_retention_months": horizon,
           "nrr": everything["nrr"], "grr": everything["grr"],
           "nrr_products": fees["nrr"], "grr_products": fees["grr"],
           "nrr_by_cohort": [c["nrr"] for c in everything["by_cohort"]],
           "grr_by_cohort": [c["grr"] for c in everything["by_cohort"]],
           "expansion_rate": _finite(np.mean(rates)) if rates else None,
           "expansion_rate_by_month": [_finite(r) for r in rates]}
    for p in sellers_rules.PRODUCTS:
        holder_months = float(daily[f"sellers_{p}"].sum()) / MONTH_DAYS
        cancelled = int(daily[f"sellers_{p}_cancelled"].sum())
        out[f"{p}_taken"] = int(daily[f"sellers_{p}_taken"].sum())
        out[f"{p}_cancelled"] = cancelled
        out[f"{p}_ended"] = int(daily[f"sellers_{p}_ended"].sum())
        out[f"{p}_end"] = int(daily[f"sellers_{p}"].iloc[-1]) if len(daily) else 0
        out[f"{p}_cancel_rate_monthly"] = _finite(cancelled / holder_months) if holder_months else None
    return out


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


def first_departures(side: Side, returns=None) -> np.ndarray:
    """Each agent's first departure day (-1: never left). Won-back agents' later lives are not counted.

    ``returns`` (win-back): a list of (ids, departure day, return day) arrays.
    """
    first = side.churn_day.astype(np.int64).copy()
    if returns:
        ids = np.concatenate([r[0] for r in returns]).astype(np.int64)
        gone = np.concatenate([r[1] for r in returns]).astype(np.int64)
        order = np.lexsort((-gone, ids))   # per agent, its earliest departure written last
        first[ids[order]] = gone[order]
    return first


def monthly_churn_series(side: Side, days: int, returns=None) -> np.ndarray:
    """Churn of activated agents in each complete 30-day month (shares).

    churned during month m / activated agents active at its start, counting
    each agent's first life only: agents who never reached first value leave
    through :func:`activation_failure` instead, and won-back agents' later
    departures through :func:`relapse_rate`, so the active base and churn tell
    the same story. Active at the start of month m: activated before day 30m
    (initial agents count as activated before day 0) and not yet departed.
    """
    months = days // MONTH_DAYS
    rates = np.full(months, np.nan)
    initial = side.channel == CHANNEL["initial"]
    activation = side.activation_day.astype(np.int64)
    departure = first_departures(side, returns)
    for m in range(months):
        start, end = m * MONTH_DAYS, (m + 1) * MONTH_DAYS
        active = (initial | ((activation >= 0) & (activation < start))) & ((departure < 0) | (departure >= start))
        n = np.count_nonzero(active)
        if n:
            rates[m] = np.count_nonzero(active & (departure >= start) & (departure < end)) / n
    return rates


def activation_failure(side: Side, days: int, returns=None) -> float:
    """Share of acquired agents, joined at least 30 days before the end, who left before first value."""
    acquired = (side.channel != CHANNEL["initial"]) & (side.join_day <= days - MONTH_DAYS)
    n = np.count_nonzero(acquired)
    if not n:
        return math.nan
    left_unactivated = (first_departures(side, returns) >= 0) & (side.activation_day < 0)
    return np.count_nonzero(acquired & left_unactivated) / n


def relapse_rate(side: Side, returns=None) -> float:
    """Share of won-back returns that ended in another departure by the end of the run."""
    if not returns:
        return math.nan
    ids = np.concatenate([r[0] for r in returns]).astype(np.int64)
    back = np.concatenate([r[2] for r in returns]).astype(np.int64)
    if not ids.size:
        return math.nan
    # Lives follow one another: every return but an agent's last was followed by another departure
    # (it had to leave to be won back again); the last one relapsed if the agent has left since.
    order = np.lexsort((back, ids))
    ids, back = ids[order], back[order]
    last = np.r_[ids[1:] != ids[:-1], True]
    later = ~last | (side.churn_day[ids].astype(np.int64) > back)
    return float(later.mean())


def buyer_order_ltv(model, side: Side) -> np.ndarray:
    """Order-attributed LTV of each buyer, currency, discounted to the join day: the whole margin its
    orders create on every side (realised), plus the same BG/NBD forecast as :func:`agent_ltv` at the
    market's whole margin per completed order. Beside the side-attributed LTV, which credits buyers
    only with their own fee."""
    realised = side.order_margin_discounted * np.exp(model.discount_per_day * side.join_day.astype(np.float64))
    return realised + _buyer_forecast(model, side, _margin_per_completed_order(model, "order_margin"))


def _buyer_forecast(model, side: Side, margin_per_order: float) -> np.ndarray:
    """Buyers alive at the horizon: expected margin over the next ltv_horizon_days, discounted to the join day."""
    d = model.discount_per_day
    b, neutral = model.market.buyers, model.market.satisfaction.neutral
    sat = model.behaviour_satisfaction(side.name)
    rate = buyers_rules.expected_margin_rate(side, margin_per_order, sat, neutral, b.rate_sensitivity)
    hazard = buyers_rules.residual_hazard(side, sat, neutral, b.rate_sensitivity, b.dropout_sensitivity)
    rate = np.where(side.activation_day >= 0, rate, 0.0)
    ahead = rate * annuity(hazard + d, model.cfg.metrics.ltv_horizon_days)
    return np.where(side.alive, ahead * np.exp(-d * (model.day - side.join_day)), 0.0)


def agent_ltv(model, side: Side) -> np.ndarray:
    """Per-agent lifetime value, currency, discounted to the join day.

    Realised discounted margin, plus for agents alive at the horizon T the
    margin expected over the next ``ltv_horizon_days`` H, discounted by
    exp(-d (T - join day)) with d the daily discount rate. Buyers: their
    BG/NBD purchase rate times the margin per order over the annuity
    (1 - exp(-(h + d) H)) / (h + d), h their drop-out hazard per day. Sellers
    and drivers: :func:`supply_forecast`.
    """
    d = model.discount_per_day
    if side.name == "buyers":
        predicted = _buyer_forecast(model, side, _margin_per_completed_order(model, "buyers_margin"))
    else:
        age = model.day - side.join_day
        predicted = np.where(side.alive, supply_forecast(model, side) * np.exp(-d * age), 0.0)
    return discounted_to_join_day(side, d) + predicted


def annuity(rate, horizon) -> np.ndarray:
    """(1 - exp(-rate H)) / rate: the present value (days) of one currency unit per day over H days
    at a total exit-plus-discount ``rate`` per day; H where the rate is 0 (both may be arrays)."""
    rate, horizon = np.asarray(rate, dtype=np.float64), np.asarray(horizon, dtype=np.float64)
    safe = np.where(rate > 0, rate, 1.0)
    return np.where(rate > 0, -np.expm1(-safe * horizon) / safe, horizon)


def supply_forecast(model, side: Side) -> np.ndarray:
    """Expected margin of each seller or driver over the next ``ltv_horizon_days``, discounted to today.

    The mechanism behind each term, per agent (currency):
    - activity: margin per active day, the agent's recent margin_rate / exposure
      (an exponentially weighted mean that starts at 0, divided by the same
      weights over its active days, so a new agent is not read as idle), shrunk
      toward the side's rate by ``metrics.ltv_shrink_active_days``; it lasts while the
      agent stays, at hazard h = base hazard x the experience multiplier: rate x A(h + d, H).
    - a seller's paid products (plan, promoted listings): each is a two-state
      chain, taken at the seller's hazard u per day and cancelled at c per day
      (sellers.take_up_hazard, sellers.cancel_hazard, today's values), so the
      chance of holding it at t is u/(u+c) + (held - u/(u+c)) exp(-(u+c) t), and its
      fee earns fee x [u/(u+c) A(h + d, H) + (held - u/(u+c)) A(h + d + u + c, H)].
    - an agent not yet activated earns nothing until its first value, which the
      model has set for day ``activation_due`` (never, for some): it must outlast the
      onboarding hazard until then, exp(-(h0 + d) wait), and then earns the side's
      rate over the rest of the horizon.
    """
    market, d = model.market, model.discount_per_day
    conf = getattr(market, side.name)
    horizon = float(model.cfg.metrics.ltv_horizon_days)
    neutral = market.satisfaction.neutral
    sat = model.behaviour_satisfaction(side.name)
    hazard = side.base_hazard * experience_multiplier(sat, neutral, -conf.churn.satisfaction_sensitivity)
    activated = side.activation_day >= 0
    pooled = side.alive & activated
    side_rate = (float(side.margin_rate[pooled].sum()) / float(side.exposure[pooled].sum())
                 if side.exposure[pooled].sum() > 0 else 0.0)
    # in the exponential weights' units (1 = a window of active days)
    prior = model.cfg.metrics.ltv_shrink_active_days / MONTH_DAYS
    own_rate = (side.margin_rate + prior * side_rate) / (side.exposure + prior)
    waiting = ~activated & (side.activation_due != NEVER)
    wait = np.where(waiting, side.activation_due.astype(np.float64) - model.day, 0.0).clip(0)
    remaining = np.maximum(horizon - wait, 0.0)
    reach = np.where(activated, 1.0, np.where(waiting, np.exp(-(conf.onboarding.unactivated_hazard + d) * wait), 0.0))
    rate = np.where(activated, own_rate, side_rate)
    if side.name == "sellers":
        value = _sellers_activity_value(model, side, own_rate, pooled, activated, hazard + d, wait, remaining)
    else:
        value = rate * annuity(hazard + d, remaining)
    if side.name == "sellers":
        value = value + _products_value(model, side, sat, hazard + d, remaining)
    return reach * value


def _products_value(model, side: Side, satisfaction, exit_rate, remaining) -> np.ndarray:
    """Sellers' expected paid-product fees over the horizon, discounted (see :func:`supply_forecast`)."""
    conf, neutral = model.market.sellers, model.market.satisfaction.neutral
    ids = np.arange(side.n)
    value = np.zeros(side.n)
    for product in sellers_rules.PRODUCTS:
        held = getattr(side, product)
        up = sellers_rules.take_up_hazard(side, ids, satisfaction, conf, product, neutral, model.market)
        down = sellers_rules.cancel_hazard(side, ids, satisfaction, conf, product, neutral)
        switch = up + down
        steady = np.where(switch > 0, up / np.where(switch > 0, switch, 1.0), held.astype(np.float64))
        value += getattr(conf, product).fee_per_day * (steady * annuity(exit_rate, remaining)
                                                       + (held - steady) * annuity(exit_rate + switch, remaining))
    return value


GRID_POINTS = 65
"""Simpson nodes over the LTV horizon for forecasts without a closed form."""


def _sellers_activity_value(model, side, own_rate, pooled, activated, exit_rate, wait, remaining) -> np.ndarray:
    """Sellers' commission over the horizon, with sales shared out by choice weights that grow with reviews.

    Each seller's weight grows by sellers.review_growth (newcomers from no reviews,
    at the side's sales per unit of weight, from their first-value day). Buyers'
    orders stay at today's level, so a seller's sales at t are today's times its
    weight growth divided by the growth of the whole side's weight (today's
    sellers as they survive, plus newcomers joining at the recent rate and
    surviving like today's new sellers): everyone gaining reviews does not
    make everyone sell more. Integrated with the discount and the seller's
    hazard by Simpson's rule over the horizon (currency).
    """
    conf, market = model.market.sellers, model.market
    horizon = float(model.cfg.metrics.ltv_horizon_days)
    beta = conf.choice.w_reviews
    reviewed = float(side.rating_count.sum()) / max(float(side.orders.sum()), 1.0)
    margin_per_order = conf.commission * side.price_level.astype(np.float64) * sellers_rules.mean_order_value(market)
    weight_now = (1.0 + side.rating_count.astype(np.float64)) ** beta
    per_weight = float(np.mean(own_rate[pooled] / weight_now[pooled])) if pooled.any() else 0.0
    rate = np.where(activated, own_rate, per_weight)
    reviews = np.where(activated, side.rating_count, 0.0).astype(np.float64)
    orders = rate / np.maximum(margin_per_order, 1e-12)
    t = np.linspace(0.0, horizon, GRID_POINTS)
    # the whole side's weight at t, relative to today
    alive = side.alive
    hazard = exit_rate - model.discount_per_day
    growth_now = sellers_rules.review_growth(orders[pooled, None], reviews[pooled, None], t[None, :], beta, reviewed)
    stock = (weight_now[pooled, None] * growth_now * np.exp(-hazard[pooled, None] * t[None, :])).sum(axis=0)
    recent = [r.get("sellers_joined", 0) for r in model.ledger.rows[-90:]]
    joins_per_day = float(np.mean(recent)) if recent else 0.0
    young = alive & (model.day - side.join_day < 90)
    new_hazard = float(np.mean(hazard[young])) if young.any() else float(np.mean(hazard[alive])) if alive.any() else 0.0
    new_orders = per_weight / max(float(np.mean(margin_per_order[alive])) if alive.any() else 1.0, 1e-12)
    newcomer = sellers_rules.review_growth(new_orders, 0.0, t, beta, reviewed) * np.exp(-new_hazard * t)
    step = t[1] - t[0]
    entrants = joins_per_day * np.concatenate([[0.0], np.cumsum((newcomer[1:] + newcomer[:-1]) / 2) * step])
    side_growth = (stock + entrants) / max(float(weight_now[pooled].sum()), 1e-12)
    # each seller's own path on its own clock: from today, or from its first-value day
    simpson = np.ones(GRID_POINTS)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    simpson /= 3.0 * (GRID_POINTS - 1)
    value = np.zeros(side.n)
    for start in range(0, side.n, 50_000):
        part = slice(start, start + 50_000)
        local = remaining[part, None] * np.linspace(0.0, 1.0, GRID_POINTS)[None, :]   # days after first value
        own_growth = sellers_rules.review_growth(orders[part, None], reviews[part, None], local, beta, reviewed)
        share = own_growth / np.interp(local + wait[part, None], t, side_growth)
        value[part] = rate[part] * remaining[part] * ((share * np.exp(-exit_rate[part, None] * local)) @ simpson)
    return value


def _margin_per_completed_order(model, column: str) -> float:
    """Average margin per completed order so far, currency: ``buyers_margin`` (the buyer's fee less
    payment cost) or ``order_margin`` (every side's margin on the order)."""
    rows = model.ledger.rows
    margin = sum(r.get(column, 0.0) for r in rows)
    completed = sum(r.get("buyers_orders", 0) - r.get("buyers_failed", 0) for r in rows)
    return margin / completed if completed else model.market.buyers.fee_per_order


def side_summary(model, side: Side, daily) -> dict:
    """Headline metrics of one side (docs/model.md, Metrics)."""
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
    returns = ops.returns.get(name) if ops is not None else None
    churn_months = monthly_churn_series(side, days, returns)
    nps_months = daily[f"{name}_nps"].dropna()
    return {
        "monthly_churn": _finite(np.nanmean(churn_months)) if np.isfinite(churn_months).any() else None,
        "monthly_churn_by_month": [_finite(rate) for rate in churn_months],
        "ltv": _finite(ltv_new),
        "ltv_all": _finite(float(ltv.mean())) if side.n else None,
        **({"ltv_orders": _finite(float(buyer_order_ltv(model, side)[acquired].mean())) if n_acquired else None}
           if name == "buyers" else {}),
        "cac": _finite(cac),
        "ltv_cac": _finite(ltv_new / cac) if cac and np.isfinite(cac) and cac > 0 else None,
        "nps": _finite(float(nps_months.mean())) if len(nps_months) else None,
        "ttfv_days": _finite(float(ttfv.mean())) if ttfv.size else None,
        "activation_30d": _finite(np.count_nonzero(within_30) / np.count_nonzero(observable))
        if np.count_nonzero(observable) else None,
        "active_end": int(np.count_nonzero(side.alive)),
        "joined": n_acquired,
        "churned": int(daily[f"{name}_churned"].sum()),   # every departure, as the daily table counts them
        "activation_failure": _finite(activation_failure(side, days, returns)),
        "relapse_rate": _finite(relapse_rate(side, returns)),
        "agent_days": int(daily[f"{name}_active"].sum()),
        "active_mean": _finite(float(daily[f"{name}_active"].mean())),
        "satisfaction_end": _finite(float(side.satisfaction[side.alive].mean())) if side.alive.any() else None,
        "revenue": float(side.revenue.sum()),
        "margin": float(side.margin.sum()),
        "marketing_cost": marketing,
        **cs_side_summary(model, side, daily),
        **({"expansion": expansion_summary(model, daily)} if name == "sellers" else {}),
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
        band = ops.health.band(st.health)[alive]
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
