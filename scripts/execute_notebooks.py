"""Re-execute teaching notebooks and store them with their outputs.

    .venv/bin/python scripts/execute_notebooks.py                 # every notebook in notebooks/
    .venv/bin/python scripts/execute_notebooks.py notebooks/03_*  # some of them

Each notebook runs top to bottom in a fresh kernel (nbclient), from the
notebooks/ folder, and is written back in place only if every cell ran
without error, so a failed run never replaces a good stored copy. Run it
after a change to the model's economics: the stored outputs (and the numbers
the notebooks' text reads from them) then match the model again.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbclient
import nbformat

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CELL_TIMEOUT = 900   # seconds per cell, generous for a loaded machine


def execute(path: Path) -> float:
    """Run ``path`` and store it with its outputs; returns the wall time (s). Raises if a cell fails."""
    book = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    nbclient.NotebookClient(book, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(book, path)
    return time.perf_counter() - started


def main(argv: list[str]) -> int:
    # stored copies are full runs: never the tests' quick mode (fewer seeds), even if the shell has it set
    os.environ.pop("TWOSIDED_NOTEBOOK_QUICK", None)
    paths = [Path(a).resolve() for a in argv] or sorted(NOTEBOOKS.glob("*.ipynb"))
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"execute_notebooks: no such notebook: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"{path.name}: running...", flush=True)
        try:
            seconds = execute(path)
        except nbclient.exceptions.CellExecutionError as error:
            print(f"{path.name}: a cell failed; the stored copy is unchanged.\n{error}", file=sys.stderr)
            return 1
        print(f"{path.name}: stored with outputs ({seconds:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
