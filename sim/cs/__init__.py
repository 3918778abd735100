"""Customer-success operations: what CS can see, what it can do, and the desk that answers tickets.

Each day (step 7) the engine hands :class:`CSOperations` the day's events; it
raises reactive tickets (failed orders, bad trips, onboarding questions,
payout problems), computes every agent's health score from observables, lets
the active policies act, advances the SimPy desk (sim/desk.py) by one day and
applies what the finished tickets do (satisfaction, CSAT; a policy's own
tickets, such as disputes, through its ``on_tickets``).

A policy receives :class:`CSOps` only: the observable view of a side
(:class:`ObservableView`; latent quantities raise :class:`LatentAccessError`)
and priced actions charged to its account. Every random draw comes from the
run's counter-based streams, keyed by (day, agent id, ticket kind and its
event), so two arms see the same luck for the same event.

Modules, bottom up:

- ``state``: the CS table of every agent (tickets, health, touches, offers);
- ``health``: health scores, bands and vectors (compiled passes), the ranking by health;
- ``view``: the observable view of a side;
- ``tickets``: the ticket table, reactive tickets, the desk and what finished tickets do;
- ``disputes``: drivers' contests and appeals, reviewed at the desk;
- ``accounts``: policies' budgets and capacities, structural levers, the day's costs;
- ``actions``: :class:`CSOps`, all a policy receives;
- ``operations``: :class:`CSOperations`, the coordinator the engine runs.
"""
from sim.cs.accounts import Account, Levers
from sim.cs.actions import CSOps
from sim.cs.health import BANDS, VECTORS
from sim.cs.operations import CSOperations
from sim.cs.state import CS_FIELDS
from sim.cs.tickets import KIND, KINDS, REACTIVE, SIDE_CODE, Finished
from sim.cs.view import LATENT, LatentAccessError, ObservableView

__all__ = ["Account", "BANDS", "CSOperations", "CSOps", "CS_FIELDS", "Finished", "KIND", "KINDS", "LATENT",
           "LatentAccessError", "Levers", "ObservableView", "REACTIVE", "SIDE_CODE", "VECTORS"]
