"""`twosided app` without a browser: the model behind the page, the page itself
(rendered with solara.render), the command line, and the critical-mass preset."""
from __future__ import annotations

import numpy as np
import pytest

from experiments import app as app_cli
from experiments.app_model import (
    CONTROL_KEYS,
    MarketLab,
    control_overrides,
    default_controls,
    load_preset,
    preset_choices,
    preset_overrides,
)
from experiments.config import load_config


def test_controls_become_config_overrides_for_the_sides_a_market_has():
    rides = control_overrides("rides", buyers=1500, sellers=99, drivers=60, take_rate=0.3,
                              onboarding_quality=0.9, cs_staff=3, marketing_pct=50)
    cfg = load_config(["market=rides", *rides])
    assert cfg.population.buyers == 1500 and cfg.population.drivers == 60
    assert not any(o.startswith("population.sellers") for o in rides)   # rides has no sellers
    assert cfg.market.drivers.commission == pytest.approx(0.3)
    assert cfg.market.buyers.onboarding.quality == pytest.approx(0.9)
    assert cfg.market.drivers.onboarding.quality == pytest.approx(0.9)
    assert cfg.cs.staff == 3
    default = load_config(["market=rides"]).market
    assert cfg.market.buyers.acquisition.marketing_budget_per_1k == pytest.approx(
        0.5 * default.buyers.acquisition.marketing_budget_per_1k)
    delivery = load_config(["market=delivery", *control_overrides(
        "delivery", buyers=900, sellers=90, drivers=30, take_rate=0.1, onboarding_quality=0.5, cs_staff=1,
        marketing_pct=0)])
    assert delivery.market.sellers.commission == pytest.approx(0.1)
    assert delivery.market.drivers.commission == pytest.approx(0.1)
    assert delivery.market.sellers.acquisition.marketing_budget_per_1k == 0
    with pytest.raises(ValueError, match="unknown control"):
        control_overrides("rides", buyers=10, drivers=1, riders=5)


def test_untouched_controls_show_the_market_and_change_nothing():
    """The sliders start at the configuration's own values, so leaving them alone adds no override."""
    for market in ("goods", "rides", "delivery"):
        cfg = load_config([f"market={market}"])
        shown = default_controls(market)
        supply = "sellers" if "sellers" in cfg.market.sides else "drivers"
        assert shown["take_rate"] == pytest.approx(getattr(cfg.market, supply).commission)
        assert shown["onboarding_quality"] == pytest.approx(cfg.market.buyers.onboarding.quality)
        assert shown["cs_staff"] == cfg.cs.staff and shown["marketing_pct"] == 100
        assert set(shown) <= set(CONTROL_KEYS)
        assert ("sellers" in shown) == ("sellers" in cfg.market.sides)
        assert ("drivers" in shown) == ("drivers" in cfg.market.sides)
        overrides = control_overrides(market, **shown)
        assert all(o.startswith("population.") for o in overrides), overrides
    # drivers keep their own onboarding quality (0.7) while riders' (0.8) is what the slider shows
    lab = MarketLab(buyers=300, drivers=12, days=3)
    cfg = lab.arms[0].model.cfg
    assert cfg.market.drivers.onboarding.quality == load_config(["market=rides"]).market.drivers.onboarding.quality


def test_a_preset_sets_the_controls_it_runs():
    below = load_preset("critical_mass: below")
    shown = default_controls("rides", below)
    assert (shown["buyers"], shown["drivers"], shown["marketing_pct"]) == (200, 8, 0)
    lab = MarketLab(preset="critical_mass: below", days=3)
    cfg = lab.arms[0].model.cfg
    assert lab.controls == shown and lab.days == below.days == 365
    assert cfg.population.buyers == 200 and cfg.market.buyers.acquisition.marketing_budget_per_1k == 0
    assert cfg.market.city.max_pickup_minutes == 10
    # a moved lever wins over the preset: the student sees what the slider says
    moved = MarketLab(preset="critical_mass: below", marketing_pct=100, buyers=300, drivers=8)
    cfg = moved.arms[0].model.cfg
    default = load_config(["market=rides"]).market
    assert cfg.market.drivers.acquisition.marketing_budget_per_1k == pytest.approx(
        default.drivers.acquisition.marketing_budget_per_1k)
    assert cfg.population.buyers == 300


