"""Where a large run's memory goes: resident and peak memory after each phase, per agent ever created.

    python benchmarks/memory_phases.py market=goods population.buyers=10000000 \
        population.sellers=1000000 cs.staff=500 days=365

Arguments are Hydra overrides, as for ``twosided run``. Phases: imports and a
tiny warm-up (numba's cached kernels), building the model, the days, each
side's LTV forecast, the summary and the agents table, in the order
``Marketplace.run`` builds them. ``twosided bench``'s goods-10M case reports
the whole run's peak; this says which phase sets it.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(overrides: list[str]) -> None:
    import pandas as pd

    from benchmarks.profile_day import warm_up
    from experiments.benchmark import status_kb
    from experiments.config import load_config
    from sim import Marketplace, metrics, result

    cfg = load_config(overrides)
    warm_up(overrides)
    phases: list[tuple[str, float, float]] = []

    def mark(label: str) -> None:
        phases.append((label, status_kb("VmRSS") / 1024, status_kb("VmHWM") / 1024))

    mark("imports, config, warm-up")
    model = Marketplace(cfg)
    mark("model built")
    model.run_until(cfg.days)
    mark(f"{cfg.days} days run")
    ltv = {}
    for name, side in model.sides.items():
        ltv[name] = metrics.agent_ltv(model, side)
        mark(f"LTV of {name}")
    daily = pd.DataFrame(model.ledger.rows)   # then the summary and the table, in build_result's order
    {name: metrics.side_summary(model, side, daily, ltv[name]) for name, side in model.sides.items()}
    mark("summary")
    table = result.agents_table(model, ltv)
    mark("agents table")
    created = len(table)
    print(f"{created:,} agents created")
    print(f"{'after':<28} {'RSS MB':>9} {'peak MB':>9} {'peak B/agent':>13}")
    for label, rss, peak in phases:
        print(f"{label:<28} {rss:9.0f} {peak:9.0f} {peak * 2**20 / created:13.0f}")


if __name__ == "__main__":
    main(sys.argv[1:])
