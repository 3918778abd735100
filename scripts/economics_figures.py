"""The figures issue 13's note asks for, from the default markets (run it after a change of economics).

    .venv/bin/python scripts/economics_figures.py            # all of them (about 10 minutes on one core)
    .venv/bin/python scripts/economics_figures.py commission organic

- commission: sellers' monthly churn (activated sellers) at commission 0.05 / 0.15 / 0.30, delivery and
  goods, scale=small, a year, seeds 1-3 (common random numbers across the three commissions);
- organic: organic riders drawn in 60 days by a rides city that starts with 1 driver against 200
  (scale=small, 2,000 riders, seed 1), as tests/test_economics.py measures it;
- ltv: predicted LTV at day 365 over what the same agents realise by day 1,460, per side
  (scripts/ltv_holdout.py, delivery and goods);
- pickup: the steady-state pickup distance over the torus law (docs/model.md's table, experiments/pickup_law.py).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from experiments.config import load_config
from sim import Marketplace

COMMISSIONS = (0.05, 0.15, 0.30)
SEEDS = (1, 2, 3)


def commission() -> None:
    for market in ("delivery", "goods"):
        cells = []
        for rate in COMMISSIONS:
            churn = [Marketplace(load_config([f"market={market}", "scale=small", f"seed={seed}",
                                              f"market.sellers.commission={rate}"])).run()
                     .summary["sellers"]["monthly_churn"] for seed in SEEDS]
            cells.append(f"{rate:.2f}: {100 * np.mean(churn):.2f}% (± {100 * np.std(churn, ddof=1) / 3 ** 0.5:.2f})")
        print(f"sellers' monthly churn, {market}, seeds {SEEDS}: " + "; ".join(cells))


def organic() -> None:
    drawn = {}
    for drivers in (1, 200):
        result = Marketplace(load_config(["market=rides", "scale=small", "days=60", "seed=1",
                                          "population.buyers=2000", f"population.drivers={drivers}"])).run()
        drawn[drivers] = int(result.daily["buyers_joined_organic"].sum())
    print(f"organic riders in 60 days: 1 driver -> {drawn[1]}, 200 drivers -> {drawn[200]}")


def ltv() -> None:
    script = Path(__file__).with_name("ltv_holdout.py")
    for market in ("delivery", "goods"):
        print(f"LTV predicted / realised, {market} (scale=small, seed 1):")
        subprocess.run([sys.executable, str(script), market], check=True)


def pickup() -> None:
    from experiments import pickup_law

    for row in pickup_law.table_rows():
        print("pickup:", row)


FIGURES = {"commission": commission, "organic": organic, "ltv": ltv, "pickup": pickup}

if __name__ == "__main__":
    for name in sys.argv[1:] or FIGURES:
        FIGURES[name]()