def test_marketlab_steps_days_and_draws_every_series():
    lab = MarketLab(buyers=500, drivers=20, seed="4", days=40)
    assert lab.steps == 0 and lab.day == 0 and lab.sides == ("buyers", "drivers")
    for _ in range(35):
        lab.step()
    assert lab.steps == 35 and lab.day == 35
    arm = lab.arms[0]
    assert lab.active(arm, "buyers").shape == (35,)
    churn = lab.rolling_churn_30d(arm, "drivers")
    assert np.isnan(churn[:29]).all() and np.isfinite(churn[29:]).all()
    # The definition on the page: churned on days t-29..t / active at the end of day t-30.
    churned = [r["drivers_churned"] for r in arm.rows]
    active = [r["drivers_active"] for r in arm.rows]
    assert churn[29] == pytest.approx(sum(churned[0:30]) / 20)
    assert churn[34] == pytest.approx(sum(churned[5:35]) / active[4])
    days, nps = lab.nps(arm, "buyers")
    assert list(days) == [29] and -100 <= nps[0] <= 100
    city = lab.city(arm)
    assert set(city) == {"busy", "idle", "offline", "waiting"}
    assert len(city["busy"]) + len(city["idle"]) + len(city["offline"]) == arm.rows[-1]["drivers_active"]
    assert len(city["waiting"]) <= arm.rows[-1]["buyers_failed"]
    for _ in range(10):
        lab.step()
    assert lab.day == 40 and not lab.running   # stops at its horizon


def test_goods_has_no_city_and_delivery_shows_restaurants():
    goods = MarketLab(market="goods", buyers=300, sellers=30, days=5)
    goods.step()
    assert goods.city(goods.arms[0]) is None and goods.sides == ("buyers", "sellers")
    delivery = MarketLab(market="delivery", buyers=300, sellers=30, drivers=12, days=5)
    delivery.step()
    assert len(delivery.city(delivery.arms[0])["sellers"]) == delivery.arms[0].rows[-1]["sellers_active"]


def test_readout_counts_sellers_paid_products_where_sellers_exist():
    from experiments.app_page import readout_text

    delivery = MarketLab(market="delivery", buyers=300, sellers=60, drivers=12, days=40)
    for _ in range(40):
        delivery.step()
    row = delivery.arms[-1].rows[-1]
    assert row["sellers_premium"] > 0   # 40 days of a 0.2%-a-day take-up among 60 restaurants
    assert (f"restaurants on the premium plan {row['sellers_premium']:,}, with promoted listings "
            f"{row['sellers_promoted']:,}") in readout_text(delivery)
    rides = MarketLab(buyers=300, drivers=12, days=2)
    rides.step()
    assert "premium" not in readout_text(rides)


def test_side_by_side_runs_both_arms_on_the_same_random_numbers():
    same = MarketLab(side_by_side=True, policy="none", buyers=400, drivers=16, days=20)
    for _ in range(20):
        same.step()
    a, b = same.arms
    assert [r["buyers_active"] for r in a.rows] == [r["buyers_active"] for r in b.rows]
    assert [r["gmv"] for r in a.rows] == [r["gmv"] for r in b.rows]
    policies = [p for p in ("fair_disputes", "tech_touch") if p in __import__(
        "experiments.app_model", fromlist=["policy_choices"]).policy_choices()]
    if not policies:
        pytest.skip("no CS policy besides none yet")
    paired = MarketLab(side_by_side=True, policy=policies[0], buyers=400, drivers=16, days=60)
    assert [arm.policy for arm in paired.arms] == ["none", policies[0]]
    for _ in range(60):
        paired.step()
    base, treated = paired.arms
    assert base.rows[0]["buyers_active"] == treated.rows[0]["buyers_active"]   # same start, same luck
    assert base.rows[-1] != treated.rows[-1]                                     # the policy acted


