"""The tables of a comparison, from its reduced runs: tidy values, paired statistics, economics, guards.

Every table here is a pandas DataFrame in plain units (shares as fractions,
money in currency units); experiments/report.py formats and draws them.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from experiments import stats
from sim.config import SIDES
from sim.metrics import MONTH_DAYS

if TYPE_CHECKING:
    from experiments.compare import Comparison

# The metrics the report's tables show, per side; their paired tests form the Holm family.
SIDE_DETAIL = ("monthly_churn", "ltv", "ltv_orders", "ltv_cac", "nps", "csat")   # ltv_orders: buyers only
SIDE_REVENUE = ("nrr", "grr", "expansion_rate")   # sellers only; shown with their intervals, outside the Holm families
PLATFORM_DETAIL = ("net_contribution", "cs_spend", "take_revenue", "gmv")
# survey metric -> the metric holding its number of answers per run
ANSWERS = {"nps": "nps_answers", "csat": "csat_answers"}
TENURE_STEP = 7   # days between the points of a retention curve
# the metrics whose interval widths the CRN section compares
CRN_CHECK_METRICS = (("buyers", "monthly_churn"), ("sellers", "monthly_churn"), ("drivers", "monthly_churn"),
                     ("buyers", "ltv"), ("sellers", "ltv"), ("drivers", "ltv"), ("platform", "net_contribution"))
ECONOMICS_COLUMNS = ["arm", "roi", "roi_lo", "roi_hi", "d_net", "d_net_lo", "d_net_hi", "d_spend", "payback_month",
                     "paid_back_share", "last_month_extra"]


def tidy(runs: list) -> pd.DataFrame:
    """One row per arm, replicate and metric (side, metric, value)."""
    rows = []
    for res in runs:
        for (side, metric), value in res["metrics"].items():
            rows.append((res["arm_name"], res["replicate"], res["seed"], side, metric, value))
    return pd.DataFrame(rows, columns=["arm", "replicate", "seed", "side", "metric", "value"])


def family(side: str, metric: str) -> str:
    """The Holm family of a metric's paired test: ``headline`` (net contribution, one test per arm: the
    decision), ``details`` (the other metrics the report's tables show) or ``""`` (not adjusted)."""
    if (side, metric) == ("platform", "net_contribution"):
        return "headline"
    return "details" if metric in (PLATFORM_DETAIL if side == "platform" else SIDE_DETAIL) else ""


def paired_table(table: pd.DataFrame, baseline: str, confidence: float) -> pd.DataFrame:
    """Paired statistics of every (arm, side, metric) against the baseline (see experiments/stats.py).

    ``p_holm``: Holm-adjusted within the test's family (:func:`family`), NaN outside the families.
    """
    rows = []
    wide = table.pivot_table(index=["side", "metric", "replicate"], columns="arm", values="value", aggfunc="first",
                             dropna=False)
    arms = [a for a in dict.fromkeys(table["arm"]) if a != baseline]
    for (side, metric), block in wide.groupby(level=["side", "metric"], sort=False):
        base = block[baseline].to_numpy(float)
        for arm in arms:
            values = block[arm].to_numpy(float)
            p = stats.paired(values, base, confidence)
            rows.append({"arm": arm, "side": side, "metric": metric, "n": p.n, "mean_base": p.mean_base,
                         "mean_arm": p.mean_arm, "diff": p.diff, "sd": p.sd, "lo": p.lo, "hi": p.hi,
                         "rel": p.rel, "p": p.p,
                         "replicates_needed": p.replicates_needed if family(side, metric) else math.nan,
                         "resolved": p.resolved,
                         "width": p.width, "unpaired_width": stats.unpaired_width(values, base, confidence)})
    out = pd.DataFrame(rows)
    if len(out):
        out["family"] = [family(s, m) for s, m in zip(out["side"], out["metric"])]
        out["p_holm"] = math.nan
        for name in ("headline", "details"):
            members = out["family"] == name
            out.loc[members, "p_holm"] = stats.holm(out.loc[members, "p"].to_numpy(float))
        out["resolved_holm"] = out["p_holm"] < 1.0 - confidence
    return out


def economics(runs: list, baseline: str, confidence: float) -> pd.DataFrame:
    """Per arm: extra net contribution (interval), ROI (interval), payback month and the last month's extra net."""
    by_arm: dict[str, list] = {}
    for res in runs:
        by_arm.setdefault(res["arm_name"], []).append(res)
    base = {res["replicate"]: res for res in by_arm.get(baseline, [])}
    rows = []
    for arm, mine in by_arm.items():
        if arm == baseline:
            continue
        pairs = [(res, base[res["replicate"]]) for res in mine if res["replicate"] in base]
        d_net = [a["metrics"][("platform", "net_contribution")] - b["metrics"][("platform", "net_contribution")]
                 for a, b in pairs]
        d_spend = [a["metrics"][("platform", "cs_spend")] - b["metrics"][("platform", "cs_spend")] for a, b in pairs]
        value, lo, hi = stats.roi_interval(d_net, d_spend, confidence)
        net = stats.paired(d_net, np.zeros(len(d_net)), confidence)
        start = pairs[0][0]["start_day"] if pairs else 0
        extra = np.mean([a["series"]["net_contribution"] - b["series"]["net_contribution"] for a, b in pairs], axis=0)
        per_rep = [stats.payback_month(a["series"]["net_contribution"] - b["series"]["net_contribution"], start)
                   for a, b in pairs]
        rows.append({"arm": arm, "roi": value, "roi_lo": lo, "roi_hi": hi, "d_net": net.diff, "d_net_lo": net.lo,
                     "d_net_hi": net.hi, "d_spend": float(np.mean(d_spend)),
                     "payback_month": stats.payback_month(extra, start),
                     "paid_back_share": float(np.mean([p is not None for p in per_rep])) if per_rep else math.nan,
                     "last_month_extra": float(np.nansum(extra[-MONTH_DAYS:]))})
    return pd.DataFrame(rows, columns=ECONOMICS_COLUMNS)


def crn_ratios(crn_runs: list, other_runs: list, baseline: str, confidence: float, metrics) -> pd.DataFrame:
    """Width of the paired interval with common random numbers / with independent seeds, per arm and metric."""
    a = paired_table(tidy(crn_runs), baseline, confidence)
    b = paired_table(tidy(other_runs), baseline, confidence)
    keys = ["arm", "side", "metric"]
    merged = a[keys + ["width"]].merge(b[keys + ["width"]], on=keys, suffixes=("_crn", "_independent"))
    merged["ratio"] = merged["width_crn"] / merged["width_independent"]
    wanted = set(metrics)
    return merged[[k in wanted for k in zip(merged["side"], merged["metric"])]].reset_index(drop=True)


def headline(c: Comparison) -> pd.DataFrame:
    """The answer, one row per arm: what it changes, extra net contribution (interval, Holm p), ROI, payback."""
    st, eco = c.stats, c.economics
    net = st[(st["side"] == "platform") & (st["metric"] == "net_contribution")].set_index("arm")
    by_name = {a.name: a for a in c.arms}
    rows = []
    for _, e in eco.iterrows():
        arm = by_name[e["arm"]]
        rows.append({"arm": arm.name, "changes": arm.changed or arm.description, "d_net": e["d_net"],
                     "d_net_lo": e["d_net_lo"], "d_net_hi": e["d_net_hi"],
                     "p_holm": net.loc[arm.name, "p_holm"] if arm.name in net.index else math.nan,
                     "roi": e["roi"], "roi_lo": e["roi_lo"], "roi_hi": e["roi_hi"],
                     "payback_month": e["payback_month"]})
    out = pd.DataFrame(rows, columns=["arm", "changes", "d_net", "d_net_lo", "d_net_hi", "p_holm", "roi", "roi_lo",
                                      "roi_hi", "payback_month"])
    return out.sort_values("d_net", ascending=False, kind="stable").reset_index(drop=True)


def best_arm(c: Comparison) -> str:
    """The arm with the largest extra net contribution that Holm's correction still resolves above 0, else the
    baseline."""
    h = c.headline
    alpha = 1.0 - c.settings.confidence
    winners = h[(h["d_net"] > 0) & (h["p_holm"] < alpha)]
    return str(winners.iloc[0]["arm"]) if len(winners) else c.baseline.name


def side_detail(c: Comparison, side: str) -> pd.DataFrame:
    """Long table of one side (or ``platform``): metric, arm, mean, difference (interval), Holm p, replicates needed
    for 80% power, survey answers per run."""
    st = c.stats
    metrics = PLATFORM_DETAIL if side == "platform" else SIDE_DETAIL + SIDE_REVENUE
    levels = c.tidy.groupby(["arm", "side", "metric"])["value"].mean()
    answers = answers_per_run(c)
    rows = []
    for metric in metrics:
        if not np.isfinite(levels.get((c.baseline.name, side, metric), math.nan)):
            continue
        for arm in c.arm_names:
            row = {"metric": metric, "arm": arm, "mean": levels.get((arm, side, metric), math.nan),
                   "diff": math.nan, "lo": math.nan, "hi": math.nan, "p_holm": math.nan,
                   "replicates_needed": math.nan, "answers": math.nan}
            sel = st[(st["arm"] == arm) & (st["side"] == side) & (st["metric"] == metric)]
            if len(sel):
                r = sel.iloc[0]
                row.update(diff=r["diff"], lo=r["lo"], hi=r["hi"], p_holm=r["p_holm"],
                           replicates_needed=r["replicates_needed"])
            if metric in ANSWERS:
                row["answers"] = answers.get((arm, side, metric), math.nan)
            rows.append(row)
    return pd.DataFrame(rows, columns=["metric", "arm", "mean", "diff", "lo", "hi", "p_holm", "replicates_needed",
                                       "answers"])


def answers_per_run(c: Comparison) -> dict:
    """(arm, side, survey metric) -> mean number of answers per run behind it (NPS: expected, see compare)."""
    table = c.tidy
    wanted = table[table["metric"].isin(ANSWERS.values())]
    means = wanted.groupby(["arm", "side", "metric"])["value"].mean()
    back = {v: k for k, v in ANSWERS.items()}
    return {(arm, side, back[metric]): value for (arm, side, metric), value in means.items()}


def guards(c: Comparison) -> list[str]:
    """Validity warnings: test scale, short horizon, too few replicates for the arms, surveys on few answers."""
    g = c.settings.guards
    out = []
    months = c.days // MONTH_DAYS
    if c.scale in g["test_scales"]:
        out.append(f"scale={c.scale} is a test scale ({c.days} days, a small market): rankings can flip at a real "
                   "scale; decide on scale=default or larger.")
    eco = c.economics
    late = eco[eco["payback_month"].isna() & (eco["last_month_extra"] > 0)]
    if len(late):
        out.append(f"The horizon ({c.days} days) is shorter than the payback of {', '.join(late['arm'])}: their "
                   "extra net contribution is still negative at the end but rising (positive in the last month); "
                   "run longer (days=) to see whether and when they pay back.")
    if months < g["payback_months"]:
        out.append(f"The horizon ({c.days} days, {months} months) is shorter than the {g['payback_months']}-month "
                   "payback a decision usually asks about; payback months and ROI cover only the horizon.")
    k = len(c.arm_names) - 1
    n = c.settings.replicates
    need = replicates_for_arms(k, 1.0 - c.settings.confidence, g["max_t_inflation"])
    if k >= 1 and n < need:
        out.append(f"{n} replicates are too few for {k} arm(s): with Holm's correction the first test is at level "
                   f"{(1 - c.settings.confidence) / k:.3g}, where the t critical value with {n - 1} degrees of freedom "
                   f"is {stats.t_crit_level(n, (1 - c.settings.confidence) / k):.1f} (normal: "
                   f"{stats.z_level((1 - c.settings.confidence) / k):.2f}); use replicates={need} or more.")
    fewest: dict[tuple[str, str], float] = {}
    for (_, side, metric), n_answers in answers_per_run(c).items():
        if np.isfinite(n_answers):
            fewest[(side, metric)] = min(n_answers, fewest.get((side, metric), math.inf))
    few = [f"{metric.upper()} {side} ({n:.0f})" for (side, metric), n in fewest.items() if n < g["min_answers"]]
    if few:
        out.append(f"Survey metrics resting on fewer than {g['min_answers']} answers per run (fewest in any arm): "
                   + ", ".join(few) + "; read their differences as anecdotes.")
    return out


def replicates_for_arms(arms: int, alpha: float, max_inflation: float) -> int:
    """Fewest replicates at which the t critical value of Holm's strictest level (alpha / arms) is within
    ``max_inflation`` times the normal one (so few replicates do not swamp the correction)."""
    level = alpha / max(arms, 1)
    z = stats.z_level(level)
    n = 2
    while stats.t_crit_level(n, level) > max_inflation * z:
        n += 1
    return n


def sides_of(c: Comparison) -> list[str]:
    """The market's sides, in the canonical order."""
    return [s for s in SIDES if s in c.runs[0]["sides"]]
