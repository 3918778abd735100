"""``none``: reactive support only. Tickets are answered by the desk (cs.staff); no proactive action.

Cost: the desk staff, which every arm pays (``cs_cost_desk``).
"""
from __future__ import annotations

from policies.base import Policy, register_policy


@register_policy
class NoPolicy(Policy):
    name = "none"
