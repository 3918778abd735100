"""The SolaraViz page of `twosided app`: controls, live charts, the city map.

Served by ``solara run experiments.app_page`` (see experiments/app.py); also
usable in a notebook (``from experiments.app_page import Page; Page()``).

Each browser session renders :func:`Page` in its own kernel and creates its
own :class:`experiments.app_model.MarketLab` (``solara.use_memo``), so two
students never step each other's market. Charts are matplotlib figures
rendered on the server to PNG: nothing is fetched from a CDN.
"""
from __future__ import annotations

import html
import math
import warnings

import matplotlib

matplotlib.use("Agg")

import markdown  # noqa: E402
import numpy as np  # noqa: E402
import solara  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

with warnings.catch_warnings():  # Mesa's own hook-order warning, not ours
    warnings.simplefilter("ignore", UserWarning)
    from mesa.visualization import SolaraViz  # noqa: E402
    from mesa.visualization.user_param import Slider  # noqa: E402

from experiments.app_model import (DEFAULTS, NO_PRESET, MarketLab, market_choices,  # noqa: E402
                                   policy_choices, preset_choices)

SIDE_COLOUR = {"buyers": "#1f77b4", "sellers": "#ff7f0e", "drivers": "#2ca02c"}
FIG_SIZE = (5.6, 3.0)
DPI = 90

INTRO = """
**What you are looking at.** Each step is one simulated day of a marketplace: new
{sides} join (paid marketing, word of mouth that grows with the *other* side,
referrals), get matched, have good or bad experiences, and some leave. Change the
controls on the left, then press **Reset** to start a new market with them;
**Step** advances one day, **▶** plays.
"""

DEFINITIONS = """
**How the numbers are defined.** *Active*: agents who have joined and not left.
*Monthly churn* on day t: agents who left during the last 30 days (days t-29..t)
divided by those active 30 days earlier (the initial population for the first
month); agents who joined and left within the window count only in the numerator.
*NPS*: once a month a random 5% of active agents answer 0-10; % of 9-10 minus % of
0-6. *GMV*: what buyers paid; *net contribution*: the platform's take less payment
costs, marketing and CS costs (both as 7-day averages, currency per day).
"""

SIDE_BY_SIDE = """
**Side by side.** Two copies of the same market with the same seed, so every agent
has the same luck in both: solid lines run the chosen CS policy, dashed lines run
without one (`none`). The gap between them is the policy's effect, not chance.
"""


# -- model parameters (the sidebar) -------------------------------------------
def model_params() -> dict:
    """The controls of the page, as Mesa's SolaraViz expects them."""
    return {
        "preset": {"type": "Select", "value": DEFAULTS["preset"], "values": [NO_PRESET] + preset_choices(),
                   "label": "Preset"},
        "market": {"type": "Select", "value": DEFAULTS["market"], "values": market_choices(), "label": "Market"},
        "policy": {"type": "Select", "value": DEFAULTS["policy"], "values": policy_choices(),
                   "label": "CS policy"},
        "side_by_side": {"type": "Checkbox", "value": DEFAULTS["side_by_side"],
                         "label": "Side by side: also run without the policy"},
        "buyers": Slider("Buyers", DEFAULTS["buyers"], 100, 10000, 100),
        "sellers": Slider("Sellers", DEFAULTS["sellers"], 10, 1000, 10),
        "drivers": Slider("Drivers", DEFAULTS["drivers"], 4, 400, 4),
        "take_rate": Slider("Take rate", DEFAULTS["take_rate"], 0.0, 0.5, 0.01),
        "onboarding_quality": Slider("Onboarding", DEFAULTS["onboarding_quality"], 0.0, 1.0, 0.05),
        "cs_staff": Slider("CS staff", DEFAULTS["cs_staff"], 0, 20, 1),
        "marketing_pct": Slider("Marketing %", DEFAULTS["marketing_pct"], 0, 300, 10),
        "seed": {"type": "InputText", "value": DEFAULTS["seed"], "label": "Seed"},
    }


# -- figures ----------------------------------------------------------------
def _figure(title: str):
    fig = Figure(figsize=FIG_SIZE, dpi=DPI, layout="constrained")
    ax = fig.subplots()
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    return fig, ax


