"""The `twosided` command: run, compare, pilot, collect, bench, app."""
from __future__ import annotations

import importlib
import sys

from experiments.checks import OutputError, did_you_mean
from sim.config import ConfigError

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
  calibrate pilot=PATH fit a policy's effect sizes to a pilot's per-agent export -> pilot_fit.json and an arm for
                       compare (policy=fair_disputes design=drivers fit=[reverse_unfair] columns.id=THEIRS
                       market=rides), see conf/pilot_fit.yaml and docs/pilots.md
  pilot [k=v]          a pilot of a policy under each design vs the rollout's true effect -> report folder
                       (policy=fair_disputes design=all|buyers|sellers|drivers|clusters|switchback|two_sided share=0.5
                       days=90 replicates=4 out=DIR; other key=value: model overrides), see conf/pilot.yaml
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
            "pilot": "experiments.pilot",
            "app": "experiments.app",
            "warmup": "experiments.warmup"}

# A command whose KEY= argument selects another module: `calibrate pilot=PATH` fits effect sizes to a pilot.
ROUTES = {"calibrate": {"pilot": "experiments.pilot_fit"}}

HELP_FLAGS = ("-h", "--help")


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``twosided COMMAND ARGS``; return the exit code.

    ``COMMAND -h`` / ``--help`` prints the command's own usage (its module's
    ``USAGE``, else its docstring) and exits 0. A user's mistake ends as one
    paragraph and exit code 2 (ConfigError, or argparse's own refusal); an
    output the disk refuses ends as one paragraph and exit code 1.
    """
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("help", *HELP_FLAGS):
        print(USAGE)
        return 0
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"twosided: unknown command {command!r}{did_you_mean(command, COMMANDS)} "
              f"Allowed: {', '.join(COMMANDS)}, help.", file=sys.stderr)
        return 2
    from experiments.warmup import announce_compiles

    announce_compiles()
    routes = ROUTES.get(command, {})
    routed = [routes[key] for key in (arg.partition("=")[0] for arg in args) if key in routes]
    module = importlib.import_module(routed[0] if routed else COMMANDS[command])
    if any(arg in HELP_FLAGS for arg in args):
        print(getattr(module, "USAGE", None) or module.__doc__)
        return 0
    try:
        return module.main(args)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    except OutputError as error:
        print(f"twosided {command}: {error}", file=sys.stderr)
        return 1
    except SystemExit as exit_:  # argparse refuses bad flags with code 2 and its own one-line message
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)


if __name__ == "__main__":
    sys.exit(main())


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
