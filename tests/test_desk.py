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
    streams = Streams(5, any_name=True)
    a = CSDesk(3)
    history = run_days(a, streams, 0, 8)
    assert history[-1].queue_length > 20          # a real queue to carry over
    assert any((~d.resolved).any() for d in history)
    b = copier(a)
    same_state(a.state(), b.state())
    same_days(run_days(a, streams, 8, 16), run_days(b, streams, 8, 16))
    same_state(a.state(), b.state())


def test_branch_between_submit_and_advance():
    streams = Streams(6, any_name=True)
    a = CSDesk(3)
    run_days(a, streams, 0, 5)
    a.submit(*tickets(streams, 5))
    b = CSDesk.from_state(a.state())
    same_days(run_days(a, streams, 5, 12, submit_first=False),
              run_days(b, streams, 5, 12, submit_first=False))


def test_copies_are_independent():
    def first_days(desk):
        run_days(desk, Streams(7, any_name=True), 0, 5)
        return desk

    reference = run_days(first_days(CSDesk(3)), Streams(7, any_name=True), 5, 8)
    a = first_days(CSDesk(3))
    b = copy.deepcopy(a)
    b.submit([99], [5.0], [5.0], [np.inf], [-1])      # jumps the queue, holds an agent
    b_days = run_days(b, Streams(7, any_name=True), 5, 8)
    same_days(run_days(a, Streams(7, any_name=True), 5, 8), reference)   # a is untouched by b
    assert b_days[0].busy_server_days == 3.0 and 99 not in b_days[0].ticket_ids
    assert b_days[0].ticket_ids.tolist() != reference[0].ticket_ids.tolist()


def test_branch_at_fractional_time_continuous_times():
    # Boundaries at non-dyadic times, continuous draws: a restore that
    # rescheduled an event at "now + (when - now)" instead of at "when" would
    # be an ulp off for some tickets that later abandon (counted, so the test
    # is known to have teeth).
    s = Streams(9, any_name=True)

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
    same_days(run_days(one, Streams(8, any_name=True), 0, 6), run_days(two, Streams(8, any_name=True), 0, 6))


# -- against a plain reference simulation -------------------------------------------

def reference_desk(staff, days):
    """A slow, obviously correct simulation of the desk's documented rules.

    ``days``: one list of submitted batches (ids, arrival, service, patience,
    priority) per day. Steps through the distinct event times t (arrivals and
    service ends) of [day, day + 1): tickets arriving at t join the queue;
    waiting tickets whose deadline is < t have left (at their deadline); then
    every agent idle or freed at t (services of length 0 started at t end at
    t too) takes the waiting ticket of lowest (priority, arrival, submission).
    At the end of the day, tickets whose deadline is < day + 1 have left.
    Returns per day: the finished tickets, sorted as DeskDay promises, as rows
    (ticket_id, resolved, wait, finish), busy staff-days, queue length, in
    service, arrivals.
    """
    future, waiting, serving, seq, free = [], [], [], 0, staff
    history, out = [], []               # every ticket whose service started; per-day results
    for day, batches in enumerate(days):
        t0, until = float(day), float(day + 1)
        for ids, arrival, service, patience, priority in batches:
            for i in range(len(ids)):
                future.append(dict(id=int(ids[i]), arr=float(arrival[i]), svc=float(service[i]),
                                   deadline=float(arrival[i] + patience[i]),
                                   pri=int(priority[i]), seq=seq))
                seq += 1
        finished, arrivals = [], 0

        def leave_before(t):
            for tk in [tk for tk in waiting if tk["deadline"] < t]:
                waiting.remove(tk)
                finished.append((tk["deadline"], tk["deadline"], tk, False))

        while True:
            times = [tk["arr"] for tk in future] + [tk["finish"] for tk in serving]
            t = min(times, default=math.inf)
            if t >= until:
                break
            for tk in [tk for tk in future if tk["arr"] == t]:
                future.remove(tk)
                waiting.append(tk)
                arrivals += 1
            leave_before(t)
            while True:
                ending = [tk for tk in serving if tk["finish"] == t]
                for tk in ending:
                    serving.remove(tk)
                    free += 1
                    finished.append((tk["finish"], tk["start"], tk, True))
                while free and waiting:
                    tk = min(waiting, key=lambda k: (k["pri"], k["arr"], k["seq"]))
                    waiting.remove(tk)
                    free -= 1
                    tk["start"], tk["finish"] = t, t + tk["svc"]
                    serving.append(tk)
                    history.append(tk)
                if not any(tk["finish"] == t for tk in serving):
                    break
        leave_before(until)
        finished.sort(key=lambda r: (r[0], r[1], r[2]["pri"], r[2]["arr"], r[2]["seq"]))
        rows = [(tk["id"], ok, (tk["start"] if ok else tk["deadline"]) - tk["arr"], fin)
                for fin, _, tk, ok in finished]
        busy = math.fsum(min(tk["finish"], until) - max(tk["start"], t0) for tk in history
                         if tk["start"] < until and tk["finish"] >= t0)
        out.append((rows, busy, len(waiting), len(serving), arrivals))
    return out


