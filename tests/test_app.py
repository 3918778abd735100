"""`twosided app` without a browser: the model behind the page, the page itself
(rendered with solara.render), the command line, and the critical-mass preset."""
from __future__ import annotations

import numpy as np
import pytest

from experiments import app as app_cli
from experiments.app_model import (NO_PRESET, MarketLab, control_overrides, load_preset, preset_choices,
                                   preset_overrides)
from experiments.config import load_config


def test_controls_become_config_overrides_for_the_sides_a_market_has():
    rides = control_overrides("rides", buyers=1500, sellers=99, drivers=60, take_rate=0.3,
                              onboarding_quality=0.9, cs_staff=3, marketing_pct=50)
    cfg = load_config(["market=rides", *rides])
    assert cfg.population.buyers == 1500 and cfg.population.drivers == 60
    assert not any(o.startswith("population.sellers") for o in rides)   # rides has no sellers
    assert cfg.market.drivers.commission == pytest.approx(0.3)
    assert cfg.market.buyers.onboarding.quality == pytest.approx(0.9)
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


def test_marketlab_steps_days_and_draws_every_series():
    lab = MarketLab(buyers=500, drivers=20, seed="4", days=40)
    assert lab.steps == 0 and lab.day == 0 and lab.sides == ("buyers", "drivers")
    for _ in range(35):
        lab.step()
    assert lab.steps == 35 and lab.day == 35
    arm = lab.arms[0]
    assert lab.active(arm, "buyers").shape == (35,)
    churn = lab.monthly_churn(arm, "drivers")
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


def test_page_renders_steps_and_redraws_without_a_browser():
    import ipyvuetify as v
    import ipywidgets
    import solara

    from experiments.app_page import Page

    @solara.component
    def InLayout():
        with solara.AppLayout():
            Page()

    _, rc = solara.render(InLayout(), handle_error=False)
    _, rc2 = solara.render(InLayout(), handle_error=False)   # a second session

    def caption(rc, key):
        return rc.find(v.Html, class_=f"twosided-caption-{key}").widget.children[0]

    before = [w.value for w in rc.find(ipywidgets.Image).widgets]
    assert len(before) == 5 and caption(rc, "active") == "day 0: riders 2,000 · drivers 80"
    step = rc.find(v.Btn, children=["Step"])
    for _ in range(3):
        step.widget.click()
    rc.find(v.Html, children=["Step: 3"]).assert_single()
    after = [w.value for w in rc.find(ipywidgets.Image).widgets]
    # active agents, money and the map move every day; churn and NPS only from day 29-30 on
    changed = [a != b for a, b in zip(after, before)]
    assert changed == [True, False, False, True, True], changed
    assert caption(rc, "active").startswith("day 3: riders ")
    rc2.find(v.Html, children=["Step: 0"]).assert_single()         # the other session did not move
    assert caption(rc2, "active") == "day 0: riders 2,000 · drivers 80"
    selects = {w.label: w for w in rc.find(v.Select).widgets}
    assert selects["Preset"].v_model == NO_PRESET and "critical_mass: below" in selects["Preset"].items
    assert set(selects["Market"].items) == {"goods", "rides", "delivery"}
    rc.close()
    rc2.close()


def test_app_command_listens_on_localhost_by_default():
    args = app_cli.parse_args([])
    assert args.host == "127.0.0.1" and args.port == app_cli.DEFAULT_PORT
    argv = app_cli.solara_argv(app_cli.parse_args(["--port", "9123"]))
    assert argv[:2] == ["run", "experiments.app_page:Page"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "9123"
    assert "--production" in argv and "--no-open" in argv
    from experiments.cli import COMMANDS, USAGE
    assert COMMANDS["app"] == "experiments.app" and "app [--port N]" in USAGE
