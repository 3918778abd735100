"""Checks of a user's input shared by every command, made before any work starts.

- :func:`did_you_mean`: the close matches of a misspelt name (difflib).
- :func:`check_memory`: the agents a run will hold, estimated from the config
  (initial populations plus the paid and organic joins over the run), against
  the memory this machine has available; refused with the estimate.
- :func:`check_output_dir`: an output folder that can be created and written,
  refused (exit 2) when the path is a file; :class:`OutputError` (exit 1) when
  the disk refuses (read-only, full).

Every refusal is a :class:`sim.config.ConfigError` paragraph naming the key,
the value and what is allowed.
"""
from __future__ import annotations

import difflib
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from sim.config import Config, ConfigError

# Resident bytes of a run per agent, as a multiple of its Side fields' bytes:
# arrays grow by doubling (up to 2x), the CS state, health arrays and per-day
# temporaries add about as much again, and agents.parquet is built at the end.
# Measured (resource.getrusage, after a warm-up run): goods with 100k buyers and
# 10k sellers for 120 days held 140k agents at the end (the estimate below said
# 139k) and peaked 2.7x their field bytes above the interpreter's own
# footprint; 4 leaves a margin.
MEMORY_PER_FIELD_BYTE = 4.0
# Share of the machine's available memory one run may plan to use.
MEMORY_SHARE = 0.8
# Joins per day (paid + organic) a side may expect, as a share of its initial
# size: beyond doubling every day a budget is a typo (1e12), and the run would
# go on for minutes before running out of memory. The defaults are near 0.001.
MAX_DAILY_JOINS_SHARE = 1.0


class OutputError(OSError):
    """The disk refused an output (read-only, full, ...); the message is one paragraph."""


def did_you_mean(name: str, known) -> str:
    """``"; did you mean `x`?"`` for the closest of ``known`` to a misspelt ``name`` (or "").

    Dotted keys are matched on their last part among the keys with the same
    parent first (``market.sellers.comission`` -> ``market.sellers.commission``),
    then as a whole.
    """
    name, known = str(name), [str(k) for k in known]
    parent, _, leaf = name.rpartition(".")
    siblings = {k.rpartition(".")[2]: k for k in known if k.rpartition(".")[0] == parent}
    close = difflib.get_close_matches(leaf, list(siblings), n=1, cutoff=0.7)
    if close:
        return f"; did you mean `{siblings[close[0]]}`?"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
    return f"; did you mean `{close[0]}`?" if close else ""


# ---------------------------------------------------------------- memory


def side_bytes_per_agent(side: str) -> int:
    """Bytes of one agent's fields in the struct-of-arrays Side of ``side``."""
    from agents import base, buyers, drivers, sellers

    extra = {"buyers": buyers.FIELDS, "sellers": sellers.FIELDS, "drivers": drivers.FIELDS}[side]
    fields = {**base.COMMON_FIELDS, **extra}
    return int(sum(np.dtype(dtype).itemsize for dtype, _ in fields.values()))


def daily_joins(cfg: Config, side: str) -> float:
    """Expected paid + organic joins per day of ``side`` at its initial size (agents per day).

    Paid joins follow agents.lifecycle.arrivals: with budget B, base CAC c and
    saturation s (agents per day), n = s (sqrt(1 + 2 B / (c s)) - 1). Organic
    joins are counted at the other side's initial size (network ratio 1).
    """
    acquisition = getattr(cfg.market, side).acquisition
    per_1k = int(getattr(cfg.population, side)) / 1000.0
    budget = acquisition.marketing_budget_per_1k * per_1k
    saturation = acquisition.cac_saturation_per_1k * per_1k
    paid = 0.0
    if budget > 0 and saturation > 0:
        paid = saturation * (math.sqrt(1 + 2 * budget / (acquisition.base_cac * saturation)) - 1)
    return paid + acquisition.organic_per_1k * per_1k


