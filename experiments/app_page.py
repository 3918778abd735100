"""The page of `twosided app`: controls, live charts, the city map and the phase portrait.

Served by ``solara run experiments.app_page`` (see experiments/app.py); also
usable in a notebook (``from experiments.app_page import Page; Page()``).

Each browser session renders :func:`Page` in its own kernel and holds its own
:class:`experiments.app_model.MarketLab` (a ``mesa.Model``), so two students
never step each other's market. The page is written with Solara directly
rather than Mesa's ``SolaraViz``: its sidebar has fixed controls of its own
(play interval, threads, page tabs) and reads the model's parameters once, so
a preset could not move the sliders it sets.

Speed: playing steps several days per frame and then redraws; each chart is
a :class:`experiments.app_vega.VegaChart` that keeps its Vega view and only
swaps its rows, so a frame costs the server a few milliseconds of data and
the browser a redraw.
"""
from __future__ import annotations

import html
import threading
import time

import markdown
import solara

from experiments import app_charts
from experiments.app_model import (DEFAULTS, NO_PRESET, MarketLab, default_controls, load_preset, market_choices,
                                   market_sides, policy_choices, preset_choices, side_names)
from experiments.app_vega import VegaChart, library_paths
from experiments.phase_portrait import GRID_POINTS, PORTRAIT_DAYS, cached_portrait, portrait_for

# Days simulated between two redraws while playing; the choice a teacher has
# between a smooth, slow picture and a fast one.
SPEEDS = {"slow (1 day per frame)": 1, "normal (5 days per frame)": 5, "fast (15 days per frame)": 15}
DEFAULT_SPEED = "normal (5 days per frame)"
# Shortest time between two frames (s): no faster than the browser redraws anyway.
MIN_FRAME_SECONDS = 0.12

INTRO = """
**What you are looking at.** Each step is one simulated day of a marketplace: new
{sides} join (paid marketing, word of mouth that grows with the *other* side,
referrals), get matched, have good or bad experiences, and some leave. Choose a
scenario and the levers on the left, press **Start this market**, then **▶ Play**
or **+1 day**.
"""

DEFINITIONS = """
**How the numbers are defined.** *Size relative to start*: agents active today
divided by the same side's agents on day 0 (1 = as many as at the start), so a
side of 80 and a side of 2,000 share one axis. *Monthly churn* on day t: agents who
left during the last 30 days (days t-29..t) divided by those active 30 days
earlier (the initial population for the first month). *NPS*: once a month a
random 5% of active agents answer 0-10; % of 9-10 minus % of 0-6. *GMV*: what
buyers paid; *net contribution*: the platform's take less payment costs,
marketing and CS costs (7-day averages, currency per day).
"""

SIDE_BY_SIDE = """
**Side by side.** Two copies of the same market with the same seed, so every agent
has the same luck in both: solid lines run the chosen CS policy, dashed lines run
without one (`none`). The gap between them is the policy's effect, not chance.
"""

PORTRAIT_TEXT = """
**The tipping point.** The same city started from a grid of {n} sizes of
{buyers} and {supply}, each simulated for {days} days with the same seed and
rules. Green cells grow (the sides end larger than they started, on average), red
ones shrink; grey lines are where each start went, the blue line is the market
above. The border between green and red is the critical mass.
"""

# Vuetify hides a slider's value until it is dragged; a student needs to see it.
CSS = """
.v-slider__thumb-label-container { display: block !important; }
.v-input__slider { margin-top: 22px; }
.twosided-prose p { margin-bottom: 6px; }
"""


def _prose(text: str, classes: list[str] | None = None):
    """Markdown rendered on the server to plain HTML (solara.Markdown would load KaTeX and mermaid)."""
    return solara.HTML(tag="div", unsafe_innerHTML=markdown.markdown(text),
                       classes=["twosided-prose"] + (classes or []), style="font-size: 13px; padding: 4px 8px")


def _fmt(value, digits=0) -> str:
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return "n/a"


# -- the controls ----------------------------------------------------------------------
def control_labels(market: str) -> dict[str, str]:
    """What each control is called for ``market`` (sides by the names a student knows)."""
    lab_names = side_names(market)
    supply = [lab_names[s] for s in market_sides(market) if s != "buyers"]
    return {"buyers": f"{lab_names['buyers'].capitalize()} at the start",
            "sellers": f"{lab_names.get('sellers', 'sellers').capitalize()} at the start",
            "drivers": f"{lab_names.get('drivers', 'drivers').capitalize()} at the start",
            "take_rate": f"Platform's cut of each sale, % (paid by {' and '.join(supply)})",
            "onboarding_quality": "Onboarding quality for newcomers (0 poor, 1 excellent)",
            "cs_staff": "Customer-success agents on the help desk",
            "marketing_pct": "Marketing budget, % of the usual"}


SLIDER_RANGE = {"buyers": (100, 10000, 100), "sellers": (10, 1000, 10), "drivers": (4, 400, 4),
                "take_rate": (0, 50, 1), "onboarding_quality": (0.0, 1.0, 0.05), "cs_staff": (0, 20, 1),
                "marketing_pct": (0, 300, 10)}


