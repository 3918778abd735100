"""Metric definitions (docs/model.md, Metrics): one module, so every number means one thing.

Units: days, currency, shares in [0, 1], NPS in points (-100 to 100).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from agents import buyers as buyers_rules
from agents import drivers as drivers_rules
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
    """Sellers' revenue and paid-product fees per seller in every 30-day month.

    ``months[m]`` holds (revenue, fees) of every seller created by the end of
    month m in that month (currency, float32: a month's sum needs no more
    digits, and at a million sellers a year of float64 is 190 MB).
    """

    def __init__(self):
        self.months: list[tuple[np.ndarray, np.ndarray]] = []
        self._totals: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0))   # to date, at the last month end

    def record(self, day: int, sellers: Side) -> int | None:
        """At the end of a month, store the sellers' month and return how many took up a paid product
        during it (``expansion_day`` within the month); None on other days."""
        if day % MONTH_DAYS != MONTH_DAYS - 1:
            return None
        now = (sellers.revenue.copy(), sellers.fees_paid.copy())
        self.months.append(tuple((total - np.pad(before, (0, total.size - before.size))).astype(np.float32)
                                 for total, before in zip(now, self._totals)))
        self._totals = now
        return int(np.count_nonzero(sellers.expansion_day >= day - (MONTH_DAYS - 1)))

    def monthly(self, fees_only: bool = False) -> list[np.ndarray]:
        """Each month's revenue per seller (currency, float64; all revenue, or the paid-product fees only),
        padded to the number of sellers at the last month end."""
        if not self.months:
            return []
        k = 1 if fees_only else 0
        n = self.months[-1][k].size
        return [np.pad(month[k].astype(np.float64), (0, n - month[k].size)) for month in self.months]


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

    Sellers: :func:`sellers_forecast`. Drivers, per agent (currency), a step at a time (:func:`forecast_steps`):
    - margin per active day: the agent's recent margin_rate / exposure (an
      exponentially weighted mean that starts at 0, divided by the same weights
      over its active days, so a new agent is not read as idle), shrunk toward the
      side's rate by ``metrics.ltv_shrink_active_days``, scaled by the hours it will
      be online against today's (:func:`drivers.expected_online_hours`: more when
      satisfied);
    - satisfaction: a driver whose first value is less than ``SETTLING_DAYS`` old
      moves each day, by :func:`drivers.experience_weight_at` of its hours, toward
      the mean satisfaction of the drivers past that age: earnings per hour are
      set by the market, and a newcomer's satisfaction still carries the level it
      joined with;
    - the agent stays with probability exp(-sum of daily hazards), base hazard x
      the experience multiplier of that day's satisfaction;
    - an agent not yet activated earns nothing until its first value, which the
      model has set for day ``activation_due`` (never, for some): it must outlast the
      onboarding hazard until then, and then earns the side's rate.
    Value = sum over days t < H of margin x survival x exp(-d t).
    """
    if side.name == "sellers":
        return sellers_forecast(model, side)
    market, d = model.market, model.discount_per_day
    conf = getattr(market, side.name)
    horizon = int(model.cfg.metrics.ltv_horizon_days)
    neutral = market.satisfaction.neutral
    activated = side.activation_day >= 0
    pooled = side.alive & activated
    side_rate = (float(side.margin_rate[pooled].sum()) / float(side.exposure[pooled].sum())
                 if side.exposure[pooled].sum() > 0 else 0.0)
    # in the exponential weights' units (1 = a window of active days)
    prior = model.cfg.metrics.ltv_shrink_active_days / MONTH_DAYS
    own_rate = (side.margin_rate + prior * side_rate) / (side.exposure + prior)
    ids = np.flatnonzero(side.alive & (activated | (side.activation_due != NEVER)))
    out = np.zeros(side.n)
    if ids.size == 0:
        return out
    first_value = np.where(activated[ids], 0.0, np.maximum(side.activation_due[ids].astype(np.float64) - model.day,
                                                            0.0))
    rate = np.where(activated[ids], own_rate[ids], side_rate)
    sat = model.behaviour_satisfaction(side.name)[ids].astype(np.float64)
    settled = pooled & (model.day - side.activation_day >= SETTLING_DAYS)
    target = float(side.satisfaction[settled].mean()) if settled.any() else None
    young = (model.day - np.where(activated[ids], side.activation_day[ids], model.day) < SETTLING_DAYS)
    settling = young & model.cfg.experience_effects & (target is not None)
    hours_now = np.maximum(drivers_rules.expected_online_hours(side, ids, sat, conf, neutral), 1e-12)
    survival = np.ones(ids.size)
    value = np.zeros(ids.size)
    for t, span in zip(*forecast_steps(horizon)):
        active = first_value < t + span / 2.0
        hours = drivers_rules.expected_online_hours(side, ids, sat, conf, neutral)
        hazard = np.where(active, side.base_hazard[ids] * experience_multiplier(
            sat, neutral, -conf.churn.satisfaction_sensitivity), conf.onboarding.unactivated_hazard)
        value += np.where(active, rate * hours / hours_now, 0.0) * survival * _days_sum(hazard + d, span) * math.exp(
            -d * t)
        if settling.any():
            keep = (1.0 - drivers_rules.experience_weight_at(hours, conf)) ** span
            sat = np.where(settling & active, target + (sat - target) * keep, sat)
        survival *= np.exp(-hazard * span)
    out[ids] = value
    return out


