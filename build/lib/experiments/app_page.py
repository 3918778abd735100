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
import math
import threading
import time

import ipyvuetify as v
import markdown
import solara

from experiments import app_charts
from experiments.app_model import (
    DEFAULTS,
    NO_PRESET,
    MarketLab,
    default_controls,
    load_preset,
    market_choices,
    market_sides,
    policy_choices,
    preset_choices,
    side_names,
)
from experiments.app_vega import VegaChart, library_paths
from experiments.phase_portrait import GRID_POINTS, PORTRAIT_DAYS, cached_portrait, portrait_for

# Most days simulated between two redraws while playing: the teacher's choice
# between a smooth, slow picture and a fast one. A frame also ends once
# FRAME_SECONDS of simulating have passed, so a slow machine still redraws
# about four times a second and spends the rest of its time simulating.
SPEEDS = {"slow (1 day per frame)": 1, "normal (up to 10 days per frame)": 10, "fast (up to 30 days per frame)": 30}
DEFAULT_SPEED = "normal (up to 10 days per frame)"
FRAME_SECONDS = 0.25

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
side of 80 and a side of 2,000 share one axis. *Rolling 30-day churn* on day t:
agents who left during the last 30 days (days t-29..t) divided by those active
30 days earlier (the initial population for the first month); a live view of
every departure, not the summary's monthly churn of activated agents. *NPS*: once a month a
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
    """The market the settings describe (the sidebar shows the take rate in %, the settings hold a fraction)."""
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
        solara.Info("The controls differ from the market running now: press Start this market to apply them.",
                    dense=True)


# -- the charts -------------------------------------------------------------------------
def day_text(lab: MarketLab) -> str:
    """The day counter (the browser test reads it to measure days per second)."""
    return f"Day {lab.day} of {lab.days}"


def readout_text(lab: MarketLab) -> str:
    """Today's sizes and GMV of the policy arm, and, where sellers pay for products, how many hold each."""
    latest = lab.latest(lab.arms[-1])
    sizes = " · ".join(f"{lab.side_name(s)} {_fmt(latest.get(f'{s}_active'))}" for s in lab.sides)
    text = f"Active now: {sizes} · GMV today {_fmt(latest.get('gmv'))}"
    if "sellers" in lab.sides and "sellers_premium" in latest:
        text += (f" · {lab.side_name('sellers')} on the premium plan {_fmt(latest.get('sellers_premium'))}, "
                 f"with promoted listings {_fmt(latest.get('sellers_promoted'))}")
    return text


LIVE_CHARTS = {"size": app_charts.size_chart, "churn": app_charts.churn_chart, "nps": app_charts.nps_chart,
               "money": app_charts.money_chart, "map": app_charts.map_chart}


class LiveView:
    """The widgets that change every day, updated in place.

    Re-rendering the page through Solara costs about 100 ms per frame (it
    walks every component); a day needs new rows in the charts and new
    text in two labels, so :meth:`refresh` sets exactly those on the
    widgets, which sends only them to the browser.
    """

    def __init__(self):
        self.charts: dict = {}       # key -> (VegaChart widget, function lab -> (spec, data))
        self.texts: dict = {}        # function lab -> text  ->  the label widget showing it

    def refresh(self, lab: MarketLab) -> None:
        for widget, build in self.charts.values():
            widget.datasets = build(lab)[1]
        for text, widget in self.texts.items():
            widget.children = [text(lab)]


def _own_widget(make, dependencies):
    """A widget this component creates itself and shows as a child.

    Solara re-applies an element's props whenever it reconciles the page, which
    would put back the day-0 text and rows over what :class:`LiveView` set; a
    widget passed as a child is left alone. It is closed when replaced.
    """
    widget = solara.use_memo(make, dependencies)
    solara.use_effect(lambda: widget.close, [widget])
    return widget


@solara.component
def LiveText(lab: MarketLab, view: LiveView, text, css: str, style: str):
    label = _own_widget(lambda: v.Html(tag="div", children=[text(lab)], class_=css, style_=style), [lab])
    solara.use_effect(lambda: view.texts.__setitem__(text, label), [label])
    solara.Div(children=[label])


@solara.component
def LiveChart(lab: MarketLab, view: LiveView, key: str, build):
    def make():
        spec, data = build(lab)
        return VegaChart(spec=spec, datasets=data, libraries=library_paths(), css_class=f"twosided-chart-{key}")

    chart = _own_widget(make, [lab, build])

    def register():
        view.charts[key] = (chart, build)
        return lambda: view.charts.pop(key, None)

    solara.use_effect(register, [chart])
    solara.Div(children=[chart])


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
def PortraitPanel(lab: MarketLab, view: LiveView):
    key, cfg = lab.portrait_request()
    progress = solara.use_reactive("")

    def compute():
        portrait_for(key, cfg, progress=lambda done, total: progress.set(f"{done} of {total} runs done"))

    task = solara.lab.use_task(compute, dependencies=None, prefer_threaded=True)
    portrait = cached_portrait(key)
    build = solara.use_memo(lambda: (lambda market: app_charts.portrait_chart(market, portrait)), [portrait])
    if portrait is None:
        supply = lab.side_name("sellers" if "sellers" in lab.sides else "drivers")
        _prose(f"**The tipping point.** Where does this market grow, and where does it unravel? "
               f"Computing it simulates {GRID_POINTS * GRID_POINTS} markets started from a grid of sizes of "
               f"{lab.side_name('buyers')} and {supply} for {PORTRAIT_DAYS} days (a minute or two; computed "
               f"once, then kept for everyone on this server).")
        solara.Button("Compute the tipping point", on_click=task, disabled=task.pending,
                      classes=["twosided-portrait-button"])
        if task.pending:
            solara.Text(f"Simulating... {progress.value}", classes=["twosided-portrait-progress"])
        return
    _prose(PORTRAIT_TEXT.format(n=len(portrait.runs), buyers=lab.side_name("buyers"),
                                supply=lab.side_name(portrait.supply), days=portrait.days))
    LiveChart(lab, view, "portrait", build)


