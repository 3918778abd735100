"""Tests of the CS desk (sim/desk.py): textbook queues, ordering, snapshots."""
import copy
import math
import pickle

import numpy as np
import pytest
from scipy.special import gammaln, logsumexp

from sim.desk import CSDesk, DeskDay, erlang_c, mmc_mean_wait, run_mmc
from sim.streams import Streams

LAM, MU, C = 40.0, 10.0, 5          # rho = 0.8, 40 tickets a day
HORIZON = 500                       # days; ~20,000 arrivals, about half a second


def batch_se(result, values, n_batches=20):
    """Estimate and standard error by batch means over equal stretches of arrival time.

    Waits of neighbouring arrivals are correlated, so the naive i.i.d. standard
    error is too small; means over long batches (here ~13 days, against a
    relaxation time of hours) are close to independent.
    """
    t = result.arrival_times
    edges = np.linspace(t.min(), t.max() + 1e-9, n_batches + 1)
    which = np.searchsorted(edges, t, side="right") - 1
    means = np.array([values[which == b].mean() for b in range(n_batches)])
    return float(values.mean()), float(means.std(ddof=1) / math.sqrt(n_batches))


def mmc_m_theory(lam, mu, c, theta, n_max=2000):
    """Exact M/M/c+M figures from its birth-death chain (truncated at n_max).

    P(wait) = P(N >= c) by PASTA; mean time in queue = E[Lq] / lam (Little);
    abandonment share = theta E[Lq] / lam (abandonment rate / arrival rate).
    """
    n = np.arange(1, n_max + 1)
    death = np.minimum(n, c) * mu + np.maximum(n - c, 0) * theta
    log_pi = np.concatenate([[0.0], np.cumsum(np.log(lam / death))])
    pi = np.exp(log_pi - logsumexp(log_pi))
    lq = float(np.sum(np.maximum(np.arange(n_max + 1) - c, 0) * pi))
    return float(pi[c:].sum()), lq / lam, theta * lq / lam


# -- closed forms ---------------------------------------------------------------

def test_erlang_c_hand_values():
    # c = 1: M/M/1, P(wait) = rho, Wq = rho / (mu - lambda).
    assert erlang_c(3.0, 4.0, 1) == pytest.approx(0.75, rel=1e-12)
    assert mmc_mean_wait(3.0, 4.0, 1) == pytest.approx(0.75 / 1.0, rel=1e-12)
    # c = 2, A = 1: [1/2 * 2] / [1 + 1 + 1] = 1/3; Wq = (1/3) / (2 - 1).
    assert erlang_c(1.0, 1.0, 2) == pytest.approx(1 / 3, rel=1e-12)
    assert mmc_mean_wait(2.0, 2.0, 2) == pytest.approx((1 / 3) / 2.0, rel=1e-12)
    # c = 5, A = 4: direct formula.
    a, c = 4.0, 5
    top = a**c / math.factorial(c) * c / (c - a)
    direct = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    assert erlang_c(40.0, 10.0, 5) == pytest.approx(direct, rel=1e-12)


def test_erlang_c_stable_for_large_c():
    a, c = 950.0, 1000                 # a^c / c! overflows a float
    k = np.arange(c)
    log_top = c * math.log(a) - gammaln(c + 1) + math.log(c / (c - a))
    log_sum = logsumexp(k * math.log(a) - gammaln(k + 1))
    direct = math.exp(log_top - np.logaddexp(log_sum, log_top))
    assert erlang_c(a, 1.0, c) == pytest.approx(direct, rel=1e-9)
    assert 0.0 < erlang_c(a, 1.0, c) < 1.0


@pytest.mark.parametrize("lam,mu,c", [(5.0, 1.0, 5), (6.0, 1.0, 5), (1.0, 1.0, 1)])
def test_erlang_c_rejects_unstable_load(lam, mu, c):
    with pytest.raises(ValueError, match="unstable"):
        erlang_c(lam, mu, c)
    with pytest.raises(ValueError, match="unstable"):
        mmc_mean_wait(lam, mu, c)


# -- simulated M/M/c against theory -------------------------------------------------

@pytest.fixture(scope="module")
def mmc():
    return run_mmc(LAM, MU, C, HORIZON, seed=11)


def test_mmc_matches_erlang_c(mmc):
    # Tolerance = 4 standard errors, the standard errors from batch means.
    p_hat, p_se = batch_se(mmc, (mmc.waits > 0).astype(float))
    w_hat, w_se = batch_se(mmc, mmc.waits)
    p_theory, w_theory = erlang_c(LAM, MU, C), mmc_mean_wait(LAM, MU, C)
    assert p_hat == pytest.approx(mmc.p_wait) and w_hat == pytest.approx(mmc.mean_wait)
    assert abs(p_hat - p_theory) < 4 * p_se
    assert abs(w_hat - w_theory) < 4 * w_se
    # The test has power: errors are small, and a desk with one more agent is rejected.
    assert p_se < 0.03 and w_se < 0.15 * w_theory
    assert abs(p_hat - erlang_c(LAM, MU, C + 1)) > 4 * p_se
    assert abs(w_hat - mmc_mean_wait(LAM, MU, C + 1)) > 4 * w_se
    assert mmc.utilisation == pytest.approx(LAM / (C * MU), abs=0.03)
    assert mmc.abandon_share == 0.0 and mmc.resolved.all()


