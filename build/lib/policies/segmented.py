"""``segmented``: high-touch CS for enterprise sellers, tech-touch for SMB sellers.

Mechanism: a :mod:`proactive_outreach` restricted to enterprise sellers
(parameters under ``enterprise``: a dedicated account manager calling the
lowest-health enterprise accounts each cadence) and a :mod:`tech_touch`
restricted to SMB sellers (parameters under ``smb``). Needs a market with
sellers (goods, delivery).

Cost: the mix, booked as ``cs_cost_segmented``: staff time per enterprise
call plus a tiny cost per SMB message.
"""
from __future__ import annotations

from policies.base import Params, Policy, register_policy
from policies.proactive_outreach import ProactiveOutreach
from policies.tech_touch import TechTouch


@register_policy
class Segmented(Policy):
    name = "segmented"

    def configure(self, p: Params, market) -> None:
        p.sides("sides", market, allowed=("sellers",), policy_doc=": markets goods and delivery")
        self._parts_raw = (p.mapping("enterprise"), p.mapping("smb"))

    def __init__(self, params, market, cs_conf, key=None):
        super().__init__(params, market, cs_conf, key)
        enterprise, smb = self._parts_raw
        self.high_touch = ProactiveOutreach({**enterprise, "sides": ["sellers"], "segment": "enterprise"},
                                            market, cs_conf, key=f"{self.key}.enterprise")
        self.tech_touch = TechTouch({**smb, "sides": ["sellers"], "segment": "smb"}, market, cs_conf,
                                    key=f"{self.key}.smb")
        for part in (self.high_touch, self.tech_touch):
            part.name = self.name        # costs are booked to "segmented"

    def setup(self, cs) -> None:
        self.high_touch.setup(cs)
        self.tech_touch.setup(cs)

    def act(self, day: int, cs) -> None:
        self.high_touch.act(day, cs)
        self.tech_touch.act(day, cs)
