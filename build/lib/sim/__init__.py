"""twosided's engine: the Marketplace model and its public entry points.

    from experiments.config import load_config   # composing conf/ is the commands' job
    from sim import Marketplace
    cfg = load_config(["market=rides", "policy=fair_disputes"])
    result = Marketplace(cfg).run()
    result.daily, result.agents, result.summary

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
