"""Micro-benchmark of the CS desk (sim/desk.py): microseconds per ticket.

Submits ``tickets`` tickets a day for ``days`` days to a desk of ``staff``
agents and times ``submit`` + ``advance`` (time.perf_counter; the ticket draws
are made before the clock starts). Two cases: ~90% load with finite patience
(a stationary queue), and 120% load where 90% of the tickets never give up (a
backlog that grows every day). Priorities 0-2, exponential service.

    python benchmarks/desk_bench.py [--desk path/to/desk.py] [--tickets N] [--days D]

``--desk`` loads another implementation of the module from a file (e.g. a
saved copy of an older sim/desk.py) to compare against.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load_desk(path: str | None):
    if path is None:
        from sim import desk
        return desk
    spec = importlib.util.spec_from_file_location("desk_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module         # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def day_tickets(rng, day, n, staff, load, patience_days, never_share):
    """One day's tickets: uniform arrivals, exponential service at ``load``, mixed patience."""
    ids = day * n + np.arange(n)
    arrival = day + np.sort(rng.random(n))
    service = rng.exponential(load * staff / n, n)
    patience = rng.exponential(patience_days, n)
    patience[rng.random(n) < never_share] = np.inf
    priority = rng.integers(0, 3, n)
    return ids, arrival, service, patience, priority


def run_case(desk_module, staff, tickets, days, load, patience_days, never_share, seed=0):
    """Wall and CPU seconds spent in submit + advance, tickets submitted, the last DeskDay."""
    rng = np.random.default_rng(seed)
    batches = [day_tickets(rng, d, tickets, staff, load, patience_days, never_share)
               for d in range(days)]
    desk = desk_module.CSDesk(staff)
    wall = cpu = 0.0
    out = None
    for day, batch in enumerate(batches):
        t0, c0 = time.perf_counter(), time.process_time()
        desk.submit(*batch)
        out = desk.advance(day + 1)
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
    return wall, cpu, tickets * days, out


CASES = {
    "load 90%, patience ~30 min": dict(load=0.9, patience_days=0.02, never_share=0.0),
    "load 120%, 90% never abandon": dict(load=1.2, patience_days=0.02, never_share=0.9),
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--desk", help="file of a desk module to time instead of sim/desk.py")
    ap.add_argument("--staff", type=int, default=50)
    ap.add_argument("--tickets", type=int, default=10_000, help="tickets per day")
    ap.add_argument("--days", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3, help="runs per case; the best is shown")
    args = ap.parse_args(argv)
    module = load_desk(args.desk)
    print(f"desk: {module.__file__}; {args.staff} staff, {args.tickets} tickets/day, "
          f"{args.days} days; best of {args.repeats}: wall (perf_counter) and CPU (process_time)")
    for name, case in CASES.items():
        runs = [run_case(module, args.staff, args.tickets, args.days, **case)
                for _ in range(args.repeats)]
        spent, cpu, n, out = min(runs, key=lambda r: r[0])
        cpu = min(r[1] for r in runs)
        print(f"{name:32s} {1e6 * spent / n:8.2f} us/ticket wall, {1e6 * cpu / n:6.2f} CPU  "
              f"({spent:.2f} s; "
              f"last day: queue {out.queue_length}, finished {out.ticket_ids.size}, "
              f"abandoned {int((~out.resolved).sum())}, utilisation "
              f"{out.busy_server_days / args.staff:.3f})")


if __name__ == "__main__":
    main()
