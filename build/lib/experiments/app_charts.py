"""The page's charts: Vega-Lite specs built with Altair, and the rows they show.

Each chart is a spec (built once per layout: market, arms, side names) that
reads one or more *named* data sets, and a function that computes those data
sets from a :class:`experiments.app_model.MarketLab`. The page
(experiments/app_page.py) hands both to :class:`experiments.app_vega.VegaChart`,
which embeds the spec once and then only swaps the rows each frame.

Time series travel as one row per line with the days and values as arrays
(expanded in the browser by Vega-Lite's ``flatten`` transform), so a frame
carries numbers, not repeated field names.
"""
from __future__ import annotations

import functools

import altair as alt
import numpy as np

from experiments.app_model import MarketLab
from experiments.app_vega import json_number
from experiments.phase_portrait import Portrait

SIDE_COLOUR = {"buyers": "#1f77b4", "sellers": "#ff7f0e", "drivers": "#2ca02c"}
MONEY_COLOUR = {"GMV": "#9467bd", "net contribution": "#8c564b"}
WIDTH, HEIGHT = 430, 200
MAP_SIZE = 250
PORTRAIT_SIZE = 380
# The policy arm solid, the arm without policy dashed (side-by-side mode).
DASH_POLICY, DASH_BASELINE = [1, 0], [6, 4]


def _spec(chart) -> dict:
    """The chart as a plain Vega-Lite dict (without $schema: the bundled Vega-Lite is older than Altair's)."""
    spec = chart.to_dict()
    spec.pop("$schema", None)
    return spec


def _layout(lab: MarketLab) -> tuple:
    """What a spec depends on: the lines' names and the arms' names (the data change, these do not)."""
    return (tuple((s, lab.side_name(s)) for s in lab.sides), tuple(a.label for a in _arms(lab)))


def _arms(lab: MarketLab):
    """The policy arm first (solid), the arm without policy second (dashed)."""
    return list(reversed(lab.arms))


def _line_spec(title: str, y_title: str, colours: tuple[tuple[str, str], ...], arms: tuple[str, ...],
               y_domain=None, points: bool = False, rule: float | None = None) -> dict:
    scale_y = alt.Scale(domain=list(y_domain)) if y_domain else alt.Scale(zero=False)
    base = alt.Chart(alt.NamedData(name="series")).transform_flatten(["day", "value"])
    line = base.mark_line(point=points, strokeWidth=1.8).encode(
        x=alt.X("day:Q", title="day"),
        y=alt.Y("value:Q", title=y_title, scale=scale_y),
        color=alt.Color("series:N", title=None, scale=alt.Scale(domain=[n for n, _ in colours],
                                                                 range=[c for _, c in colours])),
        strokeDash=alt.StrokeDash("arm:N", title=None, scale=alt.Scale(
            domain=list(arms), range=[DASH_POLICY, DASH_BASELINE][: len(arms)]),
            legend=alt.Legend() if len(arms) > 1 else None),
        detail="arm:N")
    layers = [line]
    if rule is not None:
        layers.insert(0, alt.Chart(alt.Data(values=[{"y": rule}])).mark_rule(color="grey", strokeWidth=0.8)
                      .encode(y="y:Q"))
    chart = alt.layer(*layers).properties(title=title, width=WIDTH, height=HEIGHT)
    return _spec(chart.configure_legend(orient="bottom", labelFontSize=11).configure_title(fontSize=13))


def _series(days: np.ndarray, values: np.ndarray, series: str, arm: str) -> dict:
    return {"series": series, "arm": arm, "day": [int(d) for d in days],
            "value": [json_number(v) for v in values]}


# -- each side's size relative to its start ----------------------------------------
@functools.lru_cache(maxsize=32)
def _size_spec(layout) -> dict:
    sides, arms = layout
    return _line_spec("Each side's size relative to its start (1 = start)", "active / at start",
                      tuple((name, SIDE_COLOUR[s]) for s, name in sides), arms, rule=1.0)


def size_chart(lab: MarketLab) -> tuple[dict, dict]:
    """Spec and data: active agents of each side divided by its starting size, per day and arm."""
    rows = []
    for arm in _arms(lab):
        days = np.arange(len(arm.rows))
        for side in lab.sides:
            rows.append(_series(days, lab.relative_size(arm, side), lab.side_name(side), arm.label))
    return _size_spec(_layout(lab)), {"series": rows}


