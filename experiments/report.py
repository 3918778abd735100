"""The decision report of a comparison: comparison.parquet, report.md, report.html, figures (PNG).

Layout of the folder::

    comparison.parquet   one row per arm, replicate and metric (side, metric, value, seed)
    stats.csv            the paired statistics of every arm x side x metric against the baseline
    economics.csv        ROI (with interval) and payback month per arm
    crn.csv              interval widths with / without common random numbers (when measured)
    report.md            the decision table, figures, replicates needed, CRN, methods
    report.html          the same, self-contained (figures embedded)
    *.png                the figures
"""
from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from experiments import stats
from experiments.compare import (CRN_CHECK_METRICS, MONTH_DAYS, TENURE_STEP, Comparison, crn_ratios, economics,
                                 paired_table, tidy)

SIDES = ("buyers", "sellers", "drivers")
BASE_STYLE = {"color": "black", "linestyle": "--", "linewidth": 2.4, "zorder": 5}
CURRENCY = "currency units"


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
        return f"{x / 1e3:,.0f}k"
    if a >= 100:
        return f"{x:,.0f}"
    return f"{x:,.2f}"


def _signed(text: str, x) -> str:
    return ("+" if _finite(x) and x > 0 else "") + text


# metric -> (label, level formatter, difference formatter, unit of the difference)
FORMATS = {
    "monthly_churn": ("monthly churn", lambda v: f"{100 * v:.2f}%", lambda v: f"{100 * v:+.2f}", "pp"),
    "ltv": ("LTV", _money, lambda v: _signed(_money(v), v), ""),
    "ltv_cac": ("LTV:CAC", lambda v: f"{v:.2f}", lambda v: f"{v:+.2f}", ""),
    "nps": ("NPS", lambda v: f"{v:+.1f}", lambda v: f"{v:+.1f}", "pts"),
    "csat": ("CSAT", lambda v: f"{100 * v:.1f}%", lambda v: f"{100 * v:+.1f}", "pp"),
    "cs_spend": ("CS spend", _money, lambda v: _signed(_money(v), v), ""),
    "net_contribution": ("net contribution", _money, lambda v: _signed(_money(v), v), ""),
    "cac": ("CAC", _money, lambda v: _signed(_money(v), v), ""),
    "activation_30d": ("30-day activation", lambda v: f"{100 * v:.1f}%", lambda v: f"{100 * v:+.1f}", "pp"),
    "active_end": ("active at end", lambda v: f"{v:,.0f}", lambda v: f"{v:+,.0f}", ""),
    "gmv": ("GMV", _money, lambda v: _signed(_money(v), v), ""),
}


def _fmt(metric: str, value, diff: bool = False) -> str:
    if not _finite(value):
        return "n/a"
    f = FORMATS.get(metric)
    if f is None:
        return f"{value:+.3g}" if diff else f"{value:.3g}"
    return (f[2] if diff else f[1])(value)


def _cell(row, metric: str) -> tuple[str, bool]:
    """'level (diff [lo, hi])' and whether the interval excludes 0."""
    level = _fmt(metric, row["mean_arm"])
    if not _finite(row["diff"]):
        return level, False
    unit = FORMATS.get(metric, ("", None, None, ""))[3]
    unit = f" {unit}" if unit else ""
    interval = (f" [{_fmt(metric, row['lo'], True)}, {_fmt(metric, row['hi'], True)}]"
                if _finite(row["lo"]) else "")
    rel = f", {100 * row['rel']:+.1f}%" if _finite(row["rel"]) and row["diff"] != 0 else ""
    return f"{level} ({_fmt(metric, row['diff'], True)}{unit}{interval}{rel})", bool(row["resolved"])


