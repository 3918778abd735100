"""The decision report of a comparison: it leads with the answer, then the guards, assumptions and details.

Layout of the folder (besides spec.json and runs/, see experiments/folder.py)::

    report.md / report.html   the answer (headline table, cost-and-benefit chart), validity warnings,
                              assumptions, per-side tables, figures, replicates needed, how to reproduce
    comparison.parquet        one row per arm, replicate and metric (side, metric, value, seed)
    stats.csv                 paired statistics of every arm x side x metric (p, Holm-adjusted p)
    economics.csv             extra net contribution, ROI (with interval) and payback month per arm
    headline.csv              the headline table
    crn.csv                   interval widths with / without common random numbers (when measured)
    decision.json             with uncertainty=: probability best, expected gain, EVPI, EVPPI per group
    draws.csv                 with uncertainty=: every draw's parameters and each arm's mean gain
    config.yaml               the resolved config of every arm
    manifest.json             package version, git commit, seeds, arms and the command that reproduces it
    *.png                     the figures

report.html is rendered from report.md (Markdown, tables extension) with the figures embedded.
"""
from __future__ import annotations

import base64
import json
import math
import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from experiments import stats, tables
from experiments.arms import flatten
from experiments.folder import atomic_write, provenance, reproduce_command
from sim.metrics import MONTH_DAYS

if TYPE_CHECKING:
    from experiments.compare import Comparison

BASE_STYLE = {"color": "black", "linestyle": "--", "linewidth": 2.0, "zorder": 5}
CURRENCY = "currency units"
# words that mark a policy parameter as a price or a capacity (the assumptions box lists them)
PRICE_WORDS = ("cost", "bonus", "incentive", "minutes", "budget", "capacity", "staff")
DPI = 110


