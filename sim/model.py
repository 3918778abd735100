"""The Marketplace: a mesa.Model whose step() is one simulated day.

The day, in order (docs/model.md, process overview): acquisition, onboarding, demand,
matching, outcomes, experience, CS operations, churn, metrics. Sides are
structs of arrays (agents/); every random draw comes from the run's named
counter-based streams (sim/streams.py), so arms that differ only in policy
share their luck.
"""
from __future__ import annotations

import logging
import math

import mesa
import numpy as np

from agents import buyers as buyers_rules
from agents import drivers as drivers_rules
from agents import sellers as sellers_rules
from agents.base import CHANNEL, Side
from agents.kernels import census, count_equal, scatter_add
from agents.lifecycle import (
    Arrivals,
    accumulate_and_churn,
    activate_due,
    add_counts,
    arrivals,
    book_money,
    churn,
    experience_multiplier,
    init_common,
    move_satisfaction,
)
from sim import config_hook
from sim.attraction import Attraction
from sim.columns import daily_columns
from sim.config import Config
from sim.cs import CSOperations
from sim.matching import NO_MATCH, choose_sellers, dispatch
from sim.metrics import MONTH_DAYS, DailyLedger, RevenueBook, survey
from sim.policy_hook import build_policies
from sim.streams import Streams, combine_keys

_SIDE_RULES = {"buyers": buyers_rules, "sellers": sellers_rules, "drivers": drivers_rules}
# mesa.Model logs every step at INFO (a line per simulated day); its warnings still show.
logging.getLogger("MESA").setLevel(logging.WARNING)