# -- tables ---------------------------------------------------------------------------------------
def decision_table(c: Comparison, st: pd.DataFrame, eco: pd.DataFrame, sides: list) -> tuple[list, list, str]:
    """(header, rows, best arm). A cell is (text, bold)."""
    base = c.baseline.name
    table = tidy(c.runs)
    levels = table.groupby(["arm", "side", "metric"])["value"].mean()
    columns = []
    for metric in ("monthly_churn", "ltv", "nps", "csat", "ltv_cac"):
        for side in sides:
            if (base, side, metric) in levels.index and _finite(levels[(base, side, metric)]):
                columns.append((side, metric, f"{FORMATS[metric][0]} {side}"))
    columns += [("platform", "cs_spend", f"CS spend ({CURRENCY})"),
                ("platform", "net_contribution", f"net contribution ({CURRENCY})")]
    header = ["arm"] + [c_[2] for c_ in columns] + ["ROI", "payback month"]
    arms_ok = [a.name for a in c.arms if a.name not in c.failed]
    net = st[(st["side"] == "platform") & (st["metric"] == "net_contribution")].set_index("arm")
    candidates = net[net["lo"] > 0]
    best = candidates["diff"].idxmax() if len(candidates) else base
    rows = []
    keyed = st.set_index(["arm", "side", "metric"])
    eco_by = eco.set_index("arm") if len(eco) else pd.DataFrame()
    for arm in arms_ok:
        name = arm + (" (baseline)" if arm == base else "") + (" ★ best" if arm == best else "")
        row = [(name, arm == best)]
        for side, metric, _ in columns:
            if arm == base:
                row.append((_fmt(metric, levels.get((arm, side, metric), math.nan)), False))
            elif (arm, side, metric) in keyed.index:
                row.append(_cell(keyed.loc[(arm, side, metric)], metric))
            else:
                row.append(("n/a", False))
        if arm == base or arm not in eco_by.index:
            row += [("-", False), ("-", False)]
        else:
            e = eco_by.loc[arm]
            if _finite(e["roi"]):
                interval = f" [{e['roi_lo']:+.2f}, {e['roi_hi']:+.2f}]" if _finite(e["roi_lo"]) else ""
                row.append((f"{e['roi']:+.2f}{interval}", _finite(e["roi_lo"]) and (e["roi_lo"] > 0 or e["roi_hi"] < 0)))
            else:
                row.append(("undefined (no extra CS spend)", False))
            pb = e["payback_month"]
            row.append((f"{int(pb)}" if _finite(pb) else f"not within {c.days // MONTH_DAYS} months", False))
        rows.append(row)
    for arm, error in c.failed.items():
        rows.append([(f"{arm} (FAILED)", False), (error.splitlines()[0][:160], False)]
                    + [("", False)] * (len(header) - 2))
    return header, rows, best


def needed_table(c: Comparison, st: pd.DataFrame, sides: list) -> tuple[list, list]:
    """Replicates needed to resolve each headline difference at the chosen confidence."""
    keys = [(s, m) for m in ("monthly_churn", "ltv", "nps", "csat") for s in sides] + [
        ("platform", "cs_spend"), ("platform", "net_contribution")]
    keyed = st.set_index(["arm", "side", "metric"])
    keys = [k for k in keys if any((a, *k) in keyed.index and _finite(keyed.loc[(a, *k)]["diff"])
                                   for a in keyed.index.get_level_values(0).unique())]
    header = ["arm"] + [f"{FORMATS[m][0]} {s}" if s != "platform" else FORMATS[m][0] for s, m in keys]
    rows = []
    for arm in dict.fromkeys(st["arm"]):
        row = [(arm, False)]
        for s, m in keys:
            if (arm, s, m) not in keyed.index:
                row.append(("n/a", False))
                continue
            r = keyed.loc[(arm, s, m)]
            n = r["replicates_needed"]
            if not _finite(n) or n is None:
                text = "never (no difference)" if r["diff"] == 0 else "n/a"
            else:
                text = f"{int(n):,}" + (" ✓" if r["resolved"] else "")
            row.append((text, bool(r["resolved"])))
        rows.append(row)
    return header, rows


