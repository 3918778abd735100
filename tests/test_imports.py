"""Every module of the engine and the sides imports on its own, as the first import of a fresh interpreter.

(Issue 12: `import agents.lifecycle` used to fail, agents -> sim.streams -> sim -> sim.model -> agents.)
"""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(f"{p.parent.name}.{p.stem}" for folder in ("agents", "sim", "policies")
                 for p in (ROOT / folder).glob("*.py") if p.stem != "__init__")


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


def test_engine_and_sides_never_import_policies_or_commands():
    """Imports run downward: the engine is handed Policy objects (sim/policy_hook.py), never imports them.

    sim/__init__.py's ``load_config`` is the one documented entry that reaches up to experiments/.
    """
    import ast

    upward = []
    for folder in ("sim", "agents"):
        for path in sorted((ROOT / folder).glob("*.py")):
            if path.name == "__init__.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                upward += [f"{folder}/{path.name}:{node.lineno} {n}" for n in names
                           if n.split(".")[0] in ("policies", "experiments")]
    assert not upward, upward
