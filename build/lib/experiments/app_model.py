"""The model behind `twosided app`: one or two Marketplaces stepped together.

:class:`MarketLab` is a ``mesa.Model`` whose keyword arguments are the
page's controls (market, policy, side sizes, take rate, onboarding quality,
CS staff, marketing budget, seed, preset, side-by-side). It builds the run
configuration with :func:`experiments.config.load_config` and holds one
:class:`sim.Marketplace` per arm:

* normal mode: one arm, the chosen policy;
* side-by-side mode: two arms with the same seed and configuration, one
  without CS policy (``policy=none``) and one with the chosen policy. Streams
  are counter-based, so both arms see the same luck for every agent that
  exists in both: the gap between the lines is the policy's effect.

Nothing here imports solara: the page (experiments/app_page.py) only draws
what this module computes, and tests can drive it without a browser.
"""
from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from pathlib import Path

import mesa
import numpy as np
from omegaconf import OmegaConf

from experiments.config import CONF_DIR, group_options, load_config
from experiments.phase_portrait import cache_key, grid_levels, supply_side
from sim import Marketplace
from sim.metrics import MONTH_DAYS as MONTH

PRESET_DIR = CONF_DIR / "presets"
NO_PRESET = "none (use the controls)"
SIDE_ORDER = ("buyers", "sellers", "drivers")
# Who the sides are in each market, for labels a student recognises.
SIDE_NAMES = {
    "goods": {"buyers": "shoppers", "sellers": "merchants"},
    "rides": {"buyers": "riders", "drivers": "drivers"},
    "delivery": {"buyers": "diners", "sellers": "restaurants", "drivers": "couriers"},
}

# The page's starting sizes: a small city a class can watch day by day. Every
# other control starts at what the market's configuration (and the preset)
# says, see :func:`default_controls`, so a control nobody touched changes nothing.
START_SIZES = {"buyers": 2000, "sellers": 200, "drivers": 80}
DEFAULTS = dict(market="rides", policy="none", side_by_side=False, preset=NO_PRESET, seed=0, days=730)
CONTROL_KEYS = ("buyers", "sellers", "drivers", "take_rate", "onboarding_quality", "cs_staff", "marketing_pct")
# Two control values closer than this are the same setting (sliders move in steps of 0.01 or more).
SAME_SETTING = 1e-6


def side_names(market: str) -> dict[str, str]:
    """Every side's name in ``market``, as a student knows them (``buyers`` -> ``riders`` in rides)."""
    return {side: SIDE_NAMES.get(market, {}).get(side, side) for side in SIDE_ORDER}


# -- presets -------------------------------------------------------------------
@dataclass
class Preset:
    """A teaching scenario from conf/presets/<name>.yaml, started at one of its starts."""

    name: str
    start: str
    title: str
    market: str
    explanation: str
    overrides: list[str]
    population: dict[str, int]
    days: int

    @property
    def label(self) -> str:
        return preset_label(self.name, self.start)


def preset_label(name: str, start: str) -> str:
    """How a preset start is named in the chooser: ``critical_mass: below``."""
    return f"{name}: {start}"


def preset_files() -> list[Path]:
    """The preset files, conf/presets/*.yaml."""
    return sorted(PRESET_DIR.glob("*.yaml"))


def preset_choices() -> list[str]:
    """Every preset start, as labels for the chooser (after NO_PRESET)."""
    labels = []
    for path in preset_files():
        spec = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
        labels += [preset_label(path.stem, start) for start in spec["starts"]]
    return labels


def load_preset(label: str) -> Preset:
    """The preset start named ``label`` (``name: start``)."""
    name, _, start = label.partition(": ")
    path = PRESET_DIR / f"{name}.yaml"
    if not path.exists():
        raise ValueError(f"unknown preset {label!r}; allowed: {', '.join(preset_choices())}")
    spec = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    if start not in spec["starts"]:
        raise ValueError(f"preset {name} has no start {start!r}; allowed: {', '.join(spec['starts'])}")
    return Preset(name=name, start=start, title=spec.get("title", name), market=spec["market"],
                  explanation=" ".join(str(spec.get("explanation", "")).split()),
                  overrides=[str(o) for o in spec.get("overrides", [])],
                  population={k: int(v) for k, v in spec["starts"][start].items()},
                  days=int(spec.get("days", DEFAULTS["days"])))


def preset_overrides(label: str, seed: int = 0, policy: str = "none") -> list[str]:
    """The full override list of a preset start (what notebooks and tests run)."""
    p = load_preset(label)
    return ([f"market={p.market}", f"policy={policy}", f"seed={seed}", f"days={p.days}"]
            + [f"population.{side}={n}" for side, n in p.population.items()] + p.overrides)