def crn_section(c: Comparison, st: pd.DataFrame) -> tuple[list, list, dict]:
    """Interval width with CRN / without, per metric (median over arms): measured and in-run estimate."""
    wanted = [k for k in CRN_CHECK_METRICS if ((st["side"] == k[0]) & (st["metric"] == k[1])).any()]
    measured = None
    if c.crn_runs:
        crn, other = (c.runs, c.crn_runs) if c.settings.crn else (c.crn_runs, c.runs)
        measured = crn_ratios(crn, other, c.baseline.name, c.settings.confidence)
    header = ["metric", "paired width / independent width (estimated from these runs)"]
    if measured is not None:
        header.append("measured: crn=true width / crn=false width")
    rows, summary = [], {}
    for side, metric in wanted:
        sel = st[(st["side"] == side) & (st["metric"] == metric)]
        est = (sel["width"] / sel["unpaired_width"]).replace([np.inf, -np.inf], np.nan).dropna()
        label = f"{FORMATS.get(metric, (metric,))[0]} {side}" if side != "platform" else FORMATS[metric][0]
        cells = [(label, False), (_ratio_text(est), False)]
        summary[f"{side}.{metric}"] = {"estimated_median": float(est.median()) if len(est) else None}
        if measured is not None:
            m = measured[(measured["side"] == side) & (measured["metric"] == metric)]["ratio"]
            m = m.replace([np.inf, -np.inf], np.nan).dropna()
            cells.append((_ratio_text(m), False))
            summary[f"{side}.{metric}"]["measured_median"] = float(m.median()) if len(m) else None
        rows.append(cells)
    return header, rows, {"ratios": summary, "measured": measured}


def _ratio_text(values: pd.Series) -> str:
    if not len(values):
        return "n/a"
    return f"{values.median():.2f} (arms: {values.min():.2f} to {values.max():.2f})"


# -- figures --------------------------------------------------------------------------------------
def _palette(arms: list, baseline: str) -> dict:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    out, k = {}, 0
    for arm in arms:
        if arm == baseline:
            continue
        out[arm] = {"color": cmap(k % 10), "linewidth": 1.6}
        k += 1
    out[baseline] = dict(BASE_STYLE)
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


def _by_arm(runs: list) -> dict:
    out: dict[str, list] = {}
    for res in runs:
        out.setdefault(res["arm_name"], []).append(res)
    return out


def _levels_and_diffs(axes_top, axes_bottom, c: Comparison, get, x, sides, scale, ylabel, dlabel, colors,
                      limits=(0.0, 100.0)):
    """Top row: each arm's mean (band: its interval, clipped to ``limits``); bottom: paired difference to the
    baseline (band: its interval)."""
    by_arm = _by_arm(c.runs)
    base = c.baseline.name
    conf = c.settings.confidence
    for k, side in enumerate(sides):
        ax, axd = axes_top[k], axes_bottom[k]
        base_stack = np.array([get(r, side) for r in by_arm[base]]) * scale
        for arm, runs in by_arm.items():
            stack = np.array([get(r, side) for r in runs]) * scale
            mean, half = _mean_band(stack, conf)
            style = colors[arm]
            ax.plot(x, mean, label=arm + (" (baseline)" if arm == base else ""), **style)
            ax.fill_between(x, np.clip(mean - half, *limits), np.clip(mean + half, *limits), color=style["color"],
                            alpha=0.12 if arm != base else 0.2, linewidth=0)
            if arm == base:
                axd.axhline(0, **{**style, "linewidth": 1.6})
                continue
            reps = [r["replicate"] for r in runs]
            base_by = {r["replicate"]: get(r, side) * scale for r in by_arm[base]}
            diff = np.array([get(r, side) * scale - base_by[r["replicate"]] for r, rep in zip(runs, reps)])
            dmean, dhalf = _mean_band(diff, conf)
            axd.plot(x, dmean, **style)
            axd.fill_between(x, dmean - dhalf, dmean + dhalf, color=style["color"], alpha=0.15, linewidth=0)
        if not np.isfinite(base_stack).any():
            for a in (ax, axd):
                a.text(0.5, 0.5, f"too few {side} acquired to draw", ha="center", va="center",
                       transform=a.transAxes, color="grey")
        ax.set_title(side)
        ax.set_ylabel(ylabel)
        axd.set_ylabel(dlabel)
        for a in (ax, axd):
            a.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        axd.grid(alpha=0.3)


