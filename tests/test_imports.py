"""Every module of the engine and the sides imports on its own, as the first import of a fresh interpreter,
and the import-layer contracts of pyproject.toml hold (import-linter)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                 for folder in ("agents", "sim", "policies") for p in (ROOT / folder).rglob("*.py")
                 if p != ROOT / folder / "__init__.py")   # sub-packages (sim.cs) and their modules included


OURS = ("agents", "sim", "policies", "experiments")
FIRST_IMPORTS = f"""
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] in {OURS!r}]:
        del sys.modules[loaded]   # each module is imported as if it came first
    try:
        importlib.import_module(name)
    except Exception as error:
        failed.append(f"{{name}}: {{error!r}}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_first_in_a_fresh_interpreter():
    done = subprocess.run([sys.executable, "-c", FIRST_IMPORTS, *MODULES], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(MODULES) > 15


@pytest.mark.parametrize("name", ["agents.lifecycle", "agents.buyers", "agents.drivers", "sim.streams"])
def test_a_side_is_importable_alone(name):
    done = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_import_contracts_of_pyproject_hold(capsys, monkeypatch):
    """Imports run one way (pyproject.toml [tool.importlinter], docs/architecture.md): commands above
    policies above the engine above the sides above the leaf modules; never back up."""
    from importlinter.cli import lint_imports

    monkeypatch.chdir(ROOT)
    code = lint_imports(no_cache=True, no_logo=True)
    assert code == 0, capsys.readouterr().out