# -- building the configuration -------------------------------------------------
def parse_seed(seed) -> int:
    """The seed field is text: a whole number >= 0, anything else is an error the page shows."""
    text = str(seed).strip()
    if not text.isdigit():
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    return int(text)


@functools.lru_cache(maxsize=64)
def _composed(overrides: tuple[str, ...]):
    """Hydra composition takes about a second; the page asks for the same configurations again and again."""
    return load_config(list(overrides))


def cached_config(overrides: list[str]):
    """:func:`load_config` of ``overrides``, composed once per process; a private copy each call."""
    return copy.deepcopy(_composed(tuple(overrides)))


def market_sides(market: str) -> tuple[str, ...]:
    """The sides of ``market``, in the page's order."""
    sides = _composed((f"market={market}",)).market.sides
    return tuple(s for s in SIDE_ORDER if s in sides)


def base_overrides(market: str, preset: Preset | None) -> list[str]:
    """What the configuration is before the controls act: the market, or the preset's market and overrides."""
    if preset is None:
        return [f"market={market}"]
    return [f"market={preset.market}"] + preset.overrides


def controls_in_config(cfg, default_cfg) -> dict:
    """The control values that ``cfg`` amounts to (the inverse of :func:`control_overrides`).

    Take rate is the commission of the first supply side, onboarding quality
    the buyers' (a moved onboarding slider sets every side), marketing the
    budget as a percentage of ``default_cfg``'s (the market without preset).
    """
    sides = [s for s in SIDE_ORDER if s in cfg.market.sides]
    supply = next(s for s in sides if s != "buyers")
    out = {side: int(getattr(cfg.population, side)) for side in sides}
    out["take_rate"] = round(float(getattr(cfg.market, supply).commission), 4)
    out["onboarding_quality"] = round(float(cfg.market.buyers.onboarding.quality), 4)
    out["cs_staff"] = int(cfg.cs.staff)
    budgets = [(getattr(cfg.market, s).acquisition.marketing_budget_per_1k,
                getattr(default_cfg.market, s).acquisition.marketing_budget_per_1k) for s in sides]
    out["marketing_pct"] = next((round(100.0 * now / default) for now, default in budgets if default > 0), 100)
    return out


def default_controls(market: str, preset: Preset | None = None) -> dict:
    """What the controls show for ``market`` (or ``preset``) before anyone moves them.

    Side sizes: the preset's start, else the page's :data:`START_SIZES`; every
    other control: the value in the configuration the run would use.
    """
    market = preset.market if preset else market
    sizes = preset.population if preset else {s: START_SIZES[s] for s in market_sides(market)}
    cfg = cached_config(base_overrides(market, preset) + [f"population.{s}={n}" for s, n in sizes.items()])
    return controls_in_config(cfg, _composed((f"market={market}",)))


def control_overrides(market: str, preset: Preset | None = None, **controls) -> list[str]:
    """Hydra overrides for the controls of the page that differ from the configuration they start from.

    Side sizes always become ``population.<side>=n`` (sides ``market`` lacks
    are left out). The other controls give an override only when they differ
    from :func:`default_controls`, so an untouched control keeps each side's
    own configured value. A moved take rate sets every supply side's
    commission, onboarding quality every side's, and the marketing
    percentage scales each side's default budget.
    """
    sides = market_sides(market)
    start = default_controls(market, preset)
    out = [f"population.{side}={int(controls[side])}" for side in sides if side in controls]
    unknown = set(controls) - set(CONTROL_KEYS)
    if unknown:
        raise ValueError(f"unknown control(s) {sorted(unknown)}; allowed: {', '.join(CONTROL_KEYS)}")
    moved = {key: value for key, value in controls.items()
             if key not in SIDE_ORDER and abs(float(value) - float(start[key])) > SAME_SETTING}
    if "take_rate" in moved:
        out += [f"market.{side}.commission={float(moved['take_rate']):g}" for side in sides if side != "buyers"]
    if "onboarding_quality" in moved:
        out += [f"market.{side}.onboarding.quality={float(moved['onboarding_quality']):g}" for side in sides]
    if "cs_staff" in moved:
        out.append(f"cs.staff={int(moved['cs_staff'])}")
    if "marketing_pct" in moved:
        default = _composed((f"market={market}",)).market
        for side in sides:
            budget = getattr(default, side).acquisition.marketing_budget_per_1k * float(moved["marketing_pct"]) / 100
            out.append(f"market.{side}.acquisition.marketing_budget_per_1k={budget:g}")
    return out


