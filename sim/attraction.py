"""What a prospective joiner of each side would see of the other sides, in absolute terms.

The cross-side network effect (docs/model.md: joiners react to what the
other side offers in absolute terms): organic sign-ups of a side scale with
``attraction ** network_elasticity``, where attraction is the market's recent
offer to that side against a fixed reference in the same units, never against
the market's own starting size:

- buyers: the chance an order is served (fill rate) against ``reference_fill_rate``,
  times the pickup wait against ``reference_pickup_minutes`` (markets with
  drivers; only waits longer than the reference count against it), times the
  selection of active sellers, n / (n + ``selection_half``) (markets with sellers);
- drivers: earnings per online hour against their outside option per hour;
- sellers: net income per active seller per day (sales kept after commission,
  less premium fees) against the mean outside option of active sellers.

Each figure is an exponentially weighted mean over ``signal_window_days`` of
the days seen so far (numerator and denominator weighted alike), so an empty
day does not read as zero. Before the first day has been seen nobody knows
the market: attraction is 0, and organic sign-ups start on day 1.
"""
from __future__ import annotations

import math

import numpy as np


class Attraction:
    """Exponentially weighted market figures and each side's attraction (dimensionless, >= 0)."""

    def __init__(self, market):
        self.market = market
        self.weighted: dict[str, float] = {}   # figure name -> exponentially weighted sum

    def _add(self, name: str, value: float, window_days: float) -> None:
        keep = 1.0 - 1.0 / window_days
        self.weighted[name] = self.weighted.get(name, 0.0) * keep + value

    def _ratio(self, numerator: str, denominator: str) -> float:
        below = self.weighted.get(denominator, 0.0)
        return self.weighted.get(numerator, 0.0) / below if below > 0 else math.nan

    def record(self, today: dict, sides: dict) -> None:
        """Add one day's figures (the model's daily record ``today`` and its sides)."""
        m = self.market
        window = m.buyers.acquisition.signal_window_days
        self._add("requests", float(today.get("buyers_orders", 0)), window)
        self._add("served", float(today.get("buyers_orders", 0) - today.get("buyers_failed", 0)), window)
        if "drivers" in sides:
            served = float(today.get("drivers_orders", 0))
            pickup = today.get("pickup_minutes_mean", math.nan)
            self._add("pickup_minutes", pickup * served if served and math.isfinite(pickup) else 0.0, window)
            self._add("trips", served, window)
            self._add("driver_earnings", float(today.get("drivers_earnings", 0.0)), window)
            self._add("driver_hours", float(today.get("drivers_online_hours", 0.0)), window)
        if "sellers" in sides:
            sellers = sides["sellers"]
            active = sellers.alive & (sellers.activation_day >= 0)
            kept = today.get("sellers_sales", 0.0) * (1.0 - m.sellers.commission) - today.get("expansion_revenue", 0.0)
            self._add("seller_net_income", float(kept), window)
            self._add("seller_outside_option", float(sellers.outside_option[active].sum(dtype=np.float64)), window)
            self.active_sellers = int(np.count_nonzero(active))

    def of(self, side: str) -> float:
        """Today's attraction of ``side`` for prospective joiners (0 before any day was seen)."""
        m = self.market
        if side == "buyers":
            a = m.buyers.acquisition
            fill = self._ratio("served", "requests")
            if not math.isfinite(fill):
                return 0.0
            value = fill / a.reference_fill_rate
            if "trips" in self.weighted:
                pickup = self._ratio("pickup_minutes", "trips")
                if math.isfinite(pickup) and pickup > a.reference_pickup_minutes:
                    value *= a.reference_pickup_minutes / pickup
            if "seller_net_income" in self.weighted:
                n = self.active_sellers
                value *= n / (n + a.selection_half)
            return value
        if side == "drivers":
            per_hour = self._ratio("driver_earnings", "driver_hours")
            return per_hour / m.drivers.outside_option_per_hour if math.isfinite(per_hour) else 0.0
        if side == "sellers":
            ratio = self._ratio("seller_net_income", "seller_outside_option")
            return max(ratio, 0.0) if math.isfinite(ratio) else 0.0
        raise ValueError(f"unknown side {side!r}")