# -- monthly churn -------------------------------------------------------------------
@functools.lru_cache(maxsize=32)
def _churn_spec(layout) -> dict:
    sides, arms = layout
    return _line_spec("Rolling 30-day churn per side (% of those active 30 days earlier)", "% per month",
                      tuple((name, SIDE_COLOUR[s]) for s, name in sides), arms)


def churn_chart(lab: MarketLab) -> tuple[dict, dict]:
    """Spec and data: trailing 30-day churn (%), from day 29 on (see MarketLab.monthly_churn)."""
    rows = []
    for arm in _arms(lab):
        days = np.arange(len(arm.rows))
        for side in lab.sides:
            rows.append(_series(days, 100 * lab.rolling_churn_30d(arm, side), lab.side_name(side), arm.label))
    return _churn_spec(_layout(lab)), {"series": rows}


# -- NPS ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=32)
def _nps_spec(layout) -> dict:
    sides, arms = layout
    return _line_spec("NPS per side (monthly survey of 5% of active agents)", "NPS (points)",
                      tuple((name, SIDE_COLOUR[s]) for s, name in sides), arms, y_domain=(-100, 100),
                      points=True, rule=0.0)


def nps_chart(lab: MarketLab) -> tuple[dict, dict]:
    """Spec and data: NPS (points, -100..100) on each survey day."""
    rows = []
    for arm in _arms(lab):
        for side in lab.sides:
            days, values = lab.nps(arm, side)
            rows.append(_series(days, values, lab.side_name(side), arm.label))
    return _nps_spec(_layout(lab)), {"series": rows}


# -- money ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=32)
def _money_spec(layout) -> dict:
    _, arms = layout
    return _line_spec("GMV and net contribution (7-day mean, currency per day)", "per day",
                      tuple(MONEY_COLOUR.items()), arms, rule=0.0)


def money_chart(lab: MarketLab) -> tuple[dict, dict]:
    """Spec and data: GMV and net contribution, trailing 7-day means (currency per day)."""
    rows = []
    for arm in _arms(lab):
        days = np.arange(len(arm.rows))
        for label, column in (("GMV", "gmv"), ("net contribution", "net_contribution")):
            rows.append(_series(days, lab.money(arm, column), label, arm.label))
    return _money_spec(_layout(lab)), {"series": rows}


# -- the city map --------------------------------------------------------------------------
def map_layers(lab: MarketLab) -> list[tuple[str, str, str, str]]:
    """(key of MarketLab.city, legend label, colour, shape) of each layer of the map."""
    rider = lab.side_name("buyers").rstrip("s")
    driver = lab.side_name("drivers")
    layers = [("offline", f"{driver} offline", "#bbbbbb", "circle"),
              ("idle", f"{driver} online, no trip", "#2ca02c", "circle"),
              ("busy", f"{driver} who drove today", "#1f77b4", "circle"),
              ("waiting", f"{rider}s left waiting (no car)", "#d62728", "cross")]
    if "sellers" in lab.sides:
        layers.insert(3, ("sellers", lab.side_name("sellers"), "#ff7f0e", "square"))
    return layers


@functools.lru_cache(maxsize=32)
def _map_spec(layers: tuple, arms: tuple[str, ...]) -> dict:
    base = alt.Chart(alt.NamedData(name="points")).transform_flatten(["x", "y"]).mark_point(
        filled=True, size=22, opacity=0.85).encode(
        x=alt.X("x:Q", scale=alt.Scale(domain=[0, 1]), axis=None),
        y=alt.Y("y:Q", scale=alt.Scale(domain=[0, 1]), axis=None),
        color=alt.Color("layer:N", title=None, scale=alt.Scale(domain=[label for _, label, _, _ in layers],
                                                                range=[c for _, _, c, _ in layers])),
        shape=alt.Shape("layer:N", title=None, scale=alt.Scale(domain=[label for _, label, _, _ in layers],
                                                                range=[s for _, _, _, s in layers])),
    ).properties(width=MAP_SIZE, height=MAP_SIZE)
    chart = base.facet(column=alt.Column("arm:N", title=None, sort=list(arms),
                                         header=alt.Header(labelFontSize=12)))
    chart = chart.properties(title="The city today: each dot is a driver or a rider left waiting")
    return _spec(chart.configure_legend(orient="bottom", columns=2, labelFontSize=11).configure_title(fontSize=13))


