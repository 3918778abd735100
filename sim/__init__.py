"""twosided's engine: the Marketplace model and its public entry points.

    from sim import load_config, Marketplace
    cfg = load_config(["market=rides", "policy=fair_disputes"])
    result = Marketplace(cfg).run()
    result.daily, result.agents, result.summary
"""
from sim.config import Config, ConfigError
from sim.model import Marketplace
from sim.result import Result


def load_config(overrides=None) -> Config:
    """Compose conf/ with Hydra-style overrides and validate it (see experiments/config.py)."""
    from experiments.config import load_config as _load

    return _load(overrides)


__all__ = ["Config", "ConfigError", "Marketplace", "Result", "load_config"]
