"""What every side shares: joining, onboarding, satisfaction and churn.

Churn uses the cumulative-hazard form: at creation each agent draws a
threshold E ~ Exp(1); every day its hazard (per day) is added to ``cum_hazard``
and it churns on the day the sum reaches E. For a constant hazard h this is
exactly exponential survival exp(-h t); for a hazard that moves with
satisfaction it is exact as well, and it needs no daily random draw, which
keeps arms of a comparison tightly paired (an agent a policy makes happier
churns later, never earlier, than the same agent without it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agents import kernels
from agents.base import CHANNEL, NEVER, Side
from sim.streams import ATTRIBUTE_DAY, Streams


def experience_multiplier(satisfaction: np.ndarray, neutral: float, sensitivity: float) -> np.ndarray:
    """exp(sensitivity * (satisfaction - neutral)): exactly 1 at neutral satisfaction."""
    return np.exp(sensitivity * (satisfaction - neutral))


def init_common(side: Side, ids: np.ndarray, day: int, channel: str | np.ndarray, cac: float | np.ndarray,
                side_conf, satisfaction_conf, streams: Streams, onboarding_boost: float = 0.0) -> None:
    """Draw the traits every new agent has: onboarding, first value, satisfaction, churn threshold.

    ``channel`` is a channel name or an array of channel codes (one per id),
    ``cac`` the acquisition cost per agent (currency). ``onboarding_boost``
    (added to the mean onboarding quality, capped below 1) is how an
    onboarding programme acts. Initial agents (channel "initial") start
    activated on day 0.
    """
    name = side.name
    side.join_day[ids] = day
    side.channel[ids] = CHANNEL[channel] if isinstance(channel, str) else channel
    side.cac[ids] = cac
    ob = side_conf.onboarding
    mean_q = min(ob.quality + onboarding_boost, 0.999)
    quality = streams.beta(f"{name}.onboarding_quality", ATTRIBUTE_DAY, ids,
                           max(mean_q, 1e-3) * ob.quality_concentration,
                           max(1 - mean_q, 1e-3) * ob.quality_concentration)
    side.onboarding_quality[ids] = quality
    s = satisfaction_conf
    side.satisfaction[ids] = streams.beta(f"{name}.satisfaction0", ATTRIBUTE_DAY, ids,
                                          s.initial_mean * s.initial_concentration,
                                          (1 - s.initial_mean) * s.initial_concentration)
    side.churn_threshold[ids] = streams.exponential(f"{name}.churn_threshold", ATTRIBUTE_DAY, ids)
    side.cum_hazard[ids] = 0.0
    if isinstance(channel, str) and channel == "initial":
        side.activation_due[ids] = day
        side.activation_day[ids] = day
        side.last_active_day[ids] = day
        return
    activates = streams.uniform(f"{name}.activates", ATTRIBUTE_DAY, ids) < (
        ob.activation_floor + (1 - ob.activation_floor) * quality)
    ttfv = np.maximum(1, np.ceil(streams.exponential(f"{name}.ttfv", ATTRIBUTE_DAY, ids) * mean_ttfv_days(quality, ob)))
    side.activation_due[ids] = np.where(activates, day + ttfv, NEVER).astype(np.int32)


def mean_ttfv_days(quality: np.ndarray, onboarding_conf) -> np.ndarray:
    """Mean time to first value (days) at onboarding quality ``quality`` (0-1): linear from worst to best."""
    return onboarding_conf.ttfv_days_at_best * quality + onboarding_conf.ttfv_days_at_worst * (1 - quality)


def close_onboarding_gap(side: Side, ids: np.ndarray, day: int, share: float | np.ndarray, onboarding_conf,
                         rounding: np.ndarray) -> np.ndarray:
    """A CS contact closes ``share`` of the onboarding gap of agents not yet activated; return those sped up.

    Onboarding quality q becomes q + share (1 - q). An agent whose first value
    is due (activation_due after today) gets there sooner: its waiting time is
    exponential with mean :func:`mean_ttfv_days` (q), memoryless, so the
    remaining days scale by mean_ttfv(q') / mean_ttfv(q), rounded
    stochastically with ``rounding`` (uniforms in [0, 1), one per id) so the
    mean is exact, and at least one day. An agent the model says never
    activates (activation_due NEVER) stays so: a contact does not create a
    need the agent does not have.
    """
    ids = np.asarray(ids, dtype=np.int64)
    waiting = (side.activation_day[ids] < 0) & side.alive[ids]
    ids, rounding = ids[waiting], np.asarray(rounding, dtype=np.float64)[waiting]
    share = np.broadcast_to(np.asarray(share, dtype=np.float64), waiting.shape)[waiting]
    before = side.onboarding_quality[ids].astype(np.float64)
    after = before + share * (1.0 - before)
    side.onboarding_quality[ids] = after
    due = side.activation_due[ids]
    pending = (due != NEVER) & (due > day)
    remaining = (due - day)[pending] * (mean_ttfv_days(after, onboarding_conf)
                                        / mean_ttfv_days(before, onboarding_conf))[pending]
    sooner = np.maximum(1, np.floor(remaining + rounding[pending])).astype(np.int32)
    side.activation_due[ids[pending]] = day + sooner
    return ids[pending]


def activate_due(side: Side, day: int, start: int = 0) -> np.ndarray:
    """Agents reaching first value today: set their activation day; return their ids.

    ``start``: no living unactivated agent has a lower index (see accumulate_and_churn).
    """
    ids = kernels.due_today(side.activation_due[start:], side.alive[start:], day) + start
    side.activation_day[ids] = day
    side.last_active_day[ids] = day
    return ids


def monthly_churn_to_daily_hazard(monthly_churn: np.ndarray) -> np.ndarray:
    """Constant daily hazard with the given churn probability per 30-day month."""
    return -np.log1p(-np.minimum(monthly_churn, 1 - 1e-9)) / 30.0


def accumulate_and_churn(side: Side, day: int, unactivated_hazard: float, multiplier: np.ndarray | None,
                         start: int = 0) -> tuple[np.ndarray, int]:
    """Add today's hazard (per day) to living agents; churn those past their threshold.

    Hazard: ``unactivated_hazard`` before first value; after it
    ``base_hazard * multiplier`` (the experience multiplier of each agent),
    or nothing when ``multiplier`` is None (buyers drop out at purchases
    instead). Agents below ``start`` are skipped: with ``multiplier`` None, pass
    the index this returned yesterday when no unactivated agent below it came
    back to life. One compiled pass (agents/kernels.py). Returns (churned ids,
    the lowest index of a living unactivated agent, or ``side.n`` if none).
    """
    none = multiplier is None
    ids, lowest = kernels.accumulate_and_churn(
        side.alive, side.activation_day, side.cum_hazard, side.churn_threshold, side.base_hazard,
        np.empty(0, np.float32) if none else multiplier, side.churn_day, day, float(unactivated_hazard), not none,
        int(start))
    return ids, int(lowest)


def churn(side: Side, ids: np.ndarray, day: int) -> None:
    """Mark agents as churned today."""
    side.alive[ids] = False
    side.churn_day[ids] = day


def move_satisfaction(side: Side, ids: np.ndarray, level: np.ndarray | float, weight: np.ndarray | float) -> None:
    """Move satisfaction of ``ids`` a fraction ``weight`` of the way toward ``level`` (both in [0, 1]).

    ``ids`` may repeat (two orders on one day): each event moves the agent in
    turn, in the order given (one compiled pass, agents/kernels.py).
    """
    ids = np.asarray(ids, dtype=np.int64)
    n = ids.size
    if n:
        # always contiguous writeable float64 arrays, so the kernel has one signature that `twosided warmup`
        # compiles; a scalar broadcast (stride 0) or a read-only view would each compile another, mid-run
        level, weight = (np.require(np.broadcast_to(np.asarray(x, dtype=np.float64), n), requirements=["C", "W"])
                         for x in (level, weight))
        kernels.move_toward(side.satisfaction, ids, level, weight)


def add_counts(counter: np.ndarray, ids: np.ndarray, step: int = 1) -> None:
    """counter[i] += step for each occurrence of i in ``ids`` (ids may repeat); work proportional to len(ids)."""
    kernels.scatter_add_scalar(counter, np.asarray(ids, dtype=np.int64), counter.dtype.type(step))


def book_money(side: Side, ids: np.ndarray, revenue: np.ndarray | float, margin: np.ndarray | float,
               day: int, discount_per_day: float) -> None:
    """Add platform revenue and contribution margin (currency) to agents; ``ids`` may repeat.

    The margin is also added discounted to day 0 (``margin_discounted``), one
    factor for the whole day; :func:`discounted_to_join_day` turns it into
    each agent's margin discounted to its join day, for LTV.
    """
    if ids.size == 0:
        return
    n = ids.size
    kernels.book_money(side.revenue, side.margin, side.margin_discounted, np.asarray(ids, dtype=np.int64),
                       np.broadcast_to(np.asarray(revenue, dtype=np.float64), n),
                       np.broadcast_to(np.asarray(margin, dtype=np.float64), n), math.exp(-discount_per_day * day))


def discounted_to_join_day(side: Side, discount_per_day: float) -> np.ndarray:
    """Each agent's margin to date discounted to its join day (currency): exp(-r (t - join)) = exp(-r t) exp(r join)."""
    return side.margin_discounted * np.exp(discount_per_day * side.join_day.astype(np.float64))


@dataclass
class Arrivals:
    """New agents of one side on one day, by channel, and what the paid ones cost."""

    paid: int
    organic: int
    referral: int
    paid_cac: float      # currency per paid agent (average of the day)
    marketing_cost: float


def arrivals(side_name: str, acquisition, initial_size: int, attraction: float, promoters: int, day: int,
             streams: Streams, budget_multiplier: float = 1.0) -> Arrivals:
    """How many agents join a side today through each channel.

    Paid: the day's budget buys agents at a marginal CAC that rises linearly,
    c(n) = base_cac (1 + n / saturation), so n solves base_cac (n + n^2 / 2 saturation) = budget.
    Organic: Poisson with mean organic_per_1k * size/1000 * attraction^elasticity, the
    cross-side network effect, with ``attraction`` what the other sides offer a
    prospective joiner against a fixed reference (sim/attraction.py; 1 = the reference).
    Referral: Poisson(referral_rate * promoters).
    """
    per_1k = initial_size / 1000.0
    budget = acquisition.marketing_budget_per_1k * per_1k * budget_multiplier
    saturation = acquisition.cac_saturation_per_1k * per_1k
    paid = 0
    cac = acquisition.base_cac
    if budget > 0 and saturation > 0:
        expected = saturation * (np.sqrt(1 + 2 * budget / (acquisition.base_cac * saturation)) - 1)
        cac = budget / expected
        paid = streams.round_stochastic(f"{side_name}.paid_joins", day, expected)
    organic_mean = acquisition.organic_per_1k * per_1k * max(attraction, 0.0) ** acquisition.network_elasticity
    organic = streams.poisson(f"{side_name}.organic_joins", day, organic_mean)
    referral = streams.poisson(f"{side_name}.referral_joins", day, acquisition.referral_rate * promoters)
    return Arrivals(paid, organic, referral, float(cac), float(paid * cac))