def _legend(fig, axes, ncol=None):
    handles, labels = axes.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=ncol or min(5, len(labels)), frameon=False,
               fontsize=9)


def _paired_panels(c: Comparison, sides, colors, path: Path, key: str, x, ylabel: str, xlabel: str,
                   title: str) -> None:
    """Levels by side on top, paired differences to the baseline below, for a per-run series ``key`` (shares)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(sides), figsize=(5.2 * len(sides), 8.0), squeeze=False, sharex=True)
    _levels_and_diffs(axes[0], axes[1], c, lambda r, s: r[key][s], x, sides, 100, ylabel,
                      "difference to baseline (pp)", colors)
    for ax in axes[1]:
        ax.set_xlabel(xlabel)
    fig.suptitle(title, fontsize=11)
    _legend(fig, axes[0][0])
    fig.tight_layout(rect=(0, 0.07, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_retention(c: Comparison, sides, colors, path: Path) -> None:
    n = len(c.runs[0]["retention"][sides[0]])
    pct = int(round(100 * c.settings.confidence))
    _paired_panels(c, sides, colors, path, "retention", np.arange(n) * TENURE_STEP, "still active (% of cohort)",
                   "tenure (days since joining)",
                   f"Retention of agents acquired during the run, by side (bands: {pct}% intervals over "
                   f"{c.settings.replicates} replicates; bottom: paired difference to the baseline)")


def fig_monthly_churn(c: Comparison, sides, colors, path: Path) -> None:
    months = len(c.runs[0]["churn_months"][sides[0]])
    pct = int(round(100 * c.settings.confidence))
    _paired_panels(c, sides, colors, path, "churn_months", np.arange(1, months + 1),
                   "monthly churn (% of active at month start)", "month of the run (30 days)",
                   f"Monthly churn by side over time (bands: {pct}% intervals; bottom: paired difference to the "
                   "baseline)")


def fig_ltv(c: Comparison, sides, colors, st: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    by_arm = _by_arm(c.runs)
    arms = list(by_arm)
    base = c.baseline.name
    fig, axes = plt.subplots(1, len(sides), figsize=(5.2 * len(sides), 0.55 * len(arms) + 2.6), squeeze=False)
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
                patch.set_edgecolor("black")
                patch.set_linewidth(1.8)
        # the mean LTV of new agents per arm with its interval over replicates
        for yi, arm in zip(y, arms):
            vals = np.array([r["metrics"][(side, "ltv")] for r in by_arm[arm]], dtype=float)
            mean, half = _mean_band(vals[:, None], c.settings.confidence)
            ax.errorbar(mean[0], yi, xerr=None if not np.isfinite(half[0]) else half[0], fmt="D",
                        color="black" if arm == base else colors[arm]["color"], markeredgecolor="black",
                        capsize=4, zorder=6)
        ax.set_yticks(y)
        ax.set_yticklabels([a + (" (baseline)" if a == base else "") for a in arms] if k == 0 else [])
        ax.set_title(side)
        ax.set_xlabel(f"LTV per new agent ({CURRENCY}, discounted)")
        ax.grid(axis="x", alpha=0.3)
    pct = int(round(100 * c.settings.confidence))
    fig.suptitle(f"LTV distributions of agents acquired during the run (boxes: quartiles, whiskers: 5-95%; "
                 f"diamond: mean with its {pct}% interval over replicates)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_cost_benefit(c: Comparison, colors, st: pd.DataFrame, eco: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    base = c.baseline.name
    arms = [a for a in dict.fromkeys(st["arm"])]
    fig, (ax, axc) = plt.subplots(1, 2, figsize=(15, max(4.5, 0.6 * len(arms) + 2.5)),
                                  gridspec_kw={"width_ratios": [1.1, 1]})
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
    ax.set_yticklabels(arms)
    ax.set_xlabel(f"difference to baseline '{base}' over the run (thousand {CURRENCY})")
    ax.set_title(f"Cost and benefit of each arm (bars: mean paired difference, whiskers: "
                 f"{int(round(100 * c.settings.confidence))}% interval)", fontsize=10)
    ax.legend(loc="best", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    # cumulative extra net contribution (payback)
    by_arm = _by_arm(c.runs)
    base_by = {r["replicate"]: r for r in by_arm[base]}
    start = c.runs[0]["start_day"]
    days = np.arange(c.days)
    axc.axhline(0, **{**BASE_STYLE, "linewidth": 1.6}, label=f"{base} (baseline)")
    for arm in arms:
        diff = np.array([np.cumsum(np.where(days >= start, r["series"]["net_contribution"]
                                            - base_by[r["replicate"]]["series"]["net_contribution"], 0.0))
                         for r in by_arm[arm]]) / 1e3
        mean, half = _mean_band(diff, c.settings.confidence)
        style = colors[arm]
        months = days / MONTH_DAYS
        axc.plot(months, mean, label=arm, **style)
        axc.fill_between(months, mean - half, mean + half, color=style["color"], alpha=0.12, linewidth=0)
    axc.set_xlabel("month of the run (30 days)")
    axc.set_ylabel(f"cumulative extra net contribution (thousand {CURRENCY})")
    axc.set_title("Payback: cumulative extra net contribution against the baseline (bands: intervals)", fontsize=10)
    axc.grid(alpha=0.3)
    axc.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _monthly(series: np.ndarray) -> np.ndarray:
    """The survey figures (one value per 30-day month, NaN elsewhere) -> one value per month (mean of the days)."""
    months = len(series) // MONTH_DAYS
    out = np.full(months, np.nan)
    for m in range(months):
        chunk = series[m * MONTH_DAYS:(m + 1) * MONTH_DAYS]
        chunk = chunk[np.isfinite(chunk)]
        if chunk.size:
            out[m] = chunk.mean()
    return out


def fig_nps_csat(c: Comparison, sides, colors, path: Path) -> bool:
    import matplotlib.pyplot as plt

    by_arm = _by_arm(c.runs)
    base = c.baseline.name
    rows = [("nps", "NPS (points, -100 to 100)", 1.0)]
    if any(f"{s}_csat" in c.runs[0]["series"] and np.isfinite(c.runs[0]["series"][f"{s}_csat"]).any() for s in sides):
        rows.append(("csat", "CSAT (% of contacts rating 4-5)", 100.0))
    fig, axes = plt.subplots(len(rows), len(sides), figsize=(5.2 * len(sides), 4.0 * len(rows) + 0.8),
                             squeeze=False, sharex=True)
    for i, (key, ylabel, scale) in enumerate(rows):
        for k, side in enumerate(sides):
            ax = axes[i][k]
            col = f"{side}_{key}"
            drawn = False
            for arm, runs in by_arm.items():
                if col not in runs[0]["series"]:
                    continue
                stack = np.array([_monthly(r["series"][col]) for r in runs]) * scale
                if not np.isfinite(stack).any():
                    continue
                mean, half = _mean_band(stack, c.settings.confidence)
                x = np.arange(1, stack.shape[1] + 1)
                style = colors[arm]
                ax.plot(x, mean, marker="o", markersize=3, label=arm + (" (baseline)" if arm == base else ""),
                        **style)
                lim = (-100, 100) if key == "nps" else (0, 100)
                ax.fill_between(x, np.clip(mean - half, *lim), np.clip(mean + half, *lim), color=style["color"],
                                alpha=0.1, linewidth=0)
                drawn = True
            if not drawn:
                ax.text(0.5, 0.5, f"no {key.upper()} recorded for {side}", ha="center", va="center",
                        transform=ax.transAxes, color="grey")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(f"{key.upper()} {side}")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            if i == len(rows) - 1:
                ax.set_xlabel("month of the run (30 days)")
    fig.suptitle(f"Surveys over time by side (monthly; bands: {int(round(100 * c.settings.confidence))}% intervals "
                 "over replicates)", fontsize=11)
    _legend(fig, axes[0][0])
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return len(rows) > 1


# -- rendering ------------------------------------------------------------------------------------
def _md_table(header: list, rows: list) -> str:
    def cell(text, bold):
        text = str(text).replace("|", "\\|")
        return f"**{text}**" if bold and text else text

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(cell(t, b) for t, b in row) + " |")
    return "\n".join(lines)


def _html_table(header: list, rows: list, best: str | None = None) -> str:
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead>",
           "<tbody>"]
    for row in rows:
        name = str(row[0][0])
        cls = ' class="best"' if best and "★" in name else (' class="base"' if "(baseline)" in name else
                                                              (' class="failed"' if "FAILED" in name else ""))
        cells = "".join(f"<td>{'<b>' if b else ''}{html.escape(str(t))}{'</b>' if b else ''}</td>" for t, b in row)
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _md_to_html_paragraphs(text: str) -> str:
    """The few markdown constructs of the prose sections -> HTML."""
    import re

    out, in_list = [], False
    for line in text.strip().splitlines():
        esc = html.escape(line)
        esc = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", esc)
        esc = re.sub(r"`(.+?)`", r"<code>\1</code>", esc)
        if line.startswith("- "):
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{esc[2:]}</li>")
            continue
        if in_list:
            out.append("</ul>")
            in_list = False
        if line.startswith("### "):
            out.append(f"<h3>{esc[4:]}</h3>")
        elif line.strip():
            out.append(f"<p>{esc}</p>")
    if in_list:
        out.append("</ul>")
    return "\n".join(out)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1500px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
table{border-collapse:collapse;font-size:12.5px;margin:1em 0;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:4px 7px;text-align:right;vertical-align:top}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left;white-space:nowrap}
tr.base td{background:#eeeeee;font-style:italic}tr.best td{background:#e3f4e1}tr.failed td{color:#a00}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0}code{background:#f4f4f4;padding:0 3px}
"""


