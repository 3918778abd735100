"""The customer-success desk: a multi-server priority queue simulated with SimPy.

Tickets arrive at a desk of ``staff`` agents, wait in one queue (lowest
priority value first, then first come first served by arrival time, then by
submission order), may lose patience and abandon, and are served for a time
the caller has drawn. Time is in days and rates are per day throughout.

The desk is advanced in lockstep with the daily loop of the simulator: the
caller :meth:`~CSDesk.submit`\\ s the day's tickets and calls
:meth:`~CSDesk.advance`, which returns what finished that day. The desk draws
no random numbers: every arrival, service and patience time comes from the
caller's counter-based streams, so two policy arms see the same luck.

Each ticket is one SimPy process; its fields live in numpy arrays whose rows
are recycled, so the desk's cost grows with the number of tickets only.

A SimPy environment full of generators can be neither copied nor pickled, so a
desk is copied through :meth:`~CSDesk.state` (plain arrays) and
:meth:`~CSDesk.from_state`. To make a restored desk continue *bit for bit*
like the original, every event the desk schedules is placed at an absolute
time (``now + delay`` would round differently after a restore), and the
pending events are re-created in the order the original scheduled them, which
is how SimPy breaks ties between simultaneous events.

With exponential arrivals, service and patience the desk is an M/M/c(+M)
queue; :func:`run_mmc` runs it so, and :func:`erlang_c` and
:func:`mmc_mean_wait` give the textbook answers it must reproduce.
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

ARRIVING, WAITING, SERVING, FREE = 0, 1, 2, -1
"""Phases of a ticket's row: not yet arrived, queued, being served, unused row."""

_STATE_ARRAYS = ("seq", "ticket_id", "arrival", "service", "deadline", "priority",
                 "phase", "start", "finish", "wake_rank")


class _Env(simpy.Environment):
    """An environment that can also schedule an event at an absolute time."""

    def at(self, when: float, priority: int = NORMAL) -> simpy.Event:
        """A triggered event processed at time ``when`` (like a Timeout, minus
        the rounding of ``now + delay``)."""
        event = simpy.Event(self)
        event._ok, event._value = True, None
        heappush(self._queue, (when, priority, next(self._eid), event))
        return event


class _Queue(SortedQueue):
    """The put queue, kept sorted by bisection instead of a sort per request."""

    def append(self, item) -> None:
        insort(self, item, key=attrgetter("key"))


class _Staff(simpy.PriorityResource):
    PutQueue = _Queue


@dataclass(frozen=True)
class DeskDay:
    """What happened at the desk during one :meth:`CSDesk.advance`.

    The arrays describe the tickets that *finished* (were resolved or
    abandoned) during the advance, in the order they finished.
    """

    ticket_ids: np.ndarray      #: int64 ids given at submission
    resolved: np.ndarray        #: bool; False means the ticket abandoned
    wait_days: np.ndarray       #: days from arrival to start of service (or to abandonment)
    finish_time: np.ndarray     #: absolute time in days of resolution or abandonment
    busy_server_days: float     #: staff-days spent serving; / (staff * days) is utilisation
    queue_length: int           #: tickets waiting at the end of the advance
    in_service: int             #: tickets being served at the end of the advance
    arrivals: int               #: tickets that arrived during the advance


