"""Cold start (issue 18): `twosided warmup` leaves the kernels compiled, and a
compile that does happen is announced on stderr once."""
from __future__ import annotations

import subprocess
import sys

import pytest
from test_sweeps import twosided

from experiments.warmup import COMPILE_MESSAGE


def test_a_compile_is_announced_once_per_process():
    # two fresh (uncached) numba functions: two compilations, one message
    code = ("from experiments.warmup import announce_compiles, compile_count\n"
            "announce_compiles(); announce_compiles()\n"
            "from numba import njit\n"
            "add, double = njit(lambda x: x + 1), njit(lambda x: 2 * x)\n"
            "assert add(1) == 2 and double(1.5) == 3.0\n"
            "print(compile_count())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout) == 2
    assert out.stderr.count(COMPILE_MESSAGE) == 1, out.stderr


@pytest.mark.slow  # about 15-30 s: the warm-up's tiny runs, then two fresh runs
def test_after_warmup_a_first_run_compiles_nothing(tmp_path):
    warm = twosided("warmup", cwd=tmp_path)
    assert warm.returncode == 0, warm.stderr[-2000:]
    assert "kernel compilations" in warm.stdout
    # the second: a policy's paths, and experience effects off (read-only neutral satisfaction to the kernels)
    for i, args in enumerate((["scale=tiny"], ["market=delivery", "scale=tiny", "policy=expansion_offers",
                                               "experience_effects=false", "days=40"])):
        run = twosided("run", *args, f"hydra.run.dir={tmp_path / f'run{i}'}", cwd=tmp_path)
        assert run.returncode == 0, run.stderr[-2000:]
        assert COMPILE_MESSAGE not in run.stderr, (args, run.stderr[-2000:])


def test_warmup_refuses_arguments(tmp_path):
    out = twosided("warmup", "scale=tiny", cwd=tmp_path)
    assert out.returncode == 2 and "'scale=tiny'. Allowed: none" in out.stderr