def _styles(lab: MarketLab):
    """(arm, linestyle, label suffix) per arm: the policy arm solid, the baseline dashed."""
    if len(lab.arms) == 1:
        return [(lab.arms[0], "-", "")]
    return [(lab.arms[1], "-", f" ({lab.arms[1].policy})"), (lab.arms[0], "--", " (none)")]


def _days_axis(ax, lab: MarketLab) -> None:
    ax.set_xlim(0, max(lab.day, 30))
    ax.set_xlabel("day", fontsize=8)


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best", frameon=False)


def _fmt(value, digits=0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def _chart(fig, lab: MarketLab, caption: str, key: str):
    with solara.Column(gap="0px", style={"height": "100%", "overflow": "hidden"}):
        solara.FigureMatplotlib(fig, format="png", dependencies=[id(lab), lab.day, key])
        solara.Text(caption, classes=[f"twosided-caption-{key}"], style={"font-size": "12px", "padding": "0 8px"})


def ActiveChart(lab: MarketLab):
    fig, ax = _figure("Active agents per side")
    for arm, ls, suffix in _styles(lab):
        days = np.arange(len(arm.rows))
        for side in lab.sides:
            ax.plot(days, lab.active(arm, side), ls, color=SIDE_COLOUR[side], lw=1.5,
                    label=lab.side_name(side) + suffix)
    _days_axis(ax, lab)
    ax.set_ylim(bottom=0)
    _legend(ax)
    arm = _styles(lab)[0][0]
    latest = lab.latest(arm)
    caption = f"day {lab.day}: " + " · ".join(
        f"{lab.side_name(s)} {_fmt(latest.get(f'{s}_active'))}" for s in lab.sides)
    return _chart(fig, lab, caption, "active")


def ChurnChart(lab: MarketLab):
    fig, ax = _figure("Monthly churn per side (%, trailing 30 days)")
    last = {}
    for arm, ls, suffix in _styles(lab):
        days = np.arange(len(arm.rows))
        for side in lab.sides:
            churn = 100 * lab.monthly_churn(arm, side)
            ax.plot(days, churn, ls, color=SIDE_COLOUR[side], lw=1.5, label=lab.side_name(side) + suffix)
            last.setdefault(side, churn[-1] if churn.size else math.nan)
    _days_axis(ax, lab)
    ax.set_ylim(bottom=0, top=max(5.0, ax.get_ylim()[1]))
    _legend(ax)
    if lab.day < 30:
        caption = f"day {lab.day}: monthly churn is shown from day 30 on"
    else:
        caption = f"day {lab.day}: " + " · ".join(f"{lab.side_name(s)} {_fmt(last[s], 1)}%" for s in lab.sides)
    return _chart(fig, lab, caption, "churn")


def NPSChart(lab: MarketLab):
    fig, ax = _figure("NPS per side (monthly survey)")
    last = {}
    for arm, ls, suffix in _styles(lab):
        for side in lab.sides:
            days, values = lab.nps(arm, side)
            ax.plot(days, values, ls, marker="o", ms=3, color=SIDE_COLOUR[side], lw=1.2,
                    label=lab.side_name(side) + suffix)
            last.setdefault(side, values[-1] if values.size else math.nan)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylim(-100, 100)
    _days_axis(ax, lab)
    _legend(ax)
    if lab.day < 30:
        caption = f"day {lab.day}: the first survey is on day 29"
    else:
        caption = f"day {lab.day}: last survey " + " · ".join(f"{lab.side_name(s)} {_fmt(last[s])}" for s in lab.sides)
    return _chart(fig, lab, caption, "nps")


def MoneyChart(lab: MarketLab):
    fig, ax = _figure("GMV and net contribution (7-day mean, per day)")
    for arm, ls, suffix in _styles(lab):
        days = np.arange(len(arm.rows))
        ax.plot(days, lab.money(arm, "gmv"), ls, color="#9467bd", lw=1.5, label="GMV" + suffix)
        ax.plot(days, lab.money(arm, "net_contribution"), ls, color="#8c564b", lw=1.5,
                label="net contribution" + suffix)
    ax.axhline(0, color="grey", lw=0.8)
    _days_axis(ax, lab)
    _legend(ax)
    arm = _styles(lab)[0][0]
    latest = lab.latest(arm)
    caption = (f"day {lab.day}: GMV {_fmt(latest.get('gmv'))} · net contribution "
               f"{_fmt(latest.get('net_contribution'))} (today)")
    return _chart(fig, lab, caption, "money")


def CityMap(lab: MarketLab):
    arm = _styles(lab)[0][0]
    city = lab.city(arm)
    if city is None:
        return _prose("**No city map in the goods market**: the platform handles logistics, "
                      "so there are no drivers to place. Choose *rides* or *delivery*.")
    which = f" ({arm.label})" if len(lab.arms) > 1 else ""
    fig = Figure(figsize=(4.6, 4.0), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    ax.set_title(f"The city today{which}", fontsize=10)
    rider = lab.side_name("buyers")[:-1] if lab.side_name("buyers").endswith("s") else lab.side_name("buyers")
    driver = lab.side_name("drivers")
    layers = [("offline", f"{driver} offline", dict(s=6, c="#cccccc", marker="o")),
              ("idle", f"{driver} online, no trip", dict(s=14, c="#2ca02c", marker="o")),
              ("busy", f"{driver} who drove today", dict(s=14, c="#1f77b4", marker="o")),
              ("sellers", lab.side_name("sellers"), dict(s=10, c="#ff7f0e", marker="s")),
              ("waiting", f"{rider}s left waiting (no car)", dict(s=18, c="#d62728", marker="x"))]
    counts = {}
    for key, label, style in layers:
        if key in city:
            pts = city[key]
            counts[key] = len(pts)
            ax.scatter(pts[:, 0] if len(pts) else [], pts[:, 1] if len(pts) else [], label=f"{label} ({len(pts)})",
                       linewidths=1, **style)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, frameon=False)
    caption = (f"day {lab.day}: {counts.get('busy', 0)} drove, {counts.get('idle', 0)} idle, "
               f"{counts.get('waiting', 0)} left waiting")
    return _chart(fig, lab, caption, "map")


def Explainer(lab: MarketLab):
    sides = ", ".join(lab.side_name(s) for s in lab.sides)
    parts = [f"**Now running:** {html.escape(lab.describe())}. Day **{lab.day}** of {lab.days}."]
    if lab.warning:
        parts.append(f"⚠ {html.escape(lab.warning)}")
    if lab.preset:
        parts.append(f"**Preset: {lab.preset.title} ({lab.preset.start}).** {lab.preset.explanation}")
        parts.append("The preset fixes the market, the starting sizes, marketing and the behaviour "
                     "parameters in `conf/presets/" + lab.preset.name + ".yaml`; take rate, onboarding, "
                     "CS staff, policy and seed still come from the controls.")
    else:
        parts.append(INTRO.format(sides=sides).strip())
    if len(lab.arms) > 1:
        parts.append(SIDE_BY_SIDE.strip())
    parts.append(DEFINITIONS.strip())
    return _prose("\n\n".join(parts))


def _prose(text: str):
    """Markdown rendered on the server to plain HTML (solara.Markdown would load KaTeX and mermaid)."""
    return solara.HTML(tag="div", unsafe_innerHTML=markdown.markdown(text), classes=["twosided-prose"],
                       style="font-size: 13px; padding: 4px 8px; height: 100%; overflow-y: auto")


# Vuetify hides a slider's value until it is dragged; a student needs to see it.
CSS = """
.v-slider__thumb-label-container { display: block !important; }
.v-input__slider { margin-top: 18px; }
"""

COMPONENTS = [Explainer, ActiveChart, ChurnChart, NPSChart, MoneyChart, CityMap]


@solara.component
def Page():
    """The whole page. One MarketLab per browser session (per kernel)."""
    lab = solara.use_memo(lambda: MarketLab(), [])
    solara.Style(CSS)
    SolaraViz(lab, components=COMPONENTS, model_params=model_params(),
                     name="twosided: marketplace lab", play_interval=150, render_interval=1)


page = Page