def initial_settings(preset: str = NO_PRESET, market: str = DEFAULTS["market"]) -> dict:
    """Everything the sidebar holds when a preset (or market) is chosen: the preset's or market's values."""
    chosen = load_preset(preset) if preset != NO_PRESET else None
    market = chosen.market if chosen else market
    return dict(preset=preset, market=market, policy=DEFAULTS["policy"], side_by_side=DEFAULTS["side_by_side"],
                seed=DEFAULTS["seed"], **default_controls(market, chosen))


def lab_from(settings: dict) -> MarketLab:
    """The market the settings describe (take rate in % on the page, a fraction in the model)."""
    return MarketLab(**settings)


@solara.component
def Controls(settings: solara.Reactive, applied: dict, on_start):
    s = settings.value
    labels = control_labels(s["market"])

    def put(key):
        return lambda value: settings.set({**settings.value, key: value})

    def choose_preset(label):
        settings.set({**initial_settings(label, settings.value["market"]),
                      "policy": settings.value["policy"], "side_by_side": settings.value["side_by_side"],
                      "seed": settings.value["seed"]})

    def choose_market(market):
        settings.set({**initial_settings(NO_PRESET, market), "policy": settings.value["policy"],
                      "side_by_side": settings.value["side_by_side"], "seed": settings.value["seed"]})

    with solara.Card("Scenario", margin=0):
        solara.Select("Preset (a ready-made lesson)", value=s["preset"], values=[NO_PRESET] + preset_choices(),
                      on_value=choose_preset)
        solara.Select("Market", value=s["market"], values=market_choices(), on_value=choose_market,
                      disabled=s["preset"] != NO_PRESET)
        solara.Select("Customer-success (CS) policy", value=s["policy"], values=policy_choices(),
                      on_value=put("policy"))
        solara.Checkbox(label="Side by side: also run the same market without the policy",
                        value=s["side_by_side"], on_value=put("side_by_side"))
    with solara.Card("Starting sizes", margin=0):
        for side in market_sides(s["market"]):
            lo, hi, step = SLIDER_RANGE[side]
            solara.SliderInt(labels[side], value=int(s[side]), min=lo, max=hi, step=step, on_value=put(side))
    with solara.Card("Levers", margin=0):
        lo, hi, step = SLIDER_RANGE["take_rate"]
        solara.SliderInt(labels["take_rate"], value=int(round(100 * s["take_rate"])), min=lo, max=hi, step=step,
                         on_value=lambda v: settings.set({**settings.value, "take_rate": v / 100}))
        lo, hi, step = SLIDER_RANGE["onboarding_quality"]
        solara.SliderFloat(labels["onboarding_quality"], value=s["onboarding_quality"], min=lo, max=hi, step=step,
                           on_value=put("onboarding_quality"))
        for key in ("cs_staff", "marketing_pct"):
            lo, hi, step = SLIDER_RANGE[key]
            solara.SliderInt(labels[key], value=int(s[key]), min=lo, max=hi, step=step, on_value=put(key))
        solara.InputInt("Random seed (same seed = same luck for every agent)", value=int(s["seed"]),
                        on_value=lambda v: settings.set({**settings.value, "seed": max(0, int(v))}))
    pending = s != applied
    solara.Button("Start this market", color="primary" if pending else None, on_click=on_start, block=True,
                  classes=["twosided-start"])
    if pending:
        solara.Info("The controls differ from the market running now: press *Start this market* to apply them.",
                    dense=True)


# -- the charts -------------------------------------------------------------------------
@solara.component
def Chart(spec_and_data, key: str):
    spec, data = spec_and_data
    VegaChart.element(spec=spec, datasets=data, libraries=library_paths(), css_class=f"twosided-chart-{key}")


@solara.component
def Readout(lab: MarketLab, frame: int):
    _ = frame   # the readout reads the model; frame says it moved
    arm = lab.arms[-1]
    latest = lab.latest(arm)
    sizes = " · ".join(f"{lab.side_name(s)} {_fmt(latest.get(f'{s}_active'))}" for s in lab.sides)
    solara.Text(f"Day {lab.day} of {lab.days}", classes=["twosided-day"],
                style={"font-size": "20px", "font-weight": "bold"})
    solara.Text(f"Active now: {sizes} · GMV today {_fmt(latest.get('gmv'))}", classes=["twosided-readout"],
                style={"font-size": "14px", "padding-left": "12px"})


def explanation(lab: MarketLab) -> str:
    """The prose above the charts: what runs, the preset's story, the definitions."""
    sides = ", ".join(lab.side_name(s) for s in lab.sides)
    parts = [f"**Now running:** {html.escape(lab.describe())}."]
    if lab.warning:
        parts.append(f"⚠ {html.escape(lab.warning)}")
    if lab.preset:
        parts.append(f"**Preset: {lab.preset.title} ({lab.preset.start}).** {lab.preset.explanation}")
        parts.append(f"The preset sets the market, the starting sizes and the levers shown on the left, and "
                     f"the behaviour in `conf/presets/{lab.preset.name}.yaml`; move a lever and restart to "
                     f"see what it changes.")
    else:
        parts.append(INTRO.format(sides=sides).strip())
    if len(lab.arms) > 1:
        parts.append(SIDE_BY_SIDE.strip())
    return "\n\n".join(parts)


