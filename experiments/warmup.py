"""`twosided warmup`: compile the engine's numba kernels into numba's cache.

    twosided warmup            a tiny run of every market, with no policy and with every policy

The kernels are compiled with ``cache=True``, so they are compiled once per
installation (and again after their source changes) and loaded from
``__pycache__`` afterwards. `make install` runs this command, so the first real
run starts at once instead of compiling for half a minute. Any compile that
still happens (a stale cache, a new kernel) is announced on stderr once per
process by :func:`announce_compiles`, which the `twosided` command installs.
"""
from __future__ import annotations

import sys
import time

COMPILE_MESSAGE = "twosided: compiling kernels (first run, about 30 s)..."

_compiles = 0          # numba compilations (cache misses) in this process since announce_compiles()
_announcing = False


def announce_compiles() -> None:
    """Say on stderr, once per process, when numba compiles a kernel (a load from its cache is silent).

    Idempotent. From then on :func:`compile_count` counts the compilations
    (nested ones included).
    """
    global _announcing
    if _announcing:
        return
    from numba.core import event

    class Announce(event.Listener):
        def on_start(self, _event):
            global _compiles
            if _compiles == 0:
                print(COMPILE_MESSAGE, file=sys.stderr, flush=True)
            _compiles += 1

        def on_end(self, _event):
            pass

    event.register("numba:compile", Announce())
    _announcing = True


def compile_count() -> int:
    """Numba compilations in this process since :func:`announce_compiles` was first called."""
    return _compiles


def warmup_cases() -> list[list[str]]:
    """The runs whose kernels the warm-up compiles: each market at scale=tiny, with no policy, with
    every policy that applies to it (fair_disputes, for one, needs drivers), and with experience effects off."""
    from omegaconf import OmegaConf

    from experiments.config import CONF_DIR, group_options, load_config
    from policies.base import build_policies
    from sim import ConfigError

    cases = []
    for market in group_options("market"):
        base = [f"market={market}", "scale=tiny"]
        typed = load_config([*base, "policy=none"])
        applicable = []
        for policy in (p for p in group_options("policy") if p != "none"):
            # a policy that cannot act in this market refuses to be built (as load_config would refuse it),
            # without composing the whole config once more per policy
            params = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "policy" / f"{policy}.yaml"))[policy]
            try:
                build_policies({policy: params}, typed.market, typed.cs)
                applicable.append(policy)
            except ConfigError:
                continue
        # experience effects off: behaviour reads a read-only neutral array, another type to the kernels
        cases += [[*base, "policy=none"], [*base, "policy=[" + ",".join(applicable) + "]"],
                  [*base, "policy=none", "experience_effects=false"]]
    return cases


def main(args: list[str]) -> int:
    """Entry of `twosided warmup`: run every warm-up case once; print the compile count and time (s)."""
    if args:
        print(f"twosided warmup: unexpected arguments {' '.join(args)!r}. Allowed: none (it runs a tiny case "
              "of every market, with no policy and with every policy that applies).", file=sys.stderr)
        return 2

    from experiments.config import load_config
    from sim import Marketplace

    announce_compiles()
    before, start = compile_count(), time.perf_counter()
    cases = warmup_cases()
    for overrides in cases:
        Marketplace(load_config(overrides)).run()
    compiled = compile_count() - before
    print(f"twosided warmup: {len(cases)} tiny runs in {time.perf_counter() - start:.1f} s; "
          f"{compiled} kernel compilations" + (" (all were cached already)" if not compiled else " (now cached)"))
    return 0
