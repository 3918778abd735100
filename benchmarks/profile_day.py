"""Where a simulated day's time goes: CPU ms per day in each step of the day.

    python benchmarks/profile_day.py market=goods population.buyers=1000000 \
        population.sellers=100000 cs.staff=50 days=60

Arguments are Hydra overrides, as for ``twosided run``. A tiny warm-up run
loads numba's cached kernels first; then the model is built and run for
``days`` days with each step of the day (and the CS desk's submit and advance)
wrapped in a CPU-time counter. CPU time (``time.process_time``), because the
machine these numbers come from is shared. The wrappers add a few
microseconds a call, so this is for finding costs, not for reporting speed:
that is ``twosided bench``.
"""
from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STEPS = ("_acquire", "_onboard", "_match_and_settle", "_supply_experience", "_cs_operations", "_churn", "_record")


def warm_up(overrides: list[str]) -> None:
    """A tiny run of the same configuration: loads numba's cached kernels, so timings leave them out."""
    from experiments.config import load_config
    from sim import Marketplace

    Marketplace(load_config([*overrides, "population.buyers=1000", "population.sellers=100",
                             "population.drivers=40", "days=3"])).run()


def main(overrides: list[str]) -> None:
    from experiments.config import load_config
    from sim import Marketplace

    cfg = load_config(overrides)
    warm_up(overrides)
    spent: collections.Counter = collections.Counter()

    def timed(owner, name, label):
        inner = getattr(owner, name)

        def wrapper(*args, **kwargs):
            start = time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[label] += time.process_time() - start
        setattr(owner, name, wrapper)

    start = time.process_time()
    model = Marketplace(cfg)
    print(f"building the model: {time.process_time() - start:.2f} CPU s")
    for step in STEPS:
        timed(model, step, step)
    from sim import model as model_module  # demand (step 3) is a function of agents/buyers.py
    timed(model_module.buyers_rules, "purchase_intentions", "purchase_intentions")
    desk = model.cs.ticketing.desk
    if desk is not None:
        timed(desk, "submit", "  desk.submit")
        timed(desk, "advance", "  desk.advance")
    start = time.process_time()
    model.run_until(cfg.days)
    total = time.process_time() - start
    print(f"{cfg.days} days: {total / cfg.days * 1e3:.1f} CPU ms per day")
    for label, seconds in spent.most_common():
        print(f"  {label:<24} {seconds / cfg.days * 1e3:8.2f} ms/day  {100 * seconds / total:5.1f}%")
    _profile_result(model)


def _profile_result(model) -> None:
    """CPU seconds of each part of the Result (run() builds it after the last day)."""
    import pandas as pd

    from sim import metrics, result

    def cpu(call):
        start = time.process_time()
        call()
        return time.process_time() - start

    daily = pd.DataFrame(model.ledger.rows)
    parts = {f"summary of {name}": (lambda side=side: metrics.side_summary(model, side, daily))
             for name, side in model.sides.items()}
    parts |= {f"  LTV forecast of {name}": (lambda side=side: metrics.agent_ltv(model, side))
              for name, side in model.sides.items()}
    parts["agents table (LTV included)"] = lambda: result.agents_table(model)
    print("building the Result (CPU s; the LTV forecasts are part of both the summary and the table):")
    for label, call in parts.items():
        print(f"  {label:<32} {cpu(call):8.2f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
