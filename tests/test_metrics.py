"""Metric definitions on hand-built sides: churn of activated agents, activation failure, relapses."""
import numpy as np
import pytest

from agents.base import CHANNEL, Side
from sim.metrics import activation_failure, first_departures, monthly_churn_series, relapse_rate


def side_of(join, activation, churn, channel="paid"):
    side = Side("sellers", {}, capacity=len(join))
    ids = side.add(len(join))
    side.join_day[ids] = join
    side.activation_day[ids] = activation
    side.churn_day[ids] = churn
    side.channel[ids] = CHANNEL[channel]
    return side


def test_departures_before_first_value_are_not_churn_but_activation_failure():
    # agents 0-1 activated on day 5, agent 2 never activated; agents 1 and 2 leave in month 1
    side = side_of(join=[0, 0, 0], activation=[5, 5, -1], churn=[-1, 40, 45])
    rates = monthly_churn_series(side, 90)
    assert rates[1] == pytest.approx(1 / 2)   # of the two activated agents, one left
    assert activation_failure(side, 90) == pytest.approx(1 / 3)


def test_won_back_relapses_are_their_own_metric():
    # agent 0 left on day 20, came back on day 30 and left again on day 50; agent 1 came back and stayed
    side = side_of(join=[0, 0], activation=[0, 0], churn=[50, -1], channel="initial")
    returns = [(np.array([0, 1]), np.array([20, 25]), np.array([30, 35]))]
    assert list(first_departures(side, returns)) == [20, 25]
    assert relapse_rate(side, returns) == pytest.approx(1 / 2)
    rates = monthly_churn_series(side, 90, returns)
    assert rates[0] == pytest.approx(1.0)      # both first lives ended in month 0
    assert np.isnan(rates[1])                  # nobody's first life was still going


def test_summary_churned_equals_daily_departures_with_win_back(tiny):
    from sim import Marketplace

    result = Marketplace(tiny("market=delivery", "policy=win_back", "days=180")).run()
    for side in ("buyers", "sellers", "drivers"):
        assert result.summary[side]["churned"] == result.daily[f"{side}_churned"].sum()
        assert result.summary[side]["agent_days"] == result.daily[f"{side}_active"].sum()
    assert result.summary["sellers"]["relapse_rate"] is not None
