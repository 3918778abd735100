"""The files of `twosided pilot`: pilot.json, pilot_agents.parquet, pilot_replicates.csv, report.md/.html and
the figure of each design's estimate against the rollout's true effect (pilot.png)."""
from __future__ import annotations

import base64
import json
import math
import re
import shlex
from pathlib import Path

import numpy as np

from experiments.folder import atomic_write, provenance
from experiments.pilot import PilotResult, p_unit
from experiments.report import CSS, DPI

COLUMNS = ("design", "metric", "side", "estimate", "ci_low", "ci_high", "gte", "bias", "sd", "rmse", "power",
           "days_for_power", "coverage", "se", "units", "replicates")


def _json_number(x):
    """JSON has no infinity or NaN: null."""
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def pilot_json(result: PilotResult) -> dict:
    """pilot.json: per design the analyst's estimate, its interval, the gte, bias, sd, rmse and power."""
    s = result.plan.settings
    return {"policy": s.policy, "market": result.plan.market, "metric": result.plan.metric,
            "side": result.plan.side, "unit": p_unit(result.plan.metric), "share": s.share, "days": s.days,
            "replicates": s.replicates, "confidence": s.confidence, "alpha": s.alpha,
            "target_power": s.target_power,
            "designs": [{k: _json_number(row[k]) for k in COLUMNS} for _, row in result.table.iterrows()],
            "recommendation": result.recommendation()}


def figure(result: PilotResult, path: Path) -> None:
    """Each replicate's estimate (dots) and interval, the mean estimate and the rollout effect (line), per design."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table, reps = result.table, result.replicates
    fig, ax = plt.subplots(figsize=(7, 1.4 + 0.9 * len(table)))
    for i, row in enumerate(table.itertuples()):
        d = reps[reps["design"] == row.design]
        offsets = np.linspace(-0.25, 0.25, len(d)) if len(d) > 1 else np.zeros(1)
        ax.hlines(i + offsets, d["ci_low"], d["ci_high"], color="0.7", lw=1)
        ax.plot(d["estimate"], i + offsets, "o", color="tab:blue", ms=4,
                label="pilot estimate (each replicate) and interval" if i == 0 else None)
        ax.plot([row.estimate], [i], "D", color="tab:blue", ms=8, label="mean estimate" if i == 0 else None)
        ax.vlines(row.gte, i - 0.4, i + 0.4, color="tab:red", lw=2, label="rollout effect (gte)" if i == 0 else None)
    ax.axvline(0, color="0.3", lw=0.6)
    ax.set_yticks(range(len(table)), [f"{d}\nRMSE {r:.3g}" for d, r in zip(table["design"], table["rmse"])])
    ax.invert_yaxis()
    metric = result.plan.metric
    ax.set_xlabel(f"effect on {result.plan.side}' {metric} ({p_unit(metric)})")
    ax.set_title(f"{result.plan.settings.policy}: pilot estimate vs rollout effect")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _cell(x) -> str:
    if isinstance(x, str):
        return x
    if isinstance(x, (int, np.integer)):
        return str(x)
    return f"{x:.4g}" if math.isfinite(x) else ("inf" if x > 0 else "n/a")


def markdown_text(result: PilotResult, figure_name: str, command: str) -> str:
    """The report in Markdown."""
    s, p = result.plan.settings, result.plan
    header = ["design", "estimate", f"{s.confidence:.0%} interval", "rollout effect (gte)", "bias", "sd", "RMSE",
              f"power at {s.alpha:g}", f"days for {s.target_power:.0%} power", "units", "coverage"]
    lines = [f"# Pilot of {s.policy}: which design to run in market {p.market}", "",
             f"**{result.recommendation()}**", "",
             f"Metric: {p.side}' {p.metric}, {p_unit(p.metric)}, over a {s.days}-day pilot with {s.share:.0%} of "
             f"the units treated; {s.replicates} replicates (seeds {p.base_seed}..{p.base_seed + s.replicates - 1}). "
             "The rollout effect (gte) is the same metric with everyone treated against nobody, on the same seeds "
             "and days (common random numbers). Estimates are the analyst's: the difference between treated and "
             "control units, by the delta method at the design's unit (agents; zones for clusters; periods for "
             "switchback; for two_sided, agents' trades with treated counterparts against control agents' with "
             "control ones, Johari et al.'s TSR estimator). Bias, sd and RMSE are across replicates; power is that "
             "of the design's typical standard error against the gte; the days for the target power assume the "
             "standard error falls as 1/sqrt(days).", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in result.table.itertuples():
        cells = [row.design, _cell(row.estimate), f"[{_cell(row.ci_low)}, {_cell(row.ci_high)}]", _cell(row.gte),
                 _cell(row.bias), _cell(row.sd), _cell(row.rmse), f"{row.power:.0%}" if math.isfinite(row.power)
                 else "n/a", _cell(math.ceil(row.days_for_power) if math.isfinite(row.days_for_power) else math.inf),
                 str(row.units), f"{row.coverage:.0%}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"![estimate vs rollout effect]({figure_name})", "",
              "Coverage: the share of replicates whose interval holds that replicate's rollout effect; well below "
              f"{s.confidence:.0%} means the pilot's interference (treated and control share the market) biases it.",
              "", "Files: pilot.json, pilot_agents.parquet (one row per agent of each design's first replicate), "
              "pilot_replicates.csv.", "", f"Reproduce: `{command}`", ""]
    return "\n".join(lines)


def write_report(result: PilotResult, out) -> dict:
    """Write the pilot's files into ``out``; return the paths of report.md and report.html."""
    import markdown

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "pilot.json", json.dumps({**pilot_json(result), **provenance()}, indent=2).encode("utf-8"))
    result.agents.to_parquet(out / "pilot_agents.parquet", index=False)
    result.replicates.to_csv(out / "pilot_replicates.csv", index=False)
    figure(result, out / "pilot.png")
    command = "twosided pilot " + shlex.join([a for a in result.plan.settings.args if not a.startswith("out=")]
                                             + [f"out={out}"])
    text = markdown_text(result, "pilot.png", command)
    atomic_write(out / "report.md", text.encode("utf-8"))
    body = markdown.markdown(text, extensions=["tables"])
    body = re.sub(r'src="([\w.-]+\.png)"', lambda m: 'src="data:image/png;base64,'
                  + base64.b64encode((out / m.group(1)).read_bytes()).decode("ascii") + '"', body)
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>twosided pilot</title>"
            f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")
    atomic_write(out / "report.html", page.encode("utf-8"))
    return {"md": out / "report.md", "html": out / "report.html", "png": out / "pilot.png"}
