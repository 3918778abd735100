"""Tickets: the table of every ticket, the reactive tickets of the day, and the desk they queue at.

A ticket is raised by an event (a failed or bad order, an onboarding
question, a payout) or sent by a policy (a dispute, an appeal); it queues at
the SimPy desk (sim/desk.py) with exponential service and patience times.
When it finishes, the agent's satisfaction moves toward the contact's level
and the agent answers a CSAT survey; a policy's own tickets first go to its
``on_tickets``, which may lower that level (a denied dispute).

Every draw is keyed by (day, agent id, the ticket's event, kind and side), so
two arms see the same luck for the same event.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from numba import njit

from agents.lifecycle import add_counts, move_satisfaction
from sim.config import SIDES
from sim.desk import CSDesk
from sim.streams import combine_at, combine_keys, uniform_at

KINDS = ("failed_order", "bad_order", "onboarding", "payout", "rating_dispute", "deactivation_appeal",
         "outreach")
KIND = {name: code for code, name in enumerate(KINDS)}
REACTIVE = ("failed_order", "bad_order", "onboarding", "payout")
SIDE_CODE = {name: code for code, name in enumerate(SIDES)}


@dataclass
class Finished:
    """Tickets a policy submitted that finished today (what the policy may know of them)."""

    side: str
    agents: np.ndarray
    kind: np.ndarray          # codes of KIND
    resolved: np.ndarray      # False: abandoned
    wait_days: np.ndarray
    tickets: np.ndarray       # ticket ids, for the CS actions that settle them

    def subset(self, rows) -> "Finished":
        """The tickets at ``rows`` (a mask or positions)."""
        return Finished(self.side, self.agents[rows], self.kind[rows], self.resolved[rows], self.wait_days[rows],
                        self.tickets[rows])


class TicketTable:
    """The table of every ticket ever raised, one row per ticket id (grows by doubling)."""

    COLUMNS = {"side": np.int8, "agent": np.int64, "kind": np.int8, "day": np.int32, "sub": np.int64,
               "arrival": np.float64, "service": np.float64, "owner": np.int16, "flag": np.bool_,
               "score": np.float32, "finished": np.bool_}

    def __init__(self):
        self.n = 0
        self.cols = {k: np.zeros(1024, dtype=dt) for k, dt in self.COLUMNS.items()}

    def add(self, count: int) -> np.ndarray:
        """Rows for ``count`` new tickets (zeros); returns their ids."""
        stop = self.n + count
        size = self.cols["side"].size
        if stop > size:
            while size < stop:
                size *= 2
            for k, col in self.cols.items():
                bigger = np.zeros(size, dtype=col.dtype)
                bigger[: self.n] = col[: self.n]
                self.cols[k] = bigger
        ids = np.arange(self.n, stop, dtype=np.int64)
        self.n = stop
        return ids

    def __getitem__(self, key: str) -> np.ndarray:
        return self.cols[key]


def ticket_key(side, kind, sub):
    """The stream sub-counter of a ticket: its event (``sub``), kind and side."""
    return combine_keys(sub, kind, side)


def csat_from_state(satisfaction: np.ndarray, noise: np.ndarray, noise_sd: float) -> np.ndarray:
    """CSAT answers 1-5 of agents with ``satisfaction`` (0-1) after a contact: round(1 + 4 s + sd z), clipped.

    ``noise`` is one standard normal draw per agent, scaled by the survey
    noise ``noise_sd`` (points, ``cs.contact.csat_noise_sd``). Satisfaction
    after the contact carries both what the agent lived through before it and
    what the contact did (the move toward its level), so two agents treated
    alike answer differently when their experience differed.
    """
    return np.clip(np.rint(1 + 4 * satisfaction + noise_sd * noise), 1, 5)


def add_csat_answers(name: str, answers: np.ndarray, figures: dict) -> None:
    """Fold CSAT ``answers`` of side ``name`` into the day's ``<name>_csat`` (share of 4-5) and its count."""
    if answers.size == 0:
        return
    prev_n = figures.get(f"{name}_csat_answers", 0)
    prev = figures.get(f"{name}_csat")
    total = prev_n + answers.size
    share = np.count_nonzero(answers >= 4)
    if prev_n and prev is not None and not math.isnan(prev):
        share += prev * prev_n
    figures[f"{name}_csat"] = float(share / total)
    figures[f"{name}_csat_answers"] = int(total)


