"""CS policies: the Policy interface (base.py) and one module per policy (docs/policies.md)."""
from policies.base import Params, Policy, build_policies, registry

__all__ = ["Params", "Policy", "build_policies", "registry"]
