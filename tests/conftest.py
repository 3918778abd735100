"""Shared fixtures: small, fast configurations of the engine."""

import pytest

from experiments.config import load_config

NO_ACQUISITION = [f"market.{side}.acquisition.{key}=0" for side in ("buyers", "sellers", "drivers")
                  for key in ("marketing_budget_per_1k", "organic_per_1k", "referral_rate")]
"""Overrides that switch off every acquisition channel (closed cohorts for the textbook checks)."""


@pytest.fixture
def tiny():
    """load_config with scale=tiny plus extra overrides."""
    def make(*overrides):
        return load_config(["scale=tiny", *overrides])
    return make


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` (tens of seconds each) first, the rest in their usual order.

    pytest-xdist hands tests out in collection order, so a long test collected
    last keeps one worker busy while the other idles; starting the long ones
    first packs the two workers and shortens the suite's wall time.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