@njit(cache=True)
def _raised(day_key, ids, subs, side, kind, rate):
    """Positions j whose event raises a ticket: the draw of stream ``day_key`` for agent ids[j] with the
    ticket's key (ticket_key of subs[j], or 0 when ``subs`` is empty; kind; side) is below ``rate``."""
    out = np.empty(ids.size, np.int64)
    m = 0
    for j in range(ids.size):
        sub = subs[j] if subs.size else 0
        if uniform_at(day_key, ids[j], combine_at(combine_at(combine_at(0, sub, 0), kind, 1), side, 2)) < rate:
            out[m] = j
            m += 1
    return out[:m]


@njit(cache=True)
def _skip_activated(activation_day, start):
    """First id >= ``start`` not yet activated (activation is permanent, so the prefix only grows)."""
    i = start
    n = activation_day.size
    while i < n and activation_day[i] >= 0:
        i += 1
    return i



class Ticketing:
    """Raises the day's tickets, queues them at the desk, and applies those that finish.

    ``ops`` is the coordinator (sim/cs/operations.py): today's day, the model,
    ``cs`` config, the CS state, the policies and their actions object.
    """

    def __init__(self, ops):
        self._ops = ops
        self.conf = ops.conf
        self.table = TicketTable()
        self.desk_staff = int(self.conf.staff)
        self.desk = CSDesk(self.desk_staff) if self.desk_staff > 0 else None
        self.pending_staff: int | None = None
        self.desk_minutes_today: dict[str, float] = {}   # side -> service minutes of today's tickets
        self._without_desk: dict[int, list] = {}         # day -> tickets given up at once (no staff)
        self._settled: dict[str, int] = {}              # side -> ids below this have all been activated

    def start_day(self) -> None:
        self.desk_minutes_today = {}

    def resize_desk(self, staff: int) -> None:
        """Set the desk's staff now if it is empty, else on the first day it is."""
        if staff == self.desk_staff:
            self.pending_staff = None
            return
        if self.desk is None or (self.desk.queue_length == 0 and self.desk.in_service == 0):
            now = self.desk.now if self.desk is not None else float(self._ops.day)
            self.desk = CSDesk(staff) if staff > 0 else None
            if self.desk is not None and now > 0:
                st = self.desk.state()
                st["time"] = now
                self.desk = CSDesk.from_state(st)
            self.desk_staff, self.pending_staff = staff, None
        else:
            self.pending_staff = staff   # applied on the first day the desk is empty

    def raise_reactive(self, day: int, events: dict) -> None:
        """Reactive tickets of the day, all sides and kinds in one batch.

        Work is proportional to the day's triggering events: failed and bad
        orders, new agents not yet activated (a tail of the arrays) and
        sellers and drivers with earnings today.
        """
        t = self.conf.tickets
        m = self._ops.model
        groups = []     # (side, kind, ids, sub or None), in a fixed order: ticket ids follow it
        for event, kind in (("failed", "failed_order"), ("bad", "bad_order")):
            got = events.get(event)
            if got is not None:
                groups.append(("buyers", kind, got[0], got[1]))
        horizon = self.conf.onboarding_question_days
        for name, s in m.sides.items():
            # agents are stored in joining order: the recent joiners are a tail of the arrays; and
            # ids below ``settled`` have all reached first value (the starting population, say)
            join_day = s.join_day
            first = int(join_day.searchsorted(np.asarray(day - horizon, dtype=join_day.dtype), side="left"))
            settled = self._settled.get(name, 0)
            settled = self._settled[name] = int(_skip_activated(s.activation_day, settled if settled <= s.n else 0))
            first = max(first, settled)
            new = first + np.flatnonzero(s.alive[first:] & (s.activation_day[first:] < 0))
            groups.append((name, "onboarding", new, None))
        if m.has("sellers") and m._sales_today is not None:
            groups.append(("sellers", "payout", np.flatnonzero(m._sales_today > 0), None))
        if m.has("drivers"):
            d = m.sides["drivers"]
            groups.append(("drivers", "payout", np.flatnonzero((d.earnings_today > 0) & d.alive), None))
        conf = [getattr(t, k) for k in REACTIVE]
        day_key = m.streams.day_key("cs.ticket_raised", day)
        none = np.empty(0, np.int64)
        raised = []     # (side, kind, ids, sub) of the tickets raised, group by group
        for name, kind, ids, sub in groups:
            rate = getattr(t, kind).rate
            if ids.size == 0 or rate <= 0:
                continue
            ids = np.ascontiguousarray(ids, dtype=np.int64)
            sub = none if sub is None else np.ascontiguousarray(sub, dtype=np.int64)
            rows = _raised(day_key, ids, sub, SIDE_CODE[name], KIND[kind], float(rate))
            if rows.size:
                raised.append((SIDE_CODE[name], KIND[kind], ids[rows],
                               np.zeros(rows.size, np.int64) if sub is none else sub[rows]))
        if not raised:
            return
        side = np.concatenate([np.full(r[2].size, r[0], np.int64) for r in raised])
        kind = np.concatenate([np.full(r[2].size, r[1], np.int64) for r in raised])
        ids = np.concatenate([r[2] for r in raised])
        sub = np.concatenate([r[3] for r in raised])
        self.queue(-1, side, ids, kind, np.array([c.service_minutes for c in conf])[kind],
                   np.array([c.patience_days for c in conf])[kind], np.array([c.priority for c in conf])[kind], sub)

    def submit(self, owner: int, side: str, ids: np.ndarray, kind: str, service_minutes: float,
               patience_days: float, priority: int, sub: np.ndarray | None = None,
               flag: np.ndarray | None = None, score: np.ndarray | None = None) -> np.ndarray:
        """Queue tickets of one side and kind at the desk (see :meth:`queue`); return their ids."""
        ids = np.asarray(ids, dtype=np.int64)
        n = ids.size
        sub = np.zeros(n, np.int64) if sub is None else np.asarray(sub, dtype=np.int64)
        return self.queue(owner, np.full(n, SIDE_CODE[side]), ids, np.full(n, KIND[kind]),
                          np.full(n, float(service_minutes)), np.full(n, float(patience_days)),
                          np.full(n, int(priority)), sub, flag, score)

    def queue(self, owner, side, ids, kind, service_minutes, patience_days, priority, sub,
              flag=None, score=None) -> np.ndarray:
        """Queue tickets; service and patience are exponential with the given means (minutes, days).

        ``owner``: the index of the policy that sent them (-1: reactive).
        Draws are keyed by (today, agent id, side, kind and ``sub``: the
        event), so the same event gets the same times in every arm.
        """
        n = ids.size
        if n == 0:
            return np.empty(0, np.int64)
        ops = self._ops
        day, streams = ops.day, ops.model.streams
        ids = np.ascontiguousarray(ids, dtype=np.int64)     # the streams' fast path: 1-D int64 arrays
        key = np.ascontiguousarray(ticket_key(side, kind, sub), dtype=np.int64)
        tid = self.table.add(n)
        T = self.table
        arrival = np.minimum(day + streams.uniform("cs.ticket_arrival", day, ids, sub=key), day + 1 - 1e-9)
        service = (streams.exponential("cs.ticket_service", day, ids, sub=key) * service_minutes
                   / (60.0 * self.conf.workday_hours))
        finite = np.isfinite(patience_days)
        patience = np.full(n, np.inf)
        if finite.any():
            patience[finite] = (streams.exponential("cs.ticket_patience", day, ids[finite], sub=key[finite])
                                * patience_days[finite])
        T["side"][tid], T["agent"][tid], T["kind"][tid] = side, ids, kind
        T["day"][tid], T["sub"][tid], T["arrival"][tid], T["service"][tid] = day, sub, arrival, service
        T["owner"][tid] = owner
        T["flag"][tid] = False if flag is None else flag
        T["score"][tid] = 0.0 if score is None else score
        minutes = service * 60.0 * self.conf.workday_hours
        for code in np.unique(side):
            name = SIDES[code]
            rows = side == code
            st = ops.state[name]
            add_counts(st.open_tickets, ids[rows])
            add_counts(st.tickets, ids[rows])
            self.desk_minutes_today[name] = self.desk_minutes_today.get(name, 0.0) + float(minutes[rows].sum())
        if self.desk is None:   # no staff: everyone gives up
            self._without_desk.setdefault(day, []).append((tid, np.zeros(n, bool), np.minimum(patience, 1.0)))
        else:
            t0 = time.perf_counter()
            self.desk.submit(tid, arrival, service, patience, priority)
            ops.seconds["desk"] += time.perf_counter() - t0
        return tid

    def advance(self, day: int) -> dict:
        """Run the desk to the end of ``day``, apply the tickets that finished; the day's desk figures."""
        f = {}
        staff = self.desk_staff
        if self.desk is not None:
            t0 = time.perf_counter()
            out = self.desk.advance(day + 1)
            self._ops.seconds["desk"] += time.perf_counter() - t0
            tid, resolved, wait = out.ticket_ids, out.resolved, out.wait_days
            busy, queue, arrivals = out.busy_server_days, out.queue_length + out.in_service, out.arrivals
        else:
            parts = self._without_desk.pop(day, [])
            tid = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int64)
            resolved = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, bool)
            wait = np.concatenate([p[2] for p in parts]) if parts else np.empty(0)
            busy, queue, arrivals = 0.0, 0, tid.size
        if self.pending_staff is not None:
            self.resize_desk(self.pending_staff)
        f["cs_tickets"] = int(arrivals)
        f["cs_finished"] = int(tid.size)
        f["cs_resolved"] = int(np.count_nonzero(resolved))
        f["cs_abandoned"] = int(tid.size - np.count_nonzero(resolved))
        f["cs_wait_days_mean"] = float(wait.mean()) if wait.size else math.nan
        f["cs_backlog"] = int(queue)
        f["cs_utilisation"] = busy / staff if staff else math.nan
        f["cs_staff"] = staff
        self._apply_finished(day, tid, resolved, wait, f)
        return f

    def _apply_finished(self, day, tid, resolved, wait, f) -> None:
        ops = self._ops
        T, m = self.table, ops.model
        c = self.conf.contact
        T["finished"][tid] = True
        for name in m.sides:
            f[f"{name}_csat"] = math.nan
            f[f"{name}_csat_answers"] = 0
        if tid.size == 0:
            return
        side_code = T["side"][tid]
        # policy-owned tickets first: what the policy does with them (a dispute settled) sets how
        # the contact feels, a penalty on its level (0 unless the policy says otherwise)
        penalty = np.zeros(tid.size)
        owners = T["owner"][tid]
        for idx in np.unique(owners[owners >= 0]):
            rows = np.flatnonzero(owners == idx)
            policy = ops.policies[idx] if idx < len(ops.policies) else None
            if policy is None or not hasattr(policy, "on_tickets"):
                ops.disputes.settle_orphans(tid[rows], resolved[rows])
                continue
            for code in np.unique(side_code[rows]):
                r = rows[side_code[rows] == code]
                got = policy.on_tickets(day, ops.actions, Finished(SIDES[code], T["agent"][tid[r]].copy(),
                                                                   T["kind"][tid[r]].copy(), resolved[r].copy(),
                                                                   wait[r].copy(), tid[r].copy()))
                if got is not None:
                    penalty[r] = got
        for code in np.unique(side_code):
            name = SIDES[code]
            s, st = m.sides[name], ops.state[name]
            r = np.flatnonzero(side_code == code)
            agents = T["agent"][tid[r]]
            add_counts(st.open_tickets, agents, step=-1)
            level = np.where(resolved[r], c.resolved_level - c.wait_penalty_per_day * wait[r] - penalty[r],
                             c.abandoned_level)
            level = np.clip(level, 0.0, 1.0)
            live = s.alive[agents]
            move_satisfaction(s, agents[live], level[live], c.weight)
            key = ticket_key(code, T["kind"][tid[r]].astype(np.int64), T["sub"][tid[r]])
            noise = m.streams.normal("cs.csat", 0, agents, sub=combine_keys(key, T["day"][tid[r]]))
            answer = csat_from_state(s.satisfaction[agents], noise, c.csat_noise_sd)
            bad = ~resolved[r] | (answer <= 2)
            st.bad_contact_day[agents[bad]] = day
            add_csat_answers(name, answer[live], f)
