"""The `twosided` command: run, compare, collect, bench, app."""
from __future__ import annotations

import sys

USAGE = """usage: twosided COMMAND [overrides...]

commands:
  run [overrides]      one simulation -> run folder (add -m for a Hydra multirun sweep)
  compare [k=v]        policies vs a baseline, paired replicates -> report folder (arms=[a,b] replicates=3
                       jobs=2 warmup_days=0 crn=true crn_check=false confidence=0.95 out=DIR; any other
                       key=value is a model override: market=rides scale=small seed=3), see conf/compare.yaml
  collect SWEEP_DIR    one tidy table of a sweep -> SWEEP_DIR/results.parquet; prints done / failed / left
  sensitivity [k=v]    global sensitivity analysis (SALib Sobol / Morris), settings in conf/sensitivity/
  optimize [k=v]       search policy parameters with Optuna (resumable), settings in conf/optimize/
  bench [--quick] [--out PATH]  performance benchmarks -> a table and bench.json
  calibrate data=PATH  fit BG/NBD + Gamma-Gamma (and sBG: survival=PATH) to a transaction log -> market config,
                       holdout forecast report (holdout_days=N); see docs/calibration.md
  app [--port N] [--host H]  the interactive teaching page (Mesa SolaraViz) on http://127.0.0.1:8765
  warmup               compile the engine's kernels into numba's cache (make install runs it)
  help                 this text

overrides are Hydra's: market=rides policy=none scale=small seed=3 days=180
  market.buyers.purchase.r=0.3 population.sellers=500 experience_effects=false
"""

COMMANDS = {"run": "experiments.run", "compare": "experiments.compare", "collect": "experiments.collect",
            "sensitivity": "experiments.sensitivity",
            "optimize": "experiments.optimize",
            "bench": "experiments.bench",
            "calibrate": "experiments.calibrate",
            "app": "experiments.app",
            "warmup": "experiments.warmup"}


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``twosided COMMAND ARGS``; return the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("help", "-h", "--help"):
        print(USAGE)
        return 0
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"twosided: unknown command {command!r}. Allowed: {', '.join(COMMANDS)}, help.", file=sys.stderr)
        return 2
    import importlib

    from experiments.warmup import announce_compiles

    announce_compiles()
    module = importlib.import_module(COMMANDS[command])
    return module.main(args)


if __name__ == "__main__":
    sys.exit(main())


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
