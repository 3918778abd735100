"""Golden outputs: tiny runs of every market with every policy it can use.

The golden files in tests/golden/ are the exact summary.json of each case.
They change only on purpose: a change of behaviour regenerates them with

    make golden            # or: .venv/bin/python tests/golden_cases.py --regenerate

and the commit says why the numbers moved. A refactor must leave them
bit-identical (tests/test_golden.py).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
MARKETS = ("goods", "rides", "delivery")
POLICIES = ("none", "proactive_outreach", "fair_disputes", "tech_touch", "onboarding_program",
            "referral_incentive", "win_back", "segmented", "expansion_offers")
# Policies whose sides a market lacks (fair disputes are the drivers'; segmented coverage and paid products
# are the sellers')
NOT_IN_MARKET = {("goods", "fair_disputes"), ("rides", "segmented"), ("rides", "expansion_offers")}
CASES = [(m, p) for m in MARKETS for p in POLICIES if (m, p) not in NOT_IN_MARKET]
# Every policy at once, to catch interactions between them.
COMPOSED = {"goods": [p for p in POLICIES[1:] if ("goods", p) not in NOT_IN_MARKET],
            "rides": [p for p in POLICIES[1:] if ("rides", p) not in NOT_IN_MARKET],
            "delivery": list(POLICIES[1:])}
CASES += [(m, "+".join(COMPOSED[m])) for m in MARKETS]


def case_overrides(market: str, policy: str) -> list[str]:
    """The config overrides of one golden case (scale=tiny, seed 7)."""
    policies = policy.split("+")
    chosen = policies[0] if len(policies) == 1 else "[" + ",".join(policies) + "]"
    return ["scale=tiny", f"market={market}", f"policy={chosen}", "seed=7"]


def case_path(market: str, policy: str) -> Path:
    name = policy if "+" not in policy else "all_policies"
    return GOLDEN_DIR / f"{market}-{name}.json"


def run_case(market: str, policy: str) -> dict:
    """The summary of one case, round-tripped through JSON as summary.json is written."""
    from experiments.config import load_config
    from sim import Marketplace

    result = Marketplace(load_config(case_overrides(market, policy))).run()
    return json.loads(json.dumps(result.summary))


def regenerate() -> None:
    GOLDEN_DIR.mkdir(exist_ok=True)
    for market, policy in CASES:
        case_path(market, policy).write_text(json.dumps(run_case(market, policy), indent=1, sort_keys=True) + "\n")
        print("wrote", case_path(market, policy).relative_to(GOLDEN_DIR.parent.parent))


if __name__ == "__main__":
    if sys.argv[1:] not in ([], ["--regenerate"]):
        sys.exit("usage: python tests/golden_cases.py [--regenerate]")
    regenerate()