SETTLING_DAYS = 90
"""Days after first value by which a driver's satisfaction has settled where its earnings put it."""


def demand_path(model, days: np.ndarray) -> np.ndarray:
    """Buyers' expected orders per day at each of ``days`` from today, relative to today's (dimensionless).

    Today's activated buyers order at their BG/NBD rate while they stay (drop-out
    hazard h as in :func:`agent_ltv`): rate x exp(-h t). Newcomers join at the rate
    of the last ``NEWCOMER_WINDOW_DAYS`` days; as many reach first value as did
    among the recent joiners, after the same delays, and then order like them, so
    the newcomers of [0, t] order rate x (1 - exp(-h (t - delay))) / h per joiner-day.
    """
    side, b = model.sides["buyers"], model.market.buyers
    neutral = model.market.satisfaction.neutral
    sat = model.behaviour_satisfaction("buyers")
    rate = buyers_rules.expected_margin_rate(side, 1.0, sat, neutral, b.rate_sensitivity)
    hazard = buyers_rules.residual_hazard(side, sat, neutral, b.rate_sensitivity, b.dropout_sensitivity)
    ordering = side.alive & (side.activation_day >= 0)
    today = float(rate[ordering].sum())
    days = np.asarray(days, dtype=np.float64)
    if today <= 0:
        return np.ones(days.size)
    recent = model.ledger.rows[-NEWCOMER_WINDOW_DAYS:]
    joins_per_day = float(np.mean([r.get("buyers_joined", 0) for r in recent])) if recent else 0.0
    joined = side.join_day > model.day - NEWCOMER_WINDOW_DAYS
    young = np.flatnonzero(joined & (side.activation_day >= 0))
    delay = (side.activation_day[young] - side.join_day[young]).astype(np.float64)
    per_joiner = joins_per_day / max(np.count_nonzero(joined), 1)   # each recent joiner stands for this many a day
    staying, newcomers = _demand_sums(rate[ordering].astype(np.float64), hazard[ordering].astype(np.float64),
                                      rate[young].astype(np.float64), hazard[young].astype(np.float64), delay,
                                      np.ascontiguousarray(days))
    return (staying + per_joiner * newcomers) / today


@njit(cache=True)
def _demand_sums(rate, hazard, young_rate, young_hazard, delay, days):
    """For each of ``days`` t: sum of rate x exp(-hazard t) over today's ordering buyers, and sum of
    rate x annuity(hazard, max(t - delay, 0)) over the recent joiners (orders per day). Compiled: a
    large city has millions of buyers and the forecast asks for every week of a 3-year horizon."""
    staying = np.zeros(days.size)
    newcomers = np.zeros(days.size)
    for i in range(rate.size):
        for k in range(days.size):
            staying[k] += rate[i] * np.exp(-hazard[i] * days[k])
    for i in range(young_rate.size):
        h = young_hazard[i]
        for k in range(days.size):
            since = max(days[k] - delay[i], 0.0)
            newcomers[k] += young_rate[i] * (-np.expm1(-h * since) / h if h > 0 else since)
    return staying, newcomers


STEP_DAYS = 7
"""Forecasts without a closed form follow the model's daily rules a week at a time (each rule's
daily factor raised to the number of days) while agents settle, ..."""
LATE_STEP_DAYS = 14
"""... and two weeks at a time after ``SETTLING_DAYS``, when their rates move slowly and survival and
discounting weigh each day less. Against weekly steps throughout (goods, 100k buyers, 365 days): sellers'
mean forecast -0.19%, per seller 0.28% (median) and 2.8% (99th percentile), in a third of the time;
four-week steps would cost -0.57% and 8.1%."""