class CSDesk:
    """A CS desk of ``staff`` agents serving one priority queue, starting at day 0.0."""

    def __init__(self, staff: int):
        self._restore(dict(time=0.0, staff=int(staff), next_seq=0,
                           **{k: np.zeros(0) for k in _STATE_ARRAYS}))

    # -- the daily interface --------------------------------------------------

    def submit(self, ticket_ids, arrival_times, service_times, patience_times,
               priorities=None) -> None:
        """Queue up tickets arriving during the next :meth:`advance`.

        ``arrival_times`` are absolute (days, >= :attr:`now`); ``service_times``
        and ``patience_times`` are durations in days (``np.inf``: never
        abandons). A ticket still waiting ``patience`` days after it arrived
        abandons. ``priorities`` are ints, lower served first (default 0).
        """
        ids = np.asarray(ticket_ids, dtype=np.int64).ravel()
        n = ids.size
        if priorities is None:
            priorities = np.zeros(n, dtype=np.int64)
        cols = [np.asarray(a, dtype=float).ravel()
                for a in (arrival_times, service_times, patience_times)]
        pri = np.asarray(priorities).ravel()
        if any(c.size != n for c in cols) or pri.size != n:
            raise ValueError("submit: all arrays must have the same length")
        arrival, service, patience = cols
        if n == 0:
            return
        if not np.all(arrival >= self.now) or not np.all(np.isfinite(arrival)):
            raise ValueError(f"submit: arrival times must be finite and >= now ({self.now})")
        if not (np.all(service >= 0) and np.all(np.isfinite(service)) and np.all(patience >= 0)):
            raise ValueError("submit: service times must be finite and >= 0, patience >= 0")
        if not np.all(pri == np.round(pri)):
            raise ValueError("submit: priorities must be integers")
        rows = self._alloc(n)
        seq = np.arange(self._next_seq, self._next_seq + n, dtype=np.int64)
        self._next_seq += n
        self._seq[rows], self._tid[rows], self._pri[rows] = seq, ids, pri
        self._arr[rows], self._svc[rows] = arrival, service
        self._dl[rows] = arrival + patience
        self._phase[rows] = ARRIVING
        for row, p, a, s in zip(rows.tolist(), pri.tolist(), arrival.tolist(), seq.tolist()):
            wake = self._at(a, row)
            self._env.process(self._life(row, (int(p), a, s), ARRIVING, wake, None))

    def advance(self, until: float) -> DeskDay:
        """Run the desk from :attr:`now` to ``until`` (days) and report.

        Events at exactly ``until`` belong to the next advance (the interval
        is [now, until)).
        """
        t0, until = self.now, float(until)
        if not until > t0:
            raise ValueError(f"advance: until ({until}) must be > now ({t0})")
        self._done, self._arrivals, self._t0 = ([], [], [], [], []), 0, t0
        self._env.run(until=self._env.at(until, URGENT))
        ids, ok, wait, fin, busy = self._done
        serving = np.flatnonzero(self._phase == SERVING)
        busy.extend((until - np.maximum(self._start[serving], t0)).tolist())
        return DeskDay(np.array(ids, dtype=np.int64), np.array(ok, dtype=bool),
                       np.array(wait, dtype=float), np.array(fin, dtype=float),
                       math.fsum(busy), self.queue_length, self.in_service, self._arrivals)

    @property
    def now(self) -> float:
        """Current time in days."""
        return self._env.now

    @property
    def staff(self) -> int:
        """Number of servers."""
        return self._res.capacity

    @property
    def queue_length(self) -> int:
        """Tickets waiting (arrived, not yet in service)."""
        return len(self._res.queue)

    @property
    def in_service(self) -> int:
        """Tickets being served."""
        return len(self._res.users)

    # -- one ticket -----------------------------------------------------------

    def _life(self, row, key, phase, wake, req):
        """The process of one ticket, entered at ``phase`` (later ones on restore)."""
        env = self._env
        if phase == ARRIVING:
            yield wake
            self._arrivals += 1
            self._phase[row] = WAITING
            self._wake[row] = -1
            req = self._res.request(priority=key)
            deadline = float(self._dl[row])
            wake = None if req.triggered or deadline == math.inf else self._at(deadline, row)
            phase = WAITING
        if phase == WAITING:
            yield req if wake is None else req | wake
            if not req.triggered:               # patience ran out first
                req.cancel()
                self._finish(row, False, env.now - key[1], 0.0)
                return
            start = env.now
            self._start[row], self._phase[row] = start, SERVING
            self._fin[row] = start + self._svc[row]
            wake = self._at(float(self._fin[row]), row)
        yield wake
        self._res.release(req)
        start = float(self._start[row])
        self._finish(row, True, start - key[1], env.now - max(start, self._t0))

    def _at(self, when: float, row: int) -> simpy.Event:
        self._wake[row] = self._n_wake
        self._n_wake += 1
        return self._env.at(when)

    def _finish(self, row, resolved, wait, busy) -> None:
        ids, ok, waits, fin, busy_list = self._done
        ids.append(int(self._tid[row]))
        ok.append(resolved)
        waits.append(wait)
        fin.append(self._env.now)
        busy_list.append(busy)
        self._phase[row], self._wake[row] = FREE, -1
        self._free.append(row)

    def _alloc(self, n: int) -> np.ndarray:
        """n free rows of the ticket table (growing it by doubling)."""
        if len(self._free) < n:
            old = self._phase.size
            new = max(2 * old, old + n, 64)
            for name in ("_seq", "_tid", "_pri", "_wake", "_arr", "_svc", "_dl",
                         "_start", "_fin", "_phase"):
                a = getattr(self, name)
                grown = np.full(new, FREE if name == "_phase" else 0, dtype=a.dtype)
                grown[:old] = a
                setattr(self, name, grown)
            self._free[:0] = range(new - 1, old - 1, -1)
        if n == 0:
            return np.zeros(0, dtype=np.intp)
        rows = np.array(self._free[-n:][::-1], dtype=np.intp)
        del self._free[-n:]
        return rows

    # -- snapshots --------------------------------------------------------------

    def state(self) -> dict:
        """The desk's whole state as plain numpy arrays and scalars.

        One row per live ticket, ordered by submission: ``phase`` is 0 (not
        yet arrived), 1 (waiting) or 2 (in service); ``deadline`` is the
        absolute time it abandons if still waiting (inf: never); ``finish``
        the absolute time its service ends (in service only); ``wake_rank``
        the order in which its next event was scheduled (-1: none), which
        decides ties between simultaneous events. Times are absolute so that
        :meth:`from_state` reproduces them exactly.
        """
        live = np.flatnonzero(self._phase != FREE)
        live = live[np.argsort(self._seq[live], kind="stable")]
        wake = self._wake[live]
        rank = np.full(live.size, -1, dtype=np.int64)
        pending = np.flatnonzero(wake >= 0)
        rank[pending[np.argsort(wake[pending], kind="stable")]] = np.arange(pending.size)
        cols = (self._seq, self._tid, self._arr, self._svc, self._dl, self._pri,
                self._phase, self._start, self._fin)
        out = {k: c[live].copy() for k, c in zip(_STATE_ARRAYS, cols)}
        idle = out["phase"] != SERVING
        out["start"][idle] = out["finish"][idle] = np.nan
        out.update(wake_rank=rank, time=self.now, staff=self.staff, next_seq=self._next_seq)
        return out

    @classmethod
    def from_state(cls, state: dict) -> "CSDesk":
        """A desk equivalent to the one :meth:`state` was taken from."""
        desk = cls.__new__(cls)
        desk._restore(state)
        return desk

    def _restore(self, st: dict) -> None:
        self._env = _Env(initial_time=float(st["time"]))
        self._res = _Staff(self._env, capacity=int(st["staff"]))
        self._next_seq, self._n_wake, self._arrivals = int(st["next_seq"]), 0, 0
        self._done = ([], [], [], [], [])
        self._t0 = self.now
        n = len(st["seq"])
        self._phase, self._free = np.zeros(0, dtype=np.int8), []
        self._seq = self._tid = self._pri = self._wake = np.zeros(0, dtype=np.int64)
        self._arr = self._svc = self._dl = self._start = self._fin = np.zeros(0)
        rows = self._alloc(n)
        self._seq[rows], self._tid[rows], self._pri[rows] = st["seq"], st["ticket_id"], st["priority"]
        self._arr[rows], self._svc[rows], self._dl[rows] = st["arrival"], st["service"], st["deadline"]
        self._start[rows], self._fin[rows], self._phase[rows] = st["start"], st["finish"], st["phase"]
        self._wake[rows] = -1
        phase = self._phase[rows].tolist()
        keys = list(zip(self._pri[rows].tolist(), self._arr[rows].tolist(), self._seq[rows].tolist()))
        wakes, reqs = [None] * n, [None] * n
        rank = np.asarray(st["wake_rank"], dtype=np.int64)
        for i in np.flatnonzero(rank >= 0)[np.argsort(rank[rank >= 0])].tolist():
            when = (self._arr, self._dl, self._fin)[phase[i]][rows[i]]
            wakes[i] = self._at(float(when), int(rows[i]))
        for wanted in (SERVING, WAITING):       # servers first, then the queue
            for i in (i for i in range(n) if phase[i] == wanted):
                reqs[i] = self._res.request(priority=keys[i])
                if (wanted == SERVING) != reqs[i].triggered:
                    raise ValueError("from_state: tickets in service do not match staff")
        for i, row in enumerate(rows.tolist()):
            self._env.process(self._life(row, keys[i], phase[i], wakes[i], reqs[i]))

    def __getstate__(self) -> dict:
        return self.state()

    def __setstate__(self, state: dict) -> None:
        self._restore(state)

    def __deepcopy__(self, memo) -> "CSDesk":
        return CSDesk.from_state(self.state())


