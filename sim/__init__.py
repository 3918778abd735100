"""twosided's engine: the Marketplace model and its public entry points.

    from sim import Marketplace
    result = Marketplace(cfg).run()
    result.daily, result.agents, result.summary

The engine takes a validated Config; composing one from conf/ is the commands'
layer (``experiments.config.load_config(["market=rides", "policy=fair_disputes"])``),
which also registers itself so that ``Marketplace(market="rides", seed=3)``
works once it is loaded (sim/config_hook.py).

The public names are loaded on first use (PEP 562), so importing a leaf of the
package (``sim.streams``, which every side imports) does not pull in the engine
and, through it, the sides themselves: ``import agents.lifecycle`` works as a
first import.
"""
from __future__ import annotations

import importlib

_PUBLIC = {"Config": "sim.config", "ConfigError": "sim.config", "Marketplace": "sim.model", "Result": "sim.result"}


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


__all__ = ["Config", "ConfigError", "Marketplace", "Result"]