# -- formatting -----------------------------------------------------------------------------------
def _finite(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def _money(x) -> str:
    if not _finite(x):
        return "n/a"
    a = abs(x)
    if a >= 1e6:
        return f"{x / 1e6:,.2f}M"
    if a >= 1e4:
        return f"{x / 1e3:,.1f}k"
    if a >= 100:
        return f"{x:,.0f}"
    return f"{x:,.2f}"


def _signed(x) -> str:
    return ("+" if _finite(x) and x > 0 else "") + _money(x)


# metric -> (label, level formatter, difference formatter, unit of the difference)
FORMATS = {
    "monthly_churn": ("monthly churn", lambda v: f"{100 * v:.2f}%", lambda v: f"{100 * v:+.2f}", "pp"),
    "ltv": ("LTV", _money, _signed, ""),
    "ltv_orders": ("LTV, order-attributed", _money, _signed, ""),
    "ltv_cac": ("LTV:CAC", lambda v: f"{v:.2f}", lambda v: f"{v:+.2f}", ""),
    "nps": ("NPS", lambda v: f"{v:+.1f}", lambda v: f"{v:+.1f}", "pts"),
    "csat": ("CSAT", lambda v: f"{100 * v:.1f}%", lambda v: f"{100 * v:+.1f}", "pp"),
    "cs_spend": ("CS spend", _money, _signed, ""),
    "net_contribution": ("net contribution", _money, _signed, ""),
    "take_revenue": ("take revenue", _money, _signed, ""),
    "gmv": ("GMV", _money, _signed, ""),
    "cac": ("CAC", _money, _signed, ""),
    "nrr": ("NRR", lambda v: f"{100 * v:.1f}%", lambda v: f"{100 * v:+.1f}", "pp"),
    "grr": ("GRR", lambda v: f"{100 * v:.1f}%", lambda v: f"{100 * v:+.1f}", "pp"),
    "expansion_rate": ("expansion rate (monthly)", lambda v: f"{100 * v:.2f}%", lambda v: f"{100 * v:+.2f}", "pp"),
}


def _fmt(metric: str, value, diff: bool = False) -> str:
    if not _finite(value):
        return "n/a"
    f = FORMATS.get(metric)
    if f is None:
        return f"{value:+.3g}" if diff else f"{value:.3g}"
    return (f[2] if diff else f[1])(value)


def _label(side: str, metric: str) -> str:
    name = FORMATS.get(metric, (metric,))[0]
    return name if side == "platform" else f"{name} {side}"


def _interval(metric: str, diff, lo, hi) -> str:
    """'+1.2 pp [-0.3, +2.7]'."""
    if not _finite(diff):
        return "n/a"
    unit = FORMATS.get(metric, ("", None, None, ""))[3]
    text = _fmt(metric, diff, True) + (f" {unit}" if unit else "")
    if _finite(lo):
        text += f" [{_fmt(metric, lo, True)}, {_fmt(metric, hi, True)}]"
    return text


def _p(p) -> str:
    if not _finite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _payback(month, days: int) -> str:
    return f"{int(month)}" if _finite(month) else f"not within {days // MONTH_DAYS} months"


def _md_table(header: list, rows: list) -> str:
    """A Markdown table; a cell is text or (text, bold)."""
    def cell(value):
        text, bold = value if isinstance(value, tuple) else (value, False)
        text = str(text).replace("|", "\\|")
        return f"**{text}**" if bold and text else text

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# -- the sections ---------------------------------------------------------------------------------
def headline_rows(c: Comparison) -> tuple[list, list]:
    """The answer table: arm, what it changes, extra net contribution, Holm p, ROI, payback month."""
    pct = _pct(c)
    alpha = 1.0 - c.settings.confidence
    header = ["arm", "what it changes", f"extra net contribution ({CURRENCY}) [{pct}% interval]", "p (Holm)",
              f"ROI [{pct}% interval]", "payback month"]
    rows = []
    best = c.best
    for _, h in c.headline.iterrows():
        resolved = _finite(h["p_holm"]) and h["p_holm"] < alpha
        if _finite(h["roi"]):
            roi = f"{h['roi']:+.2f}" + (f" [{h['roi_lo']:+.2f}, {h['roi_hi']:+.2f}]" if _finite(h["roi_lo"]) else "")
        else:
            roi = "undefined (no extra CS spend)"
        rows.append([(h["arm"] + (" ★" if h["arm"] == best else ""), h["arm"] == best), h["changes"] or "-",
                     (_interval("net_contribution", h["d_net"], h["d_net_lo"], h["d_net_hi"]), resolved),
                     _p(h["p_holm"]), roi, _payback(h["payback_month"], c.days)])
    return header, rows


def verdict(c: Comparison) -> str:
    pct = _pct(c)
    best = c.best
    if best == c.baseline.name:
        return (f"**No arm resolvably raises net contribution** over the baseline **{best}** at {pct}% confidence "
                "after Holm's correction for the number of tests; see the replicates each difference would need.")
    h = c.headline.set_index("arm").loc[best]
    roi = f"ROI {h['roi']:+.2f}" if _finite(h["roi"]) else "no extra CS spend"
    return (f"**Best arm: {best}**: the largest extra net contribution resolved above 0 after Holm's correction, "
            f"{_signed(h['d_net'])} {CURRENCY} over {c.days} days ({roi}, payback "
            + (f"in month {int(h['payback_month'])})." if _finite(h["payback_month"]) else "not within the horizon)."))


def assumptions(c: Comparison) -> list[str]:
    """The numbers the money rests on, from the resolved configs: staff cost, action prices, LTV horizon, discount."""
    cfg = c.resolved.get(c.baseline.name, {})
    cs, metrics = cfg.get("cs", {}), cfg.get("metrics", {})
    lines = [f"CS desk: {cs.get('staff')} staff at {cs.get('staff_cost_per_day')} {CURRENCY} per agent per day, "
             f"{cs.get('workday_hours')} staffed hours a day (policy staff time is priced at this rate).",
             f"LTV: discounted at {100 * float(metrics.get('discount_rate_annual', math.nan)):.0f}% a year, agents "
             f"alive at the end predicted {metrics.get('ltv_horizon_days')} days ahead; NPS: "
             f"{100 * float(metrics.get('survey_share_per_month', math.nan)):.0f}% of active agents asked each month.",
             f"Horizon: {c.days} days at scale={c.scale}, market {c.market}"
             + (f", model overrides `{' '.join(c.settings.model)}`" if c.settings.model else "") + "."]
    seen = set()
    for name in c.arm_names:
        for policy, params in (c.resolved.get(name, {}).get("policy") or {}).items():
            prices = {k: v for k, v in flatten(params or {}).items() if any(w in k for w in PRICE_WORDS)}
            text = ", ".join(f"{k} {v}" for k, v in prices.items())
            if prices and (policy, text) not in seen:
                seen.add((policy, text))
                lines.append(f"{policy}" + (f" in arm {name}" if name != policy else "") + f": {text}.")
    return lines


def detail_rows(c: Comparison, side: str) -> tuple[list, list]:
    """One side's table (long: a row per metric and arm, so it never needs horizontal scrolling)."""
    pct = _pct(c)
    alpha = 1.0 - c.settings.confidence
    d = c.details(side)
    survey = d["answers"].notna().any()
    header = ["metric", "arm", "mean", f"difference to {c.baseline.name} [{pct}% interval]", "p (Holm)",
              "replicates for 80% power"]
    header += ["answers per run"] if survey else []
    rows = []
    for _, r in d.iterrows():
        is_base = r["arm"] == c.baseline.name
        resolved = _finite(r["p_holm"]) and r["p_holm"] < alpha
        row = [FORMATS.get(r["metric"], (r["metric"],))[0], r["arm"] + (" (baseline)" if is_base else ""),
               _fmt(r["metric"], r["mean"]),
               ("-" if is_base else _interval(r["metric"], r["diff"], r["lo"], r["hi"]), resolved),
               "-" if is_base else _p(r["p_holm"]), "-" if is_base else _needed(r["replicates_needed"], r["diff"])]
        if survey:
            few = _finite(r["answers"]) and r["answers"] < c.settings.guards["min_answers"]
            row.append("" if not _finite(r["answers"]) else f"{'≈' if r['metric'] == 'nps' else ''}"
                       f"{r['answers']:,.0f}" + (" (few)" if few else ""))
        rows.append(row)
    return header, rows


def _needed(n, diff) -> str:
    if _finite(n):
        return f"{int(n):,}"
    return "none (no difference)" if diff == 0 else "n/a"


def crn_rows(c: Comparison) -> tuple[list, list, dict]:
    """Interval width with CRN / without, per metric (median over arms): in-run estimate and, if run, measured."""
    st = c.stats
    wanted = [k for k in tables.CRN_CHECK_METRICS if ((st["side"] == k[0]) & (st["metric"] == k[1])).any()]
    measured = None
    if c.crn_runs:
        crn, other = (c.runs, c.crn_runs) if c.settings.crn else (c.crn_runs, c.runs)
        measured = tables.crn_ratios(crn, other, c.baseline.name, c.settings.confidence, tables.CRN_CHECK_METRICS)
    header = ["metric", "paired width / independent width (estimated from these runs)"]
    if measured is not None:
        header.append("measured: crn=true width / crn=false width")
    rows, summary = [], {}
    for side, metric in wanted:
        sel = st[(st["side"] == side) & (st["metric"] == metric)]
        est = (sel["width"] / sel["unpaired_width"]).replace([np.inf, -np.inf], np.nan).dropna()
        row = [_label(side, metric), _ratio_text(est)]
        summary[f"{side}.{metric}"] = {"estimated_median": float(est.median()) if len(est) else None}
        if measured is not None:
            m = measured[(measured["side"] == side) & (measured["metric"] == metric)]["ratio"]
            m = m.replace([np.inf, -np.inf], np.nan).dropna()
            row.append(_ratio_text(m))
            summary[f"{side}.{metric}"]["measured_median"] = float(m.median()) if len(m) else None
        rows.append(row)
    return header, rows, {"ratios": summary, "measured": measured}


def _ratio_text(values: pd.Series) -> str:
    if not len(values):
        return "n/a"
    return f"{values.median():.2f} (arms: {values.min():.2f} to {values.max():.2f})"


def _pct(c: Comparison) -> int:
    return int(round(100 * c.settings.confidence))


# -- figures --------------------------------------------------------------------------------------
def _colors(c: Comparison) -> dict:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    out = {arm: {"color": cmap(k % 10), "linewidth": 1.6} for k, arm in enumerate(c.arm_names[1:])}
    out[c.baseline.name] = dict(BASE_STYLE)
    return out


def _mean_band(stack: np.ndarray, confidence: float):
    """Mean over replicates (rows) and the half-width of its t interval, per column."""
    import warnings

    stack = np.asarray(stack, dtype=float)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        n = np.sum(np.isfinite(stack), axis=0)
        mean = np.nanmean(stack, axis=0)
        sd = np.nanstd(stack, axis=0, ddof=1)
        t = np.array([stats.t_crit(int(k), confidence) if k >= 2 else np.nan for k in n])
        half = t * sd / np.sqrt(np.maximum(n, 1))
    return mean, half


def _by_arm(c: Comparison) -> dict:
    out: dict[str, list] = {}
    for res in c.runs:
        out.setdefault(res["arm_name"], []).append(res)
    return out


def _paired(c: Comparison, arm: str, get) -> np.ndarray:
    """Replicate by replicate: get(arm's run) - get(baseline's run) (rows: replicates)."""
    by = _by_arm(c)
    base = {r["replicate"]: get(r) for r in by[c.baseline.name]}
    return np.array([get(r) - base[r["replicate"]] for r in by[arm]], dtype=float)


def fig_small_multiples(c: Comparison, path: Path, get, x, scale: float, ylabel: str, xlabel: str,
                        title: str) -> None:
    """A grid, one row per arm and one column per side: the paired difference to the baseline over x, with its
    interval band. Rows share the y axis within a column so arms compare at a glance."""
    import matplotlib.pyplot as plt

    sides = tables.sides_of(c)
    arms = c.arm_names[1:]
    colors = _colors(c)
    fig, axes = plt.subplots(len(arms), len(sides), figsize=(4.2 * len(sides), 1.9 * len(arms) + 1.3),
                             squeeze=False, sharex=True, sharey="col")
    for i, arm in enumerate(arms):
        for k, side in enumerate(sides):
            ax = axes[i][k]
            diff = _paired(c, arm, lambda r: get(r, side)) * scale
            ax.axhline(0, color="black", linewidth=0.8)
            if np.isfinite(diff).any():
                mean, half = _mean_band(diff, c.settings.confidence)
                ax.plot(x, mean, color=colors[arm]["color"], linewidth=1.6)
                ax.fill_between(x, mean - half, mean + half, color=colors[arm]["color"], alpha=0.2, linewidth=0)
            else:
                ax.text(0.5, 0.5, f"too few {side} to draw", ha="center", va="center", transform=ax.transAxes,
                        color="grey", fontsize=8)
            if i == 0:
                ax.set_title(side, fontsize=10)
            if k == 0:
                ax.set_ylabel(f"{arm}\n{ylabel}", fontsize=8)
            if i == len(arms) - 1:
                ax.set_xlabel(xlabel, fontsize=9)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def fig_effects(c: Comparison, path: Path) -> None:
    """Small multiples of the headline effects: one panel per metric, a row per arm (difference with interval;
    filled marker: resolved after Holm's correction)."""
    import matplotlib.pyplot as plt

    st = c.stats
    alpha = 1.0 - c.settings.confidence
    keys = [(s, m) for m in ("monthly_churn", "ltv", "nps") for s in tables.sides_of(c)]
    keys = [k for k in keys if ((st["side"] == k[0]) & (st["metric"] == k[1]) & st["diff"].notna()).any()]
    arms = c.arm_names[1:]
    colors = _colors(c)
    ncol = len(tables.sides_of(c))
    nrow = math.ceil(len(keys) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.4 * ncol, 0.32 * len(arms) * nrow + 1.4 * nrow + 0.6),
                             squeeze=False, sharey=True)
    y = np.arange(len(arms))[::-1]
    for ax, (side, metric) in zip(axes.flat, keys):
        sel = st[(st["side"] == side) & (st["metric"] == metric)].set_index("arm")
        scale = 100.0 if metric in ("monthly_churn", "csat") else 1.0
        for yi, arm in zip(y, arms):
            if arm not in sel.index or not _finite(sel.loc[arm, "diff"]):
                continue
            r = sel.loc[arm]
            resolved = _finite(r["p_holm"]) and r["p_holm"] < alpha
            err = (r["hi"] - r["diff"]) * scale if _finite(r["hi"]) else None
            ax.errorbar(r["diff"] * scale, yi, xerr=err, fmt="o", color=colors[arm]["color"], capsize=3,
                        markerfacecolor=colors[arm]["color"] if resolved else "white", markersize=6)
        ax.axvline(0, color="black", linewidth=0.8)
        unit = FORMATS[metric][3] or CURRENCY
        ax.set_title(f"{_label(side, metric)} ({unit})", fontsize=10)
        ax.set_yticks(y)
        ax.set_yticklabels(arms, fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    fig.suptitle(f"Effects against '{c.baseline.name}' (dot: mean paired difference, whiskers: {_pct(c)}% interval; "
                 "filled: resolved after Holm's correction)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def fig_ltv(c: Comparison, path: Path) -> None:
    import matplotlib.pyplot as plt

    by_arm = _by_arm(c)
    arms = c.arm_names
    base = c.baseline.name
    colors = _colors(c)
    sides = tables.sides_of(c)
    fig, axes = plt.subplots(1, len(sides), figsize=(4.6 * len(sides), 0.45 * len(arms) + 2.2), squeeze=False)
    for k, side in enumerate(sides):
        ax = axes[0][k]
        data = [np.concatenate([r["ltv"][side] for r in by_arm[a]]).astype(float) for a in arms]
        y = np.arange(len(arms))[::-1]
        bp = ax.boxplot(data, positions=y, orientation="horizontal", whis=(5, 95), showfliers=False,
                        widths=0.6, patch_artist=True, medianprops={"color": "black"})
        for patch, arm in zip(bp["boxes"], arms):
            patch.set_facecolor("lightgrey" if arm == base else colors[arm]["color"])
            patch.set_alpha(0.55)
            if arm == base:
                patch.set_hatch("//")
        for yi, arm in zip(y, arms):
            vals = np.array([r["metrics"][(side, "ltv")] for r in by_arm[arm]], dtype=float)
            mean, half = _mean_band(vals[:, None], c.settings.confidence)
            ax.errorbar(mean[0], yi, xerr=None if not np.isfinite(half[0]) else half[0], fmt="D",
                        color="black" if arm == base else colors[arm]["color"], markeredgecolor="black",
                        capsize=4, zorder=6)
        ax.set_yticks(y)
        ax.set_yticklabels([a + (" (baseline)" if a == base else "") for a in arms] if k == 0 else [], fontsize=8)
        ax.set_title(side, fontsize=10)
        ax.set_xlabel(f"LTV per new agent ({CURRENCY}, discounted)", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"LTV of agents acquired during the run (boxes: quartiles, whiskers: 5-95%; diamond: mean with its "
                 f"{_pct(c)}% interval over replicates)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def fig_cost_benefit(c: Comparison, path: Path | None = None):
    """Left: extra CS spend, take revenue and net contribution per arm; right: cumulative extra net contribution
    (payback). Saved and closed when ``path`` is given, else returned."""
    import matplotlib.pyplot as plt

    st = c.stats
    arms = [a for a in c.headline["arm"]]
    colors = _colors(c)
    fig, (ax, axc) = plt.subplots(1, 2, figsize=(13, max(4.0, 0.5 * len(arms) + 2.4)),
                                  gridspec_kw={"width_ratios": [1.0, 1.0]})
    keyed = st.set_index(["arm", "side", "metric"])
    parts = [("cs_spend", "extra CS spend (cost)", "#d62728"), ("take_revenue", "extra take revenue", "#1f77b4"),
             ("net_contribution", "extra net contribution", "#2ca02c")]
    y = np.arange(len(arms))[::-1]
    h = 0.26
    for i, (metric, label, color) in enumerate(parts):
        diffs, errs = [], []
        for arm in arms:
            r = keyed.loc[(arm, "platform", metric)] if (arm, "platform", metric) in keyed.index else None
            diffs.append(r["diff"] / 1e3 if r is not None else np.nan)
            errs.append((r["hi"] - r["diff"]) / 1e3 if r is not None and _finite(r["hi"]) else 0.0)
        ax.barh(y + (1 - i) * h, diffs, height=h, color=color, alpha=0.8, label=label, xerr=errs, capsize=3,
                error_kw={"elinewidth": 1})
    ax.axvline(0, color="black", linewidth=1)
    ax.set_yticks(y)
    ax.set_yticklabels(arms, fontsize=9)
    ax.set_xlabel(f"difference to '{c.baseline.name}' over the run (thousand {CURRENCY})")
    ax.set_title(f"Cost and benefit (bars: mean paired difference, whiskers: {_pct(c)}% interval)", fontsize=10)
    ax.legend(loc="best", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    axc.axhline(0, **{**BASE_STYLE, "linewidth": 1.4}, label=f"{c.baseline.name} (baseline)")
    months = np.arange(c.days) / MONTH_DAYS
    for arm in arms:  # lines only: each arm's band is in the payback small multiples
        axc.plot(months, _cumulative_extra(c, arm).mean(axis=0) / 1e3, label=arm, **colors[arm])
    axc.set_xlabel("month of the run (30 days)")
    axc.set_ylabel(f"cumulative extra net contribution (thousand {CURRENCY})", fontsize=9)
    axc.set_title("Payback: cumulative extra net contribution (mean over replicates)", fontsize=10)
    axc.grid(alpha=0.3)
    axc.legend(fontsize=7, loc="best")
    fig.tight_layout()
    if path is None:
        return fig
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return None


def _cumulative_extra(c: Comparison, arm: str) -> np.ndarray:
    """Cumulative extra net contribution of ``arm`` from the policy start, per replicate (rows) and day."""
    start = c.runs[0]["start_day"]
    days = np.arange(c.days)
    return _paired(c, arm, lambda r: np.cumsum(np.where(days >= start, r["series"]["net_contribution"], 0.0)))


def fig_payback(c: Comparison, path: Path) -> None:
    """Small multiples of the payback: one panel per arm, the cumulative extra net contribution with its band."""
    import matplotlib.pyplot as plt

    arms = list(c.headline["arm"])
    colors = _colors(c)
    ncol = min(4, len(arms))
    nrow = math.ceil(len(arms) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.6 * nrow + 0.8), squeeze=False, sharex=True,
                             sharey=True)
    months = np.arange(c.days) / MONTH_DAYS
    for ax, arm in zip(axes.flat, arms):
        mean, half = _mean_band(_cumulative_extra(c, arm) / 1e3, c.settings.confidence)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.plot(months, mean, color=colors[arm]["color"], linewidth=1.6)
        ax.fill_between(months, mean - half, mean + half, color=colors[arm]["color"], alpha=0.2, linewidth=0)
        ax.set_title(arm, fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(arms):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"thousand {CURRENCY}", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("month of the run", fontsize=8)
    fig.suptitle(f"Payback by arm: cumulative extra net contribution against '{c.baseline.name}' (band: "
                 f"{_pct(c)}% interval)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def figures(c: Comparison, out: Path) -> list[tuple[str, str]]:
    """Draw every figure into ``out``; return (file, title) in the report's order."""
    pct = _pct(c)
    fig_cost_benefit(c, out / "cost_benefit.png")
    fig_payback(c, out / "payback.png")
    fig_effects(c, out / "effects.png")
    months = len(c.runs[0]["churn_months"][tables.sides_of(c)[0]])
    fig_small_multiples(c, out / "monthly_churn.png", lambda r, s: r["churn_months"][s], np.arange(1, months + 1),
                        100.0, "pp", "month of the run (30 days)",
                        f"Monthly churn: difference to '{c.baseline.name}' by arm (rows) and side (columns), "
                        f"percentage points; band: {pct}% interval")
    n = len(c.runs[0]["retention"][tables.sides_of(c)[0]])
    fig_small_multiples(c, out / "retention.png", lambda r, s: r["retention"][s], np.arange(n) * tables.TENURE_STEP,
                        100.0, "pp", "tenure (days since joining)",
                        f"Retention of agents acquired during the run: difference to '{c.baseline.name}', percentage "
                        f"points; band: {pct}% interval")
    fig_ltv(c, out / "ltv.png")
    return [("cost_benefit.png", "Cost and benefit of each arm, and payback"),
            ("payback.png", "Payback by arm, with its interval"),
            ("effects.png", "Effects on churn, LTV and NPS by side"),
            ("monthly_churn.png", "Monthly churn over time, against the baseline"),
            ("retention.png", "Retention by tenure, against the baseline"),
            ("ltv.png", "LTV distributions")]


# -- the decision under parameter uncertainty -------------------------------------------------------
def decision_rows(c: Comparison) -> tuple[list, list]:
    """Per arm (best chance first): probability best, expected gain with the draws' interval, seed-noise share."""
    from experiments.decision import mc_share

    d = c.decision
    pct = _pct(c)
    share = dict(zip(c.arm_names, mc_share(c.gains)))
    header = ["arm", "probability best", f"expected extra net contribution ({CURRENCY}) [{pct}% of draws]",
              "share of the spread that is seed noise"]
    rows = []
    for arm, v in sorted(d["arms"].items(), key=lambda kv: -kv[1]["p_best"]):
        g = v["gain"]
        gain = "0 (the reference)" if arm == c.baseline.name else \
            f"{_signed(g['mean'])} [{_signed(g['low'])}, {_signed(g['high'])}]"
        noise = f"{100 * share[arm]:.0f}%" if _finite(share[arm]) else "-"
        rows.append([(arm, v["p_best"] == max(x["p_best"] for x in d["arms"].values())), f"{v['p_best']:.2f}", gain,
                     noise])
    return header, rows


def fig_evppi(c: Comparison, path: Path) -> None:
    """Bars: EVPPI of each parameter group (largest on top), with EVPI as a line: which assumption is worth a
    pilot."""
    import matplotlib.pyplot as plt

    d = c.decision
    items = sorted(((g, v) for g, v in d["evppi"].items() if v is not None), key=lambda kv: kv[1])
    missing = [g for g, v in d["evppi"].items() if v is None]
    from experiments.decision import DRAWS_PER_PARAMETER

    fig, ax = plt.subplots(figsize=(9.5, 0.36 * len(items) + 2.2 + 0.2 * math.ceil(len(", ".join(missing)) / 120)))
    y = np.arange(len(items))
    ax.barh(y, [v for _, v in items], color="#4c72b0", alpha=0.85, height=0.6, label="EVPPI of the group")
    for yi, (group, v) in zip(y, items):
        note = " (no arm uses it)" if group in c.unused_groups else ""
        ax.text(v, yi, f" {_money(v)}{note}", va="center", fontsize=8)
    ax.axvline(d["evpi"], color="#c44e52", linestyle="--", linewidth=1.6, label=f"EVPI ({_money(d['evpi'])})")
    ax.set_yticks(y)
    ax.set_yticklabels([g for g, _ in items], fontsize=9)
    note = textwrap.fill(f"Not estimated (fewer than {DRAWS_PER_PARAMETER} draws per parameter): "
                         + ", ".join(missing), 120) if missing else ""
    ax.set_xlabel(f"expected value of knowing the group's parameters ({CURRENCY} over the run)"
                  + (f"\n{note}" if note else ""), fontsize=9)
    ax.set_title(f"Which assumption is worth a pilot ({len(c.values)} draws, {c.settings.replicates} replicates "
                 "each)", fontsize=10)
    ax.set_xlim(0, 1.15 * max([d["evpi"], *[v for _, v in items]]) or 1.0)
    ax.legend(fontsize=8, loc="best")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def decision_markdown(c: Comparison) -> list[str]:
    """The report's first section under parameter uncertainty: p-best table, EVPI, EVPPI chart."""
    from experiments.decision import DRAWS_PER_PARAMETER

    d = c.decision
    u = c.uncertainty
    header, rows = decision_rows(c)
    ranked = sorted(((g, v) for g, v in d["evppi"].items() if v is not None), key=lambda kv: -kv[1])
    skipped = [g for g, v in d["evppi"].items() if v is None]
    among = (f", among the {len(ranked)} groups with enough draws to estimate ({len(skipped)} "
             f"{'has' if len(skipped) == 1 else 'have'} fewer than {DRAWS_PER_PARAMETER} draws per parameter)"
             if skipped else "")
    # a group worth less than a cent, or 1% of EVPI, is no reason for a pilot (regression noise, not information)
    worth = bool(ranked) and ranked[0][1] >= max(0.01 * d["evpi"], 0.01)
    top = (f" The assumption most worth a pilot is **{ranked[0][0]}** (EVPPI {_money(ranked[0][1])}){among}."
           if worth else f" No assumption is worth a pilot on these draws: every group's EVPPI is about 0{among}."
           if ranked else "")
    params = [f"> - {p.group}: `{p.key}` ~ {p.text()}" for p in u.parameters]
    return ["## The decision under parameter uncertainty", "",
            f"Every arm ran on {len(c.values)} draws of the assumed parameters (setting `{u.name}`), "
            f"{c.settings.replicates} replicates per draw with common random numbers inside each draw. Gains are "
            f"net contribution over {c.days} days against **{c.baseline.name}**, averaged over a draw's replicates.",
            "", _md_table(header, rows), "",
            f"**EVPI {_money(d['evpi'])} {CURRENCY}**: what knowing every assumed parameter before choosing would "
            f"be worth on average (E[max gain] - max E[gain] over the draws).{top}", "",
            "![Which assumption is worth a pilot](evppi.png)", "",
            "Probability best: the share of draws in which the arm's gain is the largest (the baseline is an "
            "option). Interval: the central range of the draws' gains, so it includes parameter uncertainty; "
            "the noise share is the within-draw (seed) variance of a draw's mean over the variance between "
            "draws. EVPPI per group: Strong, Oakley & Brennan's nonparametric regression of each arm's gain on "
            "the group's parameters (additive P-splines, smoothness by GCV); a group no arm uses is worth 0; a "
            f"group with fewer than {DRAWS_PER_PARAMETER} draws per parameter is not estimated. "
            "Seed noise left in each draw's mean makes EVPI and EVPPI slightly too large; more replicates shrink "
            "it. The sections below pool every draw and replicate as paired runs: their intervals understate parameter "
            "uncertainty; this section's do not.", "",
            "Distributions drawn (decision.json holds the results, draws.csv every draw):", ""] + params + [""]


def draws_table(c: Comparison) -> pd.DataFrame:
    """One row per draw: the drawn parameters and each arm's mean gain over the draw's replicates."""
    from experiments.decision import per_draw

    table = pd.DataFrame(c.values)
    table.insert(0, "draw", np.arange(len(c.values)))
    gains = per_draw(c.gains)
    for a, arm in enumerate(c.arm_names[1:], start=1):
        table[f"gain {arm}"] = gains[:, a]
    return table


# -- the folder -----------------------------------------------------------------------------------
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
table{border-collapse:collapse;font-size:13px;margin:1em 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;vertical-align:top}
th{background:#f2f2f2}td:first-child,th:first-child,td:nth-child(2){text-align:left}
blockquote{border-left:4px solid #d9a400;background:#fff8e1;margin:1em 0;padding:0.3em 1em}
blockquote.assumptions{border-color:#5b8def;background:#eef3ff}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0}code{background:#f4f4f4;padding:0 3px}
pre{white-space:pre-wrap;overflow-wrap:anywhere}
"""


def markdown_text(c: Comparison, figs: list, out: Path) -> str:
    """The report in Markdown (report.html is rendered from it)."""
    s = c.settings
    pct = _pct(c)
    names = ", ".join(c.arm_names[1:]) or "(no arm)"
    intro = (f"Market **{c.market}**, {c.days} days, scale={c.scale}; {len(c.arm_names) - 1} arm(s) against the "
             f"baseline **{c.baseline.name}**, {s.replicates} replicates each, "
             + ("common random numbers (replicate r runs on the same seed in every arm)" if s.crn
                else "independent seeds per arm (crn=false)")
             + (f", warm-up {s.warmup_days} days without policies" if s.warmup_days else "")
             + f". Intervals: {pct}% paired t (not adjusted); p (Holm): p-values adjusted for multiplicity by "
             f"Holm's method within two families, the {int((c.stats['family'] == 'headline').sum())} net-contribution "
             f"tests of the answer and the {int((c.stats['family'] == 'details').sum())} tests of the side tables."
             + (f" {c.resumed} of the runs were loaded from this folder, saved by an earlier start of the same "
                "command." if c.resumed else ""))
    h_header, h_rows = headline_rows(c)
    md = [f"# Policy comparison: {names} vs {c.baseline.name}", "", intro, ""]
    md += decision_markdown(c) if c.decision is not None else []
    md += ["## The answer", "", verdict(c), "",
          _md_table(h_header, h_rows), "",
          f"Extra net contribution: arm minus baseline over the run, already net of the arm's CS spend; **bold**: "
          f"resolved after Holm's correction (p (Holm) < {1 - s.confidence:.2g}). ROI = extra net contribution / "
          "extra CS spend (> 0 pays back). Payback month: the first month whose cumulative extra net contribution "
          "is >= 0. " + ("Intervals here: seed noise of the pooled runs; the section above has the ones with "
                         "parameter uncertainty." if c.decision is not None else
                         "Probability best needs parameter uncertainty (`uncertainty=default draws=K`), which this "
                         "comparison does not model: the intervals are seed noise only."), "",
          f"![{figs[0][1]}]({figs[0][0]})", ""]
    if c.failed:
        md += ["### Failed arms", ""] + [f"- **{n}**: {e.splitlines()[0]}" for n, e in c.failed.items()] + [""]
    md += ["## Validity warnings", ""]
    md += ([f"> - {w}" for w in c.guards] if c.guards else ["None: the scale, horizon, replicates and survey "
                                                           "samples pass the guards of conf/compare.yaml."]) + [""]
    md += ["## Assumptions", ""] + [f"> - {a}" for a in assumptions(c)] + ["",
           "These are assumed, not measured: a different staff cost or action price moves every ROI.", ""]
    md += ["## Details by side", ""]
    for side in [*tables.sides_of(c), "platform"]:
        header, rows = detail_rows(c, side)
        md += [f"### {side}", "", _md_table(header, rows), ""]
    md += ["NPS answers per run are expected counts (survey share x active agents on each survey day); CSAT "
           "answers are counted. Churn in % per month (differences in percentage points), LTV per agent acquired "
           f"during the run and money in {CURRENCY}.", ""]
    md += ["## Figures", ""]
    for name, title in figs[1:]:
        md += [f"### {title}", "", f"![{title}]({name})", ""]
    net = c.stats[c.stats["family"] == "headline"].set_index("arm")
    md += ["## Replicates needed", "",
           f"Replicates per arm for 80% power to resolve a difference at the {pct}% level (paired t, the observed "
           f"spread taken as the truth, before Holm's correction); this comparison used {s.replicates}. Net "
           "contribution: " + ", ".join(f"{arm} {_needed(net.loc[arm, 'replicates_needed'], net.loc[arm, 'diff'])}"
                                        for arm in net.index)
           + ". The side tables give it for every metric.", ""]
    crn_header, crn_table, _ = crn_rows(c)
    md += ["## Common random numbers", "",
           "Every arm of a replicate sees the same luck, so paired differences vary less than differences of "
           "independent runs. Ratio of interval widths (below 1: narrower with CRN; median over arms); the "
           "estimate uses width_independent = 2 t sqrt((s_arm^2 + s_base^2)/n)"
           + ("; the measured column re-ran every arm with independent seeds." if c.crn_runs else
              "; `crn_check=true` also measures it by re-running the arms with independent seeds."), "",
           _md_table(crn_header, crn_table), ""]
    md += ["## Reproduce", "", "```", reproduce_command(s.args, out), "```", "",
           "Into this folder the command redraws the report from the saved runs (and finishes any that are "
           "missing); into a new folder (`out=DIR`) it recomputes everything, bit for bit. The folder holds the "
           "resolved config of every arm (config.yaml), the version, commit and seeds (manifest.json).", ""]
    md += ["## Methods", "",
           "- d_r = arm_r - baseline_r per replicate r; interval mean(d) +- t(1 - alpha/2, n - 1) sd(d) / sqrt(n).",
           "- p: two-sided paired t test; p (Holm): Holm's step-down adjustment within a family (the answer's "
           "net-contribution tests; the side tables' tests), so the chance of any false 'resolved' in a family "
           "stays below alpha.",
           "- Replicates needed: smallest n with power >= 0.8 of the paired t test for effect size |mean(d)| / sd(d).",
           "- ROI = mean(d net contribution) / mean(d CS spend), delta-method interval; undefined when the extra "
           "CS spend is <= 0.",
           "- Files: comparison.parquet (every value), stats.csv, economics.csv, headline.csv, config.yaml, "
           "manifest.json.", ""]
    return "\n".join(md)


def write_report(c: Comparison, out: Path) -> dict:
    """Write the comparison's report files into ``out``; return the paths of report.md and report.html."""
    import markdown
    import matplotlib
    from omegaconf import OmegaConf

    matplotlib.use("Agg")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = c.tidy.copy()
    table.insert(0, "crn", c.settings.crn)
    table.to_parquet(out / "comparison.parquet", index=False)
    c.stats.to_csv(out / "stats.csv", index=False)
    c.economics.to_csv(out / "economics.csv", index=False)
    c.headline.to_csv(out / "headline.csv", index=False)
    _, _, crn_info = crn_rows(c)
    if crn_info["measured"] is not None:
        crn_info["measured"].to_csv(out / "crn.csv", index=False)
    figs = figures(c, out)
    if c.decision is not None:
        fig_evppi(c, out / "evppi.png")
        atomic_write(out / "decision.json", json.dumps(c.decision, indent=2).encode("utf-8"))
        draws_table(c).to_csv(out / "draws.csv", index=False)
    text = markdown_text(c, figs, out)
    atomic_write(out / "report.md", text.encode("utf-8"))
    body = markdown.markdown(text, extensions=["tables", "fenced_code"])
    body = re.sub(r'src="([\w.-]+\.png)"', lambda m: 'src="data:image/png;base64,'
                  + base64.b64encode((out / m.group(1)).read_bytes()).decode("ascii") + '"', body)
    body = body.replace("<h2>Assumptions</h2>\n<blockquote>",
                        '<h2>Assumptions</h2>\n<blockquote class="assumptions">')
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>twosided comparison</title>"
            f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")
    atomic_write(out / "report.html", page.encode("utf-8"))
    if c.resolved:
        atomic_write(out / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(c.resolved)).encode("utf-8"))
    s = c.settings
    manifest = {"command": reproduce_command(s.args, out), **provenance(), "baseline": c.baseline.name,
                "arms": {a.name: {"policies": a.policies, "overrides": a.overrides, "changes": a.changed,
                                  "description": a.description} for a in c.arms},
                "failed": c.failed, "replicates": s.replicates, "crn": s.crn, "warmup_days": s.warmup_days,
                "confidence": s.confidence, "model": s.model, "scale": c.scale, "days": c.days, "seeds": c.seeds,
                "elapsed_s": c.elapsed_s, "resumed_runs": c.resumed, "best": c.best, "guards": c.guards,
                "crn_ratios": crn_info["ratios"],
                **({"uncertainty": c.uncertainty.name, "draws": len(c.values)} if c.uncertainty is not None else {})}
    atomic_write(out / "manifest.json", json.dumps(manifest, indent=2, default=str).encode("utf-8"))
    return {"md": out / "report.md", "html": out / "report.html", "folder": out}


def terminal_summary(c: Comparison) -> str:
    """The answer as plain text for the terminal: verdict and headline table."""
    header, rows = headline_rows(c)
    cells = [[str(v[0] if isinstance(v, tuple) else v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    lines = [re.sub(r"\*\*", "", verdict(c)), "",
             "  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)