# -- the model ---------------------------------------------------------------
class Arm:
    """One Marketplace and the figures the page draws from it."""

    def __init__(self, label: str, policy: str, cfg):
        self.label = label
        self.policy = policy
        self.model = Marketplace(cfg)
        self.waiting = np.empty(0, dtype=np.int64)   # buyers whose request failed today
        self.served = np.empty(0, dtype=np.int64)    # buyers served today

    def step(self) -> None:
        buyers = self.model.sides["buyers"]
        n = buyers.n
        orders, completed = buyers.orders.copy(), buyers.orders_completed.copy()
        self.model.step()
        asked = buyers.orders[:n] - orders
        got = buyers.orders_completed[:n] - completed
        self.waiting = np.flatnonzero((asked > got) & buyers.alive[:n])
        self.served = np.flatnonzero(got > 0)

    @property
    def rows(self) -> list[dict]:
        return self.model.ledger.rows


class MarketLab(mesa.Model):
    """The app's model: its keyword arguments are the page's controls; ``step()`` is one day.

    A control left at ``None`` takes the value :func:`default_controls` gives
    (the preset's or the market's own), so ``MarketLab(preset=...)`` runs the
    preset exactly as its file says. ``preset`` (a label from
    :func:`preset_choices`) sets the market, the horizon and the overrides of
    the preset; explicit controls are applied on top of it. ``side_by_side``
    runs a second arm without the policy on the same random numbers.
    """

    def __init__(self, market: str = DEFAULTS["market"], policy: str = DEFAULTS["policy"],
                 side_by_side: bool = DEFAULTS["side_by_side"], preset: str = DEFAULTS["preset"],
                 buyers: int | None = None, sellers: int | None = None, drivers: int | None = None,
                 take_rate: float | None = None, onboarding_quality: float | None = None,
                 cs_staff: int | None = None, marketing_pct: float | None = None, seed=DEFAULTS["seed"],
                 days: int = DEFAULTS["days"]):
        self.warning = None
        try:
            seed_value = parse_seed(seed)
        except ValueError as error:
            seed_value, self.warning = 0, f"{error}; using seed 0."
        super().__init__(seed=seed_value)
        self.preset = load_preset(preset) if preset and preset != NO_PRESET else None
        if self.preset:
            market, days = self.preset.market, self.preset.days
        given = dict(buyers=buyers, sellers=sellers, drivers=drivers, take_rate=take_rate,
                     onboarding_quality=onboarding_quality, cs_staff=cs_staff, marketing_pct=marketing_pct)
        defaults = default_controls(market, self.preset)
        controls = {key: defaults[key] if given[key] is None else given[key] for key in defaults}
        self.market_name = market
        self.policy = policy
        self.side_by_side = bool(side_by_side)
        self.seed_value = seed_value
        self.controls = controls
        common = base_overrides(market, self.preset) + [f"seed={seed_value}", f"days={int(days)}"]
        common += control_overrides(market, self.preset, **controls)
        self.overrides = common
        arms = [("without policy", "none"), (f"with {policy}", policy)] if self.side_by_side else \
            [(f"policy: {policy}", policy)]
        self.arms = [Arm(label, p, cached_config(common + [f"policy={p}"])) for label, p in arms]
        self.sides = tuple(s for s in SIDE_ORDER if s in self.arms[0].model.sides)
        self.days = int(days)
        self.running = True

    # -- stepping ------------------------------------------------------------
    def step(self) -> None:
        """One simulated day in every arm."""
        if self.day >= self.days:
            self.running = False
            return
        for arm in self.arms:
            arm.step()
        self.running = self.day < self.days

    @property
    def day(self) -> int:
        return self.arms[0].model.day

    # -- what the page draws ------------------------------------------------
    def side_name(self, side: str) -> str:
        """What ``side`` is called in this market (riders, restaurants...)."""
        return side_names(self.market_name)[side]

    def series(self, arm: Arm, column: str) -> np.ndarray:
        """One ledger column per day (NaN where a day lacks it)."""
        return np.array([row.get(column, math.nan) for row in arm.rows], dtype=float)

    def active(self, arm: Arm, side: str) -> np.ndarray:
        return self.series(arm, f"{side}_active")

    def relative_size(self, arm: Arm, side: str) -> np.ndarray:
        """Active agents of ``side`` per day divided by its starting size (1 = the start)."""
        return self.active(arm, side) / max(1, arm.model.initial_size[side])

    def rolling_churn_30d(self, arm: Arm, side: str) -> np.ndarray:
        """Rolling 30-day churn on each day t >= 29 (every departure, a live view; not the summary's
        monthly churn of activated agents, sim.metrics): churned on days t-29..t / active at the end of day t-30.

        Day -1's "active" is the initial population. Agents who joined and left
        within the 30 days count in the numerator, not the denominator.
        """
        churned = self.series(arm, f"{side}_churned")
        active = np.concatenate([[arm.model.initial_size[side]], self.active(arm, side)])
        out = np.full(churned.size, np.nan)
        if churned.size >= MONTH:
            window = np.convolve(churned, np.ones(MONTH), mode="valid")   # sum over t-29..t, t = 29..
            start = active[: window.size]                                  # end of day t-30 (index t-29)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[MONTH - 1:] = np.where(start > 0, window / start, np.nan)
        return out

    def nps(self, arm: Arm, side: str) -> tuple[np.ndarray, np.ndarray]:
        """Survey days and NPS (points), one per 30-day month."""
        values = self.series(arm, f"{side}_nps")
        days = np.flatnonzero(np.isfinite(values))
        return days, values[days]

    def money(self, arm: Arm, column: str, window: int = 7) -> np.ndarray:
        """A money column per day, as a trailing ``window``-day mean (currency per day)."""
        values = self.series(arm, column)
        if values.size == 0:
            return values
        cum = np.cumsum(np.nan_to_num(values))
        out = np.empty_like(cum)
        out[:window] = cum[:window] / np.arange(1, min(window, cum.size) + 1)
        out[window:] = (cum[window:] - cum[:-window]) / window
        return out

    def latest(self, arm: Arm) -> dict:
        """Today's headline figures of one arm (for the readout)."""
        if not arm.rows:
            return {f"{s}_active": arm.model.initial_size[s] for s in self.sides}
        return arm.rows[-1]

    def city(self, arm: Arm) -> dict[str, np.ndarray] | None:
        """Positions on the unit torus for the map (None for goods: no city).

        ``idle``: drivers online today who had no trip; ``busy``: drivers who drove
        a trip today (``busy_until`` after the start of the day just simulated);
        ``offline``: alive drivers not working today; ``waiting``: riders whose
        request failed today (no idle driver within reach); ``sellers``:
        restaurants (delivery).
        """
        if "drivers" not in arm.model.sides:
            return None
        d = arm.model.sides["drivers"]
        b = arm.model.sides["buyers"]
        start_of_day = arm.model.day - 1
        alive = d.alive
        online = alive & (d.online_hours > 0)
        busy = online & (d.busy_until > start_of_day) if arm.rows else np.zeros(d.n, dtype=bool)
        out = {"busy": np.column_stack([d.x[busy], d.y[busy]]),
               "idle": np.column_stack([d.x[online & ~busy], d.y[online & ~busy]]),
               "offline": np.column_stack([d.x[alive & ~online], d.y[alive & ~online]]),
               "waiting": np.column_stack([b.home_x[arm.waiting], b.home_y[arm.waiting]])}
        if "sellers" in arm.model.sides:
            s = arm.model.sides["sellers"]
            out["sellers"] = np.column_stack([s.x[s.alive], s.y[s.alive]])
        return out

    def portrait_request(self) -> tuple[tuple, object]:
        """(cache key, configuration) of this market's phase portrait (experiments/phase_portrait.py).

        The grid spans each side's start or the page's default start,
        whichever is larger, so both a thin and a thick city lie inside it.
        The policy is the chosen one; the sizes on the grid replace the start.
        """
        supply = supply_side(self.sides)
        reference = {side: max(self.controls[side], START_SIZES[side]) for side in ("buyers", supply)}
        levels = grid_levels(reference["buyers"]), grid_levels(reference[supply])
        grid_sides = ("population.buyers=", f"population.{supply}=")
        overrides = [o for o in self.overrides if not o.startswith(grid_sides)] + [f"policy={self.policy}"]
        return cache_key(overrides, *levels), self.arms[-1].model.cfg

    def describe(self) -> str:
        """One line a student can read: what is being simulated."""
        names = ", ".join(f"{self.controls[s]:,} {self.side_name(s)}" for s in self.sides)
        arms = " vs ".join(a.label for a in self.arms)
        return f"{self.market_name} market, {names} at the start; seed {self.seed_value}; {arms}"


def policy_choices() -> list[str]:
    """CS policies the page offers (conf/policy/)."""
    return group_options("policy")


def market_choices() -> list[str]:
    return group_options("market")
