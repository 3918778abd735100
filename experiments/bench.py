"""`twosided bench`: performance benchmarks -> a table and bench.json.

    twosided bench                 every case (about 30-45 minutes and 6 GB: goods-10M is one of them)
    twosided bench --quick         only the 10k cases, well under a minute
    twosided bench --out PATH      where to write the JSON (default: bench.json)
    twosided bench --only goods-1M --only pair-100k   cases whose name contains any of these

The cases, how they are timed and what each figure means: experiments/benchmark.py.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="twosided bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the small (10k buyers) cases")
    parser.add_argument("--out", default="bench.json", help="the JSON file to write (default: bench.json)")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="run only the cases whose name contains TEXT (repeatable)")
    options = parser.parse_args(args)

    from experiments.benchmark import VERDICT, default_cases, format_table, machine, run_cases, target_checks
    from experiments.checks import check_output_dir
    from sim.config import ConfigError

    if Path(options.out).is_dir():
        raise ConfigError("--out", options.out, "a file path for the JSON (it is a folder)")
    check_output_dir(Path(options.out).parent, "--out")  # before the first case, not after minutes of work

    cases = default_cases(quick=options.quick)
    if options.only:
        names = [c.name for c in cases]
        cases = [c for c in cases if any(text in c.name for text in options.only)]
        if not cases:
            print(f"twosided bench: --only {' '.join(options.only)} matches no case; the cases are: "
                  + ", ".join(names), file=sys.stderr)
            return 2
    print(f"twosided bench: {len(cases)} cases, each run in a fresh single-core process; {machine()}", flush=True)

    def progress(case, i, run):
        print(f"  {case.name} run {i + 1}/{case.repeats}: {run['seconds']:.2f} s, "
              f"{run['agent_days'] / run['seconds'] / 1e6:.2f}M agent-days/s", flush=True)

    out = Path(options.out)

    def save(results):  # after every case, so a long run that is stopped keeps what it measured
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(results, indent=2))
        tmp.replace(out)

    try:
        results = run_cases(cases, progress, on_case=save)
    except RuntimeError as error:
        print(f"twosided bench: {error}", file=sys.stderr)
        return 1
    print()
    print(format_table(results))
    print("\ntargets:")
    for target, measured, met in target_checks(results):
        print(f"  {target:<70} {measured:<56} {VERDICT[met]}")
    print(f"\nWrote {out}")
    return 0
