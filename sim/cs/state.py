"""What CS records of every agent: one struct-of-arrays table per side, indexed by agent id like the side."""
from __future__ import annotations

import numpy as np

from agents.base import Side

LONG_AGO = -(10**6)   # a day before any run: "never happened"

CS_FIELDS = {
    "open_tickets": (np.int16, 0),
    "tickets": (np.int32, 0),               # tickets raised, ever
    "bad_contact_day": (np.int32, LONG_AGO),  # last contact that ended badly (abandoned or CSAT 1-2)
    "orders_seen": (np.int32, 0),           # orders counter at yesterday's update
    "activity_rate": (np.float32, 0.0),     # recent activity, events per day (exponentially weighted)
    "health": (np.float32, np.nan),         # 0-100
    "health_mean": (np.float32, np.nan),    # its exponentially weighted mean (for the trend)
    "band": (np.int8, -1),                  # health band at the last computation (-1: not scored yet)
    "vector": (np.int8, -2),                # health vector at the last computation (-2: not scored yet)
    "touches": (np.int16, 0),               # staff contacts by policies
    "last_touch_day": (np.int32, LONG_AGO),
    "nudges": (np.int16, 0),                # automated messages
    "last_nudge_day": (np.int32, LONG_AGO),
    "offers": (np.int16, 0),                # win-back offers
    "last_offer_day": (np.int32, LONG_AGO),
    "appeal_open": (np.bool_, False),       # drivers: a deactivation appeal is under review
    "appeals": (np.int16, 0),
}


POLICY_FIELDS = ("touches", "last_touch_day", "nudges", "last_nudge_day", "offers", "last_offer_day",
                 "appeal_open", "appeals")
"""Written only by policies' actions and drivers' appeals: made when first used (21 bytes per agent
that a run without them does not hold)."""


def new_state(sides: dict[str, Side]) -> dict[str, Side]:
    """An empty CS table per side, with room for as many agents as the side has."""
    return {name: Side(f"cs_{name}", CS_FIELDS, capacity=s._capacity, common=False, deferred=POLICY_FIELDS)
            for name, s in sides.items()}


def grow_state(state: dict[str, Side], sides: dict[str, Side]) -> None:
    """Add a row (with the fields' defaults) for every agent that joined a side since the last call."""
    for name, s in sides.items():
        st = state[name]
        if st.n < s.n:
            if st._capacity < s.n:
                st.reserve(max(s._capacity, s.n))
            st.add(s.n - st.n)