def _override_value(value) -> str:
    """A Python value as Hydra override text: lists as [a,b], booleans as true/false."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_override_value(v) for v in value) + "]"
    return str(value)


class Marketplace(mesa.Model):
    """A two- or three-sided marketplace, simulated day by day.

    ``Marketplace(cfg).run()`` simulates ``cfg.days`` days and returns a
    :class:`sim.result.Result`. ``step()`` advances one day (for the app).
    ``Marketplace(market="rides", scale="small", seed=3, days=90, cs__staff=4)``
    composes the config from conf/ (for notebooks and Mesa's ``batch_run``).
    """

    def __init__(self, cfg: Config | None = None, policies: list | None = None, treatment=None, **settings):
        """``cfg``: a validated Config; or none, and ``settings`` as keywords: ``market``, ``scale``,
        ``seed``, ``policy`` and any config key, dotted keys written with ``__`` (``cs__staff=4``
        for ``cs.staff=4``), composed by the registered composer (sim/config_hook.py).
        ``policies``: ready Policy objects; by default those ``cfg.policy`` names, built by the
        registered policy library (sim/policy_hook.py). ``treatment``: a pilot's sim.treatment.Assignment
        (policies then act on treated agents only), or None: every agent is treated."""
        if cfg is None:
            cfg = config_hook.compose([f"{key.replace('__', '.')}={_override_value(value)}"
                                       for key, value in settings.items()])
        elif settings:
            raise TypeError(f"Marketplace: give a Config or keyword settings, not both ({', '.join(settings)})")
        super().__init__(seed=cfg.seed)
        self.cfg = cfg
        self.treatment = treatment
        self.market = cfg.market
        self.streams = Streams(cfg.seed)
        self._neutral = np.empty(0, dtype=np.float32)
        self._census_cache: dict = {}
        self._first_unactivated: dict[str, int] = {}   # per side: no living unactivated agent below it
        self._returns_seen: dict[str, int] = {}
        self.day = 0
        self.discount_per_day = cfg.metrics.discount_rate_annual / 365.0
        self.sides: dict[str, Side] = {}
        self.initial_size = {side: int(getattr(cfg.population, side)) for side in cfg.market.sides}
        for side, size in self.initial_size.items():
            self.sides[side] = _SIDE_RULES[side].new_side(capacity=int(size * 1.5) + 16)
            self._join(side, size, channel="initial", cac=0.0)
        self.ledger = DailyLedger()
        self._columns_for: tuple | None = None   # the policies the ledger's columns were declared for
        self.revenue_book = RevenueBook()
        self.attraction = Attraction(cfg.market)
        self.today: dict[str, float] = {}
        self._events: dict = {}
        self._margin_before: dict[str, np.ndarray] = {}   # each side's margins at the previous day's end
        for side in self.sides.values():
            if side.name == "buyers":
                ids = np.arange(side.n)
                buyers_rules.start_purchasing(side, ids, 0.0, self.streams)
        if policies is None:
            policies = build_policies(cfg.policy, cfg.market, cfg.cs)
        self.cs = CSOperations(self, policies)

    def set_policies(self, policy_cfg: dict) -> None:
        """Replace the active CS policies ({name: params}, as cfg.policy), e.g. after a warm-up branch.

        Structural levers (onboarding boost, referral bonus, disputes) and
        accounts are rebuilt; tickets already at the desk finish as before.
        """
        import dataclasses

        policy_cfg = dict(policy_cfg or {})
        policies = build_policies(policy_cfg, self.market, self.cfg.cs)
        self.cfg = dataclasses.replace(self.cfg, policy=policy_cfg)
        self.cs.set_policies(policies)

    # -- helpers ---------------------------------------------------------
    def _expect_columns(self) -> None:
        """Tell the ledger the daily columns of this market with today's policies (sim/columns.py)."""
        names = tuple(p.name for p in self.cs.policies)
        if names != self._columns_for:
            self._columns_for = names
            self.ledger.expect(daily_columns(self.sides, names))

    def has(self, side: str) -> bool:
        """Whether this market has the side ("buyers", "sellers", "drivers")."""
        return side in self.sides

    def behaviour_satisfaction(self, side: str) -> np.ndarray:
        """The satisfaction behaviour responds to: latent, or neutral everywhere with effects off."""
        s = self.sides[side]
        if self.cfg.experience_effects:
            return s.satisfaction
        if self._neutral.size < s.n:   # one read-only array of neutral values, shared, grown as needed
            self._neutral = np.full(max(s.n, 2 * self._neutral.size), self.market.satisfaction.neutral,
                                    dtype=np.float32)
            self._neutral.flags.writeable = False
        return self._neutral[: s.n]

    def _join(self, side: str, count: int, channel: str, cac: float) -> np.ndarray:
        """Add ``count`` agents of one channel, each acquired at ``cac`` (currency)."""
        return self._join_batch(side, [(channel, count, cac)])

    def _join_batch(self, side: str, arrivals: list[tuple[str, int, float]]) -> np.ndarray:
        """Add the day's new agents of a side, all channels at once: [(channel, count, cac per agent)].

        One batch keeps the per-call cost of the streams' draws once per side and day.
        """
        s = self.sides[side]
        count = sum(n for _, n, _ in arrivals)
        ids = s.add(count)
        if count == 0:
            return ids
        conf = getattr(self.market, side)
        if arrivals[0][0] == "initial":   # the starting population: activated, no CAC, no programme
            init_common(s, ids, self.day, "initial", 0.0, conf, self.market.satisfaction, self.streams)
        else:
            counts = [n for _, n, _ in arrivals]
            channel = np.repeat([CHANNEL[c] for c, _, _ in arrivals], counts).astype(np.int8)
            cac = np.repeat([c for _, _, c in arrivals], counts)
            boosted, boost = self.cs.onboarding_boost(side, ids)   # an onboarding programme's first agents
            for part, extra in ((boosted, boost), (~boosted, 0.0)):
                if part.any():
                    init_common(s, ids[part], self.day, channel[part], cac[part], conf, self.market.satisfaction,
                                self.streams, onboarding_boost=extra)
        referred = s.channel[ids] == CHANNEL["referral"]
        _SIDE_RULES[side].init_traits(s, ids, conf, referred, self.streams, market=self.market)
        return ids

    # -- the day ---------------------------------------------------------
    def step(self) -> None:
        """Simulate one day."""
        day = self.day
        t = self.today = {"day": day}
        self._events = {}
        self.cs.start_day(day)
        self._acquire(day)
        self._onboard(day)
        intentions = buyers_rules.purchase_intentions(
            self.sides["buyers"], day, self.streams, self.sides["buyers"].satisfaction,
            self.market.satisfaction.neutral, self.market.buyers.rate_sensitivity,
            self.market.buyers.dropout_sensitivity, latent=self.cfg.experience_effects)
        t["buyers_orders"] = intentions.buyer.size
        self._match_and_settle(day, intentions)
        self._supply_experience(day)
        self._cs_operations(day)
        self._churn(day)
        self._record(day)
        self.day += 1

    @property
    def datacollector(self) -> mesa.DataCollector:
        """The daily figures so far as a mesa.DataCollector (``model_vars``: column -> one value per day),
        so Mesa's ``batch_run`` collects them; built on access from the ledger, nothing per step."""
        collector = mesa.DataCollector()
        rows = self.ledger.rows
        columns = dict.fromkeys(key for row in rows for key in row)
        collector.model_vars = {key: [row.get(key) for row in rows] for key in columns}
        return collector

    def branch(self) -> "Marketplace":
        """A deep copy of the whole state (arrays, desk, ledger); both continue independently.

        Streams are counter-based, so the copy needs no random state: the two
        continue with the same luck.
        """
        import copy

        return copy.deepcopy(self)

    def run_until(self, day: int) -> None:
        """Simulate up to (not including) ``day``."""
        while self.day < min(day, self.cfg.days):
            self.step()

    def run(self):
        """Simulate the remaining days and return the Result."""
        from sim.result import build_result

        while self.day < self.cfg.days:
            self.step()
        return build_result(self)

    def _census(self, name: str, fresh: bool = False) -> tuple[int, int, float, int]:
        """One pass over a side: (alive, activated and alive, sum of their satisfaction, promoters).

        Acquisition sees the market as it stood at the start of the day: the
        previous evening's record (nothing changes in between) unless ``fresh``.
        """
        key = (self.day, name)
        if fresh or key not in self._census_cache:
            s = self.sides[name]
            sat = self.market.satisfaction
            counts = census(s.alive, s.activation_day, s.satisfaction, sat.promoter_level, sat.neutral,
                            self.cfg.experience_effects)
            self._census_cache[key] = (int(counts[0]), int(counts[1]), float(counts[2]), int(counts[3]))
        return self._census_cache[key]

    def _unactivated_from(self, name: str) -> int:
        """An index below which no living agent of the side is unactivated (0 if unknown).

        The churn pass records the lowest one; later joiners come after it. A
        win-back return may revive an unactivated agent anywhere: then 0.
        """
        returns = len(self.cs.returns[name])
        if returns != self._returns_seen.get(name, 0):
            self._returns_seen[name] = returns
            self._first_unactivated.pop(name, None)
        return self._first_unactivated.get(name, 0)

    # 1. acquisition
    def _acquire(self, day: int) -> None:
        t = self.today
        marketing = 0.0
        for name in self.sides:
            conf = getattr(self.market, name)
            promoters = self._census(name)[3]
            multiplier, bonus = self.cs.referral_multiplier(name)   # a referral programme, if any
            attraction = self.attraction.of(name)
            t[f"{name}_attraction"] = attraction
            got: Arrivals = arrivals(name, conf.acquisition, self.initial_size[name], attraction,
                                     promoters * multiplier, day, self.streams)
            self._join_batch(name, [("paid", got.paid, got.paid_cac), ("organic", got.organic, 0.0),
                                    ("referral", got.referral, bonus)])
            self.cs.pay_referrals(name, got.referral if bonus else 0)
            t[f"{name}_joined"] = got.paid + got.organic + got.referral
            t[f"{name}_joined_paid"] = got.paid
            t[f"{name}_joined_organic"] = got.organic
            t[f"{name}_joined_referral"] = got.referral
            t[f"{name}_marketing_cost"] = got.marketing_cost
            marketing += got.marketing_cost
        t["marketing_cost"] = marketing

    # 2. onboarding
    def _onboard(self, day: int) -> None:
        for name, side in self.sides.items():
            ids = activate_due(side, day, self._unactivated_from(name))
            self.today[f"{name}_activated"] = ids.size
            if name == "buyers" and ids.size:
                buyers_rules.start_purchasing(side, ids, float(day), self.streams)

    # 3-5. matching and outcomes, money
    def _match_and_settle(self, day: int, intentions) -> None:
        m, t, streams = self.market, self.today, self.streams
        buyers = self.sides["buyers"]
        ids, k = intentions.buyer, intentions.index
        n = ids.size
        success = np.ones(n, dtype=bool)
        basket = np.zeros(n)
        fare = np.zeros(n)
        level_penalty = np.zeros(n)
        seller = np.full(n, NO_MATCH, dtype=np.int64)
        if self.has("sellers"):
            sellers = self.sides["sellers"]
            seller = choose_sellers(sellers, m.sellers, ids, k, day, streams)
            has_seller = seller != NO_MATCH
            quality = np.where(has_seller, sellers.quality[np.maximum(seller, 0)], 0.0)
            success &= has_seller & (streams.uniform("orders.seller_outcome", day, ids, sub=k) < quality)
            if m.buyers.has_basket:
                price = np.where(has_seller, sellers.price_level[np.maximum(seller, 0)], 1.0)
                basket = price * buyers_rules.basket_values(buyers, ids, k, day, m.buyers, streams)
        driver = np.full(n, NO_MATCH, dtype=np.int64)
        at_fault = np.zeros(n, dtype=bool)
        if self.has("drivers"):
            drivers = self.sides["drivers"]
            if self.has("sellers"):  # delivery: from the restaurant to the diner's home
                s = self.sides["sellers"]
                wants = seller != NO_MATCH
                px = np.where(wants, s.x[np.maximum(seller, 0)], buyers.home_x[ids])
                py = np.where(wants, s.y[np.maximum(seller, 0)], buyers.home_y[ids])
                dx, dy = buyers.home_x[ids], buyers.home_y[ids]
            else:  # rides: from the rider's home to a destination
                wants = np.ones(n, dtype=bool)
                px, py = buyers.home_x[ids], buyers.home_y[ids]
                dx = streams.uniform("rides.destination_x", day, ids, sub=k)
                dy = streams.uniform("rides.destination_y", day, ids, sub=k)
            requests = np.flatnonzero(wants)
            result = dispatch(drivers, m.drivers, m.city, day, intentions.time[requests], px[requests], py[requests],
                              dx[requests], dy[requests], self.behaviour_satisfaction("drivers"),
                              m.satisfaction.neutral, streams)
            driver[requests] = result.driver
            matched = driver != NO_MATCH
            success &= matched
            pickup_minutes = np.zeros(n)
            pickup_minutes[requests] = result.pickup_km / m.city.speed_kmh * 60
            fare[requests] = m.drivers.fare_base + m.drivers.fare_per_km * result.trip_km
            fare = np.where(matched, fare, 0.0)
            level_penalty = np.where(matched, m.buyers.experience.wait_penalty_per_minute * pickup_minutes, 0.0)
            t["pickup_minutes_mean"] = float(pickup_minutes[matched].mean()) if matched.any() else math.nan
            t["drivers_online_hours"] = result.online_hours
            self._rate_drivers(day, ids, k, driver, matched, at_fault)
        self._settle(day, ids, seller, driver, success, basket, fare)
        # buyers' experience of each order
        e = m.buyers.experience
        level = np.where(success, e.success - level_penalty, e.failure)
        level = np.where(success & at_fault, (e.success + e.failure) / 2, level)
        move_satisfaction(buyers, ids, np.clip(level, 0, 1), e.learning_rate)
        add_counts(buyers.orders_completed, ids[success])
        t["buyers_failed"] = int(n - np.count_nonzero(success))
        t["buyers_bad_orders"] = int(np.count_nonzero(success & at_fault))
        self._events["failed"] = (ids[~success], k[~success])
        self._events["bad"] = (ids[success & at_fault], k[success & at_fault])

    def _rate_drivers(self, day, ids, k, driver, matched, at_fault_out) -> None:
        drivers = self.sides["drivers"]
        conf = self.market.drivers
        rows = np.flatnonzero(matched)
        d = driver[rows]
        trip = combine_keys(ids[rows], k[rows])   # a trip's key: the rider and the rider's purchase number
        fault, unfair, score = drivers_rules.rate_trips(drivers, d, day, conf, self.streams, trip_sub=trip)
        at_fault_out[rows] = fault
        low = fault | unfair
        self._events["low_ratings"] = (d[low], trip[low], unfair[low], score[low])
        add_counts(drivers.orders, d)
        add_counts(drivers.orders_completed, d)
        drivers.last_active_day[d] = day
        victims = d[unfair]
        drivers.satisfaction[victims] = np.maximum(0.0, drivers.satisfaction[victims] - conf.fairness_penalty)
        self.today["drivers_unfair_low_ratings"] = int(unfair.sum())

    def _settle(self, day, ids, seller, driver, success, basket, fare) -> None:
        """Money: GMV, the platform's take from each side, payouts, margins per agent."""
        m, t = self.market, self.today
        buyers = self.sides["buyers"]
        ok = np.flatnonzero(success)
        paid_by_buyer = basket[ok] + fare[ok] + m.buyers.fee_per_order
        payment_cost = m.buyers.payment_cost_rate * paid_by_buyer
        buyer_fee = np.full(ok.size, m.buyers.fee_per_order)
        book_money(buyers, ids[ok], buyer_fee, buyer_fee - payment_cost, day, self.discount_per_day)
        take = buyer_fee.sum()
        t["buyers_revenue"] = float(buyer_fee.sum())
        t["buyers_margin"] = float((buyer_fee - payment_cost).sum())
        self._sales_today = None
        if self.has("sellers"):
            sellers = self.sides["sellers"]
            chosen = seller[seller != NO_MATCH]
            add_counts(sellers.orders, chosen)
            sellers.last_active_day[chosen] = day
            s_ok = seller[ok]
            commission = m.sellers.commission * basket[ok]
            book_money(sellers, s_ok, commission, commission, day, self.discount_per_day)
            add_counts(sellers.orders_completed, s_ok)
            self._sales_today = np.bincount(s_ok, weights=basket[ok], minlength=sellers.n)   # currency
            # buyers review sellers: success 4-5 by quality, failure 1-2
            u = self.streams.uniform("orders.seller_review", day, ids, sub=0)
            stars = sellers_rules.review_stars(success, u, sellers.quality[np.maximum(seller, 0)])
            # Diners review the restaurant only when the order reached them or failed at the seller:
            # a courier who never came is not the restaurant's fault.
            reviewed = (seller != NO_MATCH) & ((driver != NO_MATCH) if self.has("drivers") else True)
            scatter_add(sellers.rating_sum, seller[reviewed], stars[reviewed].astype(sellers.rating_sum.dtype))
            add_counts(sellers.rating_count, seller[reviewed])
            take += commission.sum()
            t["sellers_revenue"] = float(commission.sum())
            t["sellers_margin"] = float(commission.sum())
            t["sellers_orders"] = int(chosen.size)
            t["sellers_sales"] = float(basket[ok].sum())
        if self.has("drivers"):
            drivers = self.sides["drivers"]
            d_ok = driver[ok]
            commission = m.drivers.commission * fare[ok]
            payout = fare[ok] - commission
            book_money(drivers, d_ok, commission, commission, day, self.discount_per_day)
            drivers.earnings_today[:] = 0.0
            scatter_add(drivers.earnings_today, d_ok, payout.astype(drivers.earnings_today.dtype))
            scatter_add(drivers.earnings, d_ok, payout.astype(drivers.earnings.dtype))
            take += commission.sum()
            t["drivers_revenue"] = float(commission.sum())
            t["drivers_margin"] = float(commission.sum())
            t["drivers_orders"] = int(np.count_nonzero(driver != NO_MATCH))
            t["drivers_earnings"] = float(payout.sum())
        # Order attribution: every side's margin on an order is also credited to the buyer who placed it.
        order_margin = buyer_fee - payment_cost
        if self.has("sellers"):
            order_margin = order_margin + m.sellers.commission * basket[ok]
        if self.has("drivers"):
            order_margin = order_margin + m.drivers.commission * fare[ok]
        # a scatter over today's orders, not a pass over every buyer: O(orders) a day
        scatter_add(buyers.order_margin_discounted, ids[ok], order_margin * math.exp(-self.discount_per_day * day))
        t["order_margin"] = float(order_margin.sum())
        t["gmv"] = float(paid_by_buyer.sum())
        t["take_revenue"] = float(take)
        t["payment_costs"] = float(payment_cost.sum())

    # 6. supply-side experience, expansion
    def _supply_experience(self, day: int) -> None:
        m, t = self.market, self.today
        neutral = m.satisfaction.neutral
        if self.has("sellers"):
            sellers = self.sides["sellers"]
            sales = self._sales_today if self._sales_today is not None else np.zeros(sellers.n)
            sellers_rules.update_sales_experience(sellers, sales, m.sellers, neutral)
            moves = sellers_rules.update_products(sellers, day, m.sellers, self.behaviour_satisfaction("sellers"),
                                                  neutral, m, self.streams)
            for product, (taken, cancelled) in moves.items():
                t[f"sellers_{product}_taken"] = taken.size
                t[f"sellers_{product}_cancelled"] = cancelled.size
            fees = sellers_rules.product_fees(sellers, m.sellers)
            paying = np.flatnonzero(sellers.alive & (fees > 0))
            fee = fees[paying]
            book_money(sellers, paying, fee, fee, day, self.discount_per_day)
            sellers.fees_paid[paying] += fee
            self._product_fees_today = (paying, fee)
            t["expansion_revenue"] = float(fee.sum())
            t["take_revenue"] += float(fee.sum())
            t["sellers_revenue"] = t.get("sellers_revenue", 0.0) + float(fee.sum())
            t["sellers_margin"] = t.get("sellers_margin", 0.0) + float(fee.sum())
        if self.has("drivers"):
            drivers = self.sides["drivers"]
            worked = np.flatnonzero(drivers.online_hours > 0)
            level = drivers_rules.earnings_level(drivers, worked, m.drivers, neutral)
            move_satisfaction(drivers, worked, level,
                              drivers_rules.experience_weight(drivers, worked, m.drivers))
        for name in ("sellers", "drivers"):
            if self.has(name):
                side = self.sides[name]
                activity_margin = self._margin_today(side)
                if name == "sellers":   # product fees are forecast from the products, not from recent activity
                    paying, fee = self._product_fees_today
                    activity_margin[paying] -= fee
                active = side.alive & (side.activation_day >= 0)
                side.margin_rate[:] += (activity_margin - side.margin_rate) / MONTH_DAYS
                side.exposure[:] += (active - side.exposure) / MONTH_DAYS

    def _margin_today(self, side: Side) -> np.ndarray:
        """Margin booked since the previous call, per agent (currency)."""
        margin = side.margin
        previous = np.zeros(margin.size)
        before = self._margin_before.get(side.name)
        if before is not None:
            previous[: before.size] = before   # agents who joined since had booked nothing before
        self._margin_before[side.name] = margin.copy()
        return (margin - previous).astype(np.float32)

    # 7. CS operations
    def _cs_operations(self, day: int) -> None:
        """Tickets to the desk, health, policies (sim/cs/); the day's CS figures and costs."""
        t = self.today
        t.update(self.cs.operate(day, self._events))
        t.update(self.cs.costs_today())
        t.update(self.cs.band_counts())

    # 8. churn
    def _churn(self, day: int) -> None:
        m, t = self.market, self.today
        neutral = m.satisfaction.neutral
        if self.has("drivers"):
            deactivated = 0
            if m.drivers.deactivation.enabled:
                drivers = self.sides["drivers"]
                deactivate = drivers_rules.due_for_deactivation(drivers, m.drivers)
                deactivate = deactivate[~self.cs.state["drivers"].appeal_open[deactivate]]  # under review: not yet
                drivers.deactivated[deactivate] = True
                drivers.deactivation_day[deactivate] = day
                churn(drivers, deactivate, day)
                deactivated = deactivate.size
            t["drivers_deactivated"] = deactivated + self.cs.deactivated_today
        for name, side in self.sides.items():
            conf = getattr(m, name)
            multiplier = None   # buyers drop out at purchases (BG/NBD): only their onboarding hazard accrues
            if name != "buyers":
                multiplier = experience_multiplier(self.behaviour_satisfaction(name), np.float32(neutral),
                                                   np.float32(-conf.churn.satisfaction_sensitivity))
            start = self._unactivated_from(name) if multiplier is None else 0
            churned, self._first_unactivated[name] = accumulate_and_churn(
                side, day, conf.onboarding.unactivated_hazard, multiplier, start)
            if name == "buyers":
                side.next_purchase[churned] = np.inf
            t[f"{name}_churned"] = int(count_equal(side.churn_day, day))
        if self.has("sellers"):   # paid products end with the account
            ended = sellers_rules.drop_products_of_departed(self.sides["sellers"], day, self.streams)
            for product, count in ended.items():
                t[f"sellers_{product}_ended"] = count

    # 9. metrics
    def _record(self, day: int) -> None:
        t = self.today
        morning = {}
        for name, side in self.sides.items():
            morning[(day + 1, name)] = counts = self._census(name, fresh=True)
            alive, activated, satisfaction_sum, _ = counts
            t[f"{name}_active"] = alive
            t[f"{name}_activated_active"] = activated
            t[f"{name}_satisfaction"] = satisfaction_sum / alive if alive else math.nan
            t[f"{name}_nps"] = survey(side, day, self.cfg.metrics, self.streams)
        if self.has("sellers"):
            sellers = self.sides["sellers"]
            for product in sellers_rules.PRODUCTS:
                t[f"sellers_{product}"] = int(np.count_nonzero(getattr(sellers, product) & sellers.alive))
            expanded = self.revenue_book.record(day, sellers)
            t["sellers_expanded_accounts"] = math.nan if expanded is None else expanded
        t["net_contribution"] = (t["take_revenue"] - t["payment_costs"] - t["marketing_cost"] - t["cs_cost"]
                                 - t["incentive_cost"])
        self._expect_columns()
        self.ledger.append(t)
        self.attraction.record(t, self.sides)
        self._census_cache = morning   # tomorrow's acquisition starts from tonight's state
