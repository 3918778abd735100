"""CS policies: the Policy interface (base.py) and one module per policy (docs/policies.md)."""
from policies.base import Params, Policy, build_policies, register_policy, registry
from sim.policy_hook import register_policy_builder

register_policy_builder(build_policies)   # the engine builds policies through this, never by importing us

__all__ = ["Params", "Policy", "build_policies", "register_policy", "registry"]
