"""The engine on each market: sides, money, results."""
import json

import numpy as np
import pandas as pd
import pytest

from sim import Marketplace, Result

SIDE_KEYS = {"monthly_churn", "ltv", "cac", "ltv_cac", "nps", "ttfv_days", "activation_30d", "active_end"}
PLATFORM_KEYS = {"gmv", "take_revenue", "marketing_cost", "cs_cost", "net_contribution"}
MARKET_SIDES = {"goods": {"buyers", "sellers"}, "rides": {"buyers", "drivers"},
                "delivery": {"buyers", "sellers", "drivers"}}


@pytest.mark.parametrize("market", sorted(MARKET_SIDES))
def test_each_market_runs_with_its_sides(tiny, market):
    result = Marketplace(tiny(f"market={market}")).run()
    sides = MARKET_SIDES[market]
    assert set(result.summary) == sides | {"platform", "run"}
    for side in sides:
        assert SIDE_KEYS <= set(result.summary[side])
        for column in ("active", "joined", "churned", "activated"):
            assert f"{side}_{column}" in result.daily
    assert PLATFORM_KEYS <= set(result.summary["platform"])
    assert len(result.daily) == 90
    assert set(result.agents.side) == sides
    platform = result.summary["platform"]
    assert platform["gmv"] > platform["take_revenue"] > 0
    net = platform["take_revenue"] - platform["payment_costs"] - platform["marketing_cost"] - platform["cs_cost"] \
        - platform["incentive_cost"]
    assert platform["net_contribution"] == pytest.approx(net)


def test_money_adds_up_per_agent(tiny):
    result = Marketplace(tiny("market=delivery")).run()
    by_side = result.agents.groupby("side").revenue.sum()
    assert by_side.sum() == pytest.approx(result.summary["platform"]["take_revenue"], rel=1e-9)


def test_result_saves_and_loads(tiny, tmp_path):
    result = Marketplace(tiny("market=delivery")).run()
    result.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"daily.parquet", "agents.parquet", "summary.json", "config.yaml"}
    loaded = Result.load(tmp_path)
    pd.testing.assert_frame_equal(loaded.daily, result.daily)
    assert loaded.summary == json.loads(json.dumps(result.summary))
    assert len(loaded.agents) == len(result.agents)


def test_agents_table_has_one_row_per_agent(tiny):
    model = Marketplace(tiny("market=goods"))
    result = model.run()
    assert len(result.agents) == sum(side.n for side in model.sides.values())
    new = result.agents[result.agents.channel != "initial"]
    assert set(new.channel) <= {"paid", "organic", "referral"} and len(new) > 0
    paid = new[new.channel == "paid"]
    assert (paid.cac > 0).all() and (new[new.channel == "organic"].cac == 0).all()


def test_nearest_driver_distance_matches_torus_result():
    from sim.spatial import expected_nearest_distance, nearest_distance
    from sim.streams import Streams
    s = Streams(11, any_name=True)
    n, queries = 2000, 20000
    d = nearest_distance(s.uniform("qx", 0, np.arange(queries)), s.uniform("qy", 0, np.arange(queries)),
                         s.uniform("px", 0, np.arange(n)), s.uniform("py", 0, np.arange(n)))
    # Mean over 20,000 queries against one fixed set of points: 4 standard errors of the mean.
    assert abs(d.mean() - expected_nearest_distance(n)) < 4 * d.std() / np.sqrt(queries)
    assert abs(expected_nearest_distance(n) - 0.5 / np.sqrt(n)) < 0.01 * 0.5 / np.sqrt(n)


def test_no_supply_means_failed_attempts_and_unhappier_buyers(tiny):
    starved = Marketplace(tiny("market=rides", "population.drivers=2",
                               "market.drivers.acquisition.marketing_budget_per_1k=0",
                               "market.drivers.acquisition.organic_per_1k=0")).run()
    served = Marketplace(tiny("market=rides")).run()
    share = lambda r: r.daily.buyers_failed.sum() / r.daily.buyers_orders.sum()
    assert share(starved) > 0.5 > share(served)
    assert starved.summary["buyers"]["satisfaction_end"] < served.summary["buyers"]["satisfaction_end"]


def test_onboarding_quality_sets_activation(tiny):
    good = Marketplace(tiny("market=goods", "market.sellers.onboarding.quality=0.95")).run()
    poor = Marketplace(tiny("market=goods", "market.sellers.onboarding.quality=0.1")).run()
    assert good.summary["sellers"]["ttfv_days"] < poor.summary["sellers"]["ttfv_days"]
    assert good.summary["sellers"]["activation_30d"] > poor.summary["sellers"]["activation_30d"]


def test_keyword_construction_equals_a_composed_config(caplog):
    """Marketplace(market=..., scale=..., seed=..., key=value) is Marketplace(load_config([...])), day for day;
    Mesa's batch_run drives it; and a run logs nothing per step, even at INFO."""
    import logging

    import mesa

    from experiments.config import load_config

    caplog.set_level(logging.INFO)
    by_keywords = Marketplace(market="rides", scale="tiny", seed=3, days=6, cs__staff=3).run()
    composed = Marketplace(load_config(["market=rides", "scale=tiny", "seed=3", "days=6", "cs.staff=3"])).run()
    pd.testing.assert_frame_equal(by_keywords.daily, composed.daily)
    assert not [r for r in caplog.records if r.name.startswith("MESA")]
    with pytest.raises(TypeError, match="not both"):
        Marketplace(load_config(["scale=tiny"]), seed=4)
    rows = mesa.batch_run(Marketplace, parameters={"market": "goods", "scale": "tiny", "seed": [1, 2]},
                          iterations=1, max_steps=2, number_processes=1, display_progress=False)
    assert [(r["seed"], r["day"]) for r in rows] == [(1, 2), (2, 2)]
    figures = [{k: v for k, v in r.items() if k not in ("RunId", "seed")} for r in rows]
    assert figures[0] != figures[1]   # two seeds, two runs


def test_a_side_reads_writes_copies_and_pickles_through_its_views():
    import copy
    import pickle

    from agents.base import Side

    side = Side("buyers", {"flag": (np.int8, 7)}, deferred=("flag",))
    side.add(3)
    side.satisfaction[1] = 0.25                      # a view: writes reach the array
    assert side._data["satisfaction"][1] == np.float32(0.25)
    assert "flag" not in side._data and side.flag.tolist() == [7, 7, 7]   # made when first read
    side.add(20)                                     # grows past the initial capacity: views follow
    assert side.satisfaction.size == 23 and side.satisfaction[1] == np.float32(0.25) and side.flag.size == 23
    for twin in (copy.deepcopy(side), pickle.loads(pickle.dumps(side))):
        twin.satisfaction[1] = 0.75
        twin.add(1)
        assert twin.satisfaction.base is twin._data["satisfaction"] and twin.n == 24
        assert side.satisfaction[1] == np.float32(0.25) and side.n == 23   # independent of the original
    with pytest.raises(ValueError, match="taken by Side"):
        Side("buyers", {"add": (np.int8, 0)})