def check_growth(cfg: Config) -> None:
    """Refuse a marketing budget that would more than double a side every day (ConfigError)."""
    for side in cfg.market.sides:
        initial = int(getattr(cfg.population, side))
        joins = daily_joins(cfg, side)
        if initial > 0 and joins > MAX_DAILY_JOINS_SHARE * initial:
            key = f"market.{side}.acquisition.marketing_budget_per_1k"
            raise ConfigError(key, getattr(cfg.market, side).acquisition.marketing_budget_per_1k, (
                f"a budget that buys at most {MAX_DAILY_JOINS_SHARE:g} x the side's initial size per day: this one "
                f"brings about {joins:,.0f} {side} a day to a side of {initial:,} (about {joins * cfg.days:,.0f} "
                f"over {cfg.days} days), which no real market does and the run could not hold"))


def expected_agents(cfg: Config) -> dict[str, float]:
    """Agents each side of the market will have held by the last day, estimated: initial + days x joins.

    Referrals and win-backs are left out, and the other side's growth too, so
    this is an estimate, not a bound.
    """
    return {side: int(getattr(cfg.population, side)) + cfg.days * daily_joins(cfg, side)
            for side in cfg.market.sides}


def available_memory_bytes() -> int | None:
    """Memory this machine can give a new process now (Linux MemAvailable), or None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def estimated_run_bytes(cfg: Config) -> tuple[float, dict[str, float]]:
    """(estimated peak bytes of one run, expected agents per side)."""
    agents = expected_agents(cfg)
    total = sum(n * side_bytes_per_agent(side) * MEMORY_PER_FIELD_BYTE for side, n in agents.items())
    return total, agents


def check_memory(cfg: Config, available: int | None = None) -> None:
    """Refuse a run whose agents would not fit in this machine's available memory (ConfigError)."""
    check_growth(cfg)
    available = available_memory_bytes() if available is None else available
    if available is None:
        return
    need, agents = estimated_run_bytes(cfg)
    if need <= MEMORY_SHARE * available:
        return
    biggest = max(agents, key=agents.get)
    initial = getattr(cfg.population, biggest)
    key = f"population.{biggest}"
    value = initial
    joins = agents[biggest] - initial
    if joins > initial:  # the joins, not the start, make it big: name the budget
        key, value = f"market.{biggest}.acquisition.marketing_budget_per_1k", \
            getattr(cfg.market, biggest).acquisition.marketing_budget_per_1k
    detail = ", ".join(f"{side} {n:,.0f}" for side, n in agents.items())
    raise ConfigError(key, value, (
        f"a run this machine can hold: about {need / 2**30:,.1f} GiB estimated for the agents by day "
        f"{cfg.days} ({detail}; start plus paid and organic joins) against {available / 2**30:,.1f} GiB "
        f"available; use a smaller population, budget or number of days"))


# ---------------------------------------------------------------- output folders


def check_output_dir(path, key: str, create: bool = True) -> Path:
    """Make sure ``path`` can be an output folder: create it and try a write.

    A path that is (or runs through) a file: ConfigError (exit 2). The disk
    refusing (read-only, full, no permission): OutputError (exit 1). Nothing is
    left behind by the trial write. ``create=False`` only refuses a file path,
    for a command that checks its output early and creates it when it writes.
    """
    path = Path(path)
    for part in [path, *path.parents]:
        if part.exists() and not part.is_dir():
            raise ConfigError(key, str(path), f"a folder; {part} is a file" if part != path
                              else "a folder (or a new path); it is a file")
    if not create:
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as error:
        raise OutputError(f"Cannot write the output folder `{key}` = {str(path)!r}: {error.strerror or error}. "
                          f"Nothing was run; choose a writable folder with {key}=PATH.") from None
    return path


def output_fault(error: OSError, what: Path | str) -> OutputError:
    """One paragraph for a write that failed half-way (disk full, folder made read-only)."""
    return OutputError(f"Writing {what} failed: {error.strerror or error}. The output is incomplete and is not "
                       f"marked complete; free space or fix permissions, then run the command again.")

