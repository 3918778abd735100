"""Every number table in docs/, regenerated from the model so none can go stale.

A table lives in its document between two marker comments::

    <!-- table:NAME -->
    | ... |
    <!-- /table:NAME -->

and NAME is one of :data:`TABLES` here, whose generator runs the model (fixed
seeds, so the text is reproducible to the digit) and returns the lines in
between. Commands::

    make docs                                         # rewrite every table
    python -m experiments.docs_tables                 # the same
    python -m experiments.docs_tables --check         # exit 1 and name the tables that differ
    python -m experiments.docs_tables --only pickup_ratio --check

tests/test_docs_tables.py runs the check for every table (the ``slow`` ones
under the slow marker). Generators live in :mod:`experiments.docs_facts`
(measurements of the default markets) and here.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

DOCS = Path(__file__).resolve().parent.parent / "docs"


@dataclass(frozen=True)
class Table:
    """A generated table: the document it lives in, its generator, and whether it takes long."""

    doc: str                            # file name under docs/
    generate: Callable[[], list[str]]   # the lines between the markers
    slow: bool = False                  # more than a few seconds of simulation
    checked_by: str | None = None       # a test that measures the same figures and holds the table to them


def _pickup_ratio() -> list[str]:
    from experiments import pickup_law

    scenario = pickup_law.Scenario()
    few = pickup_law.FEW_HOMES
    seeds = pickup_law.TABLE_SEEDS
    lines = ["| idle drivers | uniform demand | few rider homes |", "|---|---|---|"]
    for rule, u, u_se, h, h_se in pickup_law.table_rows(seeds, few):
        lines.append(f"| `{rule}` | {u:.3f} ± {u_se:.3f} | {h:.3f} ± {h_se:.3f} |")
    lines += ["", f"Observed over torus-law pickup distance (1 = as good as uniform idle drivers), mean ± standard "
                  f"error over seeds {seeds.start}-{seeds.stop - 1}: {scenario.drivers} drivers online around the "
                  f"clock, {scenario.requests_per_day:,} requests a day, days {scenario.burn_in_days}-"
                  f"{scenario.days - 1} of {scenario.days}; \"few rider homes\": every pickup at one of {few} "
                  "homes (`python -m experiments.pickup_law`)."]
    return lines


def _stylised_facts() -> list[str]:
    from experiments import docs_facts

    return docs_facts.stylised_facts_table()


def _ltv_holdout() -> list[str]:
    from experiments import ltv_holdout

    return ltv_holdout.table()


def _policy_effects() -> list[str]:
    from experiments import docs_facts

    return docs_facts.policy_effects_table()


def _daily_columns() -> list[str]:
    from sim.columns import DAILY_COLUMNS

    lines = ["| column | unit | sides | meaning |", "|---|---|---|---|"]
    for c in DAILY_COLUMNS:
        if "{side}" in c.name:
            sides = ", ".join(c.sides)
        else:
            sides = f"markets with {c.needs}" if c.needs else "every market"
        lines.append(f"| `{c.name}` | {c.unit} | {sides} | {c.description} |")
    return lines


def _performance() -> list[str]:
    from experiments import benchmark

    return benchmark.readme_table()


TABLES: dict[str, Table] = {
    "pickup_ratio": Table("model.md", _pickup_ratio),
    "stylised_facts": Table("model.md", _stylised_facts, slow=True),
    "policy_effects": Table("policies.md", _policy_effects, slow=True),
    # its runs are the LTV test's: tests/test_ltv.py checks the rows, so the suite runs them once
    "ltv_holdout": Table("model.md", _ltv_holdout, slow=True, checked_by="tests/test_ltv.py"),
    "daily_columns": Table("results.md", _daily_columns),
    # from the committed bench run of record, not measured here: a timing is no test's to reproduce
    "performance": Table("../README.md", _performance),
}

_BLOCK = re.compile(r"(<!-- table:(?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- /table:(?P=name) -->)", re.S)


def blocks(text: str) -> dict[str, str]:
    """The body (the text between the markers) of each table in a document, by name."""
    return {m.group("name"): m.group("body") for m in _BLOCK.finditer(text)}


def replace(text: str, name: str, lines: list[str]) -> str:
    """``text`` with table ``name``'s body replaced by ``lines``; ValueError if its markers are missing."""
    body = "".join(line + "\n" for line in lines)
    out, count = _BLOCK.subn(lambda m: m.group(1) + body + m.group(4) if m.group("name") == name else m.group(0),
                             text)
    if name not in blocks(text):
        raise ValueError(f"no <!-- table:{name} --> ... <!-- /table:{name} --> block in the document")
    return out


def regenerate(names, check: bool, docs: Path = DOCS) -> list[str]:
    """Regenerate the tables ``names``; write them (``check`` False) or only compare. Returns those that differed."""
    differ = []
    for name in names:
        table = TABLES[name]
        path = docs / table.doc
        text = path.read_text()
        new = replace(text, name, table.generate())
        if new != text:
            differ.append(name)
            if not check:
                path.write_text(new)
    return differ


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.docs_tables", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if a table differs")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", choices=sorted(TABLES),
                        help="only this table (repeatable)")
    options = parser.parse_args(args)
    names = options.only or list(TABLES)
    differ = regenerate(names, options.check)
    for name in differ:
        where = (DOCS / TABLES[name].doc).resolve().relative_to(DOCS.parent)
        print(f"{'differs' if options.check else 'rewrote'}: {name} ({where})")
    if options.check and differ:
        print("run `make docs` and commit the tables", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
