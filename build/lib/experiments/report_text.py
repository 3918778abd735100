"""Plain-text rendering of a run summary for the terminal."""
from __future__ import annotations

_SIDE_ROWS = (("active_end", "active at end", "{:,.0f}"), ("monthly_churn", "monthly churn", "{:.1%}"),
              ("ltv", "LTV of new agents", "{:,.2f}"), ("cac", "CAC (blended)", "{:,.2f}"),
              ("ltv_cac", "LTV:CAC", "{:.2f}"), ("nps", "NPS", "{:+.0f}"), ("ttfv_days", "TTFV, days", "{:.1f}"),
              ("activation_30d", "activated in 30 days", "{:.0%}"), ("csat", "CSAT", "{:.0%}"))
_PLATFORM_ROWS = (("gmv", "GMV"), ("take_revenue", "take revenue"), ("marketing_cost", "marketing cost"),
                  ("cs_cost", "CS cost"), ("net_contribution", "net contribution"))


def _fmt(fmt: str, value) -> str:
    return "n/a" if value is None else fmt.format(value)


def summary_table(summary: dict) -> str:
    """The headline metrics: one column per side, then the platform's money (currency)."""
    sides = [s for s in ("buyers", "sellers", "drivers") if s in summary]
    run = summary.get("run", {})
    lines = [f"twosided: market={run.get('market')} seed={run.get('seed')} days={run.get('days')}", ""]
    lines.append(f"{'':24}" + "".join(f"{s:>14}" for s in sides))
    for key, label, fmt in _SIDE_ROWS:
        if any(key in summary[s] for s in sides):
            lines.append(f"{label:24}" + "".join(f"{_fmt(fmt, summary[s].get(key)):>14}" for s in sides))
    lines.append("")
    for key, label in _PLATFORM_ROWS:
        lines.append(f"{label:24}{summary['platform'][key]:>14,.0f}")
    return "\n".join(lines)
