"""The teaching notebooks run top to bottom (nbclient, a fresh kernel each).

Each notebook is its own test so pytest-xdist spreads them over workers. A
cell that raises fails the test with the cell's error. The test runs them in
quick mode (TWOSIDED_NOTEBOOK_QUICK=1: fewer seeds or replicates, the same
code on every cell); the stored copies, whose numbers the prose reads, are
full runs by scripts/execute_notebooks.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
TIMEOUT = 600   # seconds per cell, generous for a loaded CI machine


def test_the_three_teaching_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    assert {"01_network_effects.ipynb", "02_comparing_cs_policies.ipynb",
            "03_sweeps_and_sensitivity.ipynb"} <= names


STORED_WITH_OUTPUTS = ("01_network_effects.ipynb", "03_sweeps_and_sensitivity.ipynb", "04_pilots.ipynb")
RUN_IN_SUITE = NOTEBOOKS   # every notebook, in quick mode (04's full run is 40 runs at scale=small)


@pytest.mark.parametrize("name", STORED_WITH_OUTPUTS)
def test_notebook_is_stored_with_its_outputs(name):
    """A reader opening the file sees the figures and numbers the text talks about
    (scripts/execute_notebooks.py re-executes and stores them)."""
    book = nbformat.read(NOTEBOOKS[0].parent / name, as_version=4)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "a code cell was not executed before storing"
    printed = [o for c in code for o in c.outputs if o.get("output_type") in ("stream", "execute_result")]
    assert printed, "no stored numbers"
    assert not [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs), "no stored figure"


@pytest.mark.slow   # 20-40 s each, in quick mode
@pytest.mark.parametrize("path", RUN_IN_SUITE, ids=[p.stem for p in RUN_IN_SUITE])
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    monkeypatch.setenv("TWOSIDED_NOTEBOOK_QUICK", "1")   # the kernel inherits the environment
    book = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(book, timeout=TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    code = [c for c in book.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), "a code cell did not run"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    images = [o for c in code for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the notebook drew no figure"
    prose = [c for c in book.cells if c.cell_type == "markdown"]
    assert len(prose) >= 4, "a teaching notebook needs prose between the code"
    nbformat.write(book, tmp_path / path.name)   # the executed copy, for a person to open