def forecast_steps(horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Start day and length (days) of each step of a forecast over ``horizon`` days: ``STEP_DAYS`` until
    ``SETTLING_DAYS``, then ``LATE_STEP_DAYS``; the last step ends at the horizon."""
    early = np.arange(0, min(horizon, SETTLING_DAYS), STEP_DAYS)
    late_from = early[-1] + STEP_DAYS if early.size else 0
    starts = np.concatenate([early, np.arange(late_from, horizon, LATE_STEP_DAYS)]).astype(np.int64)
    return starts, np.diff(np.append(starts, horizon))


def _days_sum(rate, days) -> np.ndarray:
    """sum over j < days of exp(-rate j): the discounted days in a step at a total exit-plus-discount
    ``rate`` per day (days; ``days`` when the rate is 0)."""
    rate = np.asarray(rate, dtype=np.float64)
    safe = np.where(rate > 0, rate, 1.0)
    return np.where(rate > 0, np.expm1(-safe * days) / np.expm1(-safe), days)


NEWCOMER_WINDOW_DAYS = 90
"""Sellers who joined in this many recent days stand for the newcomers the forecast expects (their
join rate and the way they start)."""


def sellers_forecast(model, side: Side) -> np.ndarray:
    """Expected margin of each seller over the next ``ltv_horizon_days``, discounted to today (currency).

    The model's own daily rules, followed in expectation a step at a time
    (:func:`forecast_steps`), for every living seller (and, for the competition, for newcomers like
    the recent ones):
    - buyers' orders (the last 30 days' level x :func:`demand_path`) go to listed
      sellers in proportion to their choice weights
      (:func:`sellers.expected_choice_weight`), so a seller's orders at t are the
      orders x its weight / the side's total weight, that of today's sellers as
      they survive plus newcomers joining at the rate of the last
      ``NEWCOMER_WINDOW_DAYS`` days and starting as the recent ones did;
    - each order brings about (reviews / orders so far) reviews, at the seller's
      expected stars (:func:`sellers.expected_stars`), so its rating and review count
      and with them its weight move as they will;
    - commission = orders x the side's fill and order value per order x quality x price;
    - recent sales move 1/``sales_window_days`` a day toward the day's sales, and
      satisfaction ``experience_learning_rate`` of the way toward the level that net
      income against the outside option sets, averaged over the noise of recent
      sales (:func:`sellers.expected_sales_experience_level`);
    - each paid product is held with a chance that moves with today's take-up and
      cancel hazards (from satisfaction and sales), earns its fee and lifts the weight;
    - the seller stays with probability S(t) = exp(-sum of its daily hazards): the
      onboarding hazard until its first value (day ``activation_due``, never for
      some), then base hazard x the experience multiplier of its satisfaction that day.
    A young seller's satisfaction still follows sales that fall from its hopes to
    what few reviews bring, and an older one's rises as reviews accumulate: the
    hazard path, not today's hazard, is what the seller will live through.
    Value = sum over days t < H of (commission + fees) x S(t) x exp(-d t).
    """
    m, d = model.market, model.discount_per_day
    conf, neutral = m.sellers, m.satisfaction.neutral
    horizon = int(model.cfg.metrics.ltv_horizon_days)
    effects = bool(model.cfg.experience_effects)
    out = np.zeros(side.n)
    now = np.flatnonzero(side.alive)
    if now.size == 0:
        return out
    recent = model.ledger.rows[-NEWCOMER_WINDOW_DAYS:]
    joins_per_day = float(np.mean([r.get("sellers_joined", 0) for r in recent])) if recent else 0.0
    last = model.ledger.rows[-MONTH_DAYS:]
    orders_per_day = float(np.mean([r.get("sellers_orders", 0) for r in last])) if last else 0.0
    sales_per_day = float(np.mean([r.get("sellers_sales", 0.0) for r in last])) if last else 0.0
    newcomers = np.flatnonzero(side.join_day > model.day - NEWCOMER_WINDOW_DAYS) if joins_per_day > 0 else now[:0]
    ids = np.concatenate([now, newcomers])
    mine = slice(0, now.size)            # today's sellers; the rest stand for newcomers (weights only)
    # days from today (newcomers: from joining) until first value (0: activated; inf: never)
    due = side.activation_due[ids].astype(np.float64)
    first_value = np.where(side.activation_day[now] >= 0, 0.0,
                           np.where(due[mine] == NEVER, np.inf, np.maximum(due[mine] - model.day, 0.0)))
    new_start = np.where(side.activation_day[newcomers] >= 0, side.activation_day[newcomers], due[now.size:])
    first_value = np.concatenate([first_value, np.where(new_start == NEVER, np.inf,
                                                        new_start - side.join_day[newcomers])])
    quality = side.quality[ids].astype(np.float64)
    price = side.price_level[ids].astype(np.float64)
    segment = side.segment[ids]
    stars = sellers_rules.expected_stars(quality)
    hoped = sellers_rules.expected_sales(side, ids, m)
    # today's sellers start from their state; newcomers as init_traits starts them
    present = np.arange(ids.size) < now.size
    reviews = np.where(present, side.rating_count[ids], 0.0).astype(np.float64)
    star_sum = np.where(present, side.rating_sum[ids], 0.0).astype(np.float64)
    sales_rate = np.where(present, side.sales_value_rate[ids], hoped)
    sat = np.where(present, model.behaviour_satisfaction("sellers")[ids],
                   m.satisfaction.initial_mean if effects else neutral).astype(np.float64)
    holds = {p: np.where(present, getattr(side, p)[ids], False).astype(np.float64) for p in sellers_rules.PRODUCTS}
    base = side.base_hazard[ids].astype(np.float64)
    outside = side.outside_option[ids].astype(np.float64)
    survival = np.ones(ids.size)
    reviews_per_order = float(side.rating_count.sum()) / max(float(side.orders.sum()), 1.0)
    # sales per order of unit quality and price level: the side's fill rate x order value
    listed = np.flatnonzero(side.alive & (side.activation_day >= 0))
    weight_today = sellers_rules.expected_choice_weight(
        side.rating_sum[listed].astype(np.float64), side.rating_count[listed].astype(np.float64),
        side.price_level[listed].astype(np.float64), side.segment[listed],
        {p: getattr(side, p)[listed].astype(np.float64) for p in sellers_rules.PRODUCTS}, conf)
    unit_orders = orders_per_day * float((weight_today * side.quality[listed] * side.price_level[listed]).sum()
                                         / max(float(weight_today.sum()), 1e-300))
    sales_per_order = sales_per_day / unit_orders if unit_orders > 0 else 0.0
    fees = np.array([getattr(conf, p).fee_per_day for p in sellers_rules.PRODUCTS])
    starts, spans = forecast_steps(horizon)
    demand = demand_path(model, starts)
    entrants = 0.0       # newcomers' expected total weight
    value = np.zeros(now.size)
    onboarding_hazard = conf.onboarding.unactivated_hazard
    for t, span, demand_t in zip(starts, spans, demand):
        active = first_value < t + span / 2.0
        weight = sellers_rules.expected_choice_weight(star_sum, reviews, price, segment, holds, conf)
        live_weight = weight * survival * active
        if newcomers.size:
            entrants += joins_per_day * float(live_weight[now.size:].mean()) * span
        total = float(live_weight[mine].sum()) + entrants
        orders = np.where(active, weight / total, 0.0) * orders_per_day * demand_t if total > 0 else np.zeros(ids.size)
        sales = sales_per_order * orders * quality * price
        product_fees = sum(f * holds[p] for f, p in zip(fees, sellers_rules.PRODUCTS))
        hazard = np.where(active, base * experience_multiplier(sat, neutral, -conf.churn.satisfaction_sensitivity),
                          onboarding_hazard)
        value += ((conf.commission * sales + product_fees) * survival * _days_sum(hazard + d, span))[mine] * math.exp(
            -d * t)
        if effects:
            level = sellers_rules.expected_sales_experience_level(sales_rate, sales, price, product_fees,
                                                                  outside, conf, neutral, m)
            sat = np.where(active, level + (sat - level) * (1.0 - conf.experience_learning_rate) ** span, sat)
        for p in sellers_rules.PRODUCTS:
            # a two-state chain at today's daily take-up and cancel chances
            pc = getattr(conf, p)
            up = sellers_rules.take_up_rate(pc, sat, sales_rate / np.maximum(hoped, 1e-12), neutral)
            down = sellers_rules.cancel_rate(pc, sat, sellers_rules.product_value_at(sales_rate, conf, p), neutral)
            switch = up + down
            steady = up / np.where(switch > 0, switch, 1.0)
            holds[p] = np.where(active, steady + (holds[p] - steady) * np.exp(-switch * span), holds[p])
        sales_rate = sales + (sales_rate - sales) * (1.0 - 1.0 / conf.sales_window_days) ** span
        new_reviews = reviews_per_order * orders * span
        reviews += new_reviews
        star_sum += new_reviews * stars
        survival *= np.exp(-hazard * span)
    out[now] = value
    return out


def _margin_per_completed_order(model, column: str) -> float:
    """Average margin per completed order so far, currency: ``buyers_margin`` (the buyer's fee less
    payment cost) or ``order_margin`` (every side's margin on the order)."""
    rows = model.ledger.rows
    margin = sum(r.get(column, 0.0) for r in rows)
    completed = sum(r.get("buyers_orders", 0) - r.get("buyers_failed", 0) for r in rows)
    return margin / completed if completed else model.market.buyers.fee_per_order


def side_summary(model, side: Side, daily, ltv: np.ndarray | None = None) -> dict:
    """Headline metrics of one side (docs/model.md, Metrics); ``ltv``: the side's :func:`agent_ltv`, if
    the caller has it already (a large city's forecast takes seconds)."""
    days = model.day
    name = side.name
    acquired = side.channel != CHANNEL["initial"]
    ltv = agent_ltv(model, side) if ltv is None else ltv
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
