"""The customer-success desk: a multi-server priority queue simulated with SimPy.

Tickets arrive at a desk of ``staff`` agents, wait in one queue (lowest
priority value first, then by arrival time, then by submission order), may
abandon when their patience runs out, and are served for a time the caller
drew. Time is in days, rates are per day. The desk draws no random numbers.

The desk moves in lockstep with the daily loop: :meth:`CSDesk.submit` the
day's tickets, :meth:`CSDesk.advance` to the end of the day.

Design: a few microseconds per ticket
-------------------------------------
SimPy's environment is the event calendar and the clock, but a ticket is not
a SimPy process: a generator, a resource request and a patience timeout per
ticket cost tens of microseconds. A ticket is a tuple, and it puts at most two
plain :class:`simpy.Event` objects (one callback each) on the calendar:

* its *service completion*, scheduled when its service starts, which resolves
  it and lets its agent take the next ticket;
* its *arrival*, only if an agent is idle then. Submitted tickets wait in a
  list sorted by (arrival time, submission number); while every agent is
  busy an arrival changes nothing until an agent frees, so arrivals join the
  queue when the next completion happens (all arrivals up to that time
  first). While an agent is idle, one wake-up event sits at the next arrival.

The queue is ordered by (priority, arrival time, submission number). Tickets
join it in (arrival, submission) order, so it is kept as one FIFO
:class:`~collections.deque` per priority plus a :mod:`heapq` of the
priorities that have tickets waiting: the next ticket is the head of the
lowest priority's deque, O(1) per ticket however long the backlog (one heap
of all waiting tickets would cost O(log backlog) tuple comparisons). The desk
counts its idle agents; while one is idle, nobody waits.

Abandonment is lazy and costs no event. A waiting ticket abandons at its
*deadline* (arrival + patience) unless its service starts first. An abandoned
ticket never holds an agent and never changes the order of the others, so
whether it left can be decided whenever an agent next looks at the queue: an
agent freed at time t pops the tickets whose deadline is < t, records them as
abandoned at their deadline, and serves the first one still there. At the
end of :meth:`CSDesk.advance` the waiting tickets (only those) are scanned
once, if some deadline among them may be due, and every ticket whose
deadline is < ``until`` is recorded as abandoned; so
:attr:`CSDesk.queue_length` is exact at day boundaries and the work stays
proportional to the number of tickets.

Simultaneous events (one instant t), defined so that the outcome does not
depend on the order in which events were scheduled:

1. every ticket arriving at t joins the queue;
2. every agent idle at t, or freed at t (including by a service of length 0
   that started at t), takes the best waiting ticket whose deadline is >= t:
   a ticket whose deadline is exactly t is still served if an agent is free
   for it at t, and abandons (at t) otherwise.

Events at exactly ``until`` belong to the next advance. A :class:`DeskDay`
lists the tickets that finished in order of finishing time; ties (services
of length 0, exact coincidences) by start of service (for an abandoned
ticket: its deadline), then in queue order (priority, arrival, submission).

SimPy events can be neither copied nor pickled, so a desk is copied via
:meth:`CSDesk.state` (plain arrays) and :meth:`CSDesk.from_state`. So that the
copy continues *bit for bit* like the original, events are scheduled at
absolute times (``now + delay`` would round differently after a restore);
since the outcome does not depend on the scheduling order of simultaneous
events, the restored desk may schedule its pending events in any order.

With exponential times the desk is an M/M/c(+M) queue: :func:`run_mmc` runs it
so; :func:`erlang_c` and :func:`mmc_mean_wait` give the textbook answers.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from heapq import heapify, heappop, heappush
from operator import itemgetter

import numpy as np
import simpy
from simpy.core import NORMAL

from sim.streams import Streams

ARRIVING, WAITING, SERVING = 0, 1, 2             # phase of a ticket in :meth:`CSDesk.state`
# A ticket is the tuple (priority, arrival, seq, deadline, service, ticket_id),
# times in days; the first three order the queue (seq, the submission number, is unique).
_PRI, _ARR, _SEQ, _DEADLINE, _SERVICE, _ID = range(6)
_BY_ARRIVAL, _BY_DEADLINE, _TICKET = itemgetter(_ARR, _SEQ), itemgetter(_DEADLINE), itemgetter(0)
_new = object.__new__


def _column(rows: list, k: int, dtype) -> np.ndarray:
    """Item ``k`` of every tuple in ``rows``, as an array."""
    return np.fromiter(map(itemgetter(k), rows), dtype, len(rows))


class _Env(simpy.Environment):
    """A SimPy environment that schedules at absolute times and runs up to (not at) a time."""

    def at(self, when: float, value, callback) -> simpy.Event:
        """A triggered event processed at time ``when`` (days) calling ``callback(event)``.

        Like a Timeout, but scheduled at ``when`` itself rather than at
        ``now + delay``, and built without ``Event.__init__`` (it is on the hot
        path). ``value`` becomes ``event.value``.
        """
        event = _new(simpy.Event)
        event.env, event.callbacks, event._ok, event._value = self, [callback], True, value
        heappush(self._queue, (when, NORMAL, next(self._eid), event))
        return event

    def run_before(self, until: float) -> None:
        """Process every event earlier than ``until`` (days), then set the clock to ``until``."""
        queue, step = self._queue, self.step
        while queue and queue[0][0] < until:
            step()
        self._now = until


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
        empty = {k: np.zeros(0) for k in _STATE_COLUMNS}
        self._restore(dict(empty, time=0.0, staff=int(staff), next_seq=0))

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
        first, self._next_seq = self._next_seq, self._next_seq + ids.size
        # Copies: the caller may reuse its arrays before the next advance.
        self._incoming.append((pri.astype(np.int64), arrival.copy(),
                               np.arange(first, self._next_seq), arrival + patience,
                               service.copy(), ids.copy()))

    def _flush(self) -> None:
        """Sort the tickets submitted since the last call into those yet to arrive."""
        if not self._incoming:
            return
        columns = [np.concatenate(c) for c in zip(*self._incoming)]
        self._incoming = []
        order = np.argsort(columns[_ARR], kind="stable")    # by arrival, then submission order
        batch = list(zip(*(c[order].tolist() for c in columns)))
        rest = self._pending[self._pi:]                 # submitted earlier, so smaller seq
        self._pending = sorted(rest + batch, key=_BY_ARRIVAL) if rest else batch
        self._pi, self._next_arrival = 0, self._pending[0][_ARR] if self._pending else math.inf
        self._arm()

    def advance(self, until: float) -> DeskDay:
        """Run the desk over [now, until) (days; events at ``until`` come next time)."""
        t0, until = self.now, float(until)
        if not until > t0:
            raise ValueError(f"advance: until ({until}) must be > now ({t0})")
        self._flush()
        self._arrivals, self._served, self._gone = 0, [], []
        self._env.run_before(until)
        self._take_arrivals(math.nextafter(until, -math.inf))     # arrivals before until
        self._purge(until)
        served, gone = self._served, self._gone
        self._served = self._gone = None
        # Resolved: finish = start + service, the very float its completion was scheduled at.
        # (Columns via map/itemgetter: zip(*rows) would make a tracked iterator per row.)
        tickets = list(map(_TICKET, served))
        start, arr, svc = (_column(rows, k, float) for rows, k in
                           ((served, 1), (tickets, _ARR), (tickets, _SERVICE)))
        finish = start + svc
        busy = (finish - np.maximum(start, t0)).tolist()
        busy += [until - max(s, t0) for _, s in self._in_service()]
        # Abandoned: at their deadline.
        deadline = _column(gone, _DEADLINE, float)
        both = lambda k, dt: np.concatenate([_column(tickets, k, dt), _column(gone, k, dt)])
        ids, fin = both(_ID, np.int64), np.concatenate([finish, deadline])
        wait = np.concatenate([start - arr, deadline - _column(gone, _ARR, float)])
        ok = np.zeros(fin.size, dtype=bool)
        ok[:finish.size] = True
        # Finishing order; ties: earlier start of service (abandoned: deadline), then queue order.
        order = np.lexsort((both(_SEQ, np.int64), both(_ARR, float), both(_PRI, np.int64),
                            np.concatenate([start, deadline]), fin))
        return DeskDay(ids[order], ok[order], wait[order], fin[order], math.fsum(busy),
                       self.queue_length, self.in_service, self._arrivals)

    now = property(lambda self: self._env.now, doc="Current time, days.")
    staff = property(lambda self: self._staff, doc="Number of agents (servers).")
    queue_length = property(lambda self: sum(map(len, self._queues.values())),
                            doc="Tickets waiting: arrived, not in service, not abandoned "
                                "(deadline >= now); exact between advances.")
    in_service = property(lambda self: self._staff - self._free, doc="Tickets being served.")

    # -- the hot path: two event callbacks ---------------------------------------------

    def _complete(self, event: simpy.Event) -> None:
        """A service ends at ``now``: resolve the ticket; its agent takes the next live one."""
        self._served.append(event._value)
        env = self._env
        now = env._now
        if self._next_arrival <= now:
            self._take_arrivals(now)
        levels = self._levels
        while levels:                           # the best waiting ticket: _pop, inlined
            queue = self._queues[levels[0]]
            ticket = queue.popleft()
            if not queue:
                heappop(levels)
            if ticket[_DEADLINE] < now:         # it gave up at its deadline, before now
                self._gone.append(ticket)
                continue
            event = _new(simpy.Event)           # _start, inlined
            event.env, event.callbacks, event._ok = env, [self._on_complete], True
            event._value = (ticket, now)
            heappush(env._queue, (now + ticket[_SERVICE], NORMAL, next(env._eid), event))
            return
        self._free += 1
        if self._next_arrival < self._wake_at:
            self._arm()

    def _wake(self, event: simpy.Event) -> None:
        """Tickets arrive while an agent is idle: the idle agents take the best of them."""
        env = self._env
        now = env._now
        if now == self._wake_at:
            self._wake_at = math.inf
        pending, i, free = self._pending, self._pi, self._free
        n = len(pending)
        if (free and i < n and pending[i][_ARR] == now and not self._levels
                and (i + 1 == n or pending[i + 1][_ARR] > now)):
            # The common case, inlined: one ticket arrives, an agent is idle (so none waits).
            ticket, nxt = pending[i], pending[i + 1][_ARR] if i + 1 < n else math.inf
            self._pi, self._next_arrival, self._arrivals = i + 1, nxt, self._arrivals + 1
            self._free = free = free - 1
            queue, eid = env._queue, env._eid
            event = _new(simpy.Event)
            event.env, event.callbacks, event._ok = env, [self._on_complete], True
            event._value = (ticket, now)
            heappush(queue, (now + ticket[_SERVICE], NORMAL, next(eid), event))
            if free and nxt < self._wake_at:   # _arm
                self._wake_at = nxt
                event = _new(simpy.Event)
                event.env, event.callbacks, event._ok, event._value = env, [self._on_wake], True, None
                heappush(queue, (nxt, NORMAL, next(eid), event))
            return
        self._take_arrivals(now)
        while self._free and self._levels:
            ticket = self._pop()
            if ticket[_DEADLINE] < now:
                self._gone.append(ticket)
            else:
                self._free -= 1
                self._start(ticket, now)
        self._arm()

    def _start(self, ticket: tuple, now: float) -> None:
        """Start serving ``ticket`` at ``now`` (days): schedule its completion."""
        env = self._env
        event = _new(simpy.Event)
        event.env, event.callbacks, event._ok = env, [self._on_complete], True
        event._value = (ticket, now)
        heappush(env._queue, (now + ticket[_SERVICE], NORMAL, next(env._eid), event))

    def _take_arrivals(self, now: float) -> None:
        """Move the tickets arriving at or before ``now`` (days) into the queue."""
        pending, i, due = self._pending, self._pi, self._due
        queues, levels = self._queues, self._levels
        n = len(pending)
        while i < n and pending[i][_ARR] <= now:
            ticket = pending[i]
            queue = queues.get(ticket[_PRI])
            if not queue:
                if queue is None:
                    queue = queues[ticket[_PRI]] = deque()
                heappush(levels, ticket[_PRI])
                queue.append(ticket)
            elif queue[-1] < ticket:            # always: tickets join in (arrival, seq) order
                queue.append(ticket)
            else:
                self._insert(queue, ticket)
            if ticket[_DEADLINE] < due:
                due = ticket[_DEADLINE]
            i += 1
        self._arrivals += i - self._pi
        self._pi, self._due = i, due
        self._next_arrival = pending[i][_ARR] if i < n else math.inf

    @staticmethod
    def _insert(queue: deque, ticket: tuple) -> None:
        """Put ``ticket`` in its place in a queue of one priority (out-of-order joins only)."""
        items = sorted([*queue, ticket])
        queue.clear()
        queue.extend(items)

    def _pop(self) -> tuple:
        """Remove and return the first waiting ticket (lowest priority, arrival, seq)."""
        levels = self._levels
        queue = self._queues[levels[0]]
        ticket = queue.popleft()
        if not queue:
            heappop(levels)
        return ticket

    def _waiting(self) -> list:
        """The waiting tickets, best first."""
        return [t for p in sorted(self._levels) for t in self._queues[p]]

    def _in_service(self) -> list:
        """(ticket, start) of every ticket in service: the pending completions on the calendar."""
        return [event._value for _, _, _, event in self._env._queue
                if event.callbacks and event.callbacks[0] is self._on_complete]

    def _arm(self) -> None:
        """While an agent is idle, keep a wake-up event at the next arrival."""
        if self._free and self._next_arrival < self._wake_at:
            self._wake_at = self._next_arrival
            self._env.at(self._wake_at, None, self._on_wake)

    def _purge(self, until: float) -> None:
        """Record as abandoned every waiting ticket whose deadline is < ``until`` (days)."""
        if self._due >= until:                  # a lower bound of the deadlines waiting
            return
        due = math.inf
        for p in self._levels:
            queue = self._queues[p]
            gone = [t for t in queue if t[_DEADLINE] < until]
            if gone:
                self._gone += gone
                self._queues[p] = queue = deque(t for t in queue if t[_DEADLINE] >= until)
            due = min(due, min(map(_BY_DEADLINE, queue), default=math.inf))
        self._levels = [p for p in self._levels if self._queues[p]]
        heapify(self._levels)
        self._due = due

    # -- snapshots -------------------------------------------------------------------

    def state(self) -> dict:
        """The whole desk as plain numpy arrays and scalars, for :meth:`from_state`.

        Scalars ``time`` (days), ``staff``, ``next_seq``; arrays with one entry
        per live ticket in submission order (``seq``): ``ticket_id``,
        ``priority``, ``phase`` (0 not yet arrived, 1 waiting, 2 in service),
        ``arrival``, ``service`` (days), ``deadline`` (absolute time it
        abandons if still waiting; inf: never), ``start`` and ``finish``
        (absolute times its service began and ends; NaN unless in service).
        Times are absolute, not remaining, so that a restored desk reproduces
        them exactly. Editing ``time`` of an empty desk's state gives an empty
        desk starting then.
        """
        self._flush()
        rows = [(t, ARRIVING, math.nan) for t in self._pending[self._pi:]]
        rows += [(t, WAITING, math.nan) for t in self._waiting()]
        rows += [(ticket, SERVING, start) for ticket, start in self._in_service()]
        rows.sort(key=lambda r: r[0][_SEQ])
        tickets = [r[0] for r in rows]
        col = lambda i, dt: np.array([t[i] for t in tickets], dtype=dt)
        start = np.array([r[2] for r in rows], dtype=float)
        return {"seq": col(_SEQ, np.int64), "ticket_id": col(_ID, np.int64),
                "priority": col(_PRI, np.int64), "phase": np.array([r[1] for r in rows], np.int8),
                "arrival": col(_ARR, float), "service": col(_SERVICE, float),
                "deadline": col(_DEADLINE, float), "start": start,
                "finish": start + col(_SERVICE, float),
                "time": self.now, "staff": self.staff, "next_seq": self._next_seq}

    @classmethod
    def from_state(cls, state: dict) -> CSDesk:
        """A desk that continues exactly as the one ``state`` was taken from.

        Keys as :meth:`state` gives them; others (e.g. ``wake_rank`` of older
        versions) are ignored.
        """
        desk = cls.__new__(cls)
        desk._restore(state)
        return desk

    def _restore(self, st: dict) -> None:
        self._env = _Env(initial_time=float(st["time"]))
        self._staff, self._next_seq = int(st["staff"]), int(st["next_seq"])
        self._arrivals, self._served, self._gone = 0, [], []
        self._pending, self._pi, self._next_arrival, self._wake_at = [], 0, math.inf, math.inf
        self._incoming = []             # submitted, not yet sorted into _pending: array columns
        # Waiting tickets: one FIFO queue per priority, and a heap of the priorities waiting.
        self._queues, self._levels, self._due = {}, [], math.inf
        self._on_complete, self._on_wake = self._complete, self._wake    # bound once
        ints = lambda k: np.asarray(st[k], dtype=np.int64).tolist()
        floats = lambda k: np.asarray(st[k], dtype=float).tolist()
        tickets = list(zip(ints("priority"), floats("arrival"), ints("seq"), floats("deadline"),
                           floats("service"), ints("ticket_id")))
        pending, waiting, serving = [], [], 0
        for ticket, phase, start, finish in zip(tickets, ints("phase"), floats("start"),
                                                floats("finish")):
            if phase == ARRIVING:
                pending.append(ticket)
            elif phase == WAITING:
                waiting.append(ticket)
            else:
                self._env.at(finish, (ticket, start), self._on_complete)
                serving += 1
        for ticket in sorted(waiting):
            if not self._queues.get(ticket[_PRI]):
                self._queues[ticket[_PRI]] = deque()
                heappush(self._levels, ticket[_PRI])
            self._queues[ticket[_PRI]].append(ticket)
        self._due = min(map(_BY_DEADLINE, waiting), default=math.inf)
        self._free = self._staff - serving
        if self._free < 0 or (self._free > 0 and waiting):
            raise ValueError("from_state: tickets in service do not match staff")
        self._pending = sorted(pending, key=_BY_ARRIVAL)
        self._next_arrival = self._pending[0][_ARR] if pending else math.inf
        self._arm()
        self._served = self._gone = None

    def __getstate__(self) -> dict:
        return self.state()

    def __setstate__(self, state: dict) -> None:
        self._restore(state)

    def __deepcopy__(self, memo) -> CSDesk:
        return type(self).from_state(self.state())


_STATE_COLUMNS = ("seq", "ticket_id", "priority", "phase", "arrival", "service", "deadline",
                  "start", "finish")


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
