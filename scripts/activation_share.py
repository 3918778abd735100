"""How much of a CS policy's churn effect comes through activation.

For each seed, three runs share every random draw (common random numbers):
no policy, the policy, and the policy with its activation mechanism switched
off (``--off KEY=VALUE``, e.g. ``onboarding_fix=0``). The churn effect is
monthly churn without the policy minus with it (percentage points, per
side); the share through activation is

    (churn with the mechanism off - churn with the policy) / (churn without - churn with the policy)

averaged as a ratio of the seed-summed effects. Usage:

    .venv/bin/python scripts/activation_share.py --market delivery --policy proactive_outreach \
        --off onboarding_fix=0 --scale small --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import sys

from experiments.config import load_config
from sim import Marketplace


def churn_by_side(overrides: list[str]) -> dict[str, float]:
    """Mean monthly churn (share per 30-day month) of every side of one run."""
    result = Marketplace(load_config(overrides)).run()
    return {side: block["monthly_churn"] for side, block in result.summary.items()
            if isinstance(block, dict) and "monthly_churn" in block}


def main(argv: list[str] | None = None) -> int:
    """Print, per side, the policy's churn effect and the share of it that came through activation."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--market", required=True)
    parser.add_argument("--policy", required=True)
    parser.add_argument("--off", required=True, help="the policy parameter that switches activation off, KEY=VALUE")
    parser.add_argument("--scale", default="small")
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    effect, through = {}, {}
    for seed in args.seeds:
        base = [f"market={args.market}", f"scale={args.scale}", f"seed={seed}"]
        if args.days is not None:
            base.append(f"days={args.days}")
        none = churn_by_side(base + ["policy=none"])
        full = churn_by_side(base + [f"policy={args.policy}"])
        off = churn_by_side(base + [f"policy={args.policy}", f"policy.{args.policy}.{args.off}"])
        for side in full:
            effect[side] = effect.get(side, 0.0) + none[side] - full[side]
            through[side] = through.get(side, 0.0) + off[side] - full[side]
    n = len(args.seeds)
    print(f"{args.market} {args.policy} scale={args.scale} seeds={args.seeds} off: {args.off}")
    print(f"{'side':8} {'effect (pp)':>12} {'via activation (pp)':>20} {'share':>7}")
    for side in effect:
        share = through[side] / effect[side] if effect[side] else float("nan")
        print(f"{side:8} {100 * effect[side] / n:12.3f} {100 * through[side] / n:20.3f} {share:7.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
