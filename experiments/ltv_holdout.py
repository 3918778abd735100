"""LTV predicted at a day T against what the same agents realise when the run goes on (docs/model.md, LTV).

Common random numbers make days 0..T of a run of T days identical to the first
T days of a longer run with the same seed, so each agent's LTV predicted at T
(realised margin plus the forecast over ``metrics.ltv_horizon_days`` = H) can be
held against the margin it realises by T + H, both discounted to its join day.
Used by tests/test_ltv.py (which also checks docs/model.md's ``ltv_holdout``
table, generated here) and by scripts/ltv_holdout.py for longer runs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.base import CHANNEL
from agents.lifecycle import discounted_to_join_day
from experiments.config import load_config
from sim import Marketplace
from sim.metrics import agent_ltv


@dataclass(frozen=True)
class Holdout:
    """A holdout check: forecast day ``forecast_day`` (days), horizon ``horizon_days``, seeds pooled, and the
    model overrides of every run."""

    forecast_day: int = 180
    horizon_days: int = 540
    seeds: tuple = (1, 2)
    overrides: tuple = ("population.buyers=4000", "population.sellers=400", "population.drivers=80", "cs.staff=1")


CHECK = Holdout()
"""The check tests/test_ltv.py runs and docs/model.md's table shows: small enough for the test suite."""


def predicted_and_realised(market: str, seed: int, holdout: Holdout = CHECK) -> dict:
    """Per side: (LTV predicted at T, value realised by T + H, acquired mask, join day), currency per agent."""
    T, H = holdout.forecast_day, holdout.horizon_days

    def build(days):
        return Marketplace(load_config([f"market={market}", f"days={days}", f"seed={seed}",
                                        f"metrics.ltv_horizon_days={H}", *holdout.overrides]))
    short, long = build(T), build(T + H)
    short.run_until(T)
    long.run_until(T + H)
    out = {}
    for name, side in short.sides.items():
        predicted = agent_ltv(short, side)
        realised = discounted_to_join_day(long.sides[name], long.discount_per_day)[: side.n]
        out[name] = (predicted, realised, side.channel != CHANNEL["initial"], side.join_day.copy())
    return out


def ratio_and_se(predicted: np.ndarray, realised: np.ndarray) -> tuple[float, float]:
    """mean(predicted) / mean(realised) and its standard error over agents (delta method)."""
    ratio = predicted.mean() / realised.mean()
    residual = predicted - ratio * realised
    return float(ratio), float(residual.std(ddof=1) / (np.sqrt(predicted.size) * realised.mean()))


GROUPS = ("all", "early", "late")
"""Agents acquired before T: all of them, those of the first half of [0, T) and those of the second."""


def ratios(market: str, holdout: Holdout = CHECK) -> dict:
    """{(side, group): (ratio, standard error, agents)} over the holdout's seeds pooled."""
    runs = [predicted_and_realised(market, seed, holdout) for seed in holdout.seeds]
    half = holdout.forecast_day // 2
    out = {}
    for name in runs[0]:
        predicted, realised, acquired, joined = (np.concatenate([r[name][k] for r in runs]) for k in range(4))
        masks = {"all": acquired, "early": acquired & (joined < half), "late": acquired & (joined >= half)}
        for group in GROUPS:
            mask = masks[group]
            out[(name, group)] = (*ratio_and_se(predicted[mask], realised[mask]), int(np.count_nonzero(mask)))
    return out


MARKETS = ("delivery", "goods")


def table_rows(market: str, measured: dict) -> list[str]:
    """docs/model.md's rows of one market from :func:`ratios`: ratio ± standard error per group."""
    sides = dict.fromkeys(side for side, _ in measured)
    return [f"| {market} {side} | " + " | ".join(
        f"{measured[(side, g)][0]:.2f} ± {measured[(side, g)][1]:.2f} ({measured[(side, g)][2]:,})" for g in GROUPS)
        + " |" for side in sides]


def table_header() -> list[str]:
    return ["| market, side | all | first half-year | second half-year |", "|---|---|---|---|"]


def table_caption(holdout: Holdout = CHECK) -> list[str]:
    return ["", f"LTV predicted at day {holdout.forecast_day} / value realised by day "
                f"{holdout.forecast_day + holdout.horizon_days} (same seed, common random numbers), for agents "
                f"acquired before day {holdout.forecast_day}; ± standard error over agents (in brackets: agents), "
                f"seeds {', '.join(map(str, holdout.seeds))} pooled, {', '.join(holdout.overrides)}. tests/test_ltv.py "
                "holds every ratio within three standard errors of 1 and this table to what it measures; "
                "`make docs` regenerates it."]


def table() -> list[str]:
    """The whole ``ltv_holdout`` table of docs/model.md."""
    lines = table_header()
    for market in MARKETS:
        lines += table_rows(market, ratios(market))
    return lines + table_caption()
