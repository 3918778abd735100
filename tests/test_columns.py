"""The daily columns are declared once (sim/columns.py): the ledger holds every run to the declaration."""
import pytest

from experiments.config import load_config
from sim import Marketplace
from sim.columns import DAILY_COLUMNS, Column, daily_columns, expand
from sim.metrics import DailyLedger


def test_placeholders_expand_over_the_markets_sides_products_and_policies():
    assert expand(Column("{side}_active", "count", ""), ("buyers", "drivers")) == ["buyers_active", "drivers_active"]
    assert expand(Column("{side}_orders", "count", "", sides=("sellers", "drivers")), ("buyers", "drivers")) == [
        "drivers_orders"]
    assert expand(Column("sellers_{product}", "count", "", needs="sellers"), ("buyers", "drivers")) == []
    assert expand(Column("sellers_{product}", "count", "", needs="sellers"), ("buyers", "sellers"),
                  products=("premium", "promoted")) == ["sellers_premium", "sellers_promoted"]
    assert expand(Column("cs_cost_{policy}", "currency", ""), ("buyers",), policies=("a", "b")) == [
        "cs_cost_a", "cs_cost_b"]


def test_no_two_declarations_give_the_same_column():
    sides, policies = ("buyers", "sellers", "drivers"), ("tech_touch", "win_back")
    names = [name for c in DAILY_COLUMNS for name in expand(c, sides, policies=policies)]
    assert len(names) == len(set(names)) == len(daily_columns(sides, policies))
    assert all(c.unit and c.description for c in DAILY_COLUMNS)


def test_ledger_refuses_an_undeclared_or_a_missing_figure():
    ledger = DailyLedger()
    ledger.expect(daily_columns(("buyers", "sellers")))
    row = dict.fromkeys(daily_columns(("buyers", "sellers")), 0.0)
    ledger.append(row)
    with pytest.raises(ValueError, match=r"undeclared \['buyers_mood'\], missing none"):
        ledger.append({**row, "buyers_mood": 1.0})
    del row["gmv"]
    with pytest.raises(ValueError, match=r"undeclared none, missing \['gmv'\]"):
        ledger.append(row)
    assert len(ledger.rows) == 1


def test_a_run_writes_exactly_the_declared_columns_and_follows_a_change_of_policies():
    model = Marketplace(load_config(["scale=tiny", "market=delivery", "days=4", "policy=tech_touch"]))
    model.run_until(2)
    model.set_policies({})        # the policy's cost column goes with it
    result = model.run()
    declared = daily_columns(model.sides, ["tech_touch"])
    assert set(result.daily.columns) == set(declared)
    assert result.daily["cs_cost_tech_touch"].iloc[2:].isna().all()