def test_mmc_is_deterministic(mmc):
    again = run_mmc(LAM, MU, C, HORIZON, seed=11)
    assert np.array_equal(again.waits, mmc.waits) and again.p_wait == mmc.p_wait
    other = run_mmc(LAM, MU, C, HORIZON, seed=12)
    assert not np.array_equal(other.waits[:100], mmc.waits[:100])


def test_patience_abandons_and_shortens_waits(mmc):
    theta = 24.0                        # mean patience one hour
    imp = run_mmc(LAM, MU, C, HORIZON, patience_rate=theta, seed=11)
    assert imp.abandon_share > 0.02
    assert imp.mean_wait < mmc.mean_wait and imp.p_wait < mmc.p_wait
    # An abandoner waited its whole (continuous, positive) patience first.
    assert np.all(imp.waits[~imp.resolved] > 0)
    # M/M/c+M (Erlang A) against its exact birth-death chain, 4 batch-means SEs.
    p_th, w_th, ab_th = mmc_m_theory(LAM, MU, C, theta)
    for values, theory in [((imp.waits > 0).astype(float), p_th), (imp.waits, w_th),
                           ((~imp.resolved).astype(float), ab_th)]:
        est, se = batch_se(imp, values)
        assert abs(est - theory) < 4 * se, (est, theory, se)


# -- mechanics -------------------------------------------------------------------

def test_single_ticket_accounting():
    desk = CSDesk(2)
    desk.submit([7], [0.25], [1.5], [np.inf])
    day0 = desk.advance(1.0)
    assert day0.arrivals == 1 and day0.in_service == 1 and day0.ticket_ids.size == 0
    assert day0.busy_server_days == 0.75
    day1 = desk.advance(2.0)
    assert day1.ticket_ids.tolist() == [7] and day1.resolved.tolist() == [True]
    assert day1.finish_time.tolist() == [1.75] and day1.wait_days.tolist() == [0.0]
    assert day1.busy_server_days == 0.75 and day1.in_service == 0 and day1.arrivals == 0


def test_abandonment_wait_is_patience():
    desk = CSDesk(1)
    desk.submit([1, 2, 3], [0.0, 0.125, 0.25], [0.5, 0.25, 0.25], [np.inf, 0.25, np.inf])
    day = desk.advance(1.0)
    got = dict(zip(day.ticket_ids.tolist(), zip(day.resolved.tolist(), day.wait_days.tolist())))
    assert got == {1: (True, 0.0), 2: (False, 0.25), 3: (True, 0.25)}
    assert day.busy_server_days == 0.75


def test_order_of_service_priority_then_arrival_then_submission():
    desk = CSDesk(1)
    desk.submit([0], [0.0], [0.5], [np.inf])                    # occupies the server
    desk.submit([10, 11, 12, 13], [0.2, 0.1, 0.1, 0.1], [0.01] * 4, [np.inf] * 4, [0, 0, 0, 1])
    desk.submit([14, 15], [0.1, 0.05], [0.01] * 2, [np.inf] * 2, [0, 0])
    order = desk.advance(1.0).ticket_ids.tolist()
    # priority 0 first; among them by arrival time; ties (0.1) by submission order.
    assert order == [0, 15, 11, 12, 14, 10, 13]


def test_order_survives_snapshot():
    def queue_then(desk_factory):
        desk = CSDesk(1)
        desk.submit([0], [0.0], [1.5], [np.inf])
        desk.submit([1, 2, 3, 4], [0.5, 0.5, 0.25, 0.5], [0.01] * 4, [np.inf] * 4, [1, 0, 0, 0])
        desk.advance(1.0)                               # queue: 3, 2, 4, 1
        desk = desk_factory(desk)
        desk.submit([5, 6], [1.0, 1.0], [0.01] * 2, [np.inf] * 2, [0, 1])
        return desk.advance(2.0).ticket_ids.tolist()

    plain = queue_then(lambda d: d)
    assert plain == [0, 3, 2, 4, 5, 1, 6]
    assert queue_then(lambda d: CSDesk.from_state(d.state())) == plain
    assert queue_then(copy.deepcopy) == plain


def test_rejects_bad_input():
    desk = CSDesk(2)
    with pytest.raises(ValueError):
        desk.submit([1, 2], [0.1], [0.1, 0.1], [1.0, 1.0])
    desk.advance(1.0)
    with pytest.raises(ValueError, match="arrival"):
        desk.submit([1], [0.5], [0.1], [1.0])
    with pytest.raises(ValueError):
        desk.submit([1], [1.5], [-0.1], [1.0])
    with pytest.raises(ValueError, match="until"):
        desk.advance(1.0)


