"""Common random numbers and reproducibility."""
import numpy as np

from agents.base import Side
from sim import Marketplace


def test_same_config_and_seed_are_bit_identical(tiny):
    first = Marketplace(tiny("market=delivery", "seed=4")).run()
    second = Marketplace(tiny("market=delivery", "seed=4")).run()
    assert first.daily.equals(second.daily)
    assert first.agents.equals(second.agents)
    assert first.summary == second.summary
    third = Marketplace(tiny("market=delivery", "seed=5")).run()
    assert not first.daily.equals(third.daily)


def _shared_traits(a: Side, b: Side, n: int) -> list[str]:
    return [f for f in a.fields if not np.array_equal(getattr(a, f)[:n], getattr(b, f)[:n])]


def test_adding_one_agent_leaves_every_other_agents_draws_unchanged(tiny):
    base = Marketplace(tiny("market=delivery", "population.buyers=500", "population.sellers=60",
                            "population.drivers=30"))
    more = Marketplace(tiny("market=delivery", "population.buyers=501", "population.sellers=61",
                            "population.drivers=31"))
    for side, n in (("buyers", 500), ("sellers", 60), ("drivers", 30)):
        assert _shared_traits(base.sides[side], more.sides[side], n) == [], side
    base.step(), more.step()
    buyers_a, buyers_b = base.sides["buyers"], more.sides["buyers"]
    # Day 0's purchase intentions (and the gaps drawn after them) are the same for the shared buyers.
    assert np.array_equal(buyers_a.orders[:500], buyers_b.orders[:500])
    assert np.array_equal(buyers_a.next_purchase[:500], buyers_b.next_purchase[:500])


def test_seller_only_parameter_leaves_buyers_first_day_intentions_identical(tiny):
    low = Marketplace(tiny("market=goods", "market.sellers.commission=0.05", "market.sellers.quality_a=5"))
    high = Marketplace(tiny("market=goods", "market.sellers.commission=0.30", "market.sellers.quality_a=50"))
    low.step(), high.step()
    assert low.sides["buyers"].orders.sum() > 0
    assert np.array_equal(low.sides["buyers"].orders, high.sides["buyers"].orders)
    assert np.array_equal(low.sides["buyers"].purchase_rate, high.sides["buyers"].purchase_rate)
    # ...while the sellers' side really did change.
    assert low.today["sellers_revenue"] != high.today["sellers_revenue"]


def test_branch_is_a_real_copy(tiny):
    model = Marketplace(tiny("market=rides"))
    model.run_until(20)
    twin = model.branch()
    assert twin.sides["drivers"].x is not model.sides["drivers"].x
    a, b = model.run(), twin.run()
    assert a.daily.equals(b.daily) and a.agents.equals(b.agents)