def test_a_bad_seed_is_reported_not_fatal():
    lab = MarketLab(seed="abc", buyers=200, drivers=8, days=3)
    assert lab.seed_value == 0 and "seed" in lab.warning


def test_presets_are_offered_and_complete():
    assert {"critical_mass: below", "critical_mass: above"} <= set(preset_choices())
    preset = load_preset("critical_mass: below")
    assert preset.market == "rides" and preset.population == {"buyers": 200, "drivers": 8}
    assert len(preset.explanation.split(". ")) == 2          # the page explains it in two sentences
    cfg = load_config(preset_overrides("critical_mass: above"))
    assert cfg.population.buyers == 2500 and cfg.market.city.max_pickup_minutes == 10
    with pytest.raises(ValueError):
        load_preset("critical_mass: sideways")


@pytest.mark.slow
def test_critical_mass_preset_below_unravels_and_above_grows():
    """The preset as the page runs it (default controls): the two starts diverge within a year."""
    end = {}
    for start in ("below", "above"):
        lab = MarketLab(preset=f"critical_mass: {start}", seed="2")
        assert lab.days == 365
        while lab.running:
            lab.step()
        rows, initial = lab.arms[0].rows, lab.arms[0].model.initial_size
        end[start] = {side: rows[-1][f"{side}_active"] / initial[side] for side in ("buyers", "drivers")}
        failed = sum(r["buyers_failed"] for r in rows[-60:]) / max(1, sum(r["buyers_orders"] for r in rows[-60:]))
        end[start]["failed"] = failed
    below, above = end["below"], end["above"]
    assert below["buyers"] < 0.7 and below["drivers"] < 0.7, end       # each side left
    assert above["buyers"] > 1.1 and above["drivers"] > 0.95, end      # the market grew
    assert above["buyers"] > 2 * below["buyers"] and above["drivers"] > 2 * below["drivers"], end
    assert below["failed"] > 0.5 > 0.2 > above["failed"], end         # "Sorry, no cars" in the thin city


def test_page_renders_steps_and_updates_in_place_without_a_browser():
    import ipyvuetify as v
    import solara

    from experiments.app_page import Page
    from experiments.app_vega import VegaChart

    @solara.component
    def InLayout():
        with solara.AppLayout():
            Page()

    _, rc = solara.render(InLayout(), handle_error=False)
    _, rc2 = solara.render(InLayout(), handle_error=False)   # a second session

    def text(rc, css):
        return rc.find(v.Html, class_=css).widget.children[0]

    def charts(rc):
        return {w.css_class.removeprefix("twosided-chart-"): w for w in rc.find(VegaChart).widgets}

    assert set(charts(rc)) == {"size", "churn", "nps", "money", "map"}
    assert text(rc, "twosided-day") == "Day 0 of 730"
    assert text(rc, "twosided-readout").startswith("Active now: riders 2,000 · drivers 80")
    before = {k: w.datasets for k, w in charts(rc).items()}
    specs = {k: w.spec for k, w in charts(rc).items()}
    step = rc.find(v.Btn, class_="twosided-step")
    for _ in range(3):
        step.widget.click()
    assert text(rc, "twosided-day") == "Day 3 of 730"
    after = {k: w.datasets for k, w in charts(rc).items()}
    # size, money and the map move every day; churn and NPS only from day 29-30 on (their rows are empty)
    assert {k for k in before if before[k] != after[k]} >= {"size", "money", "map"}
    assert {k: w.spec for k, w in charts(rc).items()} == specs            # in place: the spec is kept
    size_rows = after["size"]["series"]
    assert [len(r["day"]) for r in size_rows] == [3, 3] and size_rows[0]["series"] == "riders"
    assert text(rc2, "twosided-day") == "Day 0 of 730"                    # the other session did not move
    labels = [w.label for w in rc.find(v.Slider).widgets]
    assert "Riders at the start" in labels and not any("Sellers" in label for label in labels)
    selects = {w.label: w for w in rc.find(v.Select).widgets}
    preset = selects["Preset (a ready-made lesson)"]
    assert "critical_mass: below" in preset.items
    preset.v_model = "critical_mass: below"                               # the preset moves the sliders
    sliders = {w.label: w.v_model for w in rc.find(v.Slider).widgets}
    assert sliders["Riders at the start"] == 200 and sliders["Drivers at the start"] == 8
    assert sliders["Marketing budget, % of the usual"] == 0
    rc.find(v.Btn, class_="twosided-start").widget.click()
    assert text(rc, "twosided-day") == "Day 0 of 365"
    assert text(rc, "twosided-readout").startswith("Active now: riders 200 · drivers 8")
    rc.close()
    rc2.close()


