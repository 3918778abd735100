"""The customer-success desk: a multi-server priority queue simulated with SimPy.

Tickets arrive at a desk of ``staff`` agents, wait in one queue (lowest
priority value first, then by arrival time, then by submission order), may
abandon when their patience runs out, and are served for a time the caller
drew. Time is in days, rates are per day. The desk draws no random numbers.

The desk moves in lockstep with the daily loop: :meth:`CSDesk.submit` the
day's tickets, :meth:`CSDesk.advance` to the end of the day. Each ticket is one
SimPy process whose fields sit in recycled rows of numpy arrays, so the cost
grows with the number of tickets only.

SimPy generators can be neither copied nor pickled, so a desk is copied via
:meth:`CSDesk.state` (plain arrays) and :meth:`CSDesk.from_state`. So that the
copy continues *bit for bit* like the original, events are scheduled at
absolute times (``now + delay`` would round differently after a restore), and
pending events are re-created in the order the original scheduled them, which
is how SimPy orders simultaneous events.

With exponential times the desk is an M/M/c(+M) queue: :func:`run_mmc` runs it
so; :func:`erlang_c` and :func:`mmc_mean_wait` give the textbook answers.
"""
from __future__ import annotations

import math
from bisect import insort
from dataclasses import dataclass
from heapq import heappush
from operator import attrgetter

import numpy as np
import simpy
from simpy.core import NORMAL, URGENT
from simpy.resources.resource import SortedQueue

from sim.streams import Streams

ARRIVING, WAITING, SERVING, FREE = 0, 1, 2, -1   # phase of a ticket row
_COLUMNS = {"seq": np.int64, "ticket_id": np.int64, "priority": np.int64, "wake": np.int64,
            "arrival": float, "service": float, "deadline": float, "start": float,
            "finish": float, "phase": np.int8}


class _Env(simpy.Environment):
    def at(self, when: float, priority: int = NORMAL) -> simpy.Event:
        """A triggered event processed at time ``when``: a Timeout without ``now + delay``."""
        event = simpy.Event(self)
        event._ok, event._value = True, None
        heappush(self._queue, (when, priority, next(self._eid), event))
        return event


class _Queue(SortedQueue):
    def append(self, item) -> None:
        """Insert by bisection rather than re-sorting the queue on every request."""
        insort(self, item, key=attrgetter("key"))


class _Staff(simpy.PriorityResource):
    PutQueue = _Queue


@dataclass(frozen=True)
class DeskDay:
    """One :meth:`CSDesk.advance`: the tickets that *finished* in it, in finishing order."""

    ticket_ids: np.ndarray      #: int64, as submitted
    resolved: np.ndarray        #: bool; False: the ticket abandoned
    wait_days: np.ndarray       #: days from arrival to start of service, or to abandonment
    finish_time: np.ndarray     #: days, absolute time of resolution or abandonment
    busy_server_days: float     #: staff-days serving; / (staff * days advanced) = utilisation
    queue_length: int           #: tickets waiting at the end
    in_service: int             #: tickets being served at the end
    arrivals: int               #: tickets that arrived during the advance


