"""The daily columns of a run (daily.parquet), declared once: name, unit, which sides, what it means.

A name may hold placeholders, expanded for the run at hand by
:func:`daily_columns`: ``{side}`` for each side of the market (or those of
``sides`` the market has), ``{product}`` for each of the sellers' paid
products (agents/sellers.py ``PRODUCTS``), ``{policy}`` for each active CS
policy. ``needs`` names a side the market must have for the column to exist.
The ledger (sim/metrics.py ``DailyLedger``) refuses a day whose figures do
not match the declaration, and the table in docs/results.md is generated from
it (``python -m experiments.docs_tables --only daily_columns``).
"""
from __future__ import annotations

from dataclasses import dataclass

from agents.sellers import PRODUCTS
from sim.config import SIDES


@dataclass(frozen=True)
class Column:
    """One daily column (or a family of them, by placeholder): its name, unit and meaning."""

    name: str                   # may hold {side}, {product}, {policy}
    unit: str                   # count, currency, days, hours, minutes, share (0-1), points ...
    description: str
    sides: tuple[str, ...] = SIDES   # the sides {side} runs over (those the market has)
    needs: str | None = None    # a side the market must have


DAILY_COLUMNS: tuple[Column, ...] = (
    Column("day", "day", "simulated day, from 0"),
    # 1. acquisition
    Column("{side}_attraction", "ratio", "what the market offers the side's prospective joiners against a fixed "
           "reference (sim/attraction.py; 1: as the reference, 0 before day 1)"),
    Column("{side}_joined", "count", "agents who joined today (paid + organic + referral)"),
    Column("{side}_joined_paid", "count", "joined through paid marketing"),
    Column("{side}_joined_organic", "count", "joined organically (cross-side network effect)"),
    Column("{side}_joined_referral", "count", "joined on a promoter's referral"),
    Column("{side}_marketing_cost", "currency", "paid acquisition spend on the side today"),
    Column("marketing_cost", "currency", "paid acquisition spend, all sides"),
    # 2. onboarding
    Column("{side}_activated", "count", "agents who reached first value today"),
    # 3-5. demand, matching, outcomes, money
    Column("buyers_orders", "count", "buyers' purchase intentions today (orders attempted)"),
    Column("buyers_failed", "count", "orders that failed (no seller or driver, or the seller failed)"),
    Column("buyers_bad_orders", "count", "orders that went through but badly, by the driver's fault"),
    Column("pickup_minutes_mean", "minutes", "mean pickup time of matched requests (NaN: none)", needs="drivers"),
    Column("drivers_online_hours", "hours", "hours drivers were online on the platform", needs="drivers"),
    Column("drivers_unfair_low_ratings", "count", "low ratings that were not the driver's fault", needs="drivers"),
    Column("{side}_revenue", "currency", "the platform's revenue from the side (fees, commission; "
           "sellers: product fees too)"),
    Column("{side}_margin", "currency", "contribution margin of that revenue (net of payment costs)"),
    Column("{side}_orders", "count", "orders the supply agents were chosen for (sellers) or matched to (drivers)",
           sides=("sellers", "drivers")),
    Column("sellers_sales", "currency", "sellers' sales of successful orders (baskets)", needs="sellers"),
    Column("drivers_earnings", "currency", "drivers' payouts (fares net of commission)", needs="drivers"),
    Column("order_margin", "currency", "margin of today's orders, every side's share, credited to the buyer"),
    Column("gmv", "currency", "gross merchandise value: what buyers paid (baskets, fares, fees)"),
    Column("take_revenue", "currency", "the platform's revenue: fees, commissions, product fees"),
    Column("payment_costs", "currency", "payment processing costs"),
    # 6. sellers' paid products
    Column("sellers_{product}_taken", "count", "take-ups today, on the seller's own or accepting a CS offer",
           needs="sellers"),
    Column("sellers_{product}_cancelled", "count", "cancellations by sellers who stay (contraction)",
           needs="sellers"),
    Column("expansion_revenue", "currency", "sellers' paid-product fees", needs="sellers"),
    # 7. CS operations: the desk
    Column("cs_tickets", "count", "tickets that arrived at the desk"),
    Column("cs_finished", "count", "tickets that left the desk (resolved or abandoned)"),
    Column("cs_resolved", "count", "tickets resolved"),
    Column("cs_abandoned", "count", "tickets abandoned (the agent gave up waiting)"),
    Column("cs_wait_days_mean", "days", "mean wait of finished tickets (NaN: none)"),
    Column("cs_backlog", "count", "tickets waiting or in service at the end of the day"),
    Column("cs_utilisation", "share", "busy share of desk staff time (NaN: no staff)"),
    Column("cs_staff", "count", "desk staff (cs.staff plus policies' extra staff)"),
    Column("{side}_csat", "share", "CSAT: share of 4-5 answers after today's contacts (NaN: none)"),
    Column("{side}_csat_answers", "count", "CSAT answers today"),
    # 7. CS operations: costs
    Column("cs_cost_desk", "currency", "the reactive desk's staff"),
    Column("cs_cost", "currency", "CS cost: desk staff, policies' extra staff and actions"),
    Column("incentive_cost", "currency", "referral bonuses and win-back incentives"),
    Column("cs_cost_{policy}", "currency", "all a policy spends, incentives included"),
    Column("cs_cost_{side}", "currency", "desk cost by the side's share of desk minutes, plus policies' spend on it"),
    # 7. CS operations: health at its last computation (alive agents)
    Column("{side}_health_red", "count", "alive agents in the red health band"),
    Column("{side}_health_yellow", "count", "alive agents in the yellow health band"),
    Column("{side}_health_green", "count", "alive agents in the green health band"),
    Column("{side}_vector_negative", "count", "alive agents on a negative health vector"),
    Column("{side}_vector_neutral", "count", "alive agents on a neutral health vector"),
    Column("{side}_vector_positive", "count", "alive agents on a positive health vector"),
    Column("{side}_health_mean", "points (0-100)", "mean health of alive agents (NaN: none)"),
    # 8. churn
    Column("drivers_deactivated", "count", "drivers deactivated today (low rating, or an appeal upheld)",
           needs="drivers"),
    Column("{side}_churned", "count", "agents who left today (buyers: silent drop-out), every departure"),
    Column("sellers_{product}_ended", "count", "products ended because the seller left", needs="sellers"),
    # 9. metrics
    Column("{side}_active", "count", "alive agents at the end of the day"),
    Column("{side}_activated_active", "count", "alive agents who have reached first value"),
    Column("{side}_satisfaction", "share", "mean latent satisfaction of alive agents, 0-1 (NaN: none)"),
    Column("{side}_nps", "points", "NPS of the month's survey (-100 to 100) on its day, NaN on other days"),
    Column("sellers_{product}", "count", "alive sellers holding the product at the end of the day",
           needs="sellers"),
    Column("sellers_expanded_accounts", "count", "sellers who took up any paid product during the 30-day "
           "month, on its last day (NaN on other days)", needs="sellers"),
    Column("net_contribution", "currency", "take revenue - payment costs - marketing - CS cost - incentives"),
)


def expand(column: Column, sides, products=PRODUCTS, policies=()) -> list[str]:
    """The names ``column`` stands for in a market with ``sides``, ``products`` and active ``policies``."""
    if column.needs is not None and column.needs not in sides:
        return []
    names = [column.name]
    for key, values in (("side", [s for s in sides if s in column.sides]), ("product", products),
                        ("policy", policies)):
        if "{" + key + "}" in column.name:
            names = [n.replace("{" + key + "}", v) for n in names for v in values]
    return names


def daily_columns(sides, policies=(), products=PRODUCTS) -> dict[str, Column]:
    """Every daily column of a run: {name: its declaration}, for a market with ``sides`` and ``policies``
    (policy names) active."""
    return {name: c for c in DAILY_COLUMNS for name in expand(c, tuple(sides), products, tuple(policies))}
