"""How the engine composes a config by name without importing the commands layer.

Composing conf/ (Hydra) lives in experiments/config.py, above the engine. It
registers its composer here when imported (``import experiments`` does), so
``Marketplace(market="rides", scale="small", seed=3)`` can build its config
while sim/ never imports experiments/.
"""
from __future__ import annotations

from collections.abc import Callable

_composer: Callable | None = None


def register_config_composer(composer: Callable) -> Callable:
    """Make ``composer(overrides: list[str]) -> Config`` the one the engine uses; returns it."""
    global _composer
    _composer = composer
    return composer


def compose(overrides: list[str]):
    """The validated Config of Hydra-style ``overrides`` (``["market=rides", "seed=3"]``) through the composer."""
    if _composer is None:
        raise RuntimeError("no config composer is registered: `import experiments` (every twosided command does) "
                           "before Marketplace(market=..., scale=...), or pass a Config: Marketplace(cfg)")
    return _composer(overrides)