# -- snapshots -------------------------------------------------------------------

def tickets(streams, day):
    """An overloaded day with many exact ties: times on coarse binary grids."""
    n = 40 + streams.poisson("t.n", day, 10.0)
    ids = day * 1000 + np.arange(n)
    arrival = day + np.floor(streams.uniform("t.arr", day, ids) * 32) / 32
    service = np.ceil(streams.exponential("t.svc", day, ids) * 4) / 64
    patience = np.where(streams.uniform("t.inf", day, ids) < 0.7, np.inf,
                        np.floor(streams.exponential("t.pat", day, ids) * 8) / 8)
    priority = np.floor(streams.uniform("t.pri", day, ids) * 3).astype(int)
    return ids, arrival, service, patience, priority


def run_days(desk, streams, first, last, submit_first=True):
    out = []
    for day in range(first, last):
        if submit_first or day > first:
            desk.submit(*tickets(streams, day))
        out.append(desk.advance(day + 1))
    return out


def same_days(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for field in DeskDay.__dataclass_fields__:
            u, v = getattr(x, field), getattr(y, field)
            assert np.array_equal(u, v), field
            assert np.asarray(u).dtype == np.asarray(v).dtype


def same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k], equal_nan=True), k


@pytest.mark.parametrize("copier", [
    lambda d: CSDesk.from_state(d.state()),
    copy.deepcopy,
    lambda d: pickle.loads(pickle.dumps(d)),
], ids=["from_state", "deepcopy", "pickle"])
def test_branches_are_bit_identical(copier):
    streams = Streams(5)
    a = CSDesk(3)
    history = run_days(a, streams, 0, 8)
    assert history[-1].queue_length > 20          # a real queue to carry over
    assert any((~d.resolved).any() for d in history)
    b = copier(a)
    same_state(a.state(), b.state())
    same_days(run_days(a, streams, 8, 16), run_days(b, streams, 8, 16))
    same_state(a.state(), b.state())


def test_branch_between_submit_and_advance():
    streams = Streams(6)
    a = CSDesk(3)
    run_days(a, streams, 0, 5)
    a.submit(*tickets(streams, 5))
    b = CSDesk.from_state(a.state())
    same_days(run_days(a, streams, 5, 12, submit_first=False),
              run_days(b, streams, 5, 12, submit_first=False))


def test_copies_are_independent():
    def first_days(desk):
        run_days(desk, Streams(7), 0, 5)
        return desk

    reference = run_days(first_days(CSDesk(3)), Streams(7), 5, 8)
    a = first_days(CSDesk(3))
    b = copy.deepcopy(a)
    b.submit([99], [5.0], [5.0], [np.inf], [-1])      # jumps the queue, holds an agent
    b_days = run_days(b, Streams(7), 5, 8)
    same_days(run_days(a, Streams(7), 5, 8), reference)   # a is untouched by b
    assert b_days[0].busy_server_days == 3.0 and 99 not in b_days[0].ticket_ids
    assert b_days[0].ticket_ids.tolist() != reference[0].ticket_ids.tolist()


def test_branch_at_fractional_time_continuous_times():
    # Boundaries at non-dyadic times, continuous draws: a restore that
    # rescheduled an event at "now + (when - now)" instead of at "when" would
    # be an ulp off for some tickets that later abandon (counted, so the test
    # is known to have teeth).
    s = Streams(9)

    def step(desk, k):
        t0, t1 = desk.now, round(0.05 * (k + 1), 10)
        ids = np.arange(k * 100, k * 100 + 30)
        arrival = t0 + (t1 - t0) * s.uniform("c.arr", k, ids)
        desk.submit(ids, arrival, s.exponential("c.svc", k, ids) / 30,
                    s.exponential("c.pat", k, ids) * 3.0)
        return desk.advance(t1)

    a, days, states = CSDesk(2), [], []
    for k in range(12):
        days.append(step(a, k))
        states.append(a.state())
    abandoned = np.concatenate([d.ticket_ids[~d.resolved] for d in days])
    inexact = 0
    for k, st in enumerate(states[:-1]):
        t, deadline = st["time"], st["deadline"]
        inexact += int(np.sum(np.isin(st["ticket_id"], abandoned) & (t + (deadline - t) != deadline)))
        b = CSDesk.from_state(st)
        same_days([step(b, j) for j in range(k + 1, 12)], days[k + 1:])
        same_state(b.state(), states[-1])
    assert inexact > 0


def test_same_inputs_same_outputs():
    one, two = CSDesk(3), CSDesk(3)
    same_days(run_days(one, Streams(8), 0, 6), run_days(two, Streams(8), 0, 6))