class CSDesk:
    """A CS desk of ``staff`` agents serving one priority queue; time starts at day 0.0."""

    def __init__(self, staff: int):
        empty = {k: np.zeros(0) for k in _COLUMNS if k != "wake"}
        self._restore(dict(empty, wake_rank=np.zeros(0), time=0.0, staff=int(staff), next_seq=0))

    def submit(self, ticket_ids, arrival_times, service_times, patience_times,
               priorities=None) -> None:
        """Queue tickets that arrive during the next :meth:`advance`.

        ``arrival_times``: absolute, in days, >= :attr:`now`. ``service_times``
        and ``patience_times``: days; a ticket still waiting ``patience`` days
        after arriving abandons (``np.inf``: never). ``priorities``: ints,
        lower served first (default 0). All arrays have one entry per ticket.
        """
        ids = np.asarray(ticket_ids, dtype=np.int64).ravel()
        pri = np.zeros(ids.size) if priorities is None else np.asarray(priorities).ravel()
        arrival, service, patience = (np.asarray(a, dtype=float).ravel()
                                      for a in (arrival_times, service_times, patience_times))
        if not ids.size == arrival.size == service.size == patience.size == pri.size:
            raise ValueError("submit: all arrays must have the same length")
        if not (np.all(np.isfinite(arrival)) and np.all(arrival >= self.now)):
            raise ValueError(f"submit: arrival times must be finite and >= now ({self.now})")
        if not (np.all(np.isfinite(service) & (service >= 0)) and np.all(patience >= 0)
                and np.all(pri == np.round(pri))):
            raise ValueError("submit: need finite service >= 0, patience >= 0, integer priorities")
        rows, t = self._alloc(ids.size), self._t
        seq = np.arange(self._next_seq, self._next_seq + ids.size)
        self._next_seq += ids.size
        t["seq"][rows], t["ticket_id"][rows], t["priority"][rows] = seq, ids, pri
        t["arrival"][rows], t["service"][rows] = arrival, service
        t["deadline"][rows], t["phase"][rows] = arrival + patience, ARRIVING
        for row, p, a, s in zip(rows.tolist(), pri.tolist(), arrival.tolist(), seq.tolist()):
            wake = self._at(a, row)
            self._env.process(self._life(row, (int(p), a, s), ARRIVING, wake, None))

    def advance(self, until: float) -> DeskDay:
        """Run the desk over [now, until) (days; events at ``until`` come next time)."""
        t0, until = self.now, float(until)
        if not until > t0:
            raise ValueError(f"advance: until ({until}) must be > now ({t0})")
        self._done, self._arrivals, self._t0 = ([], [], [], [], []), 0, t0
        self._env.run(until=self._env.at(until, URGENT))
        ids, ok, wait, fin, busy = self._done
        start = self._t["start"][self._t["phase"] == SERVING]
        busy.extend((until - np.maximum(start, t0)).tolist())
        return DeskDay(np.array(ids, dtype=np.int64), np.array(ok, dtype=bool),
                       np.array(wait, dtype=float), np.array(fin, dtype=float),
                       math.fsum(busy), self.queue_length, self.in_service, self._arrivals)

    now = property(lambda self: self._env.now, doc="Current time, days.")
    staff = property(lambda self: self._res.capacity, doc="Number of agents (servers).")
    queue_length = property(lambda self: len(self._res.queue),
                            doc="Tickets waiting (arrived, not yet in service).")
    in_service = property(lambda self: len(self._res.users), doc="Tickets being served.")

    def _life(self, row, key, phase, wake, req):
        """One ticket's process, entered at ``phase`` (a later one after a restore)."""
        env, t = self._env, self._t
        if phase == ARRIVING:
            yield wake
            self._arrivals += 1
            t["phase"][row], t["wake"][row] = WAITING, -1
            req = self._res.request(priority=key)
            deadline = float(t["deadline"][row])
            wake = None if req.triggered or deadline == math.inf else self._at(deadline, row)
            phase = WAITING
        if phase == WAITING:
            yield req if wake is None else req | wake
            if not req.triggered:               # patience ran out first
                req.cancel()
                self._finish(row, False, env.now - key[1], 0.0)
                return
            t["start"][row], t["phase"][row] = env.now, SERVING
            t["finish"][row] = env.now + t["service"][row]
            wake = self._at(float(t["finish"][row]), row)
        yield wake
        self._res.release(req)
        start = float(t["start"][row])
        self._finish(row, True, start - key[1], env.now - max(start, self._t0))

    def _at(self, when: float, row: int) -> simpy.Event:
        self._t["wake"][row], self._n_wake = self._n_wake, self._n_wake + 1
        return self._env.at(when)

    def _finish(self, row, resolved, wait, busy) -> None:
        for out, value in zip(self._done, (int(self._t["ticket_id"][row]), resolved, wait,
                                           self._env.now, busy)):
            out.append(value)
        self._t["phase"][row], self._t["wake"][row] = FREE, -1
        self._free.append(row)

    def _alloc(self, n: int) -> np.ndarray:
        """``n`` free rows of the ticket table, growing it by doubling."""
        if len(self._free) < n:
            old = self._t["phase"].size
            new = max(2 * old, old + n, 64)
            for k, col in self._t.items():
                self._t[k] = np.concatenate([col, np.full(new - old, FREE if k == "phase" else 0,
                                                          dtype=col.dtype)])
            self._free[:0] = range(new - 1, old - 1, -1)
        rows = np.array(self._free[len(self._free) - n:][::-1], dtype=np.intp)
        del self._free[len(self._free) - n:]
        return rows

    def state(self) -> dict:
        """The whole desk as plain numpy arrays and scalars, for :meth:`from_state`.

        Scalars ``time`` (days), ``staff``, ``next_seq``; arrays with one entry
        per live ticket in submission order (``seq``): ``ticket_id``,
        ``priority``, ``phase`` (0 not yet arrived, 1 waiting, 2 in service),
        ``arrival``, ``service`` (days), ``deadline`` (absolute time it
        abandons if still waiting; inf: never), ``start`` and ``finish``
        (absolute times its service began and ends; NaN unless in service),
        ``wake_rank`` (order in which its next event was scheduled; -1: none),
        which breaks ties between simultaneous events. Times are absolute, not
        remaining, so that a restored desk reproduces them exactly.
        """
        t = self._t
        live = np.flatnonzero(t["phase"] != FREE)
        live = live[np.argsort(t["seq"][live], kind="stable")]
        out = {k: col[live] for k, col in t.items() if k != "wake"}
        idle = out["phase"] != SERVING
        out["start"][idle] = out["finish"][idle] = np.nan
        wake, rank = t["wake"][live], np.full(live.size, -1, dtype=np.int64)
        pending = np.flatnonzero(wake >= 0)
        rank[pending[np.argsort(wake[pending])]] = np.arange(pending.size)
        return dict(out, wake_rank=rank, time=self.now, staff=self.staff, next_seq=self._next_seq)

    @classmethod
    def from_state(cls, state: dict) -> CSDesk:
        """A desk that continues exactly as the one ``state`` was taken from."""
        desk = cls.__new__(cls)
        desk._restore(state)
        return desk

    def _restore(self, st: dict) -> None:
        self._env = _Env(initial_time=float(st["time"]))
        self._res = _Staff(self._env, capacity=int(st["staff"]))
        self._next_seq, self._n_wake, self._arrivals, self._t0 = int(st["next_seq"]), 0, 0, self.now
        self._done, self._free = ([], [], [], [], []), []
        self._t = {k: np.zeros(0, dtype=dt) for k, dt in _COLUMNS.items()}
        n = len(st["seq"])
        rows = self._alloc(n)
        for k in _COLUMNS:
            self._t[k][rows] = -1 if k == "wake" else st[k]
        phase = self._t["phase"][rows].tolist()
        keys = list(zip(*(self._t[k][rows].tolist() for k in ("priority", "arrival", "seq"))))
        wakes, reqs, rank = [None] * n, [None] * n, np.asarray(st["wake_rank"])
        for i in np.flatnonzero(rank >= 0)[np.argsort(rank[rank >= 0])].tolist():
            when = self._t[("arrival", "deadline", "finish")[phase[i]]][rows[i]]
            wakes[i] = self._at(float(when), int(rows[i]))
        for wanted in (SERVING, WAITING):       # the servers first, then the queue
            for i in (i for i in range(n) if phase[i] == wanted):
                reqs[i] = self._res.request(priority=keys[i])
                if reqs[i].triggered != (wanted == SERVING):
                    raise ValueError("from_state: tickets in service do not match staff")
        for i, row in enumerate(rows.tolist()):
            self._env.process(self._life(row, keys[i], phase[i], wakes[i], reqs[i]))

    def __getstate__(self) -> dict:
        return self.state()

    def __setstate__(self, state: dict) -> None:
        self._restore(state)

    def __deepcopy__(self, memo) -> CSDesk:
        return type(self).from_state(self.state())