@solara.component
def PortraitPanel(lab: MarketLab, frame: int):
    key, cfg = lab.portrait_request()
    portrait = cached_portrait(key)
    progress = solara.use_reactive("")
    _ = frame   # redrawn every frame: this market's path moves

    def compute():
        portrait_for(key, cfg, progress=lambda done, total: progress.set(f"{done} of {total} runs done"))

    task = solara.lab.use_task(compute, dependencies=None, prefer_threaded=True)

    if portrait is None:
        supply = lab.side_name("sellers" if "sellers" in lab.sides else "drivers")
        _prose(f"**The tipping point.** Where does this market grow, and where does it unravel? "
               f"Computing it simulates {GRID_POINTS * GRID_POINTS} markets started from a grid of sizes of "
               f"{lab.side_name('buyers')} and {supply} for {PORTRAIT_DAYS} days (under a minute; computed "
               f"once, then kept for everyone on this server).")
        solara.Button("Compute the tipping point", on_click=task, disabled=task.pending,
                      classes=["twosided-portrait-button"])
        if task.pending:
            solara.Text(f"Simulating... {progress.value}", classes=["twosided-portrait-progress"])
        return
    supply = portrait.supply
    _prose(PORTRAIT_TEXT.format(n=len(portrait.runs), buyers=lab.side_name("buyers"), supply=lab.side_name(supply),
                                days=portrait.days))
    Chart(app_charts.portrait_chart(lab, portrait), "portrait")


@solara.component
def Charts(lab: MarketLab, frame: int):
    _ = frame   # the charts read the model; frame says it moved
    with solara.Columns([1, 1]):
        Chart(app_charts.size_chart(lab), "size")
        Chart(app_charts.churn_chart(lab), "churn")
    with solara.Columns([1, 1]):
        Chart(app_charts.nps_chart(lab), "nps")
        Chart(app_charts.money_chart(lab), "money")
    city = app_charts.map_chart(lab)
    with solara.Columns([1, 1]):
        if city is None:
            _prose("**No city map in the goods market**: the platform handles logistics, so there are no "
                   "drivers to place. Choose *rides* or *delivery*.")
        else:
            Chart(city, "map")
        with solara.Column():
            PortraitPanel(lab, frame)
    _prose(DEFINITIONS.strip())


@solara.component
def Page():
    """The whole page. One MarketLab per browser session (per kernel)."""
    settings = solara.use_reactive(solara.use_memo(initial_settings, []))
    applied = solara.use_reactive(settings.value)
    lab = solara.use_reactive(solara.use_memo(lambda: lab_from(settings.value), []))
    frame = solara.use_reactive(0)
    playing = solara.use_reactive(False)
    speed = solara.use_reactive(DEFAULT_SPEED)
    error = solara.use_reactive("")

    def start():
        playing.set(False)
        try:
            lab.set(lab_from(settings.value))
            applied.set(settings.value)
            error.set("")
        except Exception as problem:   # a setting the model rejects: say so, keep the old market
            error.set(f"Could not start this market: {problem}")
        frame.set(frame.value + 1)

    def advance(days: int) -> None:
        model = lab.value
        for _ in range(days):
            if not model.running:
                break
            model.step()
        frame.set(frame.value + 1)

    def play_loop(cancel: threading.Event):
        model = lab.value
        while playing.value and model.running and not cancel.is_set():
            started = time.perf_counter()
            advance(SPEEDS[speed.value])
            time.sleep(max(0.0, MIN_FRAME_SECONDS - (time.perf_counter() - started)))
        if not model.running:
            playing.set(False)

    solara.use_thread(play_loop, dependencies=[playing.value, lab.value], intrusive_cancel=False)

    solara.Style(CSS)
    solara.Title("twosided: marketplace lab")
    with solara.AppBar():
        solara.AppBarTitle("twosided: marketplace lab")
    with solara.Sidebar():
        Controls(settings, applied.value, start)
    model = lab.value
    with solara.Column(style={"padding": "8px"}):
        with solara.Row(style={"align-items": "center"}):
            solara.Button("❚❚ Pause" if playing.value else "▶ Play", color="primary",
                          on_click=lambda: playing.set(not playing.value), disabled=not model.running,
                          classes=["twosided-play"])
            solara.Button("+1 day", on_click=lambda: advance(1), disabled=playing.value or not model.running,
                          classes=["twosided-step"])
            solara.Select("Speed", value=speed.value, values=list(SPEEDS), on_value=speed.set,
                          style={"max-width": "240px"})
            Readout(model, frame.value)
        if error.value:
            solara.Error(error.value)
        _prose(explanation(model))
        Charts(model, frame.value)


page = Page