def random_days(seed, n_days, grid):
    """A few hundred tickets over ``n_days`` days, two batches a day, some for later days.

    ``grid``: times on coarse binary grids, so arrivals, service ends and
    deadlines coincide exactly and often (day boundaries included); else
    continuous. Both: priorities 0-2, 30% never abandon, 10% zero service.
    """
    rng = np.random.default_rng(seed)
    days, next_id = [], 0
    for day in range(n_days):
        batches = []
        for _ in range(2):
            n = int(rng.integers(15, 45))
            ids = np.arange(next_id, next_id + n)
            next_id += n
            offset = rng.random(n) * np.where(rng.random(n) < 0.1, 2.0, 1.0)  # some come later
            service = rng.exponential(3 * 1.0 / 60, n)                        # ~ 3 staff busy
            patience = rng.exponential(0.15, n)
            if grid:
                offset, service = np.floor(offset * 16) / 16, np.round(service * 32) / 32
                patience = np.floor(patience * 16) / 16
            service[rng.random(n) < 0.1] = 0.0
            patience[rng.random(n) < 0.3] = np.inf
            batches.append((ids, day + offset, service, patience, rng.integers(0, 3, n)))
        days.append(batches)
    return days


@pytest.mark.parametrize("grid", [False, True], ids=["continuous", "grid-ties"])
def test_matches_reference_simulation(grid):
    days = random_days(21 + grid, 8, grid)
    expected = reference_desk(3, days)
    desk = CSDesk(3)
    abandoned, resolved = 0, []
    for day, (batches, (rows, busy, queue, serving, arrivals)) in enumerate(zip(days, expected)):
        for batch in batches:
            desk.submit(*batch)
        got = desk.advance(day + 1)
        assert got.ticket_ids.tolist() == [r[0] for r in rows]
        assert got.resolved.tolist() == [r[1] for r in rows]
        assert np.array_equal(got.wait_days, [r[2] for r in rows])
        assert np.array_equal(got.finish_time, [r[3] for r in rows])
        assert got.busy_server_days == pytest.approx(busy, rel=1e-12, abs=1e-12)
        assert (got.queue_length, got.in_service, got.arrivals) == (queue, serving, arrivals)
        # queue_length counts only tickets that have not given up.
        st = desk.state()
        assert np.all(st["deadline"][st["phase"] == 1] >= desk.now)
        abandoned += int(np.sum(~got.resolved))
        resolved += got.ticket_ids[got.resolved].tolist()
    # The test has substance: hundreds of tickets, abandonment, services of length 0.
    zero = np.concatenate([ids[svc == 0] for batches in days for ids, _, svc, _, _ in batches])
    assert sum(len(r[0]) for r in expected) > 300
    assert abandoned > 20 and np.isin(zero, resolved).sum() > 10


def test_deadline_tie_is_served():
    # One agent busy until 0.5; ticket 2's patience runs out at 0.5 exactly: the
    # agent freed at 0.5 still serves it. Ticket 3's ran out just before.
    desk = CSDesk(1)
    desk.submit([1, 2, 3], [0.0, 0.25, 0.125], [0.5, 0.125, 0.125],
                [np.inf, 0.25, 0.375 - 2**-40])
    day = desk.advance(1.0)
    got = {i: (ok, f) for i, ok, f in zip(day.ticket_ids.tolist(), day.resolved.tolist(),
                                          day.finish_time.tolist())}
    assert got == {1: (True, 0.5), 3: (False, 0.5 - 2**-40), 2: (True, 0.625)}
    assert day.ticket_ids.tolist() == [3, 1, 2]


def test_simultaneous_arrivals_take_idle_agent_by_priority():
    desk = CSDesk(1)
    desk.submit([1, 2, 3], [0.5, 0.5, 0.5], [0.125] * 3, [np.inf] * 3, [2, 0, 1])
    assert desk.advance(1.0).ticket_ids.tolist() == [2, 3, 1]


# -- a copy in the middle of a busy day ---------------------------------------------

@pytest.mark.parametrize("copier", [
    lambda d: CSDesk.from_state(d.state()),
    copy.deepcopy,
    lambda d: pickle.loads(pickle.dumps(d)),
], ids=["from_state", "deepcopy", "pickle"])
def test_branch_mid_day_with_backlog(copier):
    rng = np.random.default_rng(3)

    def batch(day, n=120):
        ids = day * 1000 + np.arange(n)
        service = rng.exponential(4 * 1.5 / n, n)          # 150% load on 4 agents
        service[rng.random(n) < 0.05] = 0.0
        patience = np.where(rng.random(n) < 0.6, np.inf, rng.exponential(1.0, n))
        return ids, day + rng.random(n), service, patience, rng.integers(0, 3, n)

    batches = [batch(day) for day in range(10)]
    a = CSDesk(4)
    for day in range(5):
        a.submit(*batches[day])
        a.advance(day + 1)
    a.submit(*batches[5])
    first = a.advance(5.4375)                               # the middle of day 5
    st = a.state()
    assert a.queue_length > 30 and a.in_service == 4
    assert np.any(st["phase"] == 0) and np.any(np.isfinite(st["deadline"][st["phase"] == 1]))
    b = copier(a)
    same_state(a.state(), b.state())

    def rest(desk):
        out = [desk.advance(6.0)]
        for day in range(6, 10):
            desk.submit(*batches[day])
            out.append(desk.advance(day + 0.5))
            out.append(desk.advance(day + 1))
        return out

    ra, rb = rest(a), rest(b)
    same_days(ra, rb)
    same_state(a.state(), b.state())
    assert first.ticket_ids.size and sum((~d.resolved).sum() for d in ra) > 10
