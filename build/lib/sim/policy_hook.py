"""How the engine gets its CS policies without importing the policy library.

Imports run one way, from policies/ down to the engine, never back. The
policy library registers its builder here when it is imported
(``policies/__init__.py``); the engine calls :func:`build_policies`, and a
caller may instead hand ``Marketplace`` ready Policy objects.
"""
from __future__ import annotations

from collections.abc import Callable

_builder: Callable | None = None


def register_policy_builder(builder: Callable) -> Callable:
    """Make ``builder(policy_cfg, market, cs_conf) -> [Policy]`` the one the engine uses; returns it."""
    global _builder
    _builder = builder
    return builder


def build_policies(policy_cfg, market, cs_conf) -> list:
    """The active Policy objects of ``policy_cfg`` ({name: params}) through the registered builder."""
    if _builder is None:
        raise RuntimeError("no CS policy library is registered: import policies (experiments.config.load_config does), "
                           "or pass Marketplace(cfg, policies=[...])")
    return _builder(policy_cfg, market, cs_conf)
