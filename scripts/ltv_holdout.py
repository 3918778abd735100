"""LTV predicted at day T against what the same agents realise by T + H (common random numbers).

    .venv/bin/python scripts/ltv_holdout.py delivery            # scale=small, seed 1, T=365, H=1095
    .venv/bin/python scripts/ltv_holdout.py goods seed=2 scale=tiny

The longer check behind tests/test_ltv.py (experiments/ltv_holdout.py, which
also makes docs/model.md's table at the test's smaller size): prints the ratio
of the means, predicted / realised, and its standard error, per side, for
agents acquired before T, in the first and in the second half of [0, T).
"""
from __future__ import annotations

import sys

from experiments.ltv_holdout import Holdout, ratios

T, H = 365, 1095


def main(argv: list[str]) -> None:
    market, extra = argv[0], argv[1:]
    seeds = tuple(int(a.partition("=")[2]) for a in extra if a.startswith("seed=")) or (1,)
    overrides = ("scale=small", *(a for a in extra if not a.startswith("seed=")))
    measured = ratios(market, Holdout(forecast_day=T, horizon_days=H, seeds=seeds, overrides=overrides))
    for (side, group), (ratio, se, agents) in measured.items():
        print(f"{side:8s} {group:5s} n={agents:6d} ratio={ratio:.3f} se={se:.3f}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
