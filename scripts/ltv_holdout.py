"""LTV predicted at day T against what the same agents realise by T + H (common random numbers).

    .venv/bin/python scripts/ltv_holdout.py delivery            # scale=small, seed 1, T=365, H=1095
    .venv/bin/python scripts/ltv_holdout.py goods seed=2 scale=tiny

A run of T days and a run of T + H days with the same seed share their first T
days exactly, so each agent's LTV predicted at T (realised margin plus the
forecast over ``metrics.ltv_horizon_days`` = H) can be held against the margin
it realises by T + H, both discounted to its join day. Prints the ratio of the
means and its standard error over agents, per side, for agents acquired during
the first and second half of [0, T).
"""
from __future__ import annotations

import sys

import numpy as np

from agents.base import CHANNEL
from agents.lifecycle import discounted_to_join_day
from experiments.config import load_config
from sim import Marketplace
from sim.metrics import agent_ltv

T, H = 365, 1095


def main(argv: list[str]) -> None:
    market, extra = argv[0], argv[1:]
    overrides = [f"market={market}", "scale=small", "seed=1", f"metrics.ltv_horizon_days={H}", *extra]
    short = Marketplace(load_config([*overrides, f"days={T}"]))
    long = Marketplace(load_config([*overrides, f"days={T + H}"]))
    short.run_until(T)
    long.run_until(T + H)
    for name, side in short.sides.items():
        predicted = agent_ltv(short, side)
        realised = discounted_to_join_day(long.sides[name], long.discount_per_day)[: side.n]
        acquired = side.channel != CHANNEL["initial"]
        groups = (("all", acquired), ("early", acquired & (side.join_day < T // 2)),
                  ("late", acquired & (side.join_day >= T // 2)))
        for label, group in groups:
            ratio, se = ratio_and_se(predicted[group], realised[group])
            print(f"{name:8s} {label:5s} n={group.sum():6d} predicted={predicted[group].mean():10.2f} "
                  f"realised={realised[group].mean():10.2f} ratio={ratio:.3f} se={se:.3f}")


def ratio_and_se(predicted, realised) -> tuple[float, float]:
    """mean(predicted) / mean(realised) and its standard error over agents (delta method)."""
    ratio = predicted.mean() / realised.mean()
    residual = predicted - ratio * realised
    return ratio, residual.std(ddof=1) / (np.sqrt(predicted.size) * realised.mean())


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
