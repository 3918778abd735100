"""The corpus of bad inputs (tests/bad_inputs/cases.yaml): every command refuses each cleanly.

Each case runs the command in-process (``experiments.cli.main``) in a fresh
folder holding the corpus' files, and asserts the exit code (2, or 1 for an
output the disk refuses), the text stderr must name, no traceback, one
paragraph (no blank line), and that nothing was written. Cases marked
``subprocess`` run the installed executable as well, to prove the real exit
code of the process.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from experiments.cli import main

CORPUS = yaml.safe_load((Path(__file__).parent / "bad_inputs" / "cases.yaml").read_text())
CASES = CORPUS["cases"]


def _prepare(tmp_path: Path, case: dict) -> tuple[list[str], set[Path]]:
    for name, text in CORPUS["files"].items():
        (tmp_path / name).write_text(text)
    args = [str(a).replace("{tmp}", str(tmp_path)) for a in case["args"]]
    return args, set(tmp_path.rglob("*"))


def _check_stderr(case: dict, err: str, code: int) -> None:
    assert code == case.get("code", 2), f"{case['id']}: exit {code}; stderr: {err[-2000:]}"
    assert "Traceback" not in err, f"{case['id']}: {err[-3000:]}"
    assert err.strip(), f"{case['id']}: nothing on stderr"
    assert "\n\n" not in err.strip(), f"{case['id']}: more than one paragraph: {err}"
    for text in case["names"]:
        assert text in err, f"{case['id']}: {text!r} not named in: {err}"
    for text in case.get("absent", []):
        assert text not in err, f"{case['id']}: {text!r} should not appear in: {err}"


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input_is_refused_cleanly(case, tmp_path, monkeypatch, capsys):
    args, before = _prepare(tmp_path, case)
    monkeypatch.chdir(tmp_path)
    code = main(args)
    _check_stderr(case, capsys.readouterr().err, code)
    assert set(tmp_path.rglob("*")) == before, f"{case['id']}: wrote {set(tmp_path.rglob('*')) - before}"


SUBPROCESS = [c for c in CASES if c.get("subprocess")]


@pytest.mark.parametrize("case", SUBPROCESS, ids=[c["id"] for c in SUBPROCESS])
def test_bad_input_real_exit_code(case, tmp_path):
    args, before = _prepare(tmp_path, case)
    exe = Path(sys.executable).with_name("twosided")
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    _check_stderr(case, proc.stderr, proc.returncode)
    assert set(tmp_path.rglob("*")) == before


def test_corpus_covers_every_command():
    from experiments.cli import COMMANDS

    covered = {c["args"][0] for c in CASES}
    # compare's bad inputs belong to its own tests (tests/test_compare.py)
    assert set(COMMANDS) - {"compare"} <= covered, set(COMMANDS) - covered
    assert len({c["id"] for c in CASES}) == len(CASES)
