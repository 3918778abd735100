"""Every number table in docs/ is what its generator produces today (experiments/docs_tables.py).

The cheap table (the pickup ratio, a few seconds) is checked always; the
tables that run whole markets (stylised facts: a two-year rides run and a
year of goods at scale=default; policy effects: 24 delivery runs at
scale=small) carry the ``slow`` marker. A failure names the table: run
`make docs` and commit the regenerated tables.
"""
from __future__ import annotations

import pytest

from experiments import docs_tables
from experiments.docs_tables import TABLES, blocks, regenerate, replace


def test_every_table_has_its_markers_once_and_every_marker_a_generator():
    for name, table in TABLES.items():
        text = (docs_tables.DOCS / table.doc).read_text()
        assert text.count(f"<!-- table:{name} -->") == 1 and text.count(f"<!-- /table:{name} -->") == 1, name
    for doc in docs_tables.DOCS.glob("*.md"):
        for name in blocks(doc.read_text()):
            assert name in TABLES and TABLES[name].doc == doc.name, (doc.name, name)


def test_replace_rewrites_only_its_own_block():
    text = "a\n<!-- table:x -->\nold\n<!-- /table:x -->\nb\n<!-- table:y -->\nkeep\n<!-- /table:y -->\n"
    assert replace(text, "x", ["| new |"]) == text.replace("old\n", "| new |\n")
    assert replace(text, "x", ["old"]) == text
    with pytest.raises(ValueError, match="table:z"):
        replace(text, "z", ["| new |"])


def test_check_reports_a_stale_table_and_writes_nothing(tmp_path, monkeypatch):
    doc = tmp_path / "model.md"
    doc.write_text("<!-- table:fake -->\n| 1 |\n<!-- /table:fake -->\n")
    monkeypatch.setitem(TABLES, "fake", docs_tables.Table("model.md", lambda: ["| 2 |"]))
    assert regenerate(["fake"], check=True, docs=tmp_path) == ["fake"]
    assert "| 1 |" in doc.read_text()
    assert regenerate(["fake"], check=False, docs=tmp_path) == ["fake"]
    assert regenerate(["fake"], check=True, docs=tmp_path) == []


def _params():
    return [pytest.param(name, marks=[pytest.mark.slow] if table.slow else []) for name, table in TABLES.items()
            if table.checked_by is None]


def test_a_table_checked_elsewhere_is_checked_by_a_test_that_reads_it():
    for name, table in TABLES.items():
        if table.checked_by is not None:
            test = docs_tables.DOCS.parent / table.checked_by
            assert test.exists() and f'"{name}"' in test.read_text(), (name, table.checked_by)


@pytest.mark.parametrize("name", _params())
def test_docs_table_is_up_to_date(name):
    stale = regenerate([name], check=True)
    assert not stale, f"docs/{TABLES[name].doc}: table {name} differs from what the model gives; run `make docs`"


def test_default_markets_fall_inside_every_published_band_they_are_calibrated_to():
    # The committed table is what the model gives (test_docs_table_is_up_to_date regenerates and compares
    # it), so reading its "inside" column checks the defaults without a second two-year run.
    text = (docs_tables.DOCS / "model.md").read_text()
    start = text.index("<!-- table:stylised_facts -->")
    rows = [line for line in text[start:text.index("<!-- /table:stylised_facts -->")].splitlines()
            if line.startswith("| ") and not line.startswith("| stylised fact")]
    verdicts = [row.rstrip(" |").rsplit("|", 1)[1].strip() for row in rows]
    assert len(rows) >= 7 and verdicts.count("yes") >= 6
    assert set(verdicts) <= {"yes", "contrast only"}, [r for r, v in zip(rows, verdicts) if v not in ("yes",)]