def map_chart(lab: MarketLab) -> tuple[dict, dict] | None:
    """Spec and data of the city map of every arm (None for goods: the platform does logistics)."""
    if "drivers" not in lab.sides:
        return None
    layers = map_layers(lab)
    rows = []
    for arm in _arms(lab):
        city = lab.city(arm)
        for key, label, _, _ in layers:
            points = city.get(key, np.empty((0, 2)))
            rows.append({"arm": arm.label, "layer": f"{label}", "x": [round(float(x), 4) for x in points[:, 0]],
                         "y": [round(float(y), 4) for y in points[:, 1]]})
    return _map_spec(tuple(layers), tuple(a.label for a in _arms(lab))), {"points": rows}


# -- the phase portrait ----------------------------------------------------------------------
GROWS, SHRINKS = "grows from here", "shrinks from here"


@functools.lru_cache(maxsize=32)
def _portrait_spec(buyers_name: str, supply_name: str, days: int) -> dict:
    x = alt.X("x:Q", title=f"{supply_name} (active)", scale=alt.Scale(type="log"))
    y = alt.Y("y:Q", title=f"{buyers_name} (active)", scale=alt.Scale(type="log"))
    region = alt.Chart(alt.NamedData(name="cells")).mark_rect(opacity=0.25).encode(
        x=alt.X("x0:Q", title=f"{supply_name} (active)", scale=alt.Scale(type="log")), x2="x1:Q",
        y=alt.Y("y0:Q", title=f"{buyers_name} (active)", scale=alt.Scale(type="log")), y2="y1:Q",
        color=alt.Color("outcome:N", title=f"after {days} days",
                        scale=alt.Scale(domain=[GROWS, SHRINKS], range=["#2ca02c", "#d62728"])))
    paths = alt.Chart(alt.NamedData(name="paths")).transform_flatten(["x", "y", "step"]).mark_line(
        strokeWidth=1, opacity=0.7, color="#555555").encode(x=x, y=y, order="step:Q", detail="run:N")
    starts = alt.Chart(alt.NamedData(name="paths")).mark_point(filled=True, size=25, color="#333333").encode(
        x=alt.X("x0:Q"), y=alt.Y("y0:Q"))
    current = alt.Chart(alt.NamedData(name="current")).transform_flatten(["x", "y", "step"]).mark_line(
        strokeWidth=3, color="#1f77b4").encode(x=x, y=y, order="step:Q", detail="arm:N")
    chart = alt.layer(region, paths, starts, current).properties(
        width=PORTRAIT_SIZE, height=PORTRAIT_SIZE,
        title=f"Phase portrait: {buyers_name} against {supply_name} (grey: runs from a grid of starts; "
              f"blue: this market)")
    return _spec(chart.configure_legend(orient="bottom").configure_title(fontSize=13))


def _edges(levels) -> list[float]:
    """Cell edges halfway (on a log scale) between grid levels."""
    logs = np.log(levels)
    half = (logs[1] - logs[0]) / 2 if len(levels) > 1 else 0.5
    return list(np.exp(np.concatenate([[logs[0] - half], (logs[:-1] + logs[1:]) / 2, [logs[-1] + half]])))


def portrait_chart(lab: MarketLab, portrait: Portrait) -> tuple[dict, dict]:
    """Spec and data: the grid's growth region, its paths, and this market's path so far."""
    supply = portrait.supply
    bx, sx = _edges(portrait.buyer_levels), _edges(portrait.supply_levels)
    cells, paths = [], []
    for run in portrait.runs:
        bi, si = portrait.buyer_levels.index(run.buyers_start), portrait.supply_levels.index(run.supply_start)
        cells.append({"x0": sx[si], "x1": sx[si + 1], "y0": bx[bi], "y1": bx[bi + 1],
                      "outcome": GROWS if run.grows else SHRINKS})
        keep = [i for i, (b, s) in enumerate(zip(run.buyers, run.supply)) if b > 0 and s > 0]  # log axes
        paths.append({"run": f"{run.buyers_start}/{run.supply_start}", "x0": run.supply_start,
                      "y0": run.buyers_start, "x": [run.supply[i] for i in keep],
                      "y": [run.buyers[i] for i in keep], "step": keep})
    current = []
    for arm in _arms(lab):
        b = np.concatenate([[arm.model.initial_size["buyers"]], lab.active(arm, "buyers")])
        s = np.concatenate([[arm.model.initial_size[supply]], lab.active(arm, supply)])
        keep = np.flatnonzero((b > 0) & (s > 0))
        current.append({"arm": arm.label, "x": [int(v) for v in s[keep]], "y": [int(v) for v in b[keep]],
                        "step": [int(i) for i in keep]})
    spec = _portrait_spec(lab.side_name("buyers"), lab.side_name(supply), portrait.days)
    return spec, {"cells": cells, "paths": paths, "current": current}