@pytest.mark.slow
def test_phase_portrait_marks_where_the_critical_mass_city_grows():
    """Two starts of the critical-mass city, 25 riders per driver as in the preset: the thin one shrinks,
    the thick one grows (the preset's own claim, checked on seeds 0-7 there), and the page's chart shows it."""
    from experiments.app_charts import GROWS, SHRINKS, portrait_chart
    from experiments.phase_portrait import cache_key, cached_portrait, portrait_for

    lab = MarketLab(preset="critical_mass: below", seed="2")
    _, cfg = lab.portrait_request()
    key = cache_key(["test", *lab.overrides], (200, 2500), (8, 100), 180)
    assert cached_portrait(key) is None
    done = []
    portrait = portrait_for(key, cfg, progress=lambda d, total: done.append((d, total)))
    assert done[-1] == (4, 4) and cached_portrait(key) is portrait          # computed once, then cached
    by_start = {(r.buyers_start, r.supply_start): r for r in portrait.runs}
    assert not by_start[(200, 8)].grows and by_start[(2500, 100)].grows, {k: r.growth for k, r in by_start.items()}
    assert portrait.grows_from(2400, 110) is True and portrait.grows_from(210, 7) is False
    assert portrait.grows_from(5, 10_000) is None                            # outside the grid
    thin = by_start[(200, 8)]
    assert thin.buyers[0] == 200 and len(thin.buyers) == 180 // 5 + 1     # a point every 5 days
    for _ in range(3):
        lab.step()
    spec, data = portrait_chart(lab, portrait)
    outcomes = {(c["y0"] < 200 < c["y1"], c["x0"] < 8 < c["x1"]): c["outcome"] for c in data["cells"]}
    assert outcomes[(True, True)] == SHRINKS and GROWS in outcomes.values()
    assert len(data["paths"]) == 4 and data["current"][0]["x"][0] == 8 and len(data["current"][0]["x"]) == 4


def test_portrait_grid_spans_thin_and_thick_cities():
    """The page's grid reaches from a tenth of the default city to 1.5 times it, whatever the start."""
    from experiments.phase_portrait import GRID_POINTS

    key, _ = MarketLab(preset="critical_mass: below", days=3).portrait_request()
    _, buyers, drivers, days = key
    assert len(buyers) == len(drivers) == GRID_POINTS
    assert buyers[0] <= 200 and buyers[-1] >= 2500 and drivers[0] <= 8 and drivers[-1] >= 100
    assert not any(o.startswith(("population.buyers=", "population.drivers=")) for o in key[0])


def test_app_command_listens_on_localhost_by_default():
    args = app_cli.parse_args([])
    assert args.host == "127.0.0.1" and args.port == app_cli.DEFAULT_PORT
    argv = app_cli.solara_argv(app_cli.parse_args(["--port", "9123"]))
    assert argv[:2] == ["run", "experiments.app_page:Page"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "9123"
    assert "--production" in argv and "--no-open" in argv
    from experiments.cli import COMMANDS, USAGE
    assert COMMANDS["app"] == "experiments.app" and "app [--port N]" in USAGE
