"""LTV predicted at the horizon against what the same agents realise when the run goes on.

Common random numbers make days 0..T of a run of T days identical to the first
T days of a longer run with the same seed, so each agent's predicted value at T
can be held against the value it actually produces by T + H.
"""
import numpy as np
import pytest

from agents.base import CHANNEL
from agents.lifecycle import discounted_to_join_day
from experiments.config import load_config
from sim import Marketplace
from sim.metrics import agent_ltv

T, H = 180, 540          # forecast day and horizon (days)
POPULATION = ["population.buyers=4000", "population.sellers=400", "population.drivers=80"]


def predicted_and_realised(market, seed):
    def build(days):
        return Marketplace(load_config([f"market={market}", f"days={days}", f"seed={seed}", "cs.staff=1",
                                        f"metrics.ltv_horizon_days={H}", *POPULATION]))
    short, long = build(T), build(T + H)
    short.run_until(T)
    long.run_until(T + H)
    out = {}
    for name, side in short.sides.items():
        predicted = agent_ltv(short, side)
        realised = discounted_to_join_day(long.sides[name], long.discount_per_day)[: side.n]
        acquired = side.channel != CHANNEL["initial"]
        out[name] = (predicted, realised, acquired, side.join_day.copy())
    return out


def ratio_and_se(predicted, realised):
    """mean(predicted) / mean(realised) and its standard error (delta method over agents)."""
    ratio = predicted.mean() / realised.mean()
    residual = predicted - ratio * realised
    return ratio, residual.std(ddof=1) / (np.sqrt(predicted.size) * realised.mean())


@pytest.mark.slow
@pytest.mark.parametrize("market", ["delivery", "goods"])
def test_ltv_predicted_at_the_horizon_matches_what_the_agents_realise(market):
    runs = [predicted_and_realised(market, seed) for seed in (1, 2)]
    for name in runs[0]:
        predicted = np.concatenate([r[name][0] for r in runs])
        realised = np.concatenate([r[name][1] for r in runs])
        acquired = np.concatenate([r[name][2] for r in runs])
        joined = np.concatenate([r[name][3] for r in runs])
        for label, group in (("early", acquired & (joined < T // 2)), ("late", acquired & (joined >= T // 2))):
            ratio, se = ratio_and_se(predicted[group], realised[group])
            # Three standard errors of sampling noise, plus the model bias the forecast still carries for
            # supply agents (sellers' sales ahead depend on the whole market's path: documented in
            # docs/model.md); before the forecast modelled growth, sellers stood at 0.3-0.75.
            allowed = 3 * se + (0.0 if name == "buyers" else 0.2)
            assert abs(ratio - 1) < allowed, (market, name, label, ratio, se)