# -- validation: M/M/c(+M) ---------------------------------------------------------

def erlang_c(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Erlang C: probability an arrival waits in an M/M/c queue.

    Rates per day; computed from the Erlang B recursion, stable for large c.
    Raises ValueError unless the load A = arrival_rate / service_rate < servers.
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
    """Mean wait in queue (days) of an M/M/c queue, over all arrivals: C / (c mu - lambda)."""
    return erlang_c(arrival_rate, service_rate, servers) / (servers * service_rate - arrival_rate)


@dataclass(frozen=True)
class MMCResult:
    """Outcome of :func:`run_mmc`; the scalars cover arrivals after the warm-up."""

    p_wait: float               #: share of arrivals that waited at all
    mean_wait: float            #: days, over all arrivals (zeros included)
    abandon_share: float        #: share of arrivals that abandoned
    utilisation: float          #: busy staff-days / (servers * measured days)
    arrival_times: np.ndarray   #: days, measured arrivals
    waits: np.ndarray           #: days, their waits (to service or to abandonment)
    resolved: np.ndarray        #: bool, False if abandoned


def run_mmc(arrival_rate: float, service_rate: float, servers: int, horizon_days: int,
            patience_rate: float | None = None, seed: int = 0,
            warmup_days: int | None = None) -> MMCResult:
    """Simulate an M/M/c queue (M/M/c+M with ``patience_rate``) on a :class:`CSDesk`.

    Poisson arrivals at ``arrival_rate`` per day over ``horizon_days`` days,
    exponential service (``service_rate`` per day per server) and patience,
    drawn from :class:`~sim.streams.Streams` (``seed``), submitted in daily
    batches. Arrivals in the first ``warmup_days`` (default a tenth of the
    horizon) are not measured; the desk is drained after the horizon so every
    measured arrival's wait is known.
    """
    horizon = int(horizon_days)
    warmup = horizon // 10 if warmup_days is None else int(warmup_days)
    streams, chunk = Streams(seed), int(arrival_rate * horizon + 10 * math.sqrt(arrival_rate * horizon) + 10)
    gaps = np.zeros(0)
    while gaps.sum() < horizon:
        ids = np.arange(gaps.size, gaps.size + chunk)
        gaps = np.concatenate([gaps, streams.exponential("mmc.interarrival", 0, ids) / arrival_rate])
    arrival = np.cumsum(gaps)
    arrival = arrival[arrival < horizon]
    ids = np.arange(arrival.size)
    service = streams.exponential("mmc.service", 0, ids) / service_rate
    patience = (np.full(ids.size, np.inf) if patience_rate is None
                else streams.exponential("mmc.patience", 0, ids) / patience_rate)
    desk, bounds = CSDesk(servers), np.searchsorted(arrival, np.arange(horizon + 1))
    waits, resolved, busy = np.full(ids.size, np.nan), np.zeros(ids.size, dtype=bool), 0.0
    day = 0
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