def erlang_c(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Erlang C: the probability that an arrival to an M/M/c queue has to wait.

    Rates are per day; computed by the Erlang B recursion, stable for any c.
    Raises ValueError unless the offered load arrival_rate / service_rate < servers.
    """
    load, c = arrival_rate / service_rate, int(servers)
    if c < 1 or not load >= 0:
        raise ValueError("erlang_c: need servers >= 1 and non-negative rates")
    if load >= c:
        raise ValueError(f"erlang_c: unstable queue, offered load {load:g} >= {c} servers")
    b = 1.0
    for k in range(1, c + 1):
        b = load * b / (k + load * b)
    return c * b / (c - load * (1.0 - b))


def mmc_mean_wait(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Mean wait in queue (days) over all arrivals to an M/M/c queue: C / (c mu - lambda)."""
    return erlang_c(arrival_rate, service_rate, servers) / (servers * service_rate - arrival_rate)


@dataclass(frozen=True)
class MMCResult:
    """Outcome of :func:`run_mmc`, over the arrivals after the warm-up."""

    p_wait: float               #: share of arrivals that waited at all
    mean_wait: float            #: days, over all arrivals (zeros included)
    abandon_share: float        #: share of arrivals that abandoned
    utilisation: float          #: busy staff-days / (servers * measured days)
    arrival_times: np.ndarray   #: days
    waits: np.ndarray           #: days, to service or to abandonment
    resolved: np.ndarray        #: bool; False: abandoned


def run_mmc(arrival_rate: float, service_rate: float, servers: int, horizon_days: int,
            patience_rate: float | None = None, seed: int = 0,
            warmup_days: int | None = None) -> MMCResult:
    """Simulate an M/M/c (M/M/c+M given ``patience_rate``) queue on a :class:`CSDesk`.

    Poisson arrivals (per day) over ``horizon_days`` whole days, exponential
    service (rate per agent per day) and patience, all drawn from
    ``Streams(seed)`` and submitted in daily batches. Arrivals in the first
    ``warmup_days`` (default: a tenth of the horizon) are not measured. The
    desk is drained after the horizon, so every measured wait is known.
    """
    horizon = int(horizon_days)
    warmup = horizon // 10 if warmup_days is None else int(warmup_days)
    streams, gaps = Streams(seed), np.zeros(0)
    chunk = int(arrival_rate * horizon + 10 * math.sqrt(arrival_rate * horizon)) + 10
    while gaps.sum() < horizon:
        ids = np.arange(gaps.size, gaps.size + chunk)
        gaps = np.append(gaps, streams.exponential("mmc.interarrival", 0, ids) / arrival_rate)
    arrival = np.cumsum(gaps)
    arrival = arrival[arrival < horizon]
    ids = np.arange(arrival.size)
    service = streams.exponential("mmc.service", 0, ids) / service_rate
    patience = (np.full(ids.size, np.inf) if patience_rate is None
                else streams.exponential("mmc.patience", 0, ids) / patience_rate)
    desk, bounds = CSDesk(servers), np.searchsorted(arrival, np.arange(horizon + 1))
    waits, resolved, busy, day = np.full(ids.size, np.nan), np.zeros(ids.size, bool), 0.0, 0
    while day < horizon or desk.queue_length or desk.in_service:
        if day < horizon:
            s = slice(bounds[day], bounds[day + 1])
            desk.submit(ids[s], arrival[s], service[s], patience[s])
        out = desk.advance(day + 1)
        waits[out.ticket_ids], resolved[out.ticket_ids] = out.wait_days, out.resolved
        busy += out.busy_server_days if warmup <= day < horizon else 0.0
        day += 1
    m = arrival >= warmup
    return MMCResult(float(np.mean(waits[m] > 0)), float(np.mean(waits[m])),
                     float(np.mean(~resolved[m])), busy / (servers * (horizon - warmup)),
                     arrival[m], waits[m], resolved[m])
