"""The `twosided` command: run, compare, collect, bench, app."""
from __future__ import annotations

import sys

USAGE = """usage: twosided COMMAND [overrides...]

commands:
  run [overrides]      one simulation -> run folder (add -m for a Hydra multirun sweep)
  help                 this text

overrides are Hydra's: market=rides policy=none scale=small seed=3 days=180
  market.buyers.purchase.r=0.3 population.sellers=500 experience_effects=false
"""

COMMANDS = {"run": "experiments.run"}


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

    module = importlib.import_module(COMMANDS[command])
    return module.main(args)


if __name__ == "__main__":
    sys.exit(main())


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