def write_report(c: Comparison, out: Path) -> dict:
    """Write the comparison's folder; return the paths of report.md and report.html."""
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = tidy(c.runs)
    table.insert(0, "crn", c.settings.crn)
    table.to_parquet(out / "comparison.parquet", index=False)
    base = c.baseline.name
    st = paired_table(tidy(c.runs), base, c.settings.confidence)
    eco = economics(c.runs, base, c.settings.confidence) if len(st) else pd.DataFrame(
        columns=["arm", "roi", "roi_lo", "roi_hi", "d_net", "d_spend", "payback_month", "paid_back_share"])
    st.to_csv(out / "stats.csv", index=False)
    eco.to_csv(out / "economics.csv", index=False)
    sides = [s for s in SIDES if s in c.runs[0]["sides"]]
    arms_ok = [a.name for a in c.arms if a.name not in c.failed]
    colors = _palette(arms_ok, base)
    pct = int(round(100 * c.settings.confidence))

    figures = []
    has_arms = len(st) > 0
    fig_retention(c, sides, colors, out / "retention.png")
    figures.append(("retention.png", "Retention curves by side per arm"))
    fig_monthly_churn(c, sides, colors, out / "monthly_churn.png")
    figures.append(("monthly_churn.png", "Monthly churn by side over time"))
    fig_ltv(c, sides, colors, st, out / "ltv.png")
    figures.append(("ltv.png", "LTV distributions"))
    if has_arms:
        fig_cost_benefit(c, colors, st, eco, out / "cost_benefit.png")
        figures.append(("cost_benefit.png", "Cost and benefit of each arm, and payback"))
    has_csat = fig_nps_csat(c, sides, colors, out / "nps_csat.png")
    figures.append(("nps_csat.png", "NPS and CSAT over time" if has_csat else "NPS over time (no CSAT recorded)"))

    header, rows, best = decision_table(c, st, eco, sides) if has_arms else (["arm"], [[(base, False)]], base)
    n_header, n_rows = needed_table(c, st, sides) if has_arms else (["arm"], [])
    crn_header, crn_rows, crn_info = crn_section(c, st) if has_arms else (["metric"], [], {"ratios": {}, "measured": None})
    if crn_info["measured"] is not None:
        crn_info["measured"].to_csv(out / "crn.csv", index=False)

    s = c.settings
    model_text = " ".join(s.model) if s.model else "(defaults of conf/config.yaml)"
    intro = (f"Market **{c.market}**, {c.days} days, model overrides: `{model_text}`. "
             f"{len(arms_ok) - 1} arm(s) against the baseline **{base}**, {s.replicates} replicates each, "
             + (f"common random numbers (replicate r runs on seed {c.seeds[base][0]} + r in every arm)"
                if s.crn else "independent seeds per arm (crn=false)")
             + (f", warm-up {s.warmup_days} days without policies, then every arm branched from the same snapshot"
                if s.warmup_days else "")
             + f". Intervals: {pct}% paired t intervals across replicates. Simulated in {c.elapsed_s:.0f} s "
             f"with jobs={s.jobs}.")
    if best == base:
        verdict = (f"**No arm resolvably raises net contribution** over the baseline at {pct}% confidence "
                   f"(no interval of the difference lies above 0); the baseline is marked best. See the replicates "
                   f"table for how many replicates would resolve the differences.")
    else:
        e = eco.set_index("arm").loc[best]
        roi_text = f"ROI {e['roi']:+.2f}" if _finite(e["roi"]) else "no extra CS spend"
        verdict = (f"**Best arm: {best}**, the arm with the largest increase in net contribution whose {pct}% "
                   f"interval lies above 0 ({_money(e['d_net'])} {CURRENCY} over the run, {roi_text}, payback "
                   + (f"in month {int(e['payback_month'])})." if _finite(e["payback_month"]) else
                      "not within the horizon)."))
    legend = (f"Cells: the arm's mean over replicates (difference to the baseline [{pct}% interval], relative change); "
              f"**bold**: the "
              f"interval excludes 0. Churn in % per month (differences in percentage points), LTV of agents "
              f"acquired during the run and money in {CURRENCY}, NPS in points, CSAT as the share of 4-5 answers. "
              f"CS spend = CS desk staff cost + incentives (referral bonuses, offers). ROI = extra net contribution / "
              f"extra CS spend (net of that spend: > 0 pays back; undefined when an arm spends nothing extra). "
              f"Payback month: first month whose cumulative extra net contribution (mean over replicates) is >= 0.")
    failed_text = ""
    if c.failed:
        failed_text = "\n".join(f"- **{name}**: {err.splitlines()[0]}" for name, err in c.failed.items())
    crn_ratio_note = []
    for key, vals in crn_info["ratios"].items():
        if vals.get("measured_median") is not None:
            crn_ratio_note.append(f"{key} {vals['measured_median']:.2f}")
    crn_text = (
        "With common random numbers every arm of a replicate sees the same luck, so the paired differences vary "
        "less than differences of independent runs. Ratio of interval widths (below 1: CRN intervals are narrower; "
        "median over arms). The estimate from these runs uses width_independent = 2 t sqrt((s_arm^2 + s_base^2)/n) "
        "(the spread of each arm does not depend on seed sharing)"
        + ("; the measured column re-ran every arm with independent seeds (crn_check=true)"
           f" in {c.crn_check_elapsed_s:.0f} s." if c.crn_runs else
           "; run with `crn_check=true` to also measure it by re-running the arms with independent seeds.")
    )
    methods = f"""
- Replicate r of every arm runs on the same seed (crn=true), so d_r = arm_r - baseline_r is the policy's effect in replicate r; d_r are independent across replicates.
- Interval: mean(d) +- t(1 - alpha/2, n - 1) * sd(d) / sqrt(n) (paired t interval, scipy.stats.t), confidence {s.confidence}.
- Relative change: mean(d) / |mean(baseline)| (in stats.csv, column rel).
- Replicates needed to resolve a difference (interval excluding 0): the smallest n with n >= (t(1 - alpha/2, n - 1) * sd(d) / |mean(d)|)^2, from the observed paired sd. ✓ marks differences already resolved.
- ROI = mean(d net contribution) / mean(d CS spend), interval by the delta method (residuals d_net - ROI d_spend); undefined when the extra CS spend is <= 0.
- Monthly churn: churned during a 30-day month / active at its start, averaged over the months; LTV: discounted contribution margin per agent acquired during the run (realised plus predicted for agents alive at the end).
- Files: comparison.parquet (one row per arm, replicate and metric), stats.csv (paired statistics of every metric), economics.csv (ROI, payback).
"""
    md = [f"# Policy comparison: {', '.join(a for a in arms_ok if a != base) or '(no arm)'} vs {base}", "",
          intro, "", "## Decision table", "", verdict, "", _md_table(header, rows), "", legend, ""]
    if failed_text:
        md += ["### Failed arms", "", "These arms could not be composed or run; they are left out:", "",
               failed_text, ""]
    md += ["## Figures", ""]
    for name, title in figures:
        md += [f"### {title}", "", f"![{title}]({name})", ""]
    md += ["## Replicates needed", "",
           f"Replicates per arm that would resolve each difference at {pct}% confidence, from the observed paired "
           f"variance (this comparison used {s.replicates}; ✓ = already resolved).", "",
           _md_table(n_header, n_rows), "",
           "## Common random numbers", "", crn_text, "", _md_table(crn_header, crn_rows), "",
           "## Methods", methods]
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")

    body = [f"<h1>Policy comparison: {html.escape(', '.join(a for a in arms_ok if a != base) or '(no arm)')} "
            f"vs {html.escape(base)}</h1>", _md_to_html_paragraphs(intro), "<h2>Decision table</h2>",
            _md_to_html_paragraphs(verdict), _html_table(header, rows, best), _md_to_html_paragraphs(legend)]
    if failed_text:
        body += ["<h3>Failed arms</h3>", _md_to_html_paragraphs(failed_text)]
    body.append("<h2>Figures</h2>")
    for name, title in figures:
        data = base64.b64encode((out / name).read_bytes()).decode("ascii")
        body += [f"<h3>{html.escape(title)}</h3>", f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">']
    body += ["<h2>Replicates needed</h2>",
             _md_to_html_paragraphs(f"Replicates per arm that would resolve each difference at {pct}% confidence, "
                                    f"from the observed paired variance (this comparison used {s.replicates}; "
                                    "✓ = already resolved)."),
             _html_table(n_header, n_rows), "<h2>Common random numbers</h2>", _md_to_html_paragraphs(crn_text),
             _html_table(crn_header, crn_rows), "<h2>Methods</h2>", _md_to_html_paragraphs(methods)]
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>twosided comparison</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    (out / "report.html").write_text(page, encoding="utf-8")
    (out / "meta.json").write_text(json.dumps({
        "baseline": base, "arms": arms_ok, "failed": c.failed, "replicates": s.replicates, "crn": s.crn,
        "warmup_days": s.warmup_days, "jobs": s.jobs, "confidence": s.confidence, "model": s.model,
        "seeds": c.seeds, "elapsed_s": c.elapsed_s, "best": best,
        "crn_ratios": crn_info["ratios"]}, indent=2), encoding="utf-8")
    return {"md": out / "report.md", "html": out / "report.html", "folder": out}