@solara.component
def LiveCharts(lab: MarketLab, view: LiveView):
    """The day, the readout and the charts; after the first render they change only through ``view``."""
    with solara.Row(style={"align-items": "baseline"}):
        LiveText(lab, view, day_text, "twosided-day", "font-size: 20px; font-weight: bold")
        LiveText(lab, view, readout_text, "twosided-readout", "font-size: 14px; padding-left: 12px")
    with solara.Columns([1, 1]):
        LiveChart(lab, view, "size", LIVE_CHARTS["size"])
        LiveChart(lab, view, "churn", LIVE_CHARTS["churn"])
    with solara.Columns([1, 1]):
        LiveChart(lab, view, "nps", LIVE_CHARTS["nps"])
        LiveChart(lab, view, "money", LIVE_CHARTS["money"])
    if "drivers" in lab.sides:
        LiveChart(lab, view, "map", LIVE_CHARTS["map"])
    else:
        _prose("**No city map in the goods market**: the platform handles logistics, so there are no "
               "drivers to place. Choose *rides* or *delivery*.")


@solara.component
def PlayBar(lab: MarketLab, view: LiveView):
    """Play, pause, one day, the speed, and the loop that plays (a thread of this session)."""
    playing = solara.use_reactive(False)
    speed = solara.use_reactive(DEFAULT_SPEED)
    running = solara.use_reactive(lab.running)   # set when the horizon is reached, not every frame

    def advance(days: int, budget: float = math.inf) -> None:
        """Simulate up to ``days`` days, stopping early after ``budget`` seconds; then redraw."""
        started = time.perf_counter()
        for _ in range(days):
            if not lab.running or time.perf_counter() - started > budget:
                break
            lab.step()
        view.refresh(lab)
        running.set(lab.running)

    def play_loop(cancel: threading.Event):
        while playing.value and lab.running and not cancel.is_set():
            started = time.perf_counter()
            advance(SPEEDS[speed.value], budget=FRAME_SECONDS)
            time.sleep(max(0.0, FRAME_SECONDS - (time.perf_counter() - started)))
        if not lab.running:
            playing.set(False)

    solara.use_effect(lambda: running.set(lab.running), [lab])
    solara.use_thread(play_loop, dependencies=[playing.value, lab], intrusive_cancel=False)
    with solara.Row(style={"align-items": "center"}):
        solara.Button("❚❚ Pause" if playing.value else "▶ Play", color="primary",
                      on_click=lambda: playing.set(not playing.value), disabled=not running.value,
                      classes=["twosided-play"])
        solara.Button("+1 day", on_click=lambda: advance(1), disabled=playing.value or not running.value,
                      classes=["twosided-step"])
        solara.Select("Speed", value=speed.value, values=list(SPEEDS), on_value=speed.set,
                      style={"max-width": "240px"})


@solara.component
def Page():
    """The whole page. One MarketLab per browser session (per kernel).

    While the market plays, nothing is re-rendered: the play loop updates the
    live widgets in place (:class:`LiveView`).
    """
    first = solara.use_memo(initial_settings, [])
    settings = solara.use_reactive(first)   # what the sidebar shows
    applied = solara.use_reactive(first)    # what the running market was built from
    lab = solara.use_reactive(solara.use_memo(lambda: lab_from(settings.value), []))
    view = solara.use_memo(LiveView, [])
    error = solara.use_reactive("")

    def start():
        try:
            lab.set(lab_from(settings.value))
            applied.set(settings.value)
            error.set("")
        except Exception as problem:   # a setting the model rejects: say so, keep the old market
            error.set(f"Could not start this market: {problem}")

    solara.Style(CSS)
    solara.Title("twosided: marketplace lab")
    with solara.AppBar():
        solara.AppBarTitle("twosided: marketplace lab")
    with solara.Sidebar():
        Controls(settings, applied.value, start)
    model = lab.value
    with solara.Column(style={"padding": "8px"}):
        PlayBar(model, view)
        if error.value:
            solara.Error(error.value)
        _prose(explanation(model))
        LiveCharts(model, view)
        PortraitPanel(model, view)
        _prose(DEFINITIONS.strip())


page = Page
